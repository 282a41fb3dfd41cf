"""Shared pieces of the reliability tests: tiny sweeps, the real CLI in a subprocess, store snapshots and hashes.

Every fault these tests inject (a locked or dropped store, damaged files, bad input, Ctrl-C) is checked against the
same promise: nothing reported is lost or doubled, nothing damaged is used, and the user gets one line and an exit
code. Sweeps are nano-sized (a micro Swin of 12 channels, 16-48 images) so the whole folder fits in a few minutes
on 2 cores; each test's duration is printed by pytest with ``--durations=0``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import ray
import sqlalchemy as sa

from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs
from analog_sweep.workers import CorruptFileError
from analog_sweep.workers._verified_files import load_verified

from ..conftest import fresh_schema, require_postgres, schema_url
from ..orchestrator.conftest import NANO_SWEEP

QUICKSTART = str(shipped_specs()["quickstart"])
# The quickstart shrunk to seconds: a 12-channel one-block Swin, 16 images, 2 pretraining epochs.
NANO = [item for item in NANO_SWEEP if not item.startswith("epochs=")]
# Two points (one transfer-learning, so the pretraining cache is used), two learning rates each, three epochs.
SMALL_SWEEP = [*NANO, "epochs=3", "modes=[digital_tl,digital_scratch]", "axes=null"]
# Longer epochs (48 images) and a slow analog point, so a signal or a kill lands while trials are running.
LONG_SWEEP = [*NANO, "data.train_limit=48", "epochs=3", "modes=[analog_tl,digital_tl]", "axes=null"]
# One analog transfer-learning point, its two learning rates running side by side, three slow-ish epochs each.
ANALOG_PAIR = [*NANO, "data.train_limit=48", "epochs=3", "modes=[analog_tl]", "axes=null"]
SWEEP_NAME = "quickstart"
TABLES = ("sweeps", "points", "trials", "epochs")


def set_args(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


def expected(overrides: list[str]) -> tuple[Any, list[Any]]:
    """The spec of a test sweep and its points."""
    spec = load_spec(QUICKSTART, overrides)
    return spec, expand(spec)


# --- the real command line in a subprocess ---------------------------------------------------------------------


def cli_process(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """``python -m analog_sweep ARGS`` in its own process group (so the test can clean up a Ray it leaves)."""
    return subprocess.Popen(
        [sys.executable, "-m", "analog_sweep", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )


def assert_one_line_error(stderr: str, *must_contain: str) -> str:
    """The command failed with exactly one ``Error:`` line, as the last line, and no traceback anywhere."""
    assert "Traceback" not in stderr, stderr
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr
    for text in must_contain:
        assert text in errors[0], errors[0]
    return errors[0]


# --- the store -----------------------------------------------------------------------------------------------


def snapshot(url: str) -> dict[str, Any]:
    """Every row that matters, through a connection of its own: trials with status and epochs done, each epoch's
    numbers, each point's status and chosen trial, the sweep's status."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:

            def q(sql: str) -> list:
                return list(connection.execute(sa.text(sql)))

            return {
                "sweeps": {r.name: r.status for r in q("SELECT name, status FROM sweeps")},
                "points": {r.point_key: (r.status, r.chosen_trial_id) for r in q("SELECT * FROM points")},
                "trials": {r.trial_id: (r.status, r.epochs_done) for r in q("SELECT * FROM trials")},
                "epochs": {
                    (r.trial_id, r.epoch): (r.train_loss, r.test_error, r.test_accuracy, r.seconds)
                    for r in q("SELECT * FROM epochs")
                },
                "counts": {t: q(f"SELECT count(*) FROM {t}")[0][0] for t in TABLES},
            }
    finally:
        engine.dispose()


def wait_for(
    condition: Callable[[dict], bool],
    url: str,
    timeout: float,
    process: subprocess.Popen | None = None,
    poll: float = 0.3,
) -> dict:
    """Poll the store until ``condition(snapshot)``; fail early if ``process`` ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = snapshot(url)
        except sa.exc.SQLAlchemyError:  # not created yet, or locked for a moment
            state = None
        if state is not None and condition(state):
            return state
        if process is not None and process.poll() is not None:
            out, err = process.communicate()
            raise AssertionError(f"the driver ended (exit {process.returncode}) first:\n{out}\n{err}")
        time.sleep(poll)
    raise AssertionError(f"condition not reached in {timeout} s")


def checkpoint_reports(storage: Path, name: str = SWEEP_NAME) -> dict[str, list[dict]]:
    """Each trial's epoch reports as its newest good checkpoint holds them: the ground truth the store must match."""
    found = {}
    for folder in sorted((storage / name / "trials").iterdir()):
        for file in ("latest.pt", "previous.pt"):
            try:
                found[folder.name] = load_verified(folder / file)["reports"]
                break
            except (OSError, CorruptFileError):
                continue
    return found


def assert_complete(url: str, overrides: list[str], storage: Path) -> dict:
    """The sweep finished with every row once: each point done with a chosen trial, every trial completed with
    epochs 1..E, and every epoch row equal to what the trial's own checkpoint recorded."""
    spec, points = expected(overrides)
    state = snapshot(url)
    trials = len(points) * spec.lr_search.trials_per_point
    assert state["sweeps"] == {spec.name: "finished"}
    assert state["counts"] == {"sweeps": 1, "points": len(points), "trials": trials, "epochs": trials * spec.epochs}
    assert all(status == "done" and chosen for status, chosen in state["points"].values()), state["points"]
    assert set(state["trials"].values()) == {("completed", spec.epochs)}, state["trials"]
    assert sorted(state["epochs"]) == sorted((t, e) for t in state["trials"] for e in range(1, spec.epochs + 1))
    reports = checkpoint_reports(storage, spec.name)
    assert set(reports) == set(state["trials"])
    for trial_id, rows in reports.items():
        for report in rows:
            stored = state["epochs"][(trial_id, report["epoch"])]
            wanted = (report["train_loss"], report["test_error"], report["test_accuracy"], report["seconds"])
            assert stored == pytest.approx(wanted), (trial_id, report["epoch"])
    return state


def store_files_digest(db: Path) -> dict[str, str]:
    """SHA-256 of the SQLite file and its -wal/-shm companions (those that exist)."""
    return {
        path.name: hashlib.sha256(path.read_bytes()).hexdigest()
        for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm"))
        if path.exists()
    }


# --- fixtures ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[None]:
    """A local Ray instance for drivers run in this process (shared with other test folders if one is up)."""
    if ray.is_initialized():
        yield
        return
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    yield
    ray.shutdown()


@dataclass(frozen=True)
class PostgresStore:
    url: str
    schema: str
    application: str  # marks the connections of whoever uses ``url``, so a test can terminate exactly those


@pytest.fixture
def postgres_store(postgres_admin) -> Iterator[PostgresStore]:
    """An empty store in a fresh PostgreSQL schema (as the results tests do), dropped afterwards."""
    admin = require_postgres(postgres_admin)
    schema = fresh_schema(admin, "reliability")
    application = f"analog-sweep-test-{schema}"
    try:
        yield PostgresStore(schema_url(schema, application_name=application), schema, application)
    finally:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (application,)
        )
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def fast_store_retries(monkeypatch) -> None:
    """A short SQLite busy wait, so a lock held by another process reaches the driver's retry path at once."""
    monkeypatch.setenv("ANALOG_SWEEP_SQLITE_BUSY_SECONDS", "0.2")


def in_progress_store(url: str) -> None:
    """A store holding a sweep that ran part way (rows in every table): something for bad input to damage."""
    with open_store(url) as store:
        store.record_sweep("earlier", {"name": "earlier"}, "hash-earlier", "running", "/nowhere/earlier")
        axes = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0}
        store.record_point("earlier", "p0", mode="analog_tl", task="5-8", classes=["5", "8"], seed=0, axes=axes)
        store.record_trial("p0-lr0", "earlier", "p0", lr=0.01, status="running", ray_trial_id="r0")
        store.record_epoch("p0-lr0", 1, train_loss=0.7, test_error=40.0, test_accuracy=60.0, seconds=1.5)
        store.set_sweep_status("earlier", "interrupted")
