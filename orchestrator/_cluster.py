"""The sweep's Ray cluster: joining or starting it, and refusing what it cannot give before anything waits on it.

A trial, and a pretraining job, runs on one node; a request larger than every live node would wait forever, so
``trial_resources`` refuses it before the sweep starts and ``wait_placeable`` stops a wait once nodes that could
hold the job are gone. Both raise ``ClusterError`` with what the cluster has.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

import ray

from analog_sweep.orchestrator._errors import ClusterError
from analog_sweep.sweeps import SweepSpec

# How often a pretraining job that has not finished is checked to be placeable still.
PLACEMENT_CHECK_SECONDS = 30.0

# What Ray logs, as a warning, when ``ray.init`` starts a new local instance with token authentication on (its default
# unless $RAY_AUTH_MODE says otherwise), and the logger it logs it on. For an instance the sweep starts for itself and
# stops when it ends, the advice in it (how to opt out) says nothing to the sweep's user, so ``ray_session`` drops it
# there; joining a cluster, whatever Ray says about tokens is passed on.
LOCAL_TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster."
TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"


class _DropLocalTokenNotice(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(LOCAL_TOKEN_NOTICE)


@contextmanager
def without_local_token_notice() -> Iterator[None]:
    """Drop Ray's ``LOCAL_TOKEN_NOTICE`` (and only it) while the block runs; every other record of its logger
    passes."""
    logger = logging.getLogger(TOKEN_LOGGER)
    drop = _DropLocalTokenNotice()
    logger.addFilter(drop)
    try:
        yield
    finally:
        logger.removeFilter(drop)


@contextmanager
def ray_session(
    address: str | None, *, dashboard_port: int | None = None, echo: Callable[[str], None] = print
) -> Iterator[None]:
    """Join the Ray cluster at ``address``, or start a local instance on this machine's cores; leave it after.

    A Ray session this process already has is used as it is, and left running.

    Args:
        address: The cluster's address; None starts a new local instance.
        dashboard_port: A local instance keeps Ray's dashboard on, at http://127.0.0.1:PORT (loopback only: the
            dashboard can submit jobs), and ``echo`` says where.
        echo: Where the dashboard's address is printed.

    Raises:
        ValueError: If both ``address`` and ``dashboard_port`` are given (a cluster's dashboard is its head's).
    """
    if dashboard_port is not None and address is not None:
        raise ValueError("--ray-dashboard is for a local run: a cluster's dashboard runs on its head (port 8265)")
    if ray.is_initialized():
        yield
        return
    # ray.init replaces the process's SIGTERM handler with one that exits at once (sys.exit in the middle of the
    # Tune loop, then a core dump at shutdown); a handler the process owner installed (the command line's: SIGTERM
    # stops the sweep like Ctrl-C) is put back.
    owner_sigterm = signal.getsignal(signal.SIGTERM)
    dashboard = {} if dashboard_port is None else {"dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port}
    with without_local_token_notice() if address is None else nullcontext():
        context = ray.init(
            # Without an address, a new local instance: "local", because Ray's default (None) joins whatever cluster a
            # `ray start` on this machine last recorded in /tmp/ray, which may be someone else's, or gone.
            address=address or "local",
            include_dashboard=dashboard_port is not None,
            **dashboard,
            log_to_driver=False,
            logging_level="WARNING",
            configure_logging=True,
        )
    if callable(owner_sigterm) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, owner_sigterm)
    if dashboard_port is not None:
        echo(f"Ray dashboard: http://{context.dashboard_url or f'127.0.0.1:{dashboard_port}'}")
    try:
        yield
    finally:
        ray.shutdown()


def alive_nodes() -> list[dict[str, float]]:
    """The resources of each live node of the cluster."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def trial_resources(spec: SweepSpec, cpu_fallback: bool) -> tuple[float, float, int]:
    """CPUs and GPUs per trial, and how many trials fit on the cluster at once.

    Args:
        spec: The sweep; its ``resources`` are what each trial asks for.
        cpu_fallback: Run on CPUs (GPUs per trial 0) when the spec asks for GPUs and the cluster has none.

    Returns:
        ``(cpu, gpu, slots)``: per trial, and how many such trials the live nodes hold together (at least 1).

    Raises:
        ClusterError: If no node can give one trial what it asks (a request above the largest node, CPUs and GPUs
            on no one node, GPUs on a cluster without any and no ``cpu_fallback``): it would wait forever.
    """
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    nodes = alive_nodes() or [dict(total)]
    node_cpus = max(float(node.get("CPU", 0)) for node in nodes)
    node_gpus = max(float(node.get("GPU", 0)) for node in nodes)
    count = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    have = f"the cluster has {cpus:g} CPU, {gpus:g} GPU, {total.get('memory', 0) / 2**30:.1f} GiB memory"
    cpu, gpu = spec.resources.cpu, spec.resources.gpu
    if gpu > 0 and gpus == 0:
        if not cpu_fallback:
            raise ClusterError(
                f"the sweep asks for {gpu:g} GPU per trial but {have}; pass --cpu-fallback to run on CPUs"
            )
        gpu = 0.0
    if gpu > node_gpus:
        raise ClusterError(
            f"the sweep asks for {gpu:g} GPU per trial but the largest node has {node_gpus:g} GPU "
            f"({have} over {count}); a trial runs on one node: lower resources.gpu"
        )
    if cpu > node_cpus:
        raise ClusterError(
            f"the sweep asks for {cpu:g} CPU per trial but the largest node has {node_cpus:g} CPU "
            f"({have} over {count}); a trial runs on one node: lower resources.cpu"
        )
    if gpu > 0:  # a trial needs its CPUs and GPUs on the same node
        fits = [node for node in nodes if float(node.get("CPU", 0)) >= cpu and float(node.get("GPU", 0)) >= gpu]
        if not fits:
            raise ClusterError(
                f"the sweep asks for {cpu:g} CPU and {gpu:g} GPU per trial but no node has both ({have} over {count})"
            )
    slots = 0
    for node in nodes:
        here = int(float(node.get("CPU", 0)) // cpu) if cpu > 0 else int(float(node.get("CPU", 0)))
        if gpu > 0:
            here = min(here, int(float(node.get("GPU", 0)) // gpu))
        slots += here
    return cpu, gpu, max(1, slots)


def wait_placeable(ref: Any, cpu: float, gpu: float, every: float = PLACEMENT_CHECK_SECONDS) -> None:
    """Wait for a Ray task, checking every ``every`` seconds that some live node can still hold it.

    Nodes come and go; a task that no live node can hold would wait forever.

    Args:
        ref: The task's object ref.
        cpu: CPUs the task asked for.
        gpu: GPUs the task asked for.
        every: Seconds between checks.

    Raises:
        ClusterError: If no live node has ``cpu`` CPUs and ``gpu`` GPUs any more.
    """
    while not ray.wait([ref], timeout=every)[0]:
        nodes = alive_nodes()
        if not any(float(n.get("CPU", 0)) >= cpu and float(n.get("GPU", 0)) >= gpu for n in nodes):
            largest = max((float(n.get("CPU", 0)) for n in nodes), default=0.0)
            raise ClusterError(
                f"a pretraining job needs {cpu:g} CPU{f' and {gpu:g} GPU' if gpu else ''} on one node, "
                f"but no live node has that any more (the largest has {largest:g} CPU)"
            )
