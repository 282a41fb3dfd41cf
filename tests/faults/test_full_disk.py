"""A full disk, on a real filesystem: a small tmpfs holds the sweep's storage path in one test and the SQLite store's
folder in the other, filled until writes fail with ENOSPC (or SQLite's "database or disk is full").

The sweep must stop within a few lines of output that end in one line naming the cause and how to continue; after
the tmpfs is grown, ``resume`` must rerun the trials that failed on the full disk, under their own ids, and end with
every trial recorded once with a result (nothing lost, nothing doubled, none left failed). The classification of
failure causes that decides which trials a resume reruns is checked on its own first.

The tmpfs is mounted with ``mount -t tmpfs`` (root or CAP_SYS_ADMIN; skipped otherwise) and always unmounted.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from analog_sweep.orchestrator import LearningRateSearch, environmental_cause, trial_id_for
from analog_sweep.sweeps import expand, load_spec

from ..orchestrator.conftest import NANO_SWEEP
from ..reliability.conftest import assert_complete
from .conftest import SPEC_FILE, Drivers, set_args, try_snapshot

NAME = "quickstart"
# Four digital points (two modes, two seeds), two learning rates each: 8 trials of 2 epochs, checkpoints of about
# 60 KB each.
SWEEP = [*NANO_SWEEP, "seeds=[0,1]", "modes=[digital_tl,digital_scratch]", "axes=null"]
MOST_LINES = 15  # a stopped sweep's whole output: its progress lines and one last line, no tracebacks


class Tmpfs:
    """Small tmpfs mounts for a test, unmounted at teardown whatever happened."""

    def __init__(self) -> None:
        self.mounted: list[Path] = []

    def mount(self, folder: Path, size_kb: int) -> Path:
        folder.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(folder)], capture_output=True, text=True
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here (needs root or CAP_SYS_ADMIN): {done.stderr.strip()}")
        self.mounted.append(folder)
        return folder

    @staticmethod
    def grow(folder: Path, size_kb: int) -> None:
        subprocess.run(["mount", "-o", f"remount,size={size_kb}k", str(folder)], check=True)

    @staticmethod
    def fill(folder: Path, leave_kb: int = 0) -> None:
        """Write a filler file until only ``leave_kb`` KB are free (0: until the disk is full)."""
        stats = os.statvfs(folder)
        free = stats.f_bavail * stats.f_frsize - leave_kb * 1024
        chunk = b"\0" * (64 * 1024)
        with open(folder / "filler", "ab") as handle:
            try:
                while free > 0:
                    free -= handle.write(chunk[: max(1, min(len(chunk), free))])
                    handle.flush()
            except OSError:
                pass  # full

    def unmount_all(self) -> None:
        for folder in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        self.mounted.clear()


@pytest.fixture
def tmpfs() -> Iterator[Tmpfs]:
    mounts = Tmpfs()
    try:
        yield mounts
    finally:
        mounts.unmount_all()


def stopped_output(output: str, *must_contain: str) -> list[str]:
    """A stopped sweep's output: a few lines, no traceback, the last one naming the cause and the resume."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert "Traceback" not in output, output
    assert len(lines) <= MOST_LINES, f"{len(lines)} lines:\n{output}"
    for text in (*must_contain, f"analog-sweep resume {NAME}"):
        assert text in lines[-1], output
    return lines


# --- which failures a resume reruns ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("error", "cause"),
    [
        ("OSError: [Errno 28] No space left on device", "No space left on device"),
        (
            "OSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No space left on device",
            "No space left on device",
        ),
        ("OSError: [Errno 122] Disk quota exceeded: '/data/x'", "Disk quota exceeded"),
        ("cannot use store sqlite:////x/results.db: database or disk is full", "database or disk is full"),
        ("MemoryError", "out of memory"),
        ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB", "out of memory"),
        ("ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.", "out of memory"),
        ("ray.exceptions.NodeDiedError: Task failed due to the node dying.", "lost node or worker"),
        (
            "ray.exceptions.ActorDiedError: The actor died unexpectedly before finishing this task.",
            "lost node or worker",
        ),
        ("ray.exceptions.WorkerCrashedError: The worker died unexpectedly", "lost node or worker"),
        ("results store unavailable after 6 tries: cannot use store x: connection refused", "store unavailable"),
        ("DataError: data file digits.npz is missing", None),
        ("ConfigError: unknown algorithm 'x'", None),
        ("TrainingDiverged: loss is nan at epoch 2", None),
        ("ValueError: shapes (3,) and (4,) not aligned", None),
        ("DataError: cannot read digits.npz: [Errno 28] No space left on device", None),
        ("", None),
        (None, None),
    ],
)
def test_environmental_causes_are_told_from_deterministic_ones(error: str | None, cause: str | None) -> None:
    """Full disks, memory, lost nodes and workers, and the store being away are environmental (a resume once they
    are gone succeeds); bad data or config, divergence and anything unknown would fail again."""
    assert environmental_cause(error) == cause


# --- the storage path on a full disk -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_full_storage_path_stops_in_a_few_lines_and_resume_reruns_the_failed_trials(
    tmp_path: Path, tmpfs: Tmpfs, ray_temp_dir: str
) -> None:
    storage = tmpfs.mount(tmp_path / "storage", 12 * 1024)
    # Room for the driver's lock, journal and Ray's experiment state, not for every trial's checkpoints.
    tmpfs.fill(storage, leave_kb=300)
    url = f"sqlite:///{tmp_path}/results.db"
    drivers = Drivers(tmp_path, url)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    try:
        out = drivers.start("run", str(SPEC_FILE), *set_args(SWEEP), "--storage-path", str(storage), *cache).finish(
            timeout=420
        )
        stopped_output(out, "No space left on device")
        state = try_snapshot(url)
        full = [t for t, status in state["trials"].items() if status == "failed"]
        assert full, f"no trial failed on the full disk: {state['trials']}\n{out}"

        Tmpfs.grow(storage, 64 * 1024)
        driver = drivers.start("resume", NAME, *cache)
        out = driver.finish(timeout=420)
        assert driver.process.returncode == 0, out
        assert "Traceback" not in out, out
        assert (
            f"rerunning {len(full)} trial{'s' if len(full) > 1 else ''} that failed on environmental causes "
            "(No space left on device)" in out
        ), out
    finally:
        drivers.kill_all()
    # Every trial once, completed, under its own id (the failed ones included); every epoch once, as checkpointed.
    state = assert_complete(url, SWEEP, storage)
    assert state["counts"]["trials"] == 8 and state["counts"]["epochs"] == 16
    assert set(full) <= set(state["trials"])


# --- the store's folder on a full disk ------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_full_store_folder_stops_in_one_line_and_resume_records_everything_once(
    tmp_path: Path, tmpfs: Tmpfs, ray_temp_dir: str
) -> None:
    folder = tmpfs.mount(tmp_path / "store", 12 * 1024)
    url = f"sqlite:///{folder}/results.db"
    storage = tmp_path / "storage"
    drivers = Drivers(tmp_path, url)
    cache = ["--cache-dir", str(tmp_path / "cache")]
    try:
        driver = drivers.start("run", str(SPEC_FILE), *set_args(SWEEP), "--storage-path", str(storage), *cache)
        # Fill the store's folder once the first epoch is in: the driver's next writes find it full.
        started = time.monotonic()
        while time.monotonic() - started < 300:
            state = try_snapshot(url)
            if state and state["epochs"]:
                break
            assert driver.process.poll() is None, driver.log.read_text()
            time.sleep(0.2)
        else:
            raise AssertionError("no epoch reached the store")
        tmpfs.fill(folder)
        out = driver.finish(timeout=420)
        assert driver.process.returncode == 1, out
        stopped_output(out, "database or disk is full")

        Tmpfs.grow(folder, 64 * 1024)
        driver = drivers.start("resume", NAME, *cache)
        out = driver.finish(timeout=420)
        assert driver.process.returncode == 0, out
        assert "Traceback" not in out, out
    finally:
        drivers.kill_all()
    state = assert_complete(url, SWEEP, storage)
    assert state["counts"]["trials"] == 8 and state["counts"]["epochs"] == 16


# --- the searcher hands a failed trial out again in its own place -----------------------------------------------------


@pytest.mark.parametrize(
    "search_overrides",
    [
        [],
        [
            "lr_search.method=tpe",
            "lr_search.values=null",
            "lr_search.low=0.001",
            "lr_search.high=0.1",
            "lr_search.trials_per_point=3",
        ],
    ],
)
def test_a_rerun_takes_the_failed_trials_place_and_id(tmp_path: Path, search_overrides: list[str]) -> None:
    """A failed trial run again at a resume keeps its trial id, its point counts it once, later trials keep the ids
    they would have had, and a resume after that sees the rerun, not the failure."""
    spec = load_spec(SPEC_FILE, [*SWEEP, "seeds=[0]", "modes=[digital_tl]", *search_overrides])
    settings = {"trials_dir": str(tmp_path / "trials"), "cache_dir": str(tmp_path / "cache"), "threads": 1, "gpu": 0}

    def search() -> LearningRateSearch:
        return LearningRateSearch(spec.name, expand(spec), spec.lr_search, tmp_path / "optuna.journal", settings)

    budget = spec.lr_search.trials_per_point
    first = search()
    given = first.suggest("ray0")
    full = {"ended_as": "failed", "error": "OSError: [Errno 28] No space left on device", "epoch": 0}
    first.on_trial_complete("ray0", full)
    assert first.failed_trials() == {given["trial_id"]: full["error"]}

    second = search()  # the resume
    second.rerun(list(second.failed_trials()))
    point = second.points[0].key
    assert not second.point_finished(point) and second.counts()["failed"] == 0
    again = second.suggest("ray1")
    assert (again["trial_id"], again["lr"]) == (given["trial_id"], given["lr"])
    ids = [again["trial_id"]]
    second.on_trial_complete("ray1", {"epoch": spec.epochs, "test_error": 10.0})
    for number in range(1, budget):
        suggestion = second.suggest(f"ray{number + 1}")
        ids.append(suggestion["trial_id"])
        second.on_trial_complete(f"ray{number + 1}", {"epoch": spec.epochs, "test_error": 20.0 + number})
    assert ids == [trial_id_for(spec.name, point, n) for n in range(budget)]
    assert second.suggest("ray-last") == LearningRateSearch.FINISHED
    counts = second.counts()
    assert (counts["complete"], counts["failed"], counts["points_done"]) == (budget, 0, 1)

    third = search()  # a resume after that: nothing failed, nothing to run
    assert third.failed_trials() == {}
    assert [t[0] for t in third.ended_trials(point)] == ids
    assert {t[2] for t in third.ended_trials(point)} == {"completed"}
    assert third.point_finished(point)
