"""The pretraining stage: each source model the sweep's transfer trials start from, trained once before they run.

Trials of one pretraining key (source task, model, pretraining settings, seed) share one model. The stage runs one
Ray task per key, all at once; a task whose model is already in the cache (shared by every sweep in the storage path)
loads it instead of training it again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import ray

from analog_sweep.orchestrator._cluster import alive_nodes, wait_placeable
from analog_sweep.orchestrator._errors import PretrainingFailed, error_summary
from analog_sweep.orchestrator._paths import SweepPaths
from analog_sweep.orchestrator._progress import format_duration
from analog_sweep.sweeps import SweepSpec, pretrain_keys


@ray.remote
def _pretrain_job(job: Any, cache_dir: str, threads: int) -> dict[str, Any]:
    import torch

    from analog_sweep.workers import pretrained_model

    torch.set_num_threads(max(1, threads))
    result = pretrained_model(job.data, job.model, job.pretrain, cache_dir)
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
) -> None:
    """Pretrain each distinct pretraining key of the sweep once, before any fine-tuning trial needs it.

    Args:
        spec: The sweep.
        paths: The sweep's files (``paths.cache`` holds the models).
        cpu: CPUs per trial; each job gets at least this many.
        gpu: GPUs per trial, and per job.
        echo: Told the stage's progress, one line per model.
        on_model: Handed each model's record as it arrives (``cache_key``, ``file_hash``, ``path``,
            ``source_error``, ``source_train_error``, ``train_seconds``, ``trained_now``).

    Raises:
        PretrainingFailed: If a job raised (one line: its key and the cause).
        ClusterError: If no live node can hold a job any more.
    """
    jobs = list(pretrain_keys(spec).values())
    if not jobs:
        return
    echo(f"pretraining: {len(jobs)} model(s) needed")
    # Nothing else runs during this stage: fewer jobs than CPUs share them out (up to one node's worth each).
    # A job never asks for more than the largest node has (trial_resources checked that a trial's request fits).
    largest_node = max((float(node.get("CPU", 0)) for node in alive_nodes()), default=cpu)
    per_job = max(cpu, min(largest_node, ray.cluster_resources().get("CPU", cpu) // len(jobs)))
    remote = _pretrain_job.options(num_cpus=per_job, num_gpus=gpu)
    refs = {remote.remote(job, str(paths.cache), int(max(1, per_job))): job for job in jobs}
    try:
        for ref in refs:
            wait_placeable(ref, per_job, gpu)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise PretrainingFailed(f"pretraining {refs[ref].key} failed: {error_summary(exc)}") from None
            how = f"trained in {format_duration(result['seconds'])}" if result["trained_now"] else "from cache"
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
