"""Where a sweep keeps its files under the storage path, the lock that allows one driver per sweep, and where the
pretrained models are cached.

Reading these needs neither Ray nor Ray Tune: the commands that show a sweep (``status``, the dashboard) use them
without starting anything.

The pretrained-model cache is shared by every sweep that uses the same folder, whatever its storage path: its files
are named by content (``workers.cache_entry``), so any sweep can use any model in it. ``pretrain_cache_dir`` chooses
the folder: ``--cache-dir`` or ``$ANALOG_SWEEP_CACHE`` if given (``{storage}`` in it stands for the storage path),
else on a cluster (``--address``) ``<storage path>/cache``, which every node sees, else the user's cache folder
(``$XDG_CACHE_HOME/analog-sweep/pretrained``, or ``~/.cache/analog-sweep/pretrained``). ``<storage path>/cache``
(``SweepPaths.cache``) is also searched whatever the cache folder is, since a sweep whose storage path holds its
models may have kept them there: a model found there is copied into the cache, not trained again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from analog_sweep._files import probe_lock, replace_text
from analog_sweep.orchestrator._errors import PreflightError, SweepStateError

CACHE_ENV = "ANALOG_SWEEP_CACHE"
STORAGE_PLACEHOLDER = "{storage}"  # in --cache-dir or $ANALOG_SWEEP_CACHE: the storage path


def user_cache_dir() -> Path:
    """The user's pretrained-model cache: ``$XDG_CACHE_HOME/analog-sweep/pretrained`` (an absolute
    ``XDG_CACHE_HOME`` only, as the XDG base directory specification says), else
    ``~/.cache/analog-sweep/pretrained``."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "analog-sweep" / "pretrained"


def pretrain_cache_dir(
    storage_root: str | os.PathLike, cache_dir: str | os.PathLike | None = None, *, on_cluster: bool = False
) -> Path:
    """The folder the sweep's pretrained models are cached in (absolute; nothing is made).

    Args:
        storage_root: The storage path (the folder holding the sweep's folder).
        cache_dir: The folder asked for (``--cache-dir``); None: ``$ANALOG_SWEEP_CACHE``, else the default.
            ``{storage}`` in either stands for the storage path (``{storage}/cache`` keeps a cache per storage path).
        on_cluster: The sweep joins a cluster (``--address``): the default is ``<storage_root>/cache``, on the
            storage path every node shares, instead of this machine's user cache (``user_cache_dir``).
    """
    storage = Path(storage_root).resolve()
    asked = os.fspath(cache_dir) if cache_dir is not None else os.environ.get(CACHE_ENV, "")
    if asked:
        return Path(asked.replace(STORAGE_PLACEHOLDER, str(storage))).expanduser().resolve()
    if on_cluster:
        return storage / "cache"
    return user_cache_dir()


def check_cache_dir(folder: Path) -> None:
    """Refuse a cache folder this process cannot write, before Ray starts: the folder is made and a probe file written
    in it, so what the permission bits do not tell (root on /proc or /sys, a read-only mount) is found too; the probe
    and the folders the check made are removed again.

    Raises:
        PreflightError: One line naming the folder, why, and how to choose another.
    """
    existing = folder
    while not existing.exists() and existing.parent != existing:  # the folder is made under the nearest existing one
        existing = existing.parent
    why = f"{existing} is not a folder" if not existing.is_dir() else ""
    if not why:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-check-"):
                pass
        except OSError as error:
            why = error.strerror or str(error)
        finally:  # the folders the check made go again: the stage makes them when it needs them
            made = folder
            while made != existing and made.is_dir():
                with contextlib.suppress(OSError):
                    made.rmdir()
                made = made.parent
    if why:
        raise PreflightError(
            f"cannot cache pretrained models in {folder}: {why}; set ${CACHE_ENV} or --cache-dir to a folder you "
            "can write"
        )


@dataclass(frozen=True)
class SweepPaths:
    """Where one sweep keeps its files. ``cache`` is the storage path's own model cache (``<storage>/cache``): the
    default on a cluster, and searched for models whatever the cache folder is (``pretrain_cache_dir``)."""

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

    @property
    def pretraining(self) -> Path:
        """What the driver's pretraining stage is doing, while it runs (``pretraining_lines`` reads it)."""
        return self.root / "pretraining.json"

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
    if not lock.exists():
        return False if Path(experiment_path).is_dir() else None
    return probe_lock(lock)


def pretraining_line(model: Mapping[str, Any], now: float | None = None) -> str:
    """One model of the pretraining stage in words, as ``run`` prints it and ``status`` shows it.

    Args:
        model: An entry of ``pretraining.json``'s ``models``: ``key``, ``state`` (``starting``, ``training``,
            ``waiting`` for another sweep that trains the same model, ``done``), ``progress`` (the training's
            record, ``workers.read_progress``, or None), ``since`` (Unix time the stage began), ``how`` (done: how).
        now: Unix time to count the time left from (default: now).
    """
    now = time.time() if now is None else now
    key, state, record = model["key"], model.get("state"), model.get("progress")
    if state == "done":
        return f"pretraining {key}: {model.get('how') or 'done'}"
    if state == "waiting":
        line = f"pretraining: waiting for another sweep's pretraining of {key}"
        if record:
            who = f"sweep {record['sweep']}: " if record.get("sweep") else ""
            line += f" ({who}{_epochs(record, now)})"
        return line
    if state == "training" and record:
        return f"pretraining {key}: {_epochs(record, now)}"
    return f"pretraining {key}: starting, {_duration(now - float(model.get('since') or now))} so far"


def _epochs(record: Mapping[str, Any], now: float) -> str:
    """'epoch 12/40, loss 0.412, 0m31s left' (the time left counted down since the record was written)."""
    epoch, epochs = record.get("epoch", 0), record.get("epochs", "?")
    if not epoch:
        return f"first of {epochs} epochs running, {_duration(float(record.get('elapsed_s') or 0))} in"
    estimate = float(record.get("left_s") or 0)
    left = estimate - max(0.0, now - float(record.get("updated_at") or now))
    if left <= 0 and epoch != epochs:
        left = estimate  # the next epoch is slower than the ones before (a busier machine): the record's estimate
    loss = f", loss {record['loss']:.3f}" if isinstance(record.get("loss"), (int, float)) else ""
    return f"epoch {epoch}/{epochs}{loss}, {_duration(max(left, 0.0))} left"


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


def write_pretraining(paths: SweepPaths, models: list[dict[str, Any]]) -> None:
    """Replace the sweep's ``pretraining.json`` atomically with ``models`` (``pretraining_line``'s entries)."""
    replace_text(paths.pretraining, json.dumps({"updated_at": time.time(), "models": models}))


def clear_pretraining(paths: SweepPaths) -> None:
    with contextlib.suppress(FileNotFoundError):
        paths.pretraining.unlink()


def pretraining_lines(experiment_path: str | os.PathLike | None, now: float | None = None) -> list[str]:
    """What the sweep's pretraining stage is doing, one line per model not yet ready; empty when it is not
    pretraining (or its folder is not on this machine). Callers check first that its driver is alive
    (``driver_alive``): a driver that died leaves the file behind."""
    if not experiment_path:
        return []
    try:
        state = json.loads(SweepPaths(Path(experiment_path)).pretraining.read_text())
        models = [model for model in state["models"] if model.get("state") != "done"]
        return [pretraining_line(model, now) for model in models]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return []


def models_in_cache(spec: Any, cache_dirs: list[Path]) -> dict[str, Path]:
    """The pretrained models of ``spec`` (a ``SweepSpec``) already in one of ``cache_dirs``, by cache key: where
    each file is. Only looks whether the files are there; a model whose source data is missing is not."""
    from analog_sweep.sweeps import pretrain_keys
    from analog_sweep.workers import DataError, find_cached

    found = {}
    for key, job in pretrain_keys(spec).items():
        try:
            path = find_cached(job.data, job.model, job.pretrain, cache_dirs)
        except DataError:
            continue
        if path is not None:
            found[key] = path
    return found
