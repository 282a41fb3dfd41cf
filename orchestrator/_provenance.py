"""What the sweep driver records about each run and resume: the environment it runs in and how it was started.

Gathered by the driver (this process) when a sweep starts or resumes, and written to the store as plain data
(``results.Store.record_run``): the package versions that decide the numbers, the project's version and git commit,
the host, its CPU and GPUs, the command line, the options that changed how the sweep ran, and what the Ray cluster
offered. Trials run on Ray's workers, which on a cluster may be other machines: ``cluster`` says what they had
(nodes, CPUs, GPUs, accelerator types, and the environments of the nodes checked before the first trial,
``node_environments``), the rest describes the driver's machine. Each node's own package versions are checked
against the driver's (``_node_versions``) and recorded with every trial that ran there.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import socket
import subprocess
import sys
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# The packages whose versions decide a sweep's numbers (python is added as "python").
PACKAGES = ("torch", "torchvision", "aihwkit", "timm", "numpy", "ray", "optuna", "sqlalchemy", "pyarrow")
PROJECT_ROOT = Path(__file__).resolve().parents[1]
_COMMAND_SECONDS = 10  # at most this long for git or nvidia-smi; a slower one is recorded as unknown


@dataclass(frozen=True)
class Invocation:
    """How a run was started, handed down by the command line as data: ``command`` (the argument list, first the
    program) and ``options`` (what changed how the sweep ran: ``--set`` overrides, the spec file, the storage path,
    the store as its label). The driver adds ``address``, ``cpu_fallback`` and the resources each trial got.
    Passwords in either are never stored (``results.redact``)."""

    command: Sequence[str] | str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)


def package_versions(names: Sequence[str] = PACKAGES) -> dict[str, str | None]:
    """``python`` and each of ``names`` -> its version in this process (None if not installed), as
    ``importlib.metadata`` finds it on ``sys.path``."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def aihwkit_cuda() -> bool | None:
    """Whether the installed aihwkit was compiled with CUDA (``aihwkit.simulator.rpu_base.cuda.is_compiled()``; the
    PyPI wheel is CPU-only); None if aihwkit cannot be imported."""
    try:
        from aihwkit.simulator.rpu_base import cuda
    except ImportError:
        return None
    return bool(cuda.is_compiled())


def _run(*command: str, cwd: Path | None = None) -> str | None:
    """A command's stdout, or None if it is missing, fails or takes longer than ``_COMMAND_SECONDS``."""
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=_COMMAND_SECONDS, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def project_info(root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The project's version, and the git commit it runs from.

    Args:
        root: The project's folder.

    Returns:
        ``version``; ``commit`` and ``dirty`` (a tracked file differs from the commit; untracked files do not
        count, as for ``git describe --dirty``) when the code runs from a git checkout, else None (an installed
        wheel).
    """
    from analog_sweep import __version__  # the version constant only (a leaf module; no command-line code)

    info: dict[str, Any] = {"version": __version__, "commit": None, "dirty": None}
    top = _run("git", "-C", str(root), "rev-parse", "--show-toplevel")
    if top is None or Path(top.strip()).resolve() != root.resolve():
        return info  # not a checkout of this project (perhaps an unrelated repository around site-packages)
    commit = _run("git", "-C", str(root), "rev-parse", "HEAD")
    status = _run("git", "-C", str(root), "status", "--porcelain", "--untracked-files=no")
    info["commit"] = commit.strip() if commit else None
    info["dirty"] = None if status is None else bool(status.strip())
    return info


def cpu_info() -> dict[str, Any]:
    """This machine's CPU ``model`` (``/proc/cpuinfo``'s model name, else ``platform.processor()``) and ``count``
    (logical CPUs, ``os.cpu_count()``)."""
    model = None
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"model": model or platform.processor() or platform.machine() or None, "count": os.cpu_count()}


def gpu_info() -> dict[str, Any]:
    """This machine's NVIDIA GPUs: ``model`` (their names, comma-joined when they differ; None without GPUs) and
    ``count``, from ``nvidia-smi`` (which does not start CUDA in the driver)."""
    listed = _run("nvidia-smi", "--query-gpu=name", "--format=csv,noheader")
    names = [line.strip() for line in (listed or "").splitlines() if line.strip()]
    distinct = list(dict.fromkeys(names))
    return {"model": ", ".join(distinct) or None, "count": len(names)}


def gather_environment() -> dict[str, Any]:
    """The run fields that describe this process's machine and software (see ``results.Store.record_run``)."""
    return {
        "packages": package_versions(),
        "aihwkit_cuda": aihwkit_cuda(),
        "project": project_info(),
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu": cpu_info(),
        "gpus": gpu_info(),
    }


def cluster_info() -> dict[str, Any]:
    """What the connected Ray cluster offers: live ``nodes``, total ``cpus`` and ``gpus``, and the GPU
    ``accelerator_types`` Ray detected (e.g. ``H100``). The driver adds ``node_environments``: the hashes of the
    node environments it checked (``Store.record_node_environment``)."""
    import ray

    nodes = [node for node in ray.nodes() if node.get("Alive")]
    total = ray.cluster_resources()
    types = sorted(
        {
            key.split(":", 1)[1]
            for node in nodes
            for key in node.get("Resources", {})
            if key.startswith("accelerator_type:")
        }
    )
    return {
        "nodes": len(nodes),
        "cpus": float(total.get("CPU", 0)),
        "gpus": float(total.get("GPU", 0)),
        "accelerator_types": types,
    }


def run_record(
    kind: str,
    environment: Mapping[str, Any],
    invocation: Invocation | None,
    options: Mapping[str, Any],
    cluster: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One run record for ``Store.record_run``: a fresh ``run_id``, the start time now, ``environment`` (from
    ``gather_environment``), the invocation's command and options with the driver's own ``options`` over them."""
    invocation = invocation or Invocation(command=[Path(sys.argv[0]).name, *sys.argv[1:]] if sys.argv else None)
    return {
        "run_id": uuid.uuid4().hex,
        "kind": kind,
        "started_at": datetime.now(UTC),
        "command": invocation.command,
        "options": {**invocation.options, **options},
        "cluster": dict(cluster) if cluster is not None else None,
        **environment,
    }


def version_warnings(before: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """Warn about each package whose version differs between two runs.

    Args:
        before: The earlier run (a run record, or a ``gather_environment`` result).
        now: The later one, of the same kind.

    Returns:
        One warning line per package that differs, the project's version and aihwkit's CUDA build included, e.g.
        ``warning: resuming with torch 2.10.0 (the sweep ran with 2.9.1)``; empty if none does.
    """
    lines = []
    old, new = dict(before.get("packages") or {}), dict(now.get("packages") or {})
    for name, record in (("analog-sweep", before), ("analog-sweep", now)):
        version = (record.get("project") or {}).get("version")
        if version is not None:
            (old if record is before else new)[name] = version
    for name in new:  # a package the run before did not record (an older record) is no difference
        if name in old and old[name] != new[name]:
            now_text = f"with {name} {new[name]}" if new[name] else f"without {name}"
            then_text = f"with {old[name]}" if old[name] else "without it"
            lines.append(f"warning: resuming {now_text} (the sweep ran {then_text})")
    was, is_ = before.get("aihwkit_cuda"), now.get("aihwkit_cuda")
    if was is not None and is_ is not None and was != is_:
        lines.append(
            f"warning: resuming with aihwkit {'with' if is_ else 'without'} CUDA "
            f"(the sweep ran with aihwkit {'with' if was else 'without'} CUDA)"
        )
    return lines
