"""Where a sweep keeps its files under the storage path, and the lock that allows one driver per sweep.

Reading these needs neither Ray nor Ray Tune: the commands that show a sweep (``status``, the dashboard) use them
without starting anything.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from analog_sweep.orchestrator._errors import SweepStateError


@dataclass(frozen=True)
class SweepPaths:
    """Where one sweep keeps its files; ``cache`` (pretrained models) is shared by every sweep in the storage path."""

    root: Path

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def journal(self) -> Path:
        return self.root / "optuna.journal"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    @property
    def cache(self) -> Path:
        return self.root.parent / "cache"

    @property
    def lock(self) -> Path:
        return self.root / "driver.lock"

    def next_run_name(self) -> str:
        runs = [int(p.name[4:]) for p in self.ray.glob("run-*") if p.name[4:].isdigit()] if self.ray.exists() else []
        return f"run-{max(runs, default=0) + 1}"


def sweep_paths(storage_root: str | os.PathLike, name: str) -> SweepPaths:
    return SweepPaths(Path(storage_root).resolve() / name)


@contextmanager
def driver_lock(paths: SweepPaths, name: str) -> Iterator[None]:
    """Hold the sweep's driver lock while the block runs, so a second driver of the sweep is refused, not interleaved.

    Args:
        paths: The sweep's files (the folder is made if missing).
        name: The sweep's name, for the message.

    Raises:
        SweepStateError: If another process holds the lock (the message names its pid).
    """
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SweepStateError(f"sweep {name!r} is running in another process ({handle.read().strip()})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def driver_alive(experiment_path: str | os.PathLike | None) -> bool | None:
    """Whether a driver holds the sweep's lock now. Opens the lock file read-only and takes nothing.

    Args:
        experiment_path: The sweep's folder, as the store records it.

    Returns:
        True or False; None when this machine cannot tell (no path, or the sweep's folder is not here).
    """
    if not experiment_path:
        return None
    lock = SweepPaths(Path(experiment_path)).lock
    try:
        handle = open(lock)
    except FileNotFoundError:
        return False if Path(experiment_path).is_dir() else None
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False
