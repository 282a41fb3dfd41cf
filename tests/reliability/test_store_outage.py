"""The results store goes away while a sweep runs: the driver retries with back-off and loses nothing, and when the
store stays away past the retries it stops cleanly (exit 1, one line saying to resume) and ``resume`` recovers all.

Injected faults: SQLite locked by another process (``BEGIN EXCLUSIVE``), PostgreSQL backends terminated with
``pg_terminate_backend`` (mid-transaction, while their write waits on a table lock, and idle in the pool).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
import time

import psycopg
import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.orchestrator import StoreGaveUp, with_retries
from analog_sweep.orchestrator._retrying_store import RetryPolicy, retry_policy
from analog_sweep.results import NotFound, StoreUnavailable, open_store

from ..orchestrator.faults import reap_session
from .conftest import (
    QUICKSTART,
    SMALL_SWEEP,
    SWEEP_NAME,
    assert_complete,
    assert_one_line_error,
    cli_process,
    in_progress_store,
    set_args,
    snapshot,
    wait_for,
)

RETRY_NOTICE = "results store unavailable ("
# SQLite gives up waiting for another process's lock after 0.2 s instead of 30, so the retry path is what waits.
FAST_BUSY = {"ANALOG_SWEEP_SQLITE_BUSY_SECONDS": "0.2"}

LOCKER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)
for _ in range(300):  # SQLite may answer busy at once, without waiting (e.g. while another connection recovers)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        break
    except sqlite3.OperationalError:
        time.sleep(0.1)
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
connection.execute("COMMIT")
"""


def hold_sqlite_lock(db: str, seconds: float) -> subprocess.Popen:
    """Another process takes SQLite's write lock on ``db`` for ``seconds``; returns once it holds it."""
    locker = subprocess.Popen([sys.executable, "-c", LOCKER, db, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert locker.stdout.readline().strip() == "locked"
    return locker


# --- the pieces -------------------------------------------------------------------------------------------------


def test_a_locked_sqlite_store_raises_store_unavailable_for_writes_only(tmp_path, monkeypatch):
    monkeypatch.setenv("ANALOG_SWEEP_SQLITE_BUSY_SECONDS", "0.2")
    db = tmp_path / "results.db"
    in_progress_store(f"sqlite:///{db}")
    with open_store(f"sqlite:///{db}") as store:
        locker = hold_sqlite_lock(str(db), 2)
        try:
            started = time.monotonic()
            with pytest.raises(StoreUnavailable, match="database is locked"):
                store.set_sweep_status("earlier", "running")
            assert time.monotonic() - started < 1.5  # the configured busy wait, not the default 30 s
            assert store.get_sweep("earlier")["status"] == "interrupted"  # WAL: readers are not blocked
        finally:
            locker.wait()
        store.set_sweep_status("earlier", "running")  # the lock is gone: the same write goes through
        assert store.get_sweep("earlier")["status"] == "running"


def test_with_retries_backs_off_until_the_store_answers_and_gives_up_after_the_last_retry(monkeypatch):
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    notices: list[str] = []
    calls = []

    def flaky(failures: int):
        def write():
            calls.append(1)
            if len(calls) <= failures:
                raise StoreUnavailable("cannot use store x: database is locked")
            return "written"

        return write

    assert with_retries(flaky(3), policy=RetryPolicy(5, 0.25), notice=notices.append) == "written"
    assert sleeps == [0.25, 0.5, 1.0] and len(notices) == 3 and "retry 1 of 5 in 0.25 s" in notices[0]
    calls.clear()
    with pytest.raises(StoreGaveUp, match=r"^results store unavailable after 3 tries: cannot use store x"):
        with_retries(flaky(10), policy=RetryPolicy(2, 0.25), notice=notices.append)
    assert len(calls) == 3
    # Bad requests are not retried: only unavailability is.
    calls.clear()

    def bad():
        calls.append(1)
        raise NotFound("unknown sweep 'x'")

    with pytest.raises(NotFound):
        with_retries(bad, policy=RetryPolicy(5, 0.25), notice=notices.append)
    assert len(calls) == 1
    assert RetryPolicy(8, 1.0).delays() == [1, 2, 4, 8, 16, 30, 30, 30]  # capped


@pytest.mark.parametrize(
    "variable, value",
    [
        ("ANALOG_SWEEP_STORE_RETRIES", "many"),
        ("ANALOG_SWEEP_STORE_RETRIES", "-1"),
        ("ANALOG_SWEEP_STORE_RETRIES", "1000"),
        ("ANALOG_SWEEP_STORE_RETRY_DELAY", "nan"),
        ("ANALOG_SWEEP_STORE_RETRY_DELAY", "-0.5"),
        ("ANALOG_SWEEP_SQLITE_BUSY_SECONDS", "soon"),
    ],
)
def test_bad_retry_settings_are_refused_before_anything_runs(tmp_path, monkeypatch, variable, value):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    monkeypatch.setenv(variable, value)
    result = CliRunner().invoke(
        cli, ["run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(tmp_path / "storage")]
    )
    assert result.exit_code == 2, result.output
    assert_one_line_error(result.stderr, variable)
    assert not (tmp_path / "storage").exists()


def test_retry_settings_are_read_from_the_environment(monkeypatch):
    assert retry_policy() == RetryPolicy(5, 0.25)
    monkeypatch.setenv("ANALOG_SWEEP_STORE_RETRIES", "0")
    monkeypatch.setenv("ANALOG_SWEEP_STORE_RETRY_DELAY", "0.05")
    assert retry_policy() == RetryPolicy(0, 0.05) and retry_policy().delays() == []


# --- whole sweeps -----------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_sqlite_locked_by_another_process_mid_sweep_loses_no_report(tmp_path, monkeypatch, ray_cluster):
    """Up to three times during the sweep (each time new reports have arrived) another process holds the write lock
    for 2 s; the driver's writes wait out each lock with back-off, and the sweep finishes with every row exactly
    once."""
    for name, value in FAST_BUSY.items():
        monkeypatch.setenv(name, value)
    db = tmp_path / "results.db"
    url, storage = f"sqlite:///{db}", tmp_path / "storage"
    locks: list[float] = []
    misses: list[str] = []
    done = threading.Event()

    def lock_now_and_then():
        seen = 0
        while not done.is_set() and len(locks) < 3:
            try:
                epochs = snapshot(url)["counts"]["epochs"]
            except Exception as exc:  # noqa: BLE001 - not created yet
                misses.append(repr(exc)[:200])
                epochs = seen
            if epochs > seen:  # reports are flowing: take the lock while more arrive
                seen = epochs
                started = time.monotonic()
                try:
                    hold_sqlite_lock(str(db), 2.0).wait()
                    locks.append(time.monotonic() - started)
                except Exception as exc:  # noqa: BLE001 - shown by the test if it fails
                    misses.append(repr(exc)[:200])
            time.sleep(0.1)

    locker = threading.Thread(target=lock_now_and_then, daemon=True)
    locker.start()
    try:
        result = CliRunner().invoke(
            cli, ["run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(storage)]
        )
    finally:
        done.set()
        locker.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert len(locks) >= 1, (locks, misses[-3:], result.stderr[-2000:])
    retries = result.stderr.count(RETRY_NOTICE)
    assert retries >= 1, result.stderr  # the retry path really ran
    assert "Traceback" not in result.output
    assert_complete(url, SMALL_SWEEP, storage)
    print(f"{len(locks)} locks of 2 s, {retries} retried writes")


@pytest.mark.slow
def test_postgres_connections_terminated_mid_sweep_loses_no_report(
    tmp_path, postgres_store, postgres_admin, ray_cluster
):
    """Once trials report, the driver's PostgreSQL backends are terminated (``pg_terminate_backend``) while a write
    of theirs waits on a table lock (up to 3 times), and while idle in the pool (every 0.2 s): the write is retried
    on a new connection, pooled ones are replaced (pre-ping), and the sweep finishes with every row exactly once."""
    url, storage = postgres_store.url, tmp_path / "storage"
    terminated = {"waiting": 0, "idle": 0}
    last_blocked = [0]  # the report count when a write was last blocked and dropped
    done = threading.Event()
    problems: list[str] = []
    app, epochs_table = postgres_store.application, f"{postgres_store.schema}.epochs"

    def terminate(where: str = "") -> int:
        rows = postgres_admin.execute(
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s {where}", (app,)
        ).fetchall()
        return sum(1 for (ok,) in rows if ok)

    def kill_connections():
        try:
            with psycopg.connect(postgres_admin.info.dsn) as blocker:
                while not done.is_set():
                    reports = _count(postgres_admin, epochs_table)
                    # Nothing is dropped before trials report: the driver's reads before that are not retried.
                    if reports and terminated["waiting"] < 3 and reports > last_blocked[0]:
                        last_blocked[0] = reports
                        # Block the next epoch write on a table lock, then terminate the backend while it waits.
                        blocker.execute(f"LOCK TABLE {epochs_table} IN EXCLUSIVE MODE")
                        deadline = time.monotonic() + 30
                        while time.monotonic() < deadline and not done.is_set():
                            waiting = postgres_admin.execute(
                                "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s "
                                "AND wait_event_type = 'Lock'",
                                (app,),
                            ).fetchone()[0]
                            if waiting:
                                terminated["waiting"] += terminate("AND wait_event_type = 'Lock'")
                                break
                            time.sleep(0.05)
                        blocker.rollback()
                    if reports:
                        terminated["idle"] += terminate("AND state = 'idle'")
                    time.sleep(0.2)
        except Exception as exc:  # noqa: BLE001 - reported by the test
            problems.append(repr(exc))

    killer = threading.Thread(target=kill_connections, daemon=True)
    killer.start()
    try:
        result = CliRunner().invoke(
            cli, ["run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(storage)]
        )
    finally:
        done.set()
        killer.join(timeout=60)
    assert not problems, problems
    assert result.exit_code == 0, result.output
    assert terminated["waiting"] >= 1, terminated
    assert result.stderr.count(RETRY_NOTICE) >= terminated["waiting"], result.stderr
    assert "Traceback" not in result.output
    assert_complete(url, SMALL_SWEEP, storage)
    print(f"terminated {terminated}; {result.stderr.count(RETRY_NOTICE)} retried writes")


def _count(admin, table: str) -> int:
    try:
        return admin.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except psycopg.Error:  # not created yet
        return 0


@pytest.mark.slow
def test_store_away_past_the_retries_stops_the_driver_cleanly_and_resume_recovers_everything(tmp_path, ray_cluster):
    """SQLite stays locked longer than a short retry budget (1 retry): the real CLI exits 1 with one line saying
    how to resume, no traceback, and no Ray processes left; after the lock is gone ``resume`` completes the sweep
    with every report, those the driver could not write included."""
    db = tmp_path / "results.db"
    url, storage = f"sqlite:///{db}", tmp_path / "storage"
    env = {**FAST_BUSY, "ANALOG_SWEEP_STORE_RETRIES": "1", "ANALOG_SWEEP_STORE_RETRY_DELAY": "0.1"}
    driver = cli_process(
        "run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(storage), env=env, cwd=tmp_path
    )
    try:
        before = wait_for(lambda s: s["counts"]["epochs"] >= 1, url, timeout=240, process=driver, poll=0.2)
        lock = sqlite3.connect(str(db), timeout=30, isolation_level=None)
        lock.execute("BEGIN EXCLUSIVE")
        try:
            _, err = driver.communicate(timeout=120)
        finally:
            lock.execute("COMMIT")
            lock.close()
    finally:
        if driver.poll() is None:
            driver.kill()
        clean = reap_session(driver)
    assert driver.returncode == 1, err
    assert RETRY_NOTICE in err
    assert_one_line_error(err, "results store unavailable after 2 tries", f"analog-sweep resume {SWEEP_NAME}")
    assert clean, "the stopped driver left processes behind"
    stopped = snapshot(url)
    assert stopped["sweeps"][SWEEP_NAME] == "running"  # the store was away: nothing could say otherwise
    assert stopped["counts"]["epochs"] >= before["counts"]["epochs"]

    result = CliRunner().invoke(cli, ["resume", SWEEP_NAME, "--store", url])
    assert result.exit_code == 0, result.output
    assert "finished" in result.stderr
    state = assert_complete(url, SMALL_SWEEP, storage)
    # Rows written before the outage were kept as they were (the same epoch, not trained again).
    for key, row in stopped["epochs"].items():
        assert state["epochs"][key] == row
    print(f"stopped with {stopped['counts']['epochs']} of {state['counts']['epochs']} epoch rows written")
