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


def kill_group(process: subprocess.Popen) -> None:
    """SIGKILL a process started with ``analog_sweep`` and everything left in its process group; reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        pass
