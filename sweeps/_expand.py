"""From a spec to its points: device points per mode, times tasks (class sets), times seeds.

Which device axes a mode responds to (``MODE_AXES``) decides what it is multiplied by:

- ``analog_tl`` responds to all five axes;
- ``analog_scratch`` to all but ``transfer_noise``: the paper's transfer noise is the error of programming
  *pretrained* digital weights into the analog tiles, and a model trained from scratch has none to program;
- the digital modes to none: they train in floating point, and the paper compares them at the baseline.

A mode is expanded only along the swept axes it responds to; every other axis stays at the base point (``device``).
So a sweep of three transfer-noise levels over all four modes gives 3 + 1 + 1 + 1 device points per task and seed.

A spec that compares algorithms (``algorithms``: a list) multiplies each analog mode's device points by its
algorithms, like a dimension of the sweep: every algorithm runs at every device point of every analog mode, each
point with its own learning-rate search. The digital modes train no tile and run once, with the first algorithm's
config (which they ignore). Labels then name the algorithm among the changed values
(``analog_tl/5-7/algorithm=ttv2,sp_skew=10/seed0``); a one-algorithm sweep's labels and keys stay as they are.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, replace

from analog_sweep.sweeps._schema import SweepSpec
from analog_sweep.workers import (
    DEVICE_AXES,
    AlgorithmConfig,
    DataConfig,
    DevicePoint,
    ModelConfig,
    PretrainConfig,
    TrialConfig,
    content_hash,
    pretrain_key,
)

MODE_AXES: dict[str, tuple[str, ...]] = {
    "analog_tl": DEVICE_AXES,
    "analog_scratch": tuple(axis for axis in DEVICE_AXES if axis != "transfer_noise"),
    "digital_tl": (),
    "digital_scratch": (),
}
ANALOG_MODES = ("analog_tl", "analog_scratch")


@dataclass(frozen=True)
class Point:
    """One point of a sweep: a mode, a task, a device point, an algorithm (analog modes) and a seed; the
    learning-rate search runs inside it.

    ``key`` hashes everything that decides the trial except the learning rate (and the data folder, which says where
    the data is, not what it is), so it stays the same across runs and machines. ``label`` is the readable name,
    e.g. ``analog_tl/beaver-otter/transfer_noise=10/seed0``; ``axes`` holds the swept axes this mode responds to.
    """

    key: str
    label: str
    mode: str
    task: str
    classes: tuple[str, ...]
    axes: tuple[tuple[str, float], ...]
    seed: int
    device: DevicePoint
    data: DataConfig
    model: ModelConfig
    pretrain: PretrainConfig
    algorithm: AlgorithmConfig
    epochs: int
    batch_size: int
    lr_schedule: str = "constant"

    @property
    def axes_dict(self) -> dict[str, float]:
        return dict(self.axes)

    @property
    def algorithm_name(self) -> str | None:
        """The analog training algorithm (``c-ttv2``, ``ttv2``, ``agad``, ``sgd``); None for a digital mode."""
        return self.algorithm.name if self.mode in ANALOG_MODES else None

    @property
    def series(self) -> tuple[str, str | None]:
        """Mode and algorithm: the points of one curve along an axis share it (and learn from each other only)."""
        return (self.mode, self.algorithm_name)

    @property
    def pretrain_key(self) -> str | None:
        """The pretrained model a transfer-learning point starts from (None for the scratch modes)."""
        return pretrain_key(self.data, self.model, self.pretrain) if self.mode.endswith("_tl") else None


@dataclass(frozen=True)
class PretrainJob:
    """One digital pretraining the sweep's transfer-learning points share: the arguments of
    ``workers._pretrain.pretrained_model``."""

    key: str
    data: DataConfig
    model: ModelConfig
    pretrain: PretrainConfig


def trial_config(point: Point, lr: float) -> TrialConfig:
    """The worker's config for ``point`` at learning rate ``lr``."""
    return TrialConfig(
        mode=point.mode,
        data=point.data,
        model=point.model,
        pretrain=point.pretrain,
        algorithm=point.algorithm,
        device=point.device,
        lr=lr,
        batch_size=point.batch_size,
        epochs=point.epochs,
        seed=point.seed,
        lr_schedule=point.lr_schedule,
    )


def device_points(spec: SweepSpec, mode: str) -> list[tuple[tuple[str, float], ...]]:
    """The swept-axis values of ``mode``'s device points, base point first (one_at_a_time) or in grid order."""
    base = spec.device
    swept = [(axis, values) for axis, values in spec.axes.values if axis in MODE_AXES[mode]]
    if spec.axes.expand == "grid":
        names = [axis for axis, _ in swept]
        return [tuple(zip(names, combo)) for combo in itertools.product(*(values for _, values in swept))]
    at_base = tuple((axis, getattr(base, axis)) for axis, _ in swept)
    points = [at_base]
    for index, (axis, values) in enumerate(swept):
        for value in values:
            if value != getattr(base, axis):
                points.append(at_base[:index] + ((axis, value),) + at_base[index + 1 :])
    return points


def mode_algorithms(spec: SweepSpec, mode: str) -> tuple[AlgorithmConfig, ...]:
    """The algorithms ``mode`` runs: every one of the spec's for an analog mode, the first (ignored) for a digital
    mode."""
    return spec.algorithms if mode in ANALOG_MODES else spec.algorithms[:1]


def count_points(spec: SweepSpec) -> int:
    """How many points ``expand`` makes; a grid is counted without being made, so a huge one is refused cheaply."""
    per_task_seed = 0
    for mode in spec.modes:
        if spec.axes.expand == "grid":
            count = math.prod(len(values) for axis, values in spec.axes.values if axis in MODE_AXES[mode])
        else:
            count = len(device_points(spec, mode))
        per_task_seed += count * len(mode_algorithms(spec, mode))
    return per_task_seed * len(spec.data.tasks) * len(spec.seeds)


def expand(spec: SweepSpec) -> list[Point]:
    """Every point of the sweep, ordered by task, mode, algorithm (the spec's order), device point, seed."""
    return [
        _point(spec, classes, mode, axes, seed, algorithm)
        for classes in spec.data.tasks
        for mode in spec.modes
        for algorithm in mode_algorithms(spec, mode)
        for axes in device_points(spec, mode)
        for seed in spec.seeds
    ]


def line_points(
    spec: SweepSpec,
    mode: str,
    classes: tuple[str, ...],
    axis: str,
    values: list[float],
    algorithm: str | None = None,
) -> list[Point]:
    """Points of ``mode`` (and, for an analog mode, ``algorithm``: a name among the spec's, None for its first) on
    task ``classes`` at each of ``values`` of the swept ``axis``, every other axis at the base point, each seed: the
    points adaptive refinement adds (``axes.refine``). Ordered by value, then seed. Raises ``ValueError`` when the
    mode does not respond to ``axis`` or the spec has no such algorithm."""
    if axis not in MODE_AXES[mode]:
        raise ValueError(f"mode {mode} does not respond to {axis}")
    config = algorithm_config(spec, algorithm) if mode in ANALOG_MODES else spec.algorithms[0]
    swept = [name for name, _ in spec.axes.values if name in MODE_AXES[mode]]
    at_base = tuple((name, getattr(spec.device, name)) for name in swept)
    return [
        _point(spec, classes, mode, tuple((name, value if name == axis else v) for name, v in at_base), seed, config)
        for value in values
        for seed in spec.seeds
    ]


def algorithm_config(spec: SweepSpec, name: str | None) -> AlgorithmConfig:
    """The spec's algorithm called ``name`` (None: its first); raises ``ValueError`` when it has none of that name."""
    if name is None:
        return spec.algorithms[0]
    for config in spec.algorithms:
        if config.name == name:
            return config
    raise ValueError(f"the sweep runs no algorithm {name!r}")


def refine_modes(spec: SweepSpec, axis: str) -> tuple[str, ...]:
    """The spec's modes that respond to ``axis`` (the ones refinement of it adds points to)."""
    return tuple(mode for mode in spec.modes if axis in MODE_AXES[mode])


def refinement_budget(spec: SweepSpec) -> int:
    """The most points adaptive refinement may add: per refined axis, rounds x points x the curves along it (modes
    responding to it, times their algorithms) x tasks x seeds (fewer when an interval gets narrow enough, or an
    axis has no critical point)."""
    per_line = len(spec.data.tasks) * len(spec.seeds)
    return sum(
        r.rounds * r.points * sum(len(mode_algorithms(spec, m)) for m in refine_modes(spec, r.axis)) * per_line
        for r in spec.axes.refine
    )


def _point(
    spec: SweepSpec,
    classes: tuple[str, ...],
    mode: str,
    axes: tuple[tuple[str, float], ...],
    seed: int,
    algorithm: AlgorithmConfig,
) -> Point:
    task = "-".join(classes)
    changed = [f"{axis}={format_value(v)}" for axis, v in axes if v != getattr(spec.device, axis)]
    if len(spec.algorithms) > 1 and mode in ANALOG_MODES:
        changed.insert(0, f"algorithm={algorithm.name}")
    pretrain_seed = seed if spec.pretrain.seed is None else spec.pretrain.seed
    point = Point(
        key="",
        label=f"{mode}/{task}/{','.join(changed) or 'base'}/seed{seed}",
        mode=mode,
        task=task,
        classes=classes,
        axes=axes,
        seed=seed,
        device=replace(spec.device, **dict(axes)),
        data=spec.data.config(classes),
        model=spec.model,
        pretrain=replace(spec.pretrain.settings, seed=pretrain_seed),
        algorithm=algorithm,
        epochs=spec.epochs,
        batch_size=spec.batch_size,
        lr_schedule=spec.lr_schedule,
    )
    return replace(point, key=_point_key(point))


def pretrain_keys(spec: SweepSpec) -> dict[str, PretrainJob]:
    """The distinct pretrainings the sweep's transfer-learning points need, by key, in first-use order."""
    jobs: dict[str, PretrainJob] = {}
    for point in expand(spec):
        key = point.pretrain_key
        if key is not None and key not in jobs:
            jobs[key] = PretrainJob(key=key, data=point.data, model=point.model, pretrain=point.pretrain)
    return jobs


def _point_key(point: Point) -> str:
    content = trial_config(point, lr=1.0).to_dict()
    del content["lr"]
    del content["data"]["data_root"]
    return content_hash(content)


def format_value(value: float) -> str:
    """A device value as a label shows it: 10.0 as ``10``, 2.5 as ``2.5``."""
    return str(int(value)) if value.is_integer() else repr(value)
