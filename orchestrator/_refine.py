"""Adaptive refinement (``axes.refine``): after the grid, new axis values inside each critical point's interval.

Round r of an axis, for each mode, algorithm and task whose curve along it has a critical point
(``results.sweep_elbows``): if the 95 % interval is not yet narrower than ``width``, ``points`` new values are
spread evenly over the interval (clipped to the swept range; on a log scale for the log axes), rounded to
``SIGNIFICANT_DIGITS`` significant digits, leaving out values the line already has. Those points (every seed) run
like the grid's, then round r + 1 is planned. A line stops when it has no critical point, its interval is narrow
enough, no new value fits, or its rounds are spent.

Deterministic from the store: round r is planned from the points of the grid and of rounds 1..r-1 only, each of
which is re-derived the same way (the elbow fit is deterministic, and a round starts only when every point before it
has ended, so their results no longer change). A resume therefore re-plans exactly the round that was running, its
points get the same keys, and their Optuna studies continue where they stopped.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analog_sweep.results import AXES, Elbow, StoreInputError, sweep_elbows
from analog_sweep.sweeps import Point, RefineSpec, SweepSpec, expand, format_value, line_points

SIGNIFICANT_DIGITS = 4


@dataclass(frozen=True)
class LinePlan:
    """One refinement round of one line (axis, mode, algorithm, task): the critical point it starts from and the new
    values. ``algorithm`` is None for a digital mode and in a sweep of one algorithm."""

    axis: str
    round: int
    mode: str
    algorithm: str | None
    task: str
    elbow: Elbow
    values: tuple[float, ...]
    why_stop: str  # empty when ``values`` are added; otherwise why this line is not refined further

    def describe(self) -> str:
        e = self.elbow
        found = (
            f"critical point {e.breakpoint:.4g}, 95 % interval [{e.ci_low:.4g}, {e.ci_high:.4g}] (width {e.width:.4g})"
            if e.has_elbow
            else e.reason
            if not e.tested
            else f"no critical point ({e.reason})"
        )
        what = (
            f"{len(self.values)} new value(s): {', '.join(map(format_value, self.values))}"
            if self.values
            else (f"stops: {self.why_stop}")
        )
        line = "/".join(filter(None, (self.mode, self.algorithm, self.task)))
        return f"refinement round {self.round}, {self.axis}, {line}: {found}; {what}"

    @property
    def line(self) -> tuple[str, str | None, str]:
        return (self.mode, self.algorithm, self.task)


def plan_round(spec: SweepSpec, best_rows: Iterable[Mapping[str, Any]], round_: int) -> list[LinePlan]:
    """Every line's plan for refinement round ``round_`` (1-based) from ``Store.best_points`` rows, re-deriving
    rounds 1..round_-1 from the same rows. Axes whose ``rounds`` are spent are left out; a line that stopped in an
    earlier round is left out too."""
    rows = list(best_rows)
    plans: list[LinePlan] = []
    for refine in spec.axes.refine:
        if round_ > refine.rounds:
            continue
        held = _grid_values(spec, refine.axis)
        stopped: set[tuple[str, str | None, str]] = set()
        for current in range(1, round_ + 1):
            lines = [p for p in _plan_axis(spec, refine, rows, held, current) if p.line not in stopped]
            if current == round_:
                plans += lines
                break
            for plan in lines:
                if plan.values:
                    held[plan.line] |= set(plan.values)
                else:
                    stopped.add(plan.line)
    return plans


def round_points(spec: SweepSpec, plans: Iterable[LinePlan]) -> list[Point]:
    """The points of a round's plans (each new value at every seed)."""
    classes = {"-".join(task): task for task in spec.data.tasks}
    return [
        point
        for plan in plans
        if plan.values
        for point in line_points(spec, plan.mode, classes[plan.task], plan.axis, list(plan.values), plan.algorithm)
    ]


def _line(spec: SweepSpec, mode: str, algorithm: str | None, task: str) -> tuple[str, str | None, str]:
    """The line a point or elbow lies on: its mode, its algorithm where the sweep compares several (else None: one
    algorithm, so the mode names the line, as its plans and summaries print it), and its task."""
    return (mode, algorithm if spec.compares_algorithms else None, task)


def _grid_values(spec: SweepSpec, axis: str) -> dict[tuple[str, str | None, str], set[float]]:
    """The values of ``axis`` the grid's points of each mode, algorithm and task have."""
    held: dict[tuple[str, str | None, str], set[float]] = defaultdict(set)
    for point in expand(spec):
        held[_line(spec, point.mode, point.algorithm_name, point.task)].add(getattr(point.device, axis))
    return held


def _plan_axis(
    spec: SweepSpec,
    refine: RefineSpec,
    rows: list[Mapping[str, Any]],
    held: dict[tuple[str, str | None, str], set[float]],
    round_: int,
) -> list[LinePlan]:
    axis = refine.axis
    known = [r for r in rows if r[axis] in held.get(_line(spec, r["mode"], r.get("algorithm"), r["task"]), ())]
    base = {name: getattr(spec.device, name) for name in AXES}
    try:
        elbows = sweep_elbows(known, axis=axis, base=base)
    except StoreInputError:  # no mode and task varies it (yet): nothing to refine
        return []
    plans = []
    for elbow in elbows:
        key = _line(spec, elbow.mode, elbow.algorithm, elbow.task)
        line = held[key]
        if not elbow.has_elbow:
            values, why = (), "no critical point to refine"
        elif refine.width is not None and elbow.width < refine.width:
            values, why = (), f"interval width {elbow.width:.4g} is below {refine.width:g}"
        else:
            values = _new_values(elbow, line, refine.points)
            why = "" if values else "no new value fits inside the interval"
        plans.append(LinePlan(axis, round_, key[0], key[1], key[2], elbow, values, why))
    return plans


def _new_values(elbow: Elbow, line: set[float], count: int) -> tuple[float, ...]:
    """``count`` values spread evenly inside the interval (log10 scale for a log axis), clipped to the line's range
    (its smallest positive value on a log axis), rounded, without the values the line has."""
    low, high = max(elbow.ci_low, min(line)), min(elbow.ci_high, max(line))
    if elbow.log_x:
        positive = [v for v in line if v > 0]
        low = max(low, min(positive))
        low, high = math.log10(low), math.log10(high)
    if not low < high:
        return ()
    spots = [low + (high - low) * (i + 1) / (count + 1) for i in range(count)]
    values = sorted({_round(10**v if elbow.log_x else v) for v in spots} - line)
    return tuple(values)


def _round(value: float) -> float:
    if value == 0:
        return 0.0
    digits = SIGNIFICANT_DIGITS - 1 - math.floor(math.log10(abs(value)))
    return float(round(value, digits))


def refinement_summary(
    spec: SweepSpec,
    best_rows: Iterable[Mapping[str, Any]],
    first: Iterable[LinePlan],
    trials: Iterable[Mapping[str, Any]],
) -> list[str]:
    """Summarise what refinement did to each refined line, one line of text each.

    Args:
        spec: The sweep.
        best_rows: The sweep's points with their chosen trials (``Store.best_points``), refined points included.
        first: Each refined line's round-1 plan: its interval width before refinement.
        trials: The sweep's trial rows (``Store.list_trials``: ``point_key``, ``epochs_done``), to count what ran,
            which under patience can be far below the budget of ``trials_per_point`` a point.

    Returns:
        Per line: its interval width before refinement and now, and the points, trials and trial-epochs
        refinement added to it.
    """
    rows = list(best_rows)
    by_point: dict[str, list[int]] = defaultdict(list)
    for trial in trials:
        by_point[trial["point_key"]].append(int(trial["epochs_done"] or 0))
    grid = {axis: _grid_values(spec, axis) for axis in {plan.axis for plan in first}}
    lines = []
    for plan in first:
        held = grid[plan.axis][plan.line]
        mine = [r for r in rows if _line(spec, r["mode"], r.get("algorithm"), r["task"]) == plan.line]
        new_keys = {r["point_key"] for r in mine if r[plan.axis] not in held}
        ran = [epochs for key in new_keys for epochs in by_point.get(key, ())]
        base = {name: getattr(spec.device, name) for name in AXES}
        [now] = sweep_elbows(mine, axis=plan.axis, base=base)
        before = f"{plan.elbow.width:.4g}" if plan.elbow.has_elbow else "-"
        after = f"{now.width:.4g}" if now.has_elbow else f"- ({now.reason})"
        lines.append(
            f"refinement of {plan.axis}, {'/'.join(filter(None, plan.line))}: 95 % interval width {before} -> {after} "
            f"({len(new_keys)} points, {len(ran)} trials, {sum(ran)} trial-epochs added)"
        )
    return lines
