"""A real sweep records its provenance: the run, a resume on other package versions (warned about), the pretrained
model with its file hash, and each analog trial's resolved rpu config."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import platform
import socket
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

import analog_sweep
from analog_sweep.orchestrator import Invocation, gather_environment, resume_sweep, run_sweep, version_warnings
from analog_sweep.orchestrator._provenance import project_info
from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs, trial_config
from analog_sweep.workers import trial_rpu_config_json

from .conftest import NANO_SWEEP

REPO = Path(__file__).resolve().parents[2]
# One analog and one digital transfer-learning point, two learning rates each, one epoch.
SWEEP = [*NANO_SWEEP, "epochs=1", "modes=[analog_tl,digital_tl]", "axes=null"]


@pytest.mark.slow
def test_a_run_and_a_resume_record_their_provenance(tmp_path, local_ray):
    spec = load_spec(shipped_specs()["quickstart"], SWEEP)
    url = f"sqlite:///{tmp_path}/results.db"
    secret = f"Pw-{uuid.uuid4().hex}"
    command = [
        "analog-sweep",
        "run",
        "quickstart.yaml",
        "--set",
        "epochs=1",
        "--store",
        f"postgresql+psycopg://me:{secret}@db.example.org/sweeps",
    ]
    lines: list[str] = []
    with open_store(url) as store:
        outcome = run_sweep(
            spec,
            store,
            storage_root=tmp_path / "storage",
            echo=lines.append,
            invocation=Invocation(command, {"overrides": SWEEP, "store": "label"}),
        )
        assert outcome.status == "finished", outcome.message
        # An earlier run on other versions: what the store says the first run had.
        with store.engine.begin() as connection:
            connection.execute(sa.text("UPDATE sweeps SET status = 'interrupted'"))
            old = store.provenance(spec.name)["runs"][0]
            older = {**old["packages"], "torch": "2.9.1", "optuna": "3.0.0"}
            connection.execute(sa.text("UPDATE sweep_runs SET packages = :p"), {"p": json.dumps(older)})
        lines.clear()
        resumed = resume_sweep(spec.name, store, echo=lines.append)
        assert resumed.status == "finished", resumed.message
        found = store.provenance(spec.name)

    now = gather_environment()["packages"]
    warnings = [line for line in lines if line.startswith("warning: resuming")]
    assert warnings == [
        f"warning: resuming with torch {now['torch']} (the sweep ran with 2.9.1)",
        f"warning: resuming with optuna {now['optuna']} (the sweep ran with 3.0.0)",
    ], lines

    first, second = found["runs"]
    assert (first["kind"], second["kind"]) == ("run", "resume") and first["started_at"] < second["started_at"]
    assert secret not in first["command"] and "me:***@db.example.org" in first["command"]
    assert first["options"]["overrides"] == SWEEP and first["options"]["cpu_fallback"] is False
    assert first["options"]["trial_resources"] == {"cpu": 1.0, "gpu": 0.0, "slots": 2}
    assert second["packages"] == now and set(now) >= {
        "python",
        "torch",
        "torchvision",
        "aihwkit",
        "timm",
        "numpy",
        "ray",
        "optuna",
        "sqlalchemy",
        "pyarrow",
    }
    assert all(now[name] for name in now)  # every one of them is installed here
    assert first["aihwkit_cuda"] is False  # the PyPI wheel
    assert first["cluster"]["nodes"] == 1 and first["cluster"]["cpus"] == 2.0
    assert first["cpu"]["count"] >= 1 and first["host"]
    assert first["project"]["version"]
    if (REPO / ".git").exists():  # run from a checkout: its commit, and whether tracked files differ from it
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert first["project"]["commit"] == head.stdout.strip() and first["project"]["dirty"] in (True, False)

    # One pretrained model (the resume took it from the cache: the same file, so still one row).
    [model] = found["pretrained"]
    cache_file = Path(model["path"])
    assert model["file_hash"] == hashlib.sha256(cache_file.read_bytes()).hexdigest()
    assert model["trained_now"] is True and model["run"] == 1 and model["train_seconds"] > 0
    assert any(f"source test error {model['source_error']:.1f} %" in line for line in lines)

    # Each analog trial's rpu config, as the worker built it; the digital trials have none.
    points = {point.key: point for point in expand(spec)}
    with open_store(url) as store:
        trials = store.list_trials(spec.name)
    analog = [t for t in trials if points[t["point_key"]].mode == "analog_tl"]
    assert len(analog) == spec.lr_search.trials_per_point
    [group] = found["rpu_configs"]  # one device point: one config, stored once
    for trial in analog:
        assert trial["rpu_config_hash"] == group["config_hash"]
        assert group["rpu_config"] == trial_rpu_config_json(trial_config(points[trial["point_key"]], trial["lr"]))
    assert sorted(group["trial_ids"]) == sorted(t["trial_id"] for t in analog)
    assert group["rpu_config"]["__class__"].endswith("ChoppedTTv2ReRamSBPreset")
    assert found["trials_without_rpu_config"] == len(trials) - len(analog)


def test_version_warnings_name_each_difference():
    before = {
        "packages": {"python": "3.11.7", "torch": "2.9.1", "ray": "2.40.0", "timm": "1.0.0"},
        "project": {"version": "0.1.0"},
        "aihwkit_cuda": True,
    }
    now = {
        "packages": {"python": "3.11.7", "torch": "2.10.0", "ray": "2.40.0", "timm": None},
        "project": {"version": "0.2.0"},
        "aihwkit_cuda": False,
    }
    assert version_warnings(before, now) == [
        "warning: resuming with torch 2.10.0 (the sweep ran with 2.9.1)",
        "warning: resuming without timm (the sweep ran with 1.0.0)",
        "warning: resuming with analog-sweep 0.2.0 (the sweep ran with 0.1.0)",
        "warning: resuming with aihwkit without CUDA (the sweep ran with aihwkit with CUDA)",
    ]
    assert version_warnings(before, before) == []
    # A package the earlier run did not record (an older record) is no difference.
    assert version_warnings({"packages": {}}, now) == []


def test_the_environment_of_this_process():
    found = gather_environment()
    assert list(found["packages"]) == [
        "python",
        "torch",
        "torchvision",
        "aihwkit",
        "timm",
        "numpy",
        "ray",
        "optuna",
        "sqlalchemy",
        "pyarrow",
    ]
    assert found["packages"]["python"] == platform.python_version()
    assert found["packages"]["torch"] == importlib.metadata.version("torch")
    assert found["project"]["version"] == analog_sweep.__version__
    assert found["cpu"]["count"] == os.cpu_count() and found["host"] == socket.gethostname()
    assert (found["gpus"]["model"] is None) == (found["gpus"]["count"] == 0)
    assert found["aihwkit_cuda"] in (True, False)


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True, text=True).stdout.strip()


def test_project_commit_and_dirty_flag_from_a_git_checkout(tmp_path):
    assert project_info(tmp_path) == {"version": analog_sweep.__version__, "commit": None, "dirty": None}
    _git(tmp_path, "init", "-q")
    (tmp_path / "code.py").write_text("x = 1\n")
    _git(tmp_path, "add", "code.py")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert project_info(tmp_path) == {"version": analog_sweep.__version__, "commit": head, "dirty": False}
    (tmp_path / "notes.txt").write_text("untracked\n")  # untracked files do not make a checkout dirty
    assert project_info(tmp_path)["dirty"] is False
    (tmp_path / "code.py").write_text("x = 2\n")
    assert project_info(tmp_path) == {"version": analog_sweep.__version__, "commit": head, "dirty": True}
    # A folder inside someone else's repository is not a checkout of the project.
    (tmp_path / "site-packages").mkdir()
    assert project_info(tmp_path / "site-packages")["commit"] is None
