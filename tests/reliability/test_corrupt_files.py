"""Damaged checkpoints and pretraining caches are detected (checksums, then structure), never used, and the work is
redone from the last good state; a file holding a pickled callable never runs it. Trial level first (one damage per
test, on a digital trial whose resumed numbers must equal the uninterrupted run's), then a whole sweep: killed, its
files damaged, resumed.
"""

from __future__ import annotations

import hashlib
import io
import shutil
import time
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.workers import (
    CorruptFileError,
    DataConfig,
    ModelConfig,
    PretrainConfig,
    TrialConfig,
    pretrained_model,
    run_trial,
)
from analog_sweep.workers._verified_files import MAGIC, load_verified

from ..orchestrator.faults import kill_session
from .conftest import (
    ANALOG_PAIR,
    QUICKSTART,
    SWEEP_NAME,
    assert_complete,
    cli_process,
    expected,
    set_args,
    snapshot,
)

NANO_MODEL = ModelConfig(preset="swin_micro", overrides=(("depths", (1, 1)), ("embed_dim", 12)))
CONFIG = TrialConfig(
    mode="digital_tl",
    data=DataConfig(classes=("5", "8"), train_limit=24, test_limit=24, source_limit=120),
    model=NANO_MODEL,
    pretrain=PretrainConfig(epochs=2, batch_size=32),
    lr=0.05,
    epochs=2,
    seed=3,
)


class RunsCode:
    """Unpickling this calls ``exec``: it writes the file ``MARKER`` names (if it ever runs)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"import pathlib; pathlib.Path({str(self.marker)!r}).write_text('ran')",))


def write_with_valid_checksum(payload, path: Path) -> None:
    """What ``save_verified`` writes, for any payload (``torch.save`` pickles whatever it is given)."""
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    path.write_bytes(MAGIC + hashlib.sha256(data).hexdigest().encode() + b"\n" + data)


def damage(path: Path, how: str, marker: Path) -> None:
    blob = bytearray(path.read_bytes())
    if how == "flip":  # one bit of the payload, as a bad disk does
        blob[len(blob) // 2] ^= 0x01
        path.write_bytes(bytes(blob))
    elif how == "truncate":  # a crash while copying, a full disk
        path.write_bytes(bytes(blob[: len(blob) // 2]))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "plain_torch":  # not ours: a torch file without the checksum header
        torch.save(load_verified(path), path)
    elif how == "pickled_callable":  # valid checksum, but unpickling it would run code
        original = load_verified(path)
        write_with_valid_checksum({**original, "state": RunsCode(marker)}, path)
    elif how == "wrong_structure":  # valid checksum and config key, but not a checkpoint of this version
        original = load_verified(path)
        keys = {name: original[name] for name in ("config_key", "key") if name in original}
        write_with_valid_checksum({**keys, "reports": [1]}, path)
    else:
        raise AssertionError(how)


DAMAGES = ["flip", "truncate", "empty", "plain_torch", "pickled_callable", "wrong_structure"]


@pytest.fixture(scope="module")
def finished_trial(tmp_path_factory) -> tuple[Path, list]:
    """One digital trial, two epochs, checkpointed (static, latest = epoch 2, previous = epoch 1); tests copy it."""
    root = tmp_path_factory.mktemp("trial")
    result = run_trial(CONFIG, cache_dir=root / "cache", checkpoint_dir=root / "ckpt")
    return root, result.reports


def copy_of(finished_trial, tmp_path) -> Path:
    root, _ = finished_trial
    shutil.copytree(root / "ckpt", tmp_path / "ckpt")
    return tmp_path / "ckpt"


def numbers(*reports) -> list[float]:
    return [value for report in reports for value in (report.train_loss, report.test_error)]


@pytest.mark.parametrize("how", DAMAGES)
def test_damaged_latest_checkpoint_falls_back_to_the_previous_epoch(finished_trial, tmp_path, how):
    root, uninterrupted = finished_trial
    folder, marker = copy_of(finished_trial, tmp_path), tmp_path / "RAN"
    damage(folder / "latest.pt", how, marker)
    said: list[str] = []
    resumed = run_trial(CONFIG, cache_dir=root / "cache", checkpoint_dir=folder, progress=said.append)
    assert not marker.exists()
    assert any(line.startswith(f"checkpoint not used: {folder / 'latest.pt'}") for line in said), said
    assert resumed.restored_epochs == 1  # from previous.pt
    assert resumed.reports[0] == uninterrupted[0]  # epoch 1 restored, not trained again (same seconds)
    assert resumed.reports[1].seconds != uninterrupted[1].seconds  # epoch 2 trained again ...
    assert numbers(resumed.reports[1]) == pytest.approx(numbers(uninterrupted[1]))  # ... from the good state
    assert [r["epoch"] for r in load_verified(folder / "latest.pt")["reports"]] == [1, 2]  # and checkpointed again


@pytest.mark.parametrize("how", ["flip", "truncate", "pickled_callable", "wrong_structure"])
def test_damaged_static_checkpoint_starts_the_trial_over(finished_trial, tmp_path, how):
    root, uninterrupted = finished_trial
    folder, marker = copy_of(finished_trial, tmp_path), tmp_path / "RAN"
    damage(folder / "static.pt", how, marker)
    said: list[str] = []
    resumed = run_trial(CONFIG, cache_dir=root / "cache", checkpoint_dir=folder, progress=said.append)
    assert not marker.exists()
    assert any(line.startswith(f"checkpoint not used: {folder / 'static.pt'}") for line in said), said
    assert resumed.restored_epochs == 0
    assert all(a.seconds != b.seconds for a, b in zip(resumed.reports, uninterrupted))
    assert numbers(*resumed.reports) == pytest.approx(numbers(*uninterrupted))
    load_verified(folder / "static.pt")  # written afresh


def test_both_epoch_checkpoints_damaged_starts_the_trial_over(finished_trial, tmp_path):
    root, uninterrupted = finished_trial
    folder = copy_of(finished_trial, tmp_path)
    damage(folder / "latest.pt", "truncate", tmp_path / "RAN")
    damage(folder / "previous.pt", "flip", tmp_path / "RAN")
    resumed = run_trial(CONFIG, cache_dir=root / "cache", checkpoint_dir=folder)
    assert resumed.restored_epochs == 0
    assert numbers(*resumed.reports) == pytest.approx(numbers(*uninterrupted))


@pytest.mark.parametrize("how", ["flip", "truncate", "pickled_callable", "wrong_structure"])
def test_damaged_pretraining_cache_is_trained_again(finished_trial, tmp_path, how):
    root, _ = finished_trial
    shutil.copytree(root / "cache", tmp_path / "cache")
    first = pretrained_model(CONFIG.data, CONFIG.model, CONFIG.pretrain, tmp_path / "cache")
    assert not first.trained_now
    marker = tmp_path / "RAN"
    damage(first.path, how, marker)
    said: list[str] = []
    again = pretrained_model(CONFIG.data, CONFIG.model, CONFIG.pretrain, tmp_path / "cache", progress=said.append)
    assert not marker.exists()
    assert again.trained_now and any("pretraining cache unusable" in line for line in said), said
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    assert not pretrained_model(CONFIG.data, CONFIG.model, CONFIG.pretrain, tmp_path / "cache").trained_now


# --- a whole sweep ---------------------------------------------------------------------------------------------


def epochs_checkpointed(folder: Path) -> int:
    try:
        return len(load_verified(folder / "latest.pt")["reports"])
    except (OSError, CorruptFileError, KeyError):
        return 0


def pick(trials_dir: Path, epochs: int) -> tuple[str | None, str | None]:
    """Two unfinished trials: one with exactly two epochs checkpointed (so previous.pt holds one), and another one
    that has started (its static.pt is written)."""
    progress = {f.name: epochs_checkpointed(f) for f in trials_dir.iterdir()} if trials_dir.is_dir() else {}
    fallback = next((t for t, n in progress.items() if n == 2 < epochs), None)
    restart = next(
        (t for t, n in progress.items() if t != fallback and n < epochs and (trials_dir / t / "static.pt").exists()),
        None,
    )
    return fallback, restart if fallback else None


@pytest.mark.slow
def test_files_damaged_between_a_kill_and_resume_are_not_used_and_their_work_is_redone(tmp_path, ray_cluster):
    """The driver (and its Ray) is SIGKILLed while one trial has two of three epochs checkpointed and another is
    under way. Before ``resume``: that trial's
    latest.pt is replaced by a pickled callable with a valid checksum, another unfinished trial's static.pt gets a
    flipped bit, and the pretraining cache is truncated. The resume runs no code from the files, retrains the
    pretraining, continues the first trial from previous.pt (epoch 1 kept, 2 and 3 trained again), starts the other
    over, and finishes with every row equal to the trials' checkpoints."""
    url, storage = f"sqlite:///{tmp_path / 'results.db'}", tmp_path / "storage"
    spec, _ = expected(ANALOG_PAIR)
    trials_dir = storage / SWEEP_NAME / "trials"
    driver = cli_process(
        "run", QUICKSTART, *set_args(ANALOG_PAIR), "--store", url, "--storage-path", str(storage), cwd=tmp_path
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and driver.poll() is None:
            if pick(trials_dir, spec.epochs)[1] is not None:
                break
            time.sleep(0.2)
    finally:
        kill_session(driver)  # the driver and the Ray instance it started, workers included
        driver.communicate()
    before = snapshot(url)
    progress = {f.name: epochs_checkpointed(f) for f in trials_dir.iterdir()}
    fallback, restart = pick(trials_dir, spec.epochs)
    assert fallback and restart, progress
    marker = tmp_path / "RAN"
    damage(trials_dir / fallback / "latest.pt", "pickled_callable", marker)
    damage(trials_dir / restart / "static.pt", "flip", marker)
    (cache,) = (storage / "cache").glob("pretrain-*.pt")
    damage(cache, "truncate", marker)

    result = CliRunner().invoke(cli, ["resume", SWEEP_NAME, "--store", url])
    assert result.exit_code == 0, result.output
    assert not marker.exists()
    assert "trained in" in result.stderr and "from cache" not in result.stderr  # the pretraining was redone
    load_verified(cache)
    after = assert_complete(url, ANALOG_PAIR, storage)

    def seconds(state, trial, epoch):
        return state["epochs"][(trial, epoch)][3]

    # The trial with the poisoned latest.pt continued from previous.pt: epoch 1 kept, epoch 2 trained again.
    assert seconds(after, fallback, 1) == seconds(before, fallback, 1)
    if (fallback, 2) in before["epochs"]:
        assert seconds(after, fallback, 2) != seconds(before, fallback, 2)
    # The trial with the damaged static.pt started over: none of its epochs is the one reported before the kill.
    for (trial, epoch), row in before["epochs"].items():
        if trial == restart:
            assert after["epochs"][(trial, epoch)][3] != row[3]
    print(f"at the kill: {progress}; poisoned latest.pt of {fallback}, damaged static.pt of {restart}")
