"""The pretrained-model cache is shared by sweeps of any storage path, and pretraining is visible while it runs.

- Where the cache is: ``--cache-dir``, ``$ANALOG_SWEEP_CACHE`` (``{storage}`` standing for the storage path), the
  storage path on a cluster, the user's cache folder otherwise; one that cannot be written is one line.
- Two sweeps with different storage paths and the same pretraining settings: the second takes the model from the
  cache, and nothing is trained again (the file's mtime, the store's ``trained_now``).
- A model in a storage path's own ``cache`` folder (searched whatever the cache folder is) is found.
- While a model trains, the run prints its epoch, loss and time left, and says when it waits for another sweep that
  trains the same model; ``status`` of a sweep that is pretraining says so.

Real Ray, real training (a nano Swin on the embedded digits), real files; every test points the cache at its own
folder.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from analog_sweep.orchestrator import (
    CACHE_ENV,
    PreflightError,
    SweepPaths,
    _pretraining,
    pretrain_cache_dir,
    pretraining_lines,
    run_sweep,
    sweep_paths,
)
from analog_sweep.orchestrator._paths import check_cache_dir, pretraining_line
from analog_sweep.orchestrator._pretraining import pretrain_stage
from analog_sweep.results import open_store
from analog_sweep.sweeps import load_spec, pretrain_keys, shipped_specs
from analog_sweep.workers import cache_entry, pretrained_model, read_progress

from .conftest import NANO_SWEEP

QUICKSTART = shipped_specs()["quickstart"]
# One digital TL point, its two learning rates, one epoch; a pretraining of a few seconds (300 source images, 60
# epochs), so that progress lines have time to appear.
SWEEP = [*NANO_SWEEP, "epochs=1", "modes=[digital_tl]", "axes=null", "data.source_limit=300", "pretrain.epochs=60"]
KEY_LINE = r"pretraining (?P<key>[0-9a-f]{16}): epoch (?P<epoch>\d+)/60, loss (?P<loss>\d+\.\d{3}), \d+m\d\ds left$"


def _sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


# --- where the cache is ---------------------------------------------------------------------------------------


def test_the_cache_folder_is_the_option_then_the_variable_then_the_cluster_or_user_default(tmp_path, monkeypatch):
    storage = tmp_path / "store"
    monkeypatch.delenv(CACHE_ENV, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert pretrain_cache_dir(storage) == tmp_path / "home" / ".cache" / "analog-sweep" / "pretrained"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert pretrain_cache_dir(storage) == tmp_path / "xdg" / "analog-sweep" / "pretrained"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # not absolute: ignored, as the XDG specification says
    assert pretrain_cache_dir(storage) == tmp_path / "home" / ".cache" / "analog-sweep" / "pretrained"
    # On a cluster the workers of every node need it: the storage path, which they share.
    assert pretrain_cache_dir(storage, on_cluster=True) == storage / "cache"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env-cache"))
    assert pretrain_cache_dir(storage, on_cluster=True) == tmp_path / "env-cache"
    assert pretrain_cache_dir(storage, tmp_path / "option") == tmp_path / "option"
    assert pretrain_cache_dir(storage, "{storage}/models") == storage / "models"


def test_a_cache_folder_that_cannot_be_written_is_refused_in_one_line(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(PreflightError, match=rf"cannot cache pretrained models in {blocker}/cache: {blocker} is "):
        check_cache_dir(blocker / "cache")
    check_cache_dir(tmp_path / "new" / "cache")  # under a folder that can be written: fine, and nothing left behind
    assert not (tmp_path / "new").exists()
    (tmp_path / "kept").mkdir()
    check_cache_dir(tmp_path / "kept")  # a folder that was there stays, empty
    assert list((tmp_path / "kept").iterdir()) == []
    # what the permission bits do not tell: /proc refuses new entries even to root
    with pytest.raises(PreflightError, match=r"cannot cache pretrained models in /proc/analog-sweep-cache: .*; set "):
        check_cache_dir(Path("/proc/analog-sweep-cache"))

    done = subprocess.run(
        [sys.executable, "-m", "analog_sweep", "run", str(QUICKSTART), *_set(SWEEP), "--storage-path",
         str(tmp_path / "storage"), "--store", f"sqlite:///{tmp_path}/results.db", "--cache-dir",
         str(blocker / "cache")],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (error,) = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
    assert f"{blocker}/cache" in error and CACHE_ENV in error and "--cache-dir" in error, error
    assert not (tmp_path / "storage").exists()  # refused before anything was written


def _set(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


# --- the shared cache and progress, on a local Ray instance ---------------------------------------------------


@pytest.mark.slow
def test_a_second_sweep_in_another_storage_path_takes_the_model_from_the_cache(tmp_path, monkeypatch, local_ray):
    cache = tmp_path / "shared-cache"
    monkeypatch.setenv(CACHE_ENV, str(cache))
    monkeypatch.setattr(_pretraining, "PROGRESS_SECONDS", 1.0)
    first = load_spec(QUICKSTART, [*SWEEP, "name=first"])
    second = load_spec(QUICKSTART, [*SWEEP, "name=second", "seeds=[1]"])
    lines: dict[str, list[str]] = {"first": [], "second": []}
    with open_store(f"sqlite:///{tmp_path}/results.db") as store:
        assert run_sweep(first, store, storage_root=tmp_path / "a", echo=lines["first"].append).status == "finished"
        (model_file,) = cache.glob("pretrain-*.pt")
        made = model_file.stat().st_mtime_ns
        assert run_sweep(second, store, storage_root=tmp_path / "b", echo=lines["second"].append).status == "finished"
        models = {name: store.provenance(name)["pretrained"] for name in lines}

    (key,) = pretrain_keys(first)
    assert key in pretrain_keys(second)
    # The first trained it, printing its progress while it did: the epoch rising, the mean loss falling.
    progress = [m for line in lines["first"] if (m := re.match(KEY_LINE, line))]
    assert progress and {m["key"] for m in progress} == {key}, lines["first"]
    assert [int(m["epoch"]) for m in progress] == sorted(int(m["epoch"]) for m in progress)
    if len(progress) > 1:
        assert float(progress[-1]["loss"]) < float(progress[0]["loss"])
    assert any(line.startswith(f"pretraining {key}: trained in") for line in lines["first"]), lines["first"]
    # The second loaded it: no progress, the file as it was, and the store says it was not trained by this sweep.
    assert any(line.startswith(f"pretraining {key}: from cache") for line in lines["second"]), lines["second"]
    assert not any(re.match(KEY_LINE, line) for line in lines["second"])
    assert model_file.stat().st_mtime_ns == made
    assert [m["trained_now"] for m in models["first"]] == [True]
    assert [m["trained_now"] for m in models["second"]] == [False]
    for (model,) in models.values():  # the provenance names the shared file, with its hash
        assert model["path"] == str(model_file) and model["file_hash"] == _sha256(model_file)
    assert not (tmp_path / "a" / "cache").exists() and not (tmp_path / "b" / "cache").exists()
    for root in (tmp_path / "a" / "first", tmp_path / "b" / "second"):
        assert not SweepPaths(root).pretraining.exists()  # the stage's status file goes when the stage ends


def test_a_model_in_the_storage_paths_own_cache_folder_is_found_not_trained_again(tmp_path, local_ray):
    spec = load_spec(QUICKSTART, [*NANO_SWEEP, "epochs=1", "modes=[digital_tl]", "axes=null"])
    paths = sweep_paths(tmp_path / "storage", spec.name)
    (job,) = pretrain_keys(spec).values()
    old = pretrained_model(job.data, job.model, job.pretrain, paths.cache)  # where a sweep kept it before
    lines, models = [], []

    pretrain_stage(spec, paths, 1, 0, lines.append, models.append, cache_dir=tmp_path / "shared")

    assert f"pretraining {job.key}: from cache, source test error {old.source_test_error:.1f} %" in lines
    (model,) = models
    assert not model["trained_now"] and Path(model["path"]).parent == tmp_path / "shared"
    assert model["file_hash"] == old.file_hash == _sha256(model["path"])


@pytest.mark.slow
def test_a_model_another_sweep_is_training_is_waited_for_and_its_progress_shown(tmp_path, local_ray):
    """Another sweep (a process of its own, with the same cache) trains the model; this sweep's stage waits on the
    cache entry's lock, says whose training it waits for, and then loads the model: it is trained once."""
    spec = load_spec(QUICKSTART, [*SWEEP, "pretrain.epochs=150"])  # about 10 s
    cache = tmp_path / "cache"
    (job,) = pretrain_keys(spec).values()
    entry = cache_entry(job.data, job.model, job.pretrain, cache)
    other = subprocess.Popen(
        [sys.executable, "-c", _TRAIN_AS_ANOTHER_SWEEP, str(cache), *SWEEP, "pretrain.epochs=150"],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        deadline = time.monotonic() + 60
        while read_progress(entry.progress) is None:
            assert other.poll() is None and time.monotonic() < deadline, "the other sweep never started training"
            time.sleep(0.1)
        paths = sweep_paths(tmp_path / "storage", spec.name)
        lines, models = [], []
        pretrain_stage(spec, paths, 1, 0, lines.append, models.append, cache_dir=cache, interval=1.0)
        assert other.wait(timeout=60) == 0
    finally:
        if other.poll() is None:
            other.kill()

    waiting = [line for line in lines if "waiting for another sweep's pretraining" in line]
    assert waiting, lines
    pattern = (
        rf"pretraining: waiting for another sweep's pretraining of {job.key} "
        r"\(sweep other: (epoch \d+/150, loss |first of 150 epochs running)"
    )
    assert all(re.match(pattern, line) for line in waiting), waiting
    assert any(line.startswith(f"pretraining {job.key}: from cache") for line in lines), lines
    assert [model["trained_now"] for model in models] == [False]


_TRAIN_AS_ANOTHER_SWEEP = """
import sys
from analog_sweep.sweeps import load_spec, pretrain_keys, shipped_specs
from analog_sweep.workers import pretrained_model
spec = load_spec(shipped_specs()["quickstart"], sys.argv[2:])
(job,) = pretrain_keys(spec).values()
pretrained_model(job.data, job.model, job.pretrain, sys.argv[1], tag={"sweep": "other", "token": "another"})
"""


# --- status ------------------------------------------------------------------------------------------------------


def test_pretraining_lines_say_epoch_loss_and_time_left_or_whose_training_is_waited_for():
    record = {"sweep": "quickstart", "epoch": 12, "epochs": 40, "loss": 0.4123, "left_s": 31.0, "updated_at": 100.0}
    training = {"key": "9e540985ae936667", "state": "training", "progress": record, "since": 50.0}
    assert pretraining_line(training, now=100.0) == "pretraining 9e540985ae936667: epoch 12/40, loss 0.412, 0m31s left"
    # The time left counts down from when the record was written.
    assert pretraining_line(training, now=110.0).endswith("0m21s left")
    # An epoch slower than the ones before (a busier machine) never counts the time left down to nothing
    assert pretraining_line(training, now=140.0).endswith("0m31s left")
    waiting = {**training, "state": "waiting"}
    assert pretraining_line(waiting, now=100.0) == (
        "pretraining: waiting for another sweep's pretraining of 9e540985ae936667 "
        "(sweep quickstart: epoch 12/40, loss 0.412, 0m31s left)"
    )
    starting = {"key": "9e540985ae936667", "state": "starting", "progress": None, "since": 50.0}
    assert pretraining_line(starting, now=65.0) == "pretraining 9e540985ae936667: starting, 0m15s so far"
    first = {**training, "progress": {"epoch": 0, "epochs": 40, "elapsed_s": 3.0}}
    assert pretraining_line(first, now=100.0) == "pretraining 9e540985ae936667: first of 40 epochs running, 0m03s in"
    assert pretraining_lines(None) == [] and pretraining_lines("/nonexistent/sweep") == []


@pytest.mark.slow
def test_status_of_a_sweep_that_is_pretraining_says_so(tmp_path):
    """A real driver (the command line, its own local Ray) pretrains for 10-20 s; ``status`` shows its progress."""
    store = f"sqlite:///{tmp_path}/results.db"
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    overrides = [*SWEEP, "pretrain.epochs=100", "name=slow-pretraining"]
    driver = subprocess.Popen(
        [sys.executable, "-m", "analog_sweep", "run", str(QUICKSTART), *_set(overrides), "--storage-path",
         str(tmp_path / "storage"), "--store", store],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, start_new_session=True,
    )  # fmt: skip
    try:
        one, every = "", ""
        deadline = time.monotonic() + 240
        while driver.poll() is None and time.monotonic() < deadline:
            one = _status(store, "slow-pretraining")
            if re.search(r"pretraining [0-9a-f]{16}: epoch \d+/100, loss \d+\.\d{3}, \d+m\d\ds left", one):
                every = _status(store)
                break
            time.sleep(0.5)
        out, err = driver.communicate(timeout=300)
    finally:
        if driver.poll() is None:
            driver.kill()
    assert driver.returncode == 0, err
    assert "sweep slow-pretraining: running" in one, one
    assert re.search(r"^pretraining [0-9a-f]{16}: epoch \d+/100, ", one, re.M), one
    assert re.search(r"^sweep slow-pretraining: pretraining [0-9a-f]{16}: (epoch \d+/100|starting)", every, re.M), every
    # Once the stage is over, status has nothing to say about pretraining.
    assert not re.search(r"^pretraining", _status(store, "slow-pretraining"), re.M)


def _status(store: str, *sweep: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "analog_sweep", "status", *sweep, "--store", store],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    return done.stdout + done.stderr
