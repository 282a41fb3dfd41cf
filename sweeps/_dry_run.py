"""The dry run's report: a sweep's points, trials, cost and wall time, and warnings about this machine, as text."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from analog_sweep.sweeps._cost import (
    CACHED,
    ESTIMATED,
    GPU_SPEEDUP,
    MEASURED,
    CostEstimate,
    estimate_cost,
    fewest_trials,
    refinement_cost,
)
from analog_sweep.sweeps._environment import Environment, environment_warnings, parallel_trials
from analog_sweep.sweeps._expand import Point, format_value, refine_modes
from analog_sweep.sweeps._loader import spec_hash
from analog_sweep.sweeps._measured import MeasuredEpoch, MeasuredPretraining, TimingKey
from analog_sweep.sweeps._schedule import most_parallel
from analog_sweep.sweeps._scheduling import stops_by_patience
from analog_sweep.sweeps._schema import SweepSpec

POINTS_SHOWN = 100


def dry_run_report(
    spec: SweepSpec,
    points: Sequence[Point],
    *,
    environment: Environment,
    measured: Mapping[TimingKey, MeasuredEpoch] | None = None,
    gpus: int | None = None,
    cpu_fallback: bool = False,
    pretraining: Mapping[str, MeasuredPretraining] | None = None,
    cached: Collection[str] = (),
    design_warnings: Sequence[str] = (),
) -> str:
    """The expanded points, trial count, cost estimate, and warnings about this machine; never fails on them.

    Args:
        spec: The sweep's spec.
        points: Its expanded points.
        environment: What this machine offers (``detect_environment``).
        measured: Seconds per epoch from the store (``sweeps._measured.measured_epochs``).
        gpus: Also give the wall time on a cluster with that many GPUs.
        cpu_fallback: Price a GPU spec on this machine's CPUs when it has no GPU, as ``run --cpu-fallback`` would run
            it.
        design_warnings: What the sweep's design keeps its results from saying (the caller's, e.g.
            ``results.design_warnings``), listed with the warnings about this machine.
        pretraining: Seconds per pretraining from the store, by cache key (``sweeps._measured.measured_pretraining``).
        cached: Cache keys of the pretrained models already in the cache (priced at 0).

    Returns:
        The report, one line per item, without a trailing newline.
    """
    falls_back = cpu_fallback and spec.resources.gpu > 0 and environment.gpus == 0
    priced = {"pretraining": pretraining, "cached": cached}
    cost = estimate_cost(spec, points, measured=measured, on_gpu=spec.resources.gpu > 0 and not falls_back, **priced)
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
        *(
            [f"Algorithms compared at every analog device point: {', '.join(a.name for a in spec.algorithms)}"]
            if spec.compares_algorithms
            else []
        ),
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
    slots = parallel_trials(spec, environment, falls_back)
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
        *([_pretraining_line(cost)] if cost.pretraining else []),
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
        on_cluster = cost if cost.on_gpu else estimate_cost(spec, points, measured=measured, on_gpu=True, **priced)
        lines.append(_cluster_wall_line(spec, on_cluster, gpus, span))
    lines += _refinement_lines(spec, slots, measured=measured, on_gpu=cost.on_gpu, gpus=gpus)
    warnings = [*design_warnings, *environment_warnings(spec, environment, slots)]
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


def _pretraining_line(cost: CostEstimate) -> str:
    """'Pretraining: N model(s), T: ...' with how each model is priced: in the cache (0 s), measured (the store's
    median for its cache key) or estimated (the time model); one clause per model for up to three, else counts."""
    prices = cost.pretraining
    measured = [price for price in prices if price.how == MEASURED]
    sweeps = sorted({sweep for price in measured for sweep in price.measured.sweeps})
    source = ""
    if measured:
        trainings = sum(price.measured.trainings for price in measured)
        named = ", ".join(sweeps[:3]) + (" ..." if len(sweeps) > 3 else "")
        source = f"median of {trainings} training(s) in the store, from sweep(s) {named}"

    def how(price: Any) -> str:
        if price.how == CACHED:
            return "in the cache (loaded, not trained)"
        if price.how == MEASURED:
            return f"measured {_duration(price.seconds)} ({source})"
        return f"estimated {_duration(price.seconds)} (rough model, see sweeps/README.md)"

    head = f"Pretraining: {len(prices)} model(s), {_duration(cost.pretrain_seconds)}: "
    if len(prices) <= 3:
        return head + "; ".join(f"{price.key} {how(price)}" for price in prices)
    counts = []
    for kind, words in ((CACHED, "in the cache"), (MEASURED, "measured"), (ESTIMATED, "estimated")):
        chosen = [price for price in prices if price.how == kind]
        if chosen:
            detail = f" ({source})" if kind == MEASURED else ""
            counts.append(f"{len(chosen)} {words}{detail}")
    return head + ", ".join(counts)


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
        if stops_by_patience(spec.lr_search)
        else "every trial has a slot"
    )
    return f"; more {more} would not shorten it (it never runs more than {most} trial(s) at once: {why})"


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
    per = "mode, algorithm and task" if spec.compares_algorithms else "mode and task"
    for refine in spec.axes.refine:
        until = f"until narrower than {refine.width:g}" if refine.width is not None else "every round"
        modes = ", ".join(refine_modes(spec, refine.axis)) or "none (no mode responds to it)"
        lines.append(
            f"  {refine.axis}: up to {refine.rounds} round(s) x {refine.points} value(s) per {per}, "
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


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    if seconds < 172_800:
        return f"{seconds / 3600:.1f} h"
    days = seconds / 86_400
    return f"{days:.1f} days" if days < 1000 else f"{days:,.0f} days"
