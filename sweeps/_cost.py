"""What a sweep will cost: its trials, trial-epochs and seconds, as a range, before anything runs.

The time model (seconds on CPU cores, fitted to the measurements in ``sweeps/README.md``, "Cost and dry run", which
``tests/sweeps/test_sweep_cost.py`` checks it against) charges a Swin model by its *work units*
``embed_dim**2 x tokens x blocks`` (tokens = (image_size / patch_size)**2, blocks = sum(depths)): every Swin stage
halves the tokens' side and doubles the width, so each block costs about the same, proportional to that product.

- analog training: ``ANALOG_TRAIN_SECONDS`` per unit and sample (the pulsed analog update dominates an analog step);
- digital training: ``DIGITAL_STEP_SECONDS`` per step plus ``DIGITAL_TRAIN_SECONDS`` per unit and sample;
- test-set evaluation after each epoch: ``ANALOG_EVAL_SECONDS`` / ``DIGITAL_EVAL_SECONDS`` per unit and sample;
- ``TRIAL_OVERHEAD_SECONDS`` of Ray Tune start-up per trial;
- on a GPU, the CPU figures divided by ``GPU_SPEEDUP`` (an assumption, not a measurement).

Where earlier sweeps in the results store ran trials that do the same work (``sweeps._measured.timing_key``: model,
image size, images per epoch, batch size, analog or digital, CPU or GPU), their median measured seconds per epoch
replace the model for those trials.

Each pretrained model is priced at 0 where it is already in the cache (loaded, not trained), else at the median time
the store recorded for trainings of its cache key (``sweeps._measured.measured_pretraining``), else by the model
(``pretrain.epochs`` digital epochs over the source images; ``CostEstimate.pretraining`` says which).

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
neighbours, so it can be well above the compute divided by the slots. The report that prints all this is
``sweeps._dry_run``; the checks of the machine, ``sweeps._environment``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from analog_sweep.sweeps._expand import Point, line_points, mode_algorithms, refine_modes
from analog_sweep.sweeps._measured import MeasuredEpoch, MeasuredPretraining, TimingKey, timing_key
from analog_sweep.sweeps._neighbours import neighbourhood
from analog_sweep.sweeps._schedule import Search, makespan
from analog_sweep.sweeps._scheduling import may_warm_start, seed_leaders, stops_by_patience, warm_starts
from analog_sweep.sweeps._schema import SweepSpec
from analog_sweep.workers import DIGITS_TEST_FRACTION, PRESETS

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
CACHED, MEASURED, ESTIMATED = "cached", "measured", "estimated"  # how a pretrained model is priced


@dataclass(frozen=True)
class PretrainPrice:
    """One pretrained model the sweep needs: its cache key, how it is priced (``CACHED``: in the cache, 0 s;
    ``MEASURED``: the store's median for the key; ``ESTIMATED``: the time model), and its seconds; ``measured``
    is the store's record for ``MEASURED``."""

    key: str
    how: str
    seconds: float
    measured: MeasuredPretraining | None = None


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
    pretrain_jobs: int  # pretrained models the sweep needs, cached ones included
    trial_seconds: float  # upper bound, all trials one after another, each on its requested resources
    pretrain_seconds: float  # of the models to train (a cached one costs 0)
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
    pretraining: tuple[PretrainPrice, ...] = ()  # each model's price, in first-use order

    @property
    def pretrain_to_train(self) -> int:
        """Pretrained models not in the cache: the stage trains these."""
        return sum(price.how != CACHED for price in self.pretraining) if self.pretraining else self.pretrain_jobs

    def wall_seconds(self, parallel_trials: int, *, pruned: bool = False) -> float:
        """Wall time with ``parallel_trials`` trials at a time: pretraining first, one job per pretrained model not in
        the cache, as many at once as there are slots (a job is not split), then the trials as ``run`` hands them out
        (``sweeps._schedule.makespan``: under patience a point runs its trials one after another, and points wait
        for their neighbours, so slots can stand idle), or each of the ``rounds`` one after another."""
        slots = max(parallel_trials, 1)
        phases = self.rounds or ((self.searches, self.fewest_searches),)
        pretraining = 0.0
        if self.pretrain_to_train:
            to_train = self.pretrain_to_train
            pretraining = math.ceil(to_train / slots) * self.pretrain_seconds / to_train
        return pretraining + sum(makespan(lower if pruned else upper, slots) for upper, lower in phases)

    def gpu_hours(self, *, pruned: bool = False) -> float:
        """GPU-hours the trials and pretraining hold (0 for a CPU sweep)."""
        if not self.on_gpu:
            return 0.0
        trials = self.pruned_trial_seconds if pruned else self.trial_seconds
        return (trials + self.pretrain_seconds) * self.gpus_per_trial / 3600


def estimate_cost(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    measured: Mapping[TimingKey, MeasuredEpoch] | None = None,
    on_gpu: bool | None = None,
    refinement: bool = False,
    pretraining: Mapping[str, MeasuredPretraining] | None = None,
    cached: Collection[str] = (),
) -> CostEstimate:
    """Trials, trial-epochs and seconds of the sweep's ``points``, as a range (the module docstring's model).

    Args:
        spec: The sweep's spec.
        points: The points to price.
        measured: Seconds per epoch from earlier sweeps (``sweeps._measured.measured_epochs``), used for the trials
            they match.
        on_gpu: Price the trials as GPU trials (default: ``resources.gpu`` > 0); False for a GPU spec run with
            ``--cpu-fallback`` on CPUs.
        refinement: The points are a refinement round's (``fewest_trials``), already in run order.
        pretraining: Seconds per pretraining from earlier sweeps, by cache key
            (``sweeps._measured.measured_pretraining``), used for the models they match.
        cached: Cache keys of the models already in the cache: priced at 0.

    Returns:
        The estimate, with every point's searches for the wall-time replay.
    """
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
    keys = list(dict.fromkeys(point.pretrain_key for point in points if point.pretrain_key is not None))
    prices = tuple(_pretrain_price(spec, key, pretraining or {}, cached, on_gpu=on_gpu) for key in keys)
    trials = len(points) * spec.lr_search.trials_per_point
    return CostEstimate(
        points=len(points),
        trials=trials,
        trial_epochs=trials * spec.epochs,
        pretrain_jobs=len(keys),
        trial_seconds=trial_seconds,
        pretrain_seconds=sum(price.seconds for price in prices),
        pruned_trial_epochs=fewest_epochs,
        pruned_trial_seconds=pruned_seconds,
        measured_trials=measured_trials,
        measured_epochs=sum(found.epochs for found in used.values()),
        measured_sweeps=tuple(sorted({sweep for found in used.values() for sweep in found.sweeps})),
        on_gpu=on_gpu,
        gpus_per_trial=spec.resources.gpu if on_gpu else 0.0,
        searches=searches,
        fewest_searches=fewest_searches,
        pretraining=prices,
    )


def modelled_pretrain_seconds(spec: SweepSpec, *, on_gpu: bool) -> float:
    """The model's seconds for one pretraining: ``pretrain.epochs`` digital epochs over the source task's training
    images (``data.source_limit`` at most), on a GPU divided by the assumed ``GPU_SPEEDUP``."""
    source = SOURCE_TRAIN_IMAGES[spec.data.dataset]
    if spec.data.source_limit is not None:
        source = min(source, spec.data.source_limit)
    settings = spec.pretrain.settings
    seconds = settings.epochs * _digital_train_seconds(source, settings.batch_size, work_units(spec))
    return seconds / (GPU_SPEEDUP["digital"] if on_gpu else 1.0)


def _pretrain_price(
    spec: SweepSpec,
    key: str,
    measured: Mapping[str, MeasuredPretraining],
    cached: Collection[str],
    *,
    on_gpu: bool,
) -> PretrainPrice:
    if key in cached:
        return PretrainPrice(key, CACHED, 0.0)
    if key in measured:
        return PretrainPrice(key, MEASURED, measured[key].seconds, measured[key])
    return PretrainPrice(key, ESTIMATED, modelled_pretrain_seconds(spec, on_gpu=on_gpu))


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
    """The fewest trial-epochs one point's search can take, its pruner stopping every trial it may at the first chance.

    At least one trial runs all ``epochs``; epochs are 1-based, as the trials report them to Optuna.

    - none: ``trials x epochs``;
    - median (``n_startup_trials`` S, default 5; ``n_warmup_steps`` W, default 0): S trials run to the end, the others
      stop after epoch max(W, 1);
    - successive halving and Hyperband (``min_resource`` r, default 1): one trial runs all epochs, the others stop
      after epoch r. Optuna promotes a trial from a rung when it is among the best 1/f of the trials that reached
      the rung *so far* (and always the first to reach it), so trials that arrive one after another, each worse than
      the first, all stop at the first rung (Hyperband: its most aggressive bracket).

    Args:
        spec: The sweep's spec.
        trials: The search's trials (default ``trials_per_point``).
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


def fewest_trials(spec: SweepSpec, point: Point, *, refinement: bool = False) -> int:
    """The fewest trials ``point``'s search can run.

    That is ``trials_per_point``, or where the search ``stops_by_patience`` (P), its start-up trials and P sampler
    trials: a point that may be warm-started (``may_warm_start``) 1 + P, any other point (the base point) its S spread
    start-up trials (``startup_trials``) + P; never more than the budget.

    Args:
        spec: The sweep's spec.
        point: The point.
        refinement: The point is an adaptive-refinement round's (``axes.refine``), which under patience may be
            bracketed by finished neighbours that agree on a rate (``orchestrator._warm_start.bracketed_rate``) and
            then runs 1 trial; a grid point never is (its outward neighbour runs after it).
    """
    lr = spec.lr_search
    if not stops_by_patience(spec.lr_search):
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
    """The epochs each trial of ``point``'s search runs at the fewest, in trial order, assuming no trial fails.

    ``fewest_trials`` trials, priced as ``pruned_trial_epochs`` (those that run to the end first), except where the
    search ``warm_starts``: there every trial but the first stops at the pruner's first chance (``first_stop``). With a
    median pruner each point then has its own (``orchestrator._point_pruner``), which compares a trial with its
    point's *running* trials as well as its completed ones and, at a warm-started point, its neighbours' completed
    trials, so with trials side by side all but one (a warm-start trial is never pruned) may stop then; successive
    halving and Hyperband are priced that way anyway. A failed trial ends sooner still.

    Args:
        spec: The sweep's spec.
        point: The point.
        refinement: As for ``fewest_trials``.
    """
    trials = fewest_trials(spec, point, refinement=refinement)
    if warm_starts(spec.lr_search):
        return [spec.epochs] + [first_stop(spec)] * (trials - 1)
    full = trials - _stopped_early(spec, trials)
    return [spec.epochs] * full + [first_stop(spec)] * (trials - full)


def schedule_searches(
    spec: SweepSpec, points: Sequence[Point], epoch_seconds: Sequence[float], *, refinement: bool = False
) -> tuple[tuple[Search, ...], tuple[Search, ...]]:
    """Every point's trials as ``run`` hands them out (``sweeps._schedule.Search``), at both ends of the range.

    Args:
        spec: The sweep's spec.
        points: The points, in run order (``run_order``).
        epoch_seconds: Seconds per epoch on one slot, one per point.
        refinement: The points are one refinement round's, whose neighbours ran in an earlier phase: every point is
            ready and starts warm, and at the fewest runs one trial (a bracketed point).

    Returns:
        The upper end's searches (every trial to its last epoch, no point stopping before its budget) and the lower
        end's (``fewest_epochs_per_trial``; under patience every point stops as early as it may).
    """
    lr = spec.lr_search
    patience = stops_by_patience(lr)
    index_of = {point.key: index for index, point in enumerate(points)}
    inward: dict[str, tuple[int, ...]] = {}
    if warm_starts(lr) and not refinement:
        hood = neighbourhood(points, spec.device, shared_seeds=not spec.selection.per_seed)
        inward = {key: tuple(index_of[other] for other in hood.neighbour_keys(key)) for key in index_of}
    elif warm_starts(lr) and spec.selection.per_seed:  # a round's later seed still waits for its earlier seeds
        seen: dict[tuple, list[int]] = {}
        for index, point in enumerate(points):
            earlier_seeds = seen.setdefault((point.series, point.task, point.axes), [])
            inward[point.key] = tuple(earlier_seeds)
            earlier_seeds.append(index)
    leaders = seed_leaders(points, spec.lr_search, spec.selection)
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
    if not warm_starts(spec.lr_search):
        return list(points)
    by_key = {point.key: point for point in points}
    return [by_key[key] for key in neighbourhood(points, spec.device, shared_seeds=not spec.selection.per_seed).order]


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
            for algorithm in mode_algorithms(spec, mode):
                for classes in spec.data.tasks:
                    for number in range(refine.rounds):
                        rounds[number] += line_points(spec, mode, classes, refine.axis, stand_ins, algorithm.name)
    budget = [point for points in rounds for point in points]
    cost = estimate_cost(spec, budget, measured=measured, on_gpu=on_gpu, refinement=True)
    phases = []
    for points in rounds:
        one = estimate_cost(spec, points, measured=measured, on_gpu=on_gpu, refinement=True)
        phases.append((one.searches, one.fewest_searches))
    # The wall time replays the rounds, not the budget as one phase; the grid's pretrained models serve refinement.
    return replace(
        cost,
        pretrain_jobs=0,
        pretrain_seconds=0.0,
        pretraining=(),
        searches=(),
        fewest_searches=(),
        rounds=tuple(phases),
    )


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
