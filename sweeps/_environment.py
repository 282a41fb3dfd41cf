"""What the machine offers a sweep, and what stops a sweep before it runs: the dry run's and ``run``'s checks.

``detect_environment`` looks at CPUs, GPUs and the aihwkit build; ``preflight_problems`` finds what makes ``run``
fail for sure (data files missing, more CPUs or GPUs per trial than the machine has) before Ray starts;
``environment_warnings`` is the dry run's longer list, which never fails it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from analog_sweep.sweeps._schema import SweepSpec
from analog_sweep.workers import CIFAR10_FOLDER, CIFAR10_TRAIN_FILES, CIFAR100_FOLDER, DATA_ROOT_ENV


@dataclass(frozen=True)
class Environment:
    """What this machine offers a sweep; ``aihwkit_cuda`` is None when aihwkit cannot be imported."""

    cpus: int
    gpus: int
    aihwkit_cuda: bool | None
    data_root: str | None = None  # $ANALOG_SWEEP_DATA, the data folder when the spec names none
    notes: tuple[str, ...] = ()  # what could not be detected


def detect_environment() -> Environment:
    """Look at CPUs, visible GPUs and the aihwkit build; never raises (what fails is noted instead)."""
    notes = []
    gpus = 0
    try:
        import torch

        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    except Exception as error:  # noqa: BLE001 - a dry run reports, it does not fail
        notes.append(f"torch could not be checked ({type(error).__name__}: {error})")
    aihwkit_cuda = None
    try:
        from aihwkit.simulator.rpu_base import cuda

        aihwkit_cuda = bool(cuda.is_compiled())
    except Exception as error:  # noqa: BLE001
        notes.append(f"aihwkit could not be imported ({type(error).__name__}: {error})")
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return Environment(
        cpus=cpus,
        gpus=gpus,
        aihwkit_cuda=aihwkit_cuda,
        data_root=os.environ.get(DATA_ROOT_ENV),
        notes=tuple(" ".join(note.split()) for note in notes),
    )


@dataclass(frozen=True)
class Preflight:
    """What stops a sweep before it runs: ``data`` problems (bad input) and ``resources`` this machine lacks."""

    data: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


def preflight_problems(spec: SweepSpec, *, environment: Environment | None, cpu_fallback: bool = False) -> Preflight:
    """The problems that make ``run`` fail for sure, found before Ray starts (the dry run reports them as warnings).

    Unknown classes are refused earlier, when the spec is loaded.

    Args:
        spec: The sweep's spec.
        environment: The machine a local run would use; None (a cluster) skips the resource checks.
        cpu_fallback: A GPU spec may run on CPUs (``run --cpu-fallback``).

    Returns:
        The data files missing under the data root (CIFAR), and the CPUs or GPUs per trial the machine lacks.
    """
    data: list[str] = []
    if spec.data.dataset == "cifar":
        root = spec.data.data_root or (environment.data_root if environment else None) or os.environ.get(DATA_ROOT_ENV)
        data += [
            f"{problem}; set data.data_root or ${DATA_ROOT_ENV} to the folder holding {CIFAR10_FOLDER} and "
            f"{CIFAR100_FOLDER}"
            for problem in _missing_cifar(root)
        ]
    resources: list[str] = []
    if environment is not None:
        if spec.resources.cpu > environment.cpus:
            resources.append(
                f"resources.cpu is {spec.resources.cpu:g} per trial but this machine has {environment.cpus} CPU(s)"
            )
        if spec.resources.gpu > 0 and environment.gpus == 0 and not cpu_fallback:
            resources.append(
                f"resources.gpu is {spec.resources.gpu:g} per trial but this machine has no GPU; pass "
                "--cpu-fallback to run on CPUs"
            )
        elif 0 < environment.gpus < spec.resources.gpu:
            resources.append(
                f"resources.gpu is {spec.resources.gpu:g} per trial but this machine has {environment.gpus} GPU(s)"
            )
    return Preflight(tuple(data), tuple(resources))


def environment_warnings(spec: SweepSpec, environment: Environment, slots: int) -> list[str]:
    """What the dry run warns about this machine (none of it fails the dry run); ``slots``: trials that fit at once."""
    warnings = list(environment.notes)
    analog = any(mode.startswith("analog") for mode in spec.modes)
    if spec.data.dataset == "cifar":
        warnings += _missing_cifar(spec.data.data_root or environment.data_root)
    if spec.resources.gpu > 0 and environment.gpus == 0:
        warnings.append(f"resources.gpu is {spec.resources.gpu:g} but no GPU is visible (torch.cuda.is_available())")
    if spec.resources.gpu > 0 and analog and environment.aihwkit_cuda is False:
        warnings.append("GPUs requested, but this aihwkit is built without CUDA: analog tiles would run on the CPU")
    if analog and environment.aihwkit_cuda is None:
        warnings.append("analog modes requested, but aihwkit cannot be imported here")
    if spec.resources.cpu > environment.cpus:
        warnings.append(f"resources.cpu is {spec.resources.cpu:g} but this machine has {environment.cpus} CPU(s)")
    if spec.axes.values and not analog:
        warnings.append("device axes are swept, but no analog mode is: digital modes ignore the device")
    if slots == 0 and not warnings:
        warnings.append("no trial fits on this machine's resources")
    return warnings


def _missing_cifar(root: str | None) -> list[str]:
    if not root:
        return [f"cifar data: no data.data_root and ${DATA_ROOT_ENV} is unset"]
    wanted = [Path(root, CIFAR10_FOLDER, name) for name in (*CIFAR10_TRAIN_FILES, "test_batch", "batches.meta")]
    wanted += [Path(root, CIFAR100_FOLDER, name) for name in ("train", "test", "meta")]
    try:
        missing = [path for path in wanted if not path.expanduser().is_file()]
    except OSError as error:
        return [f"cifar data: cannot check {root} ({error})"]
    if not missing:
        return []
    return [f"cifar data: {len(missing)} of {len(wanted)} files missing under {root}, e.g. {missing[0]}"]


def parallel_trials(spec: SweepSpec, environment: Environment, cpu_fallback: bool = False) -> int:
    """How many trials fit on ``environment`` at once (its CPUs, and GPUs unless ``cpu_fallback``); 0: none fits."""
    slots = math.floor(environment.cpus / spec.resources.cpu)
    if spec.resources.gpu > 0 and not cpu_fallback:
        slots = min(slots, math.floor(environment.gpus / spec.resources.gpu))
    return slots
