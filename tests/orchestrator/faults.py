"""Helpers for the tests that kill sweep processes: start the CLI in its own process group, read the store while the
driver writes, wait for a state with a deadline, and find, kill and reap processes by PID (never by name).

Used by ``tests/orchestrator/test_resume.py`` and the fault-injection suite in ``tests/faults/``.
"""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")


def analog_sweep(*args: str, **kwargs: Any) -> subprocess.Popen:
    """Start ``python -m analog_sweep ARGS`` in its own process group (so a test can clean up all it leaves)."""
    kwargs.setdefault("stdout", subprocess.PIPE)
    kwargs.setdefault("stderr", subprocess.STDOUT)
    return subprocess.Popen(
        [sys.executable, "-m", "analog_sweep", *args],
        text=True,
        start_new_session=True,  # its own process group, so the test can clean up what the killed driver leaves
        **kwargs,
    )


@functools.cache
def _engine(url: str) -> sa.Engine:
    return sa.create_engine(url, poolclass=sa.pool.NullPool)


def snapshot(url: str) -> dict:
    """The sweep rows' statuses, trials by status, and every epoch row's seconds, read through a separate connection
    while the driver writes (SQLite in WAL mode: reading never blocks the writer)."""
    with _engine(url).connect() as connection:
        sweeps = {r.name: r.status for r in connection.execute(sa.text("SELECT name, status FROM sweeps"))}
        trials = {r.trial_id: r.status for r in connection.execute(sa.text("SELECT trial_id, status FROM trials"))}
        epochs = {
            (r.trial_id, r.epoch): r.seconds
            for r in connection.execute(sa.text("SELECT trial_id, epoch, seconds FROM epochs"))
        }
    return {"sweeps": sweeps, "trials": trials, "epochs": epochs}


def try_snapshot(url: str) -> dict | None:
    """``snapshot``, or None while the store's tables do not exist yet."""
    try:
        return snapshot(url)
    except sa.exc.OperationalError:
        return None


def poll(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    process: subprocess.Popen | None = None,
    log: Path | None = None,
    interval: float = 0.5,
) -> T:
    """Call ``probe`` until it returns something truthy and return that; fail after ``timeout`` seconds, or at once
    if ``process`` (the driver being watched) exits first, saying what was awaited and what the driver printed."""
    deadline = time.monotonic() + timeout
    while True:
        found = probe()
        if found:
            return found
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the driver exited (rc {process.returncode}) first\n{tail(log)}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not reached in {timeout:g} s\n{tail(log)}")
        time.sleep(interval)


def wait_for(condition: Callable[[dict], bool], url: str, timeout: float, **kwargs: Any) -> dict:
    """Poll the store until ``condition(snapshot)`` holds; return that snapshot."""
    kwargs.setdefault("what", "store condition")

    def probe() -> dict | None:
        state = try_snapshot(url)
        return state if state and condition(state) else None

    return poll(probe, timeout=timeout, **kwargs)


def tail(log: Path | None, lines: int = 40) -> str:
    if log is None or not Path(log).exists():
        return ""
    text = Path(log).read_text(errors="replace").splitlines()
    return "--- driver output (last lines) ---\n" + "\n".join(text[-lines:])


# --- processes -------------------------------------------------------------------------------------------------------


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])  # the field after the command name, which may hold spaces


def descendants(root: int) -> set[int]:
    """Every live process below ``root`` in the process tree (from /proc; ``root`` itself excluded)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    found, todo = set(), [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def is_ancestor(ancestor: int, pid: int) -> bool:
    while pid and pid != 1:
        pid = _parent_of(pid) or 0
        if pid == ancestor:
            return True
    return False


def holders_of(path: str | os.PathLike, among: Iterable[int]) -> list[int]:
    """The processes among ``among`` that hold ``path`` open (from /proc/PID/fd)."""
    target = os.path.realpath(path)
    holders = []
    for pid in among:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    holders.append(pid)
                    break
            except OSError:
                continue
    return holders


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def kill_pids(pids: Iterable[int]) -> None:
    """SIGKILL each of ``pids`` that still lives (by PID only)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def session_pids(process: subprocess.Popen) -> list[int]:
    """Processes still in the session ``process`` leads: the driver, and the Ray instance it started. Ray's workers
    get process groups of their own, so a process-group kill misses them; the session catches them all."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == process.pid:  # after "pid (comm)": state, ppid, pgrp, session
            found.append(int(stat.parent.name))
    return found


def kill_driver(process: subprocess.Popen) -> None:
    """SIGKILL a driver started by ``analog_sweep``, then, after it has died, what it had started (its local Ray
    instance, as the OS would reap it)."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(2)
    kill_session(process)


def kill_session(process: subprocess.Popen) -> None:
    """SIGKILL the driver and everything it started (as a crashed machine would), and wait until all are gone."""
    for _ in range(50):
        pids = session_pids(process)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.1)
    if process.poll() is None:
        process.wait()


def reap_session(process: subprocess.Popen, grace: float = 15.0) -> bool:
    """Wait up to ``grace`` s for everything the driver started to end; kill what is left. True if nothing was left
    (a driver that stopped cleanly takes its local Ray instance, workers included, with it)."""
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not session_pids(process):
            return True
        time.sleep(0.25)
    kill_session(process)
    return False


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a driver started with ``analog_sweep`` and everything it started, workers included; reap it."""
    kill_session(process)
