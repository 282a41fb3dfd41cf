"""A sweep that cannot succeed is refused before it runs, and one whose trials failed does not report success.

- What the dry run knows (data files missing under the data root) stops ``run`` in one line, exit 2, before Ray
  starts or any file is made; the store is untouched.
- A deterministic trial error (bad data) is not retried ``max_retries`` times: the trial fails at once with its
  reason, and the sweep exits 1 saying how many trials failed and why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import ray
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.workers import CIFAR10_FOLDER, CIFAR10_TRAIN_FILES, CIFAR100_FOLDER

from .conftest import (
    NANO,
    QUICKSTART,
    assert_one_line_error,
    in_progress_store,
    set_args,
    snapshot,
    store_files_digest,
)

CIFAR = ["data.dataset=cifar", "data.classes=[[beaver,otter]]", "data.image_size=8"]


def fake_cifar(root: Path) -> Path:
    """Every CIFAR file in place, each empty: present (so no preflight can know), unreadable when read."""
    for folder, names in (
        (CIFAR10_FOLDER, (*CIFAR10_TRAIN_FILES, "test_batch", "batches.meta")),
        (CIFAR100_FOLDER, ("train", "test", "meta")),
    ):
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes(b"")
    return root


def test_missing_data_files_stop_run_in_one_line_before_ray_starts(tmp_path, monkeypatch):
    monkeypatch.delenv("ANALOG_SWEEP_DATA", raising=False)
    db = tmp_path / "results.db"
    in_progress_store(f"sqlite:///{db}")
    before = store_files_digest(db)
    was_running = ray.is_initialized()
    missing = tmp_path / "cifar-dtaa"  # one letter off
    result = CliRunner().invoke(
        cli,
        [
            "run",
            QUICKSTART,
            *set_args([*NANO, *CIFAR, f"data.data_root={missing}"]),
            "--store",
            f"sqlite:///{db}",
            "--storage-path",
            str(tmp_path / "storage"),
        ],
    )
    assert result.exit_code == 2, (result.output, result.exception)
    line = assert_one_line_error(result.stderr, "cannot run", "files missing under", str(missing), "data.data_root")
    assert "quickstart" in line
    assert ray.is_initialized() == was_running  # no Ray was started
    assert not (tmp_path / "storage").exists()
    assert store_files_digest(db) == before


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_deterministic_trial_error_is_not_retried_and_the_sweep_exits_1_saying_why(tmp_path, ray_cluster):
    url = f"sqlite:///{tmp_path}/results.db"
    root = fake_cifar(tmp_path / "cifar")
    overrides = [*NANO, *CIFAR, f"data.data_root={root}", "modes=[digital_scratch]", "axes=null", "max_retries=3"]
    storage = tmp_path / "storage"
    result = CliRunner().invoke(
        cli, ["run", QUICKSTART, *set_args(overrides), "--store", url, "--storage-path", str(storage)]
    )
    assert result.exit_code == 1, (result.output, result.exception)
    assert "Traceback" not in result.stderr
    assert "2 of 2 trials failed: DataError:" in result.stderr and "is not a CIFAR python-pickle file" in result.stderr
    state = snapshot(url)
    assert [status for status, _ in state["trials"].values()] == ["failed", "failed"]
    # Each trial ran once: none ended in an error Ray Tune would have retried (it writes error.txt for each).
    assert not list((storage / "quickstart" / "ray").rglob("error.txt"))
    assert state["sweeps"] == {"quickstart": "finished"}  # nothing left to run: every trial ended
