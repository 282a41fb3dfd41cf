"""What a sweep will cost, and a dry-run report that says so before anything runs.

The time model (seconds, FACTS.md measurements on 2 CPU cores, batch 8) charges a Swin model by its *work units*
``embed_dim**2 x tokens x blocks`` (tokens = (image_size / patch_size)**2, blocks = sum(depths)): every Swin stage
halves the tokens' side and doubles the width, so each block costs about the same, proportional to that product.
The pulsed analog update, about 90 % of an analog step, fits it within 15 % from 77 K to 12 M parameters:

- analog training: ``ANALOG_TRAIN_SECONDS`` per unit and sample (0.52 s per step of the 77 K micro model,
  84.7 s per step at 12 M);
- digital training: ``DIGITAL_STEP_SECONDS`` per step plus ``DIGITAL_TRAIN_SECONDS`` per unit and sample
  (0.052 s and 0.225 s per step at 302 K / 12 M);
- test-set evaluation after each epoch: ``ANALOG_EVAL_SECONDS`` / ``DIGITAL_EVAL_SECONDS`` per unit and sample;
- ``TRIAL_OVERHEAD_SECONDS`` of Ray Tune start-up per trial;
- on a GPU, the CPU figures divided by ``GPU_SPEEDUP`` (assumed, not measured: no GPU measurements yet).

Where earlier sweeps in the results store ran trials that do the same work (``sweeps._measured.timing_key``: model,
image size, images per epoch, batch size, analog or digital, CPU or GPU), their median measured seconds per epoch
replace the model for those trials, and the report says how many trials are priced that way.

The estimate is a range: the upper bound runs every trial for all its epochs; the lower bound lets the pruner stop
every trial it may at its first chance (``pruned_trial_epochs``: the median pruner after its warm-up, successive
halving and Hyperband at their rungs, with at least one trial per point run to the end; with warm starts a point's
own median pruner, which also compares with running trials, may stop every trial but one), and, with TPE,
``lr_search.warm_start: neighbours`` and ``patience`` P, lets every point stop after its start-up trials (a
warm-started point's warm-start trial; the base point's spread start-up trials) and P sampler trials
(``fewest_trial_epochs``). It assumes no trial fails (one that fails ends sooner still). Without a pruner or patience
both bounds are the same.

The wall time at either bound replays how ``run`` hands those trials out to a number of slots (``sweeps._schedule``,
``schedule_searches``): under patience a point's sampler trials run one after another and points wait for their
neighbours, so it can be well above the compute divided by the slots.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from analog_sweep.sweeps._expand import Point, format_value, line_points, refine_modes
from analog_sweep.sweeps._loader import spec_hash
from analog_sweep.sweeps._measured import MeasuredEpoch, TimingKey, timing_key
from analog_sweep.sweeps._neighbours import neighbourhood
from analog_sweep.sweeps._schedule import Search, makespan, most_parallel
from analog_sweep.sweeps._schema import SweepSpec
from analog_sweep.workers import (
    CIFAR10_FOLDER,
    CIFAR10_TRAIN_FILES,
    CIFAR100_FOLDER,
    DATA_ROOT_ENV,
    DIGITS_TEST_FRACTION,
    PRESETS,
)

ANALOG_TRAIN_SECONDS = 5.0e-7
ANALOG_EVAL_SECONDS = 1.5e-8
DIGITAL_STEP_SECONDS = 0.033
DIGITAL_TRAIN_SECONDS = 1.0e-9
DIGITAL_EVAL_SECONDS = 3.0e-10
TRIAL_OVERHEAD_SECONDS = 3.0
GPU_SPEEDUP = {"analog": 20.0, "digital": 10.0}
# Images per class in each split (digits: about 180 per class, split 70/30; CIFAR: the official splits).
TRAIN_PER_CLASS = {"digits": 180 * (1 - DIGITS_TEST_FRACTION), "cifar": 500}
TEST_PER_CLASS = {"digits": 180 * DIGITS_TEST_FRACTION, "cifar": 100}
SOURCE_TRAIN_IMAGES = {"digits": 630, "cifar": 50_000}
POINTS_SHOWN = 100


@dataclass(frozen=True)
class Environment:
    """What this machine offers a sweep; ``aihwkit_cuda`` is None when aihwkit cannot be imported."""

    cpus: int
    gpus: int
    aihwkit_cuda: bool | None
    data_root: str | None = None  # $ANALOG_SWEEP_DATA, the data folder when the spec names none
    notes: tuple[str, ...] = ()  # what could not be detected


@dataclass(frozen=True)
class CostEstimate:
    """The size of a sweep and its compute time, as a range (see the module docstring).

    Seconds are wall-clock seconds of one trial slot (``resources.cpu`` CPUs and ``resources.gpu`` GPUs), summed
    over trials run one after another. ``on_gpu``: the trials are priced as GPU trials (``resources.gpu`` > 0 and no
    ``--cpu-fallback`` onto a machine without GPUs).
    """

    points: int
    trials: int
    trial_epochs: int  # upper bound: every trial runs every epoch
    pretrain_jobs: int
    trial_seconds: float  # upper bound, all trials one after another, each on its requested resources
    pretrain_seconds: float
    pruned_trial_epochs: int = 0  # lower bound: the pruner stops every trial it may at its first chance
    pruned_trial_seconds: float = 0.0
    measured_trials: int = 0  # trials priced from epochs measured in the store rather than by the model
    measured_epochs: int = 0  # the stored epochs those prices rest on
    measured_sweeps: tuple[str, ...] = ()
    on_gpu: bool = False
    gpus_per_trial: float = 0.0
    searches: tuple[Search, ...] = ()  # every point's trials in run order, each for all its epochs (upper bound)
    fewest_searches: tuple[Search, ...] = ()  # the same at the fewest trials and epochs (lower bound)
    # Adaptive refinement's budget: each round's (searches, fewest_searches), run one round after another; the wall
    # time replays these instead of ``searches`` when given.
    rounds: tuple[tuple[tuple[Search, ...], tuple[Search, ...]], ...] = ()

    def wall_seconds(self, parallel_trials: int, *, pruned: bool = False) -> float:
        """Wall time with ``parallel_trials`` trials at a time: pretraining first, one job per pretrained model, as
        many at once as there are slots (a job is not split), then the trials as ``run`` hands them out
        (``sweeps._schedule.makespan``: under patience a point runs its trials one after another, and points wait
        for their neighbours, so slots can stand idle), or each of the ``rounds`` one after another."""
        slots = max(parallel_trials, 1)
        phases = self.rounds or ((self.searches, self.fewest_searches),)
        pretraining = 0.0
        if self.pretrain_jobs:
            pretraining = math.ceil(self.pretrain_jobs / slots) * self.pretrain_seconds / self.pretrain_jobs
        return pretraining + sum(makespan(lower if pruned else upper, slots) for upper, lower in phases)

    def gpu_hours(self, *, pruned: bool = False) -> float:
        """GPU-hours the trials and pretraining hold (0 for a CPU sweep)."""
        if not self.on_gpu:
            return 0.0
        trials = self.pruned_trial_seconds if pruned else self.trial_seconds
        return (trials + self.pretrain_seconds) * self.gpus_per_trial / 3600


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


def estimate_cost(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    measured: Mapping[TimingKey, MeasuredEpoch] | None = None,
    on_gpu: bool | None = None,
    refinement: bool = False,
) -> CostEstimate:
    """Trials, trial-epochs and seconds of the sweep's ``points`` (see the module docstring for the model).

    ``measured``: seconds per epoch from earlier sweeps (``sweeps._measured.measured_epochs``), used for the trials
    they match. ``on_gpu``: price the trials as GPU trials (default: ``resources.gpu`` > 0); False for a GPU spec run
    with ``--cpu-fallback`` on CPUs. ``refinement``: the points are a refinement round's (``fewest_trials``).
    """
    units = work_units(spec)
    on_gpu = spec.resources.gpu > 0 if on_gpu is None else on_gpu
    per_point = spec.lr_search.trials_per_point
    trial_seconds = pruned_seconds = 0.0
    fewest_epochs = 0
    measured_trials = 0
    used: dict[TimingKey, MeasuredEpoch] = {}
    points = points if refinement else run_order(spec, points)
    epoch_seconds: list[float] = []
    for point in points:
        key = timing_key(spec, point, on_gpu=on_gpu)
        found = (measured or {}).get(key)
        if found is not None:
            epoch = found.seconds
            measured_trials += per_point
            used[key] = found
        else:
            epoch = modelled_epoch_seconds(spec, point, on_gpu=on_gpu)
        epoch_seconds.append(epoch)
        fewest = fewest_epochs_per_trial(spec, point, refinement=refinement)
        fewest_epochs += sum(fewest)
        trial_seconds += per_point * TRIAL_OVERHEAD_SECONDS + per_point * spec.epochs * epoch
        pruned_seconds += len(fewest) * TRIAL_OVERHEAD_SECONDS + sum(fewest) * epoch
    searches, fewest_searches = schedule_searches(spec, points, epoch_seconds, refinement=refinement)
    pretrain_jobs = len({point.pretrain_key for point in points if point.mode.endswith("_tl")})
    source = SOURCE_TRAIN_IMAGES[spec.data.dataset]
    if spec.data.source_limit is not None:
        source = min(source, spec.data.source_limit)
    settings = spec.pretrain.settings
    pretrain_seconds = pretrain_jobs * settings.epochs * _digital_train_seconds(source, settings.batch_size, units)
    trials = len(points) * spec.lr_search.trials_per_point
    return CostEstimate(
        points=len(points),
        trials=trials,
        trial_epochs=trials * spec.epochs,
        pretrain_jobs=pretrain_jobs,
        trial_seconds=trial_seconds,
        pretrain_seconds=pretrain_seconds / (GPU_SPEEDUP["digital"] if on_gpu else 1.0),
        pruned_trial_epochs=fewest_epochs,
        pruned_trial_seconds=pruned_seconds,
        measured_trials=measured_trials,
        measured_epochs=sum(found.epochs for found in used.values()),
        measured_sweeps=tuple(sorted({sweep for found in used.values() for sweep in found.sweeps})),
        on_gpu=on_gpu,
        gpus_per_trial=spec.resources.gpu if on_gpu else 0.0,
        searches=searches,
        fewest_searches=fewest_searches,
    )


def modelled_epoch_seconds(spec: SweepSpec, point: Point, *, on_gpu: bool) -> float:
    """The model's seconds for one epoch of ``point`` (training and test-set evaluation; module docstring), on a GPU
    divided by the assumed ``GPU_SPEEDUP``."""
    units = work_units(spec)
    kind = "analog" if point.mode.startswith("analog") else "digital"
    train, test = _target_sizes(spec, len(point.classes))
    if kind == "analog":
        epoch = train * ANALOG_TRAIN_SECONDS * units + test * ANALOG_EVAL_SECONDS * units
    else:
        epoch = _digital_train_seconds(train, spec.batch_size, units) + test * DIGITAL_EVAL_SECONDS * units
    return epoch / (GPU_SPEEDUP[kind] if on_gpu else 1.0)


def pruned_trial_epochs(spec: SweepSpec, trials: int | None = None) -> int:
    """The fewest trial-epochs one point's search of ``trials`` trials (default ``trials_per_point``) can take: its
    pruner stops every trial it may at the first chance, and at least one trial runs all ``epochs``. Epochs are
    1-based, as the trials report them to Optuna.

    - none: ``trials x epochs``;
    - median (``n_startup_trials`` S, default 5; ``n_warmup_steps`` W, default 0): S trials run to the end, the others
      stop after epoch max(W, 1);
    - successive halving and Hyperband (``min_resource`` r, default 1): one trial runs all epochs, the others stop
      after epoch r. Optuna promotes a trial from a rung when it is among the best 1/f of the trials that reached
      the rung *so far* (and always the first to reach it), so trials that arrive one after another, each worse than
      the first, all stop at the first rung (Hyperband: its most aggressive bracket).
    """
    trials = spec.lr_search.trials_per_point if trials is None else trials
    stopped = _stopped_early(spec, trials)
    return (trials - stopped) * spec.epochs + stopped * first_stop(spec)


def _stopped_early(spec: SweepSpec, trials: int) -> int:
    """How many of a point's ``trials`` its pruner may stop at its first chance (``pruned_trial_epochs``)."""
    lr = spec.lr_search
    if lr.pruner == "median":
        return trials - min(trials, max(dict(lr.pruner_options).get("n_startup_trials", 5), 1))
    if lr.pruner in ("successive_halving", "hyperband"):
        return trials - 1
    return 0


def first_stop(spec: SweepSpec) -> int:
    """The fewest epochs a trial runs before the spec's pruner may stop it (1-based): the median pruner after epoch
    max(``n_warmup_steps``, 1), successive halving and Hyperband at their first rung ``min_resource``; all ``epochs``
    without a pruner."""
    options = dict(spec.lr_search.pruner_options)
    if spec.lr_search.pruner == "median":
        return min(spec.epochs, max(options.get("n_warmup_steps", 0), 1))
    if spec.lr_search.pruner in ("successive_halving", "hyperband"):
        return min(spec.epochs, options.get("min_resource", 1))
    return spec.epochs


def warm_starts(spec: SweepSpec) -> bool:
    """Whether the search warm-starts points from their neighbours (``lr_search.warm_start: neighbours`` with TPE),
    which with ``pruner: median`` also gives each point its own median pruner (``orchestrator._point_pruner``)."""
    return spec.lr_search.method == "tpe" and spec.lr_search.warm_start == "neighbours"


def stops_by_patience(spec: SweepSpec) -> bool:
    """Whether a point's search may end before ``trials_per_point`` (``lr_search.patience``): a search that
    ``warm_starts``, with a patience."""
    return warm_starts(spec) and spec.lr_search.patience is not None


def may_warm_start(spec: SweepSpec, point: Point) -> bool:
    """Whether ``point`` may start from its neighbours' best rate: a search that ``warm_starts``, at a point off the
    base device (``spec.device``) on an axis (``orchestrator._warm_start``: such a point has an inward neighbour when
    the base value is among the axis's), or, with ``selection.per_seed: true``, at any seed but the first (its
    earlier seeds are its neighbours)."""
    later_seed = spec.selection.per_seed and point.seed != spec.seeds[0]
    return warm_starts(spec) and (later_seed or any(value != getattr(spec.device, axis) for axis, value in point.axes))


def fewest_trials(spec: SweepSpec, point: Point, *, refinement: bool = False) -> int:
    """The fewest trials ``point``'s search can run: ``trials_per_point``, or where the search ``stops_by_patience``
    (P), its start-up trials and P sampler trials: a point that may be warm-started (``may_warm_start``) 1 + P, any
    other point (the base point) its S spread start-up trials (``startup_trials``) + P; never more than the budget.
    ``refinement``: a point of an adaptive-refinement round (``axes.refine``), which under patience may be bracketed
    by finished neighbours that agree on a rate (``orchestrator._warm_start.bracketed_rate``) and then runs 1 trial;
    a grid point never is (its outward neighbour runs after it)."""
    lr = spec.lr_search
    if not stops_by_patience(spec):
        return lr.trials_per_point
    if refinement:
        return 1
    start_up = 1 if may_warm_start(spec, point) else lr.startup_trials
    return min(lr.trials_per_point, start_up + lr.patience)


def fewest_trial_epochs(spec: SweepSpec, point: Point, *, refinement: bool = False) -> tuple[int, int]:
    """(trials, trial-epochs) of ``point``'s search at the fewest (``fewest_epochs_per_trial``)."""
    epochs = fewest_epochs_per_trial(spec, point, refinement=refinement)
    return len(epochs), sum(epochs)


def fewest_epochs_per_trial(spec: SweepSpec, point: Point, *, refinement: bool = False) -> list[int]:
    """The epochs each trial of ``point``'s search runs at the fewest, in trial order, assuming no trial fails (a
    failed trial ends sooner still): ``fewest_trials`` trials, priced as ``pruned_trial_epochs`` (those that run to
    the end first), except where the search ``warm_starts``: there every trial but the first stops at the pruner's
    first chance (``first_stop``). With a median pruner each point has its own (``orchestrator._point_pruner``), which
    compares a trial with its point's *running* trials as well as its completed ones and, at a warm-started point,
    its neighbours' completed trials, so with trials side by side all but one (a warm-start trial is never pruned)
    may stop then; successive halving and Hyperband are priced that way anyway. ``refinement``: as for
    ``fewest_trials``."""
    trials = fewest_trials(spec, point, refinement=refinement)
    if warm_starts(spec):
        return [spec.epochs] + [first_stop(spec)] * (trials - 1)
    full = trials - _stopped_early(spec, trials)
    return [spec.epochs] * full + [first_stop(spec)] * (trials - full)


def schedule_searches(
    spec: SweepSpec, points: Sequence[Point], epoch_seconds: Sequence[float], *, refinement: bool = False
) -> tuple[tuple[Search, ...], tuple[Search, ...]]:
    """Every point's trials as ``run`` hands them out (``sweeps._schedule.Search``), for the upper bound (every
    trial to its last epoch, no point stopping before its budget) and the lower (``fewest_epochs_per_trial``; under
    patience every point stops as early as it may). ``points`` in run order (``run_order``), ``epoch_seconds`` one
    per point (seconds per epoch on one slot). ``refinement``: the points are one refinement round's, whose
    neighbours ran in an earlier phase: every point is ready and starts warm, and at the fewest runs one trial (a
    bracketed point)."""
    lr = spec.lr_search
    patience = stops_by_patience(spec)
    index_of = {point.key: index for index, point in enumerate(points)}
    inward: dict[str, tuple[int, ...]] = {}
    if warm_starts(spec) and not refinement:
        hood = neighbourhood(points, spec.device, shared_seeds=not spec.selection.per_seed)
        inward = {key: tuple(index_of[other] for other in hood.neighbour_keys(key)) for key in index_of}
    elif warm_starts(spec) and spec.selection.per_seed:  # a round's later seed still waits for its earlier seeds
        seen: dict[tuple, list[int]] = {}
        for index, point in enumerate(points):
            earlier_seeds = seen.setdefault((point.mode, point.task, point.axes), [])
            inward[point.key] = tuple(earlier_seeds)
            earlier_seeds.append(index)
    leaders = seed_leaders(spec, points)
    upper: list[Search] = []
    lower: list[Search] = []
    for index, (point, epoch) in enumerate(zip(points, epoch_seconds, strict=True)):
        full = TRIAL_OVERHEAD_SECONDS + spec.epochs * epoch
        common: dict[str, Any] = {"leader": leaders.get(index), "inward": inward.get(point.key, ())}
        if patience:
            warm = refinement or may_warm_start(spec, point)
            common |= {
                "start_up": 1 if warm else lr.startup_trials,
                "cold_start_up": None if refinement else lr.startup_trials,
            }
        upper.append(Search((full,) * lr.trials_per_point, **common))
        if patience:  # how many trials run is the replay's (its start-up, warm or cold, plus P): price them all
            stopped = TRIAL_OVERHEAD_SECONDS + first_stop(spec) * epoch
            # A refinement point bracketed by neighbours that agree runs its warm-start trial alone (with a choice
            # per seed, a later seed only if its earlier seeds had finished when it started).
            lower.append(
                Search(
                    (full,) + (stopped,) * (lr.trials_per_point - 1),
                    complete=1,
                    settle_after=lr.patience,
                    bracketed=refinement,
                    **common,
                )
            )
        else:
            fewest = fewest_epochs_per_trial(spec, point, refinement=refinement)
            lower.append(
                Search(
                    tuple(TRIAL_OVERHEAD_SECONDS + e * epoch for e in fewest),
                    complete=fewest.count(spec.epochs),
                    **common,
                )
            )
    return tuple(upper), tuple(lower)


def run_order(spec: SweepSpec, points: Sequence[Point]) -> list[Point]:
    """``points`` in the order ``run`` hands their trials out: the expansion's, or where the search ``warm_starts``,
    nearest the base device (``spec.device``) first (``sweeps._neighbours.neighbourhood``)."""
    if not warm_starts(spec):
        return list(points)
    by_key = {point.key: point for point in points}
    return [by_key[key] for key in neighbourhood(points, spec.device, shared_seeds=not spec.selection.per_seed).order]


def seed_leaders(spec: SweepSpec, points: Sequence[Point]) -> dict[int, int]:
    """Index of a later seed in ``points`` -> index of its device point's first seed, where seeds share one TPE
    search (``selection.per_seed: false``): the first seed runs the search, the others run its learning rates."""
    if spec.selection.per_seed or spec.lr_search.method != "tpe":
        return {}
    first: dict[tuple, int] = {}
    leaders = {}
    for index, point in enumerate(points):
        group = (point.mode, point.task, point.device)
        if group in first:
            leaders[index] = first[group]
        else:
            first[group] = index
    return leaders


def work_units(spec: SweepSpec) -> float:
    """``embed_dim**2 x tokens x blocks`` of the spec's model at its image size (preset values where an override
    is not a usable number)."""
    settings: dict[str, Any] = dict(PRESETS[spec.model.preset])
    preset = dict(settings)
    settings.update(spec.model.override_dict())
    embed = _positive(settings.get("embed_dim"), preset["embed_dim"])
    patch = _positive(settings.get("patch_size"), preset["patch_size"])
    depths = settings.get("depths")
    if not isinstance(depths, (tuple, list)) or not all(_positive(d, 0) for d in depths):
        depths = preset["depths"]
    tokens = max(spec.data.image_size // patch, 1) ** 2
    return float(embed) ** 2 * tokens * sum(depths)


def dry_run_report(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    environment: Environment,
    measured: Mapping[TimingKey, MeasuredEpoch] | None = None,
    gpus: int | None = None,
    cpu_fallback: bool = False,
) -> str:
    """The expanded points, trial count, cost estimate, and warnings about this machine; never fails on them.

    ``measured``: seconds per epoch from the store (``sweeps._measured.measured_epochs``). ``gpus``: also give the
    wall time on a cluster with that many GPUs. ``cpu_fallback``: price a GPU spec on this machine's CPUs when it has
    no GPU, as ``run --cpu-fallback`` would run it.
    """
    falls_back = cpu_fallback and spec.resources.gpu > 0 and environment.gpus == 0
    cost = estimate_cost(spec, points, measured=measured, on_gpu=spec.resources.gpu > 0 and not falls_back)
    lr = spec.lr_search
    search = (
        f"TPE over [{lr.low:g}, {lr.high:g}] (log)" if lr.method == "tpe" else f"grid {[float(v) for v in lr.values]}"
    )
    axes = "; ".join(f"{axis} {', '.join(map(format_value, values))}" for axis, values in spec.axes.values) or "none"
    lines = [
        f"Sweep {spec.name} ({spec.source}), spec hash {spec_hash(spec)}",
        *([f"Overrides: {' '.join('--set ' + o for o in spec.overrides)}"] if spec.overrides else []),
        f"Data: {spec.data.dataset}, tasks {', '.join('-'.join(t) for t in spec.data.tasks)}; "
        f"model {spec.model.preset} at {spec.data.image_size}px; modes {', '.join(spec.modes)}",
        f"Axes ({spec.axes.expand}): {axes}; seeds {list(spec.seeds)}",
        f"Learning rate: {search}, {lr.trials_per_point} trial(s) per point, pruner {lr.pruner}",
        "",
        f"Points ({len(points)}):",
        f"  {'#':>5}  {'key':16}  label",
    ]
    for number, point in enumerate(points[:POINTS_SHOWN], start=1):
        lines.append(f"  {number:>5}  {point.key:16}  {point.label}")
    if len(points) > POINTS_SHOWN:
        lines.append(f"  ... and {len(points) - POINTS_SHOWN} more")
    slots = _parallel_trials(spec, environment, falls_back)
    where = f"{spec.resources.cpu:g} CPU" + (f" + {spec.resources.gpu:g} GPU" if cost.on_gpu else "")
    pruning = cost.pruned_trial_epochs < cost.trial_epochs

    def span(seconds: float, pruned: float) -> str:
        return _range(pruned, seconds) if pruning else _duration(seconds)

    fewer = " and ".join(
        ([f"pruner {lr.pruner} stops every trial it may at its first chance"] if lr.pruner != "none" else [])
        + (
            [f"every point stops after its start-up and {lr.patience} sampler trial(s) (lr_search.patience)"]
            if any(fewest_trials(spec, point) < lr.trials_per_point for point in points)
            else []
        )
    )
    epochs = (
        f"{cost.pruned_trial_epochs} to {cost.trial_epochs} trial-epochs (the fewer if {fewer}; a trial that "
        "fails ends sooner still)"
        if pruning
        else f"{cost.trial_epochs} trial-epochs"
    )
    lines += [
        "",
        f"Trials: {cost.trials} ({cost.points} points x {lr.trials_per_point}), {epochs}, "
        f"{cost.pretrain_jobs} pretraining run(s)",
        f"Epoch times: {_priced_by(cost)}",
        f"Estimated compute: {span(cost.trial_seconds, cost.pruned_trial_seconds)} of trials + "
        f"{_duration(cost.pretrain_seconds)} of pretraining, each trial on {where}"
        + (" (--cpu-fallback: no GPU here, priced on CPUs)" if falls_back else ""),
    ]
    if cost.on_gpu:
        assumed = (
            ""
            if cost.measured_trials == cost.trials
            else f"; GPU speed-up over the CPU model assumed, not measured: x{GPU_SPEEDUP['analog']:g} analog, "
            f"x{GPU_SPEEDUP['digital']:g} digital"
        )
        hours = _hours(cost.gpu_hours(pruned=True) if pruning else None, cost.gpu_hours())
        lines.append(f"GPU-hours: {hours} ({cost.gpus_per_trial:g} GPU per trial){assumed}")
    lines.append(
        f"Estimated wall time here: {span(cost.wall_seconds(slots), cost.wall_seconds(slots, pruned=True))} with "
        f"{slots} trial(s) at a time" + _most_slots_note(spec, cost, slots, "CPUs")
        if slots
        else "Estimated wall time here: cannot run, this machine lacks the requested resources"
        + (" (a GPU spec: --cpu-fallback runs it on CPUs)" if spec.resources.gpu > 0 and not cpu_fallback else "")
    )
    if gpus is not None:
        on_cluster = cost if cost.on_gpu else estimate_cost(spec, points, measured=measured, on_gpu=True)
        lines.append(_cluster_wall_line(spec, on_cluster, gpus, span))
    lines += _refinement_lines(spec, slots, measured=measured, on_gpu=cost.on_gpu, gpus=gpus)
    warnings = _warnings(spec, environment, slots)
    if warnings:
        lines += ["", "Warnings:", *(f"  - {warning}" for warning in warnings)]
    return "\n".join(lines)


def _priced_by(cost: CostEstimate) -> str:
    if cost.measured_trials == 0:
        return (
            "modelled for every trial (rough model fitted on 2 CPU cores, see sweeps/README.md); the store holds "
            "no earlier trials doing the same work"
        )
    sweeps = ", ".join(cost.measured_sweeps[:3]) + (" ..." if len(cost.measured_sweeps) > 3 else "")
    rest = "" if cost.measured_trials == cost.trials else "; the rest modelled (rough model, see sweeps/README.md)"
    return (
        f"measured for {cost.measured_trials} of {cost.trials} trials (median of {cost.measured_epochs} epochs "
        f"in the store, from sweep(s) {sweeps}){rest}"
    )


def _hours(low: float | None, high: float) -> str:
    def fmt(hours: float) -> str:
        return f"{hours:.1f}" if hours < 100 else f"{hours:,.0f}"

    return f"{fmt(low)} to {fmt(high)} h" if low is not None else f"{fmt(high)} h"


def _range(low: float, high: float) -> str:
    """``low`` to ``high`` seconds in words, the unit said once when both share it ('60.6 to 230.8 days')."""
    first, second = _duration(low), _duration(high)
    if first == second:
        return first
    number, _, unit = first.partition(" ")
    if second.endswith(" " + unit):
        return f"{number} to {second}"
    return f"{first} to {second}"


def _cluster_wall_line(spec: SweepSpec, cost: CostEstimate, gpus: int, span: Any) -> str:
    """The wall time on ``gpus`` GPUs, with as many trials at a time as ``run`` would start there."""
    if spec.resources.gpu <= 0:
        return (
            f"Estimated wall time on {gpus} GPU(s): the spec asks for no GPU per trial (resources.gpu: 0); its "
            "trials run on CPUs"
        )
    slots = math.floor(gpus / spec.resources.gpu)
    if slots == 0:
        return f"Estimated wall time on {gpus} GPU(s): cannot run, each trial asks for {spec.resources.gpu:g} GPU(s)"
    wall = span(cost.wall_seconds(slots), cost.wall_seconds(slots, pruned=True))
    return (
        f"Estimated wall time on {gpus} GPU(s): {wall} with {slots} trial(s) at a time "
        f"({spec.resources.gpu:g} GPU + {spec.resources.cpu:g} CPU each, assuming the nodes have the CPUs)"
        + _most_slots_note(spec, cost, slots, "GPUs")
    )


def _most_slots_note(spec: SweepSpec, cost: CostEstimate, slots: int, more: str) -> str:
    """'; more X would not shorten it ...' when ``slots`` reach the most trials the sweep ever runs at once
    (``sweeps._schedule.most_parallel``, at either bound), else ''."""
    most = max(most_parallel(cost.searches), most_parallel(cost.fewest_searches))
    if slots < most or slots <= 1:
        return ""
    why = (
        "under lr_search.patience a point runs its sampler trials one after another, and waits for its inward "
        "neighbours"
        if stops_by_patience(spec)
        else "every trial has a slot"
    )
    return f"; more {more} would not shorten it (it never runs more than {most} trial(s) at once: {why})"


def refinement_cost(
    spec: SweepSpec, *, measured: Mapping[TimingKey, MeasuredEpoch] | None = None, on_gpu: bool | None = None
) -> CostEstimate:
    """The most adaptive refinement may cost (``refinement_budget`` points; their values are only known once the
    grid has run, and the cost does not depend on them). Its wall time runs the rounds one after another, as ``run``
    does, each round with the points of every refined axis that has rounds left (``CostEstimate.rounds``).
    ``measured`` and ``on_gpu``: as for ``estimate_cost`` (the grid's pricing)."""
    rounds: list[list[Point]] = [[] for _ in range(max((refine.rounds for refine in spec.axes.refine), default=0))]
    for refine in spec.axes.refine:
        base = getattr(spec.device, refine.axis)
        stand_ins = [base + step for step in range(1, refine.points + 1)]  # distinct values, so seeds group by value
        for mode in refine_modes(spec, refine.axis):
            for classes in spec.data.tasks:
                for number in range(refine.rounds):
                    rounds[number] += line_points(spec, mode, classes, refine.axis, stand_ins)
    budget = [point for points in rounds for point in points]
    cost = estimate_cost(spec, budget, measured=measured, on_gpu=on_gpu, refinement=True)
    phases = []
    for points in rounds:
        one = estimate_cost(spec, points, measured=measured, on_gpu=on_gpu, refinement=True)
        phases.append((one.searches, one.fewest_searches))
    # The wall time replays the rounds, not the budget as one phase; the grid's pretrained models serve refinement.
    return replace(cost, pretrain_jobs=0, pretrain_seconds=0.0, searches=(), fewest_searches=(), rounds=tuple(phases))


def _refinement_lines(
    spec: SweepSpec,
    slots: int,
    *,
    measured: Mapping[TimingKey, MeasuredEpoch] | None,
    on_gpu: bool,
    gpus: int | None = None,
) -> list[str]:
    if not spec.axes.refine:
        return []
    lines = ["", "Refinement, after the grid (new axis values inside each critical point's 95 % interval):"]
    for refine in spec.axes.refine:
        until = f"until narrower than {refine.width:g}" if refine.width is not None else "every round"
        modes = ", ".join(refine_modes(spec, refine.axis)) or "none (no mode responds to it)"
        lines.append(
            f"  {refine.axis}: up to {refine.rounds} round(s) x {refine.points} value(s) per mode and task, "
            f"{until}; modes {modes}"
        )
    cost = refinement_cost(spec, measured=measured, on_gpu=on_gpu)
    walls = [f"{_duration(cost.wall_seconds(slots))} here"] if slots else []
    cluster_slots = math.floor(gpus / spec.resources.gpu) if gpus is not None and spec.resources.gpu > 0 else 0
    if cluster_slots:
        on_cluster = cost if on_gpu else refinement_cost(spec, measured=measured, on_gpu=True)
        walls.append(f"{_duration(on_cluster.wall_seconds(cluster_slots))} on {gpus} GPU(s)")
    lines.append(
        f"  Budget: at most {cost.points} more points, {cost.trials} trials, {cost.trial_epochs} trial-epochs, "
        f"{_duration(cost.trial_seconds)} of compute" + "".join(f", {wall}" for wall in walls)
    )
    return lines


@dataclass(frozen=True)
class Preflight:
    """What stops a sweep before it runs: ``data`` problems (bad input) and ``resources`` this machine lacks."""

    data: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()


def preflight_problems(spec: SweepSpec, *, environment: Environment | None, cpu_fallback: bool = False) -> Preflight:
    """The problems the dry run reports as warnings that make ``run`` fail for sure, found before Ray starts: data
    files missing under the data root (CIFAR), and, given the ``environment`` of the machine a local run would use,
    more CPUs or GPUs per trial than it has. (Unknown classes are refused when the spec is loaded.)"""
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


def _warnings(spec: SweepSpec, environment: Environment, slots: int) -> list[str]:
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


def _parallel_trials(spec: SweepSpec, environment: Environment, cpu_fallback: bool = False) -> int:
    slots = math.floor(environment.cpus / spec.resources.cpu)
    if spec.resources.gpu > 0 and not cpu_fallback:
        slots = min(slots, math.floor(environment.gpus / spec.resources.gpu))
    return slots


def _target_sizes(spec: SweepSpec, classes: int) -> tuple[float, float]:
    train = TRAIN_PER_CLASS[spec.data.dataset] * classes
    test = TEST_PER_CLASS[spec.data.dataset] * classes
    if spec.data.train_limit is not None:
        train = min(train, spec.data.train_limit)
    if spec.data.test_limit is not None:
        test = min(test, spec.data.test_limit)
    return train, test


def _digital_train_seconds(samples: float, batch_size: int, units: float) -> float:
    return math.ceil(samples / batch_size) * DIGITAL_STEP_SECONDS + samples * DIGITAL_TRAIN_SECONDS * units


def _positive(value: Any, fallback: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else fallback


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    days = seconds / 86_400
    return f"{days:.1f} days" if days < 1000 else f"{days:,.0f} days"
