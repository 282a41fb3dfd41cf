"""The pretraining stage: each source model the sweep's transfer trials start from, trained once before they run.

Trials of one pretraining key (source task, model, pretraining settings, seed) share one model. The stage runs one
Ray task per key, all at once; a task whose model is already in the cache (``_paths.pretrain_cache_dir``: shared by
every sweep that uses the folder) loads it instead of training it again, and one whose model another sweep is
training waits for it (the cache entry's file lock) instead of training it twice.

While the tasks run, a thread of the driver reads the progress file each training task keeps beside its cache entry
(``workers.read_progress``) every second: every ``PROGRESS_SECONDS`` it prints one line per model not yet ready
(the epoch, its mean training loss and the time left), and it keeps the same in the sweep's ``pretraining.json``
for ``analog-sweep status`` (``_paths.pretraining_lines``). No Ray actor is involved: the files are on the cache
folder, which the workers and the driver share (on a cluster, the shared storage path).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import ray

from analog_sweep.orchestrator._cluster import alive_nodes, wait_placeable
from analog_sweep.orchestrator._errors import PretrainingFailed, error_summary
from analog_sweep.orchestrator._paths import (
    SweepPaths,
    clear_pretraining,
    pretraining_line,
    write_pretraining,
)
from analog_sweep.orchestrator._progress import format_duration
from analog_sweep.sweeps import SweepSpec, pretrain_keys

PROGRESS_SECONDS = 15.0  # a progress line per model at most this often (and at least, while it trains)
POLL_SECONDS = 1.0  # how often the driver reads the progress files


@ray.remote
def _pretrain_job(
    job: Any, cache_dir: str, threads: int, also_in: Sequence[str] = (), tag: dict[str, str] | None = None
) -> dict[str, Any]:
    import torch

    from analog_sweep.workers import pretrained_model

    torch.set_num_threads(max(1, threads))
    result = pretrained_model(job.data, job.model, job.pretrain, cache_dir, also_in=also_in, tag=tag)
    return {
        "trained_now": result.trained_now,
        "seconds": result.seconds,
        "source_test_error": result.source_test_error,
        "source_train_error": result.source_train_error,
        "key": result.key,
        "file_hash": result.file_hash,
        "path": str(result.path),
    }


def pretrain_stage(
    spec: SweepSpec,
    paths: SweepPaths,
    cpu: float,
    gpu: float,
    echo: Callable[[str], None],
    on_model: Callable[[dict[str, Any]], None] = lambda model: None,
    cache_dir: str | Path | None = None,
    interval: float | None = None,
) -> None:
    """Pretrain each distinct pretraining key of the sweep once, before any fine-tuning trial needs it.

    Args:
        spec: The sweep.
        paths: The sweep's files (its ``pretraining.json`` says what the stage does while it runs).
        cpu: CPUs per trial; each job gets at least this many.
        gpu: GPUs per trial, and per job.
        echo: Told the stage's progress: one line per model when it is ready, and while it trains one line per model
            every ``interval`` seconds (epoch, mean training loss, time left; or that another sweep trains it).
        on_model: Handed each model's record as it arrives (``cache_key``, ``file_hash``, ``path``,
            ``source_error``, ``source_train_error``, ``train_seconds``, ``trained_now``).
        cache_dir: The model cache (``_paths.pretrain_cache_dir``); None: the storage path's own (``paths.cache``).
            A model found in ``paths.cache`` but not here is copied here.
        interval: Seconds between progress lines (default ``PROGRESS_SECONDS``).

    Raises:
        PretrainingFailed: If a job raised (one line: its key and the cause).
        ClusterError: If no live node can hold a job any more.
    """
    jobs = list(pretrain_keys(spec).values())
    if not jobs:
        return
    cache = Path(cache_dir) if cache_dir is not None else paths.cache
    also_in = [str(paths.cache)] if paths.cache.resolve() != cache.resolve() else []
    echo(f"pretraining: {len(jobs)} model(s) needed")
    # Nothing else runs during this stage: fewer jobs than CPUs share them out (up to one node's worth each).
    # A job never asks for more than the largest node has (trial_resources checked that a trial's request fits).
    largest_node = max((float(node.get("CPU", 0)) for node in alive_nodes()), default=cpu)
    per_job = max(cpu, min(largest_node, ray.cluster_resources().get("CPU", cpu) // len(jobs)))
    remote = _pretrain_job.options(num_cpus=per_job, num_gpus=gpu)
    monitor = _Monitor(jobs, cache, paths, spec.name, echo, PROGRESS_SECONDS if interval is None else interval)
    refs = {remote.remote(job, str(cache), int(max(1, per_job)), also_in, monitor.tag): job for job in jobs}
    monitor.start()
    try:
        for ref in refs:
            wait_placeable(ref, per_job, gpu)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise PretrainingFailed(f"pretraining {refs[ref].key} failed: {error_summary(exc)}") from None
            how = f"trained in {format_duration(result['seconds'])}" if result["trained_now"] else "from cache"
            monitor.finished(refs[ref].key, how)
            echo(f"pretraining {refs[ref].key}: {how}, source test error {result['source_test_error']:.1f} %")
            on_model(
                {
                    "cache_key": result["key"],
                    "file_hash": result["file_hash"],
                    "path": result["path"],
                    "source_error": result["source_test_error"],
                    "source_train_error": result["source_train_error"],
                    "train_seconds": result["seconds"],
                    "trained_now": result["trained_now"],
                }
            )
    except BaseException:
        # The jobs still running are not needed any more; one that has ended (the one that failed) is left alone.
        # Cleaning up never hides why the stage stopped (a cluster that went away fails these calls too).
        with contextlib.suppress(Exception):
            ended, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
            for ref in refs:
                if ref not in ended:
                    ray.cancel(ref, force=True)
        raise
    finally:
        monitor.stop()


class _Monitor:
    """Reads the jobs' progress files every ``POLL_SECONDS`` on a thread of its own; prints a line per model not yet
    ready every ``interval`` seconds, and keeps the sweep's ``pretraining.json`` up to date.

    A job's training is told apart from another sweep's training of the same model by ``tag`` (this stage's token,
    which the job writes into its progress file); a progress file whose lock nobody holds is a leftover of a process
    that died, and is ignored.
    """

    def __init__(
        self,
        jobs: Sequence[Any],
        cache: Path,
        paths: SweepPaths,
        sweep: str,
        echo: Callable[[str], None],
        interval: float,
    ) -> None:
        from analog_sweep.workers import cache_entry

        self.paths, self.echo, self.interval = paths, echo, interval
        self.tag = {"sweep": sweep, "token": secrets.token_hex(8)}
        self.since = time.time()
        self.entries: dict[str, Any] = {}
        for job in jobs:
            try:
                self.entries[job.key] = cache_entry(job.data, job.model, job.pretrain, cache)
            except Exception:  # noqa: BLE001 - the job itself reports what is wrong with its data
                self.entries[job.key] = None
        self.done: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pretraining-progress", daemon=True)

    def start(self) -> None:
        self._write(self.models())
        self._thread.start()

    def finished(self, key: str, how: str) -> None:
        with self._lock:
            self.done[key] = how

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        clear_pretraining(self.paths)

    def models(self) -> list[dict[str, Any]]:
        """Every model's state now (``_paths.pretraining_line``'s entries)."""
        from analog_sweep.workers import lock_held, read_progress

        with self._lock:
            done = dict(self.done)
        models = []
        for key, entry in self.entries.items():
            model: dict[str, Any] = {"key": key, "since": self.since, "state": "starting", "progress": None}
            if key in done:
                model |= {"state": "done", "how": done[key]}
            elif entry is not None:
                record = read_progress(entry.progress)
                if record is not None and lock_held(entry.lock):
                    mine = record.get("token") == self.tag["token"]
                    model |= {"state": "training" if mine else "waiting", "progress": record}
            models.append(model)
        return models

    def _write(self, models: list[dict[str, Any]]) -> None:
        with contextlib.suppress(OSError):  # status shows less; the stage goes on
            write_pretraining(self.paths, models)

    def _run(self) -> None:
        last = time.monotonic()
        while not self._stopping.wait(POLL_SECONDS):
            models = self.models()
            if self._stopping.is_set():
                return
            self._write(models)
            if time.monotonic() - last >= self.interval:
                last = time.monotonic()
                now = time.time()
                for model in models:
                    if model["state"] != "done":
                        self.echo(pretraining_line(model, now))
