"""Warm starts across a sweep's points: neighbouring device points want nearly the same learning rate.

A robustness sweep moves one device property at a time away from a base device (``sweeps/README.md``,
"Expansion"). The learning rate that suits transfer noise 10 % is close to the one that suits 0 % or 30 %, so a
point's search need not start from scratch: with ``lr_search.warm_start: neighbours`` (the default; TPE only) its
first trial runs the best learning rate of its *inward neighbours* (the next point towards the base device on each
axis it differs in, same mode, task and seed), its first sampler trial probes one step from that rate to the side
its neighbours' trials favour (``probe_learning_rate``), and the points run base first, then outward along each
axis, so that neighbours tend to be finished when a point starts. This module holds the geometry and the rates;
``orchestrator._search`` records and queues them, ``orchestrator._point_pruner`` prunes like with like.

Definitions (all in the points' own axis values, the units of ``sweeps._schema.DEVICE_AXES``):

- an axis's *ranks* are the positions of its values, sorted, with the base device's value among them;
- a point's *distance* is the sum over its swept axes of |rank - base rank| (0 for the base point and for modes that
  do not respond to any swept axis);
- an *inward neighbour* of a point P on axis A is the point with the same mode, task, seed and other axis values whose
  value on A lies between the base's and P's, nearest to P's (one per axis P differs from the base in);
- with ``selection.per_seed: false`` a neighbour is its whole device point (every seed), so its best learning rate
  is the shared choice's: the rate completed by the most seeds, then the lowest mean objective, then the smaller
  (the device point's first seed runs the search, the others follow its rates: ``orchestrator._search``);
- with ``selection.per_seed: true`` each seed searches on its own, and a point's *earlier seeds* (the seeds before
  it in the spec's order at the same mode, task and device) are neighbours too, one group: so seed 1 of the base
  point starts from seed 0's best rate;
- an *outward neighbour* of P on axis A is the same with A's value beyond P's, away from the base, nearest to P's.
  P is *bracketed* on A when it has both; with every neighbour on both sides finished and agreeing on one best
  learning rate, that rate is strongly predicted at P (``bracketed_rate``). Along a grid the outward neighbour runs
  after P, so this happens where points are added between finished ones: adaptive refinement (``axes.refine``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from sweeps import Point
from workers.config import DevicePoint


# The states of a study trial that has ended (completed, pruned, or failed: diverged or crashed).
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


@dataclass(frozen=True)
class Neighbourhood:
    """The run order of a sweep's points and each point's neighbours.

    ``order``: point keys, nearest the base device first (stable: within one distance, the expansion's order, so the
    seeds of one device point stay in seed order). ``inward``: point key -> one tuple of point keys per inward
    neighbour (the neighbour's seeds when seeds share their choice, else the neighbour alone, and then one more
    tuple of the point's earlier seeds); empty for the first seed of a base point. ``brackets``: point key -> one
    (inward, outward) pair of such tuples per axis the point differs from the base in, or empty when on some such
    axis it has no outward neighbour (it is not bracketed).
    """

    order: tuple[str, ...]
    inward: dict[str, tuple[tuple[str, ...], ...]]
    brackets: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = field(default_factory=dict)

    def neighbour_keys(self, key: str) -> list[str]:
        """Every point key of every inward neighbour of ``key``, in order."""
        return [other for group in self.inward.get(key, ()) for other in group]


def neighbourhood(
    points: Sequence[Point], base: DevicePoint, shared_seeds: bool, earlier: Sequence[Point] = ()
) -> Neighbourhood:
    """The order and neighbours of ``points`` around the base device ``base`` (the spec's ``device``).

    ``shared_seeds``: seeds share one learning-rate choice (``selection.per_seed`` false), so a neighbour is every
    seed of its device point. ``earlier``: the points of the sweep's earlier phases (the grid, and the refinement
    rounds before this one), all ended. When given, ``points`` (a refinement round's) take their axis neighbours
    among them only, the nearest *finished* points on each side: points of one round placed between the same two
    grid values would otherwise wait for each other, and the later ones start before their neighbour has a result.
    """
    ranks = _ranks([*points, *earlier], base)

    def rank(point: Point, axis: str) -> int:
        return ranks[axis].index(point.axes_dict[axis])

    def base_rank(axis: str) -> int:
        return ranks[axis].index(getattr(base, axis))

    def distance(point: Point) -> int:
        return sum(abs(rank(point, axis) - base_rank(axis)) for axis in point.axes_dict)

    by_place: dict[tuple, Point] = {}
    seeds_of: dict[tuple, list[str]] = defaultdict(list)
    for point in earlier or points:
        by_place[(point.mode, point.task, point.seed, point.axes)] = point
    for point in [*points, *earlier]:
        seeds_of[(point.mode, point.task, point.axes)].append(point.key)

    def nearest(point: Point, axis: str, candidates: Iterable[int]) -> tuple[str, ...] | None:
        """The group of the first point found at the axis ranks ``candidates`` (nearest first), else None."""
        for candidate in candidates:
            axes = tuple((a, ranks[a][candidate] if a == axis else v) for a, v in point.axes)
            neighbour = by_place.get((point.mode, point.task, point.seed, axes))
            if neighbour is not None:
                return tuple(seeds_of[(point.mode, point.task, axes)]) if shared_seeds else (neighbour.key,)
        return None

    inward: dict[str, tuple[tuple[str, ...], ...]] = {}
    brackets: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {}
    for point in points:
        groups = []
        if not shared_seeds:
            seeds = seeds_of[(point.mode, point.task, point.axes)]
            before = seeds[:seeds.index(point.key)]
            if before:
                groups.append(tuple(before))
        pairs: list[tuple[tuple[str, ...], tuple[str, ...]]] | None = []
        for axis in point.axes_dict:
            here, home = rank(point, axis), base_rank(axis)
            if here == home:
                continue
            step = -1 if here > home else 1
            inner = nearest(point, axis, range(here + step, home + step, step))  # up to the base value
            if inner is not None:
                groups.append(inner)
            end = len(ranks[axis]) if step == -1 else -1
            outer = nearest(point, axis, range(here - step, end, -step))  # away from the base, to the range's end
            if pairs is not None and inner is not None and outer is not None:
                pairs.append((inner, outer))
            else:
                pairs = None
        inward[point.key] = tuple(groups)
        brackets[point.key] = tuple(pairs or ())
    order = tuple(point.key for point in sorted(points, key=distance))  # sorted() is stable
    return Neighbourhood(order=order, inward=inward, brackets=brackets)


def _ranks(points: Iterable[Point], base: DevicePoint) -> dict[str, list[float]]:
    values: dict[str, set[float]] = defaultdict(set)
    for point in points:
        for axis, value in point.axes:
            values[axis].add(value)
    return {axis: sorted(found | {getattr(base, axis)}) for axis, found in values.items()}


def best_learning_rate(trials: Iterable[optuna.trial.FrozenTrial]) -> float | None:
    """The best learning rate among completed study trials (of one point, or of the seeds of one device point):
    completed by the most trials (seeds), then the lowest mean objective, then the smaller rate; None if none
    completed. The objective is what the studies minimise (``orchestrator._search``: validation or test error, %)."""
    scores: dict[float, list[float]] = defaultdict(list)
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None and "lr" in trial.params:
            scores[trial.params["lr"]].append(trial.value)
    if not scores:
        return None
    return min(scores, key=lambda lr: (-len(scores[lr]), sum(scores[lr]) / len(scores[lr]), lr))


def bracketed_rate(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    trials_of: Callable[[str], list[optuna.trial.FrozenTrial]],
    finished: Callable[[str], bool],
) -> float | None:
    """The learning rate a bracketed point's neighbours on both sides agree on, else None.

    ``pairs``: the point's (inward, outward) neighbour groups, one per axis it differs from the base in
    (``Neighbourhood.brackets``; empty: not bracketed). ``trials_of(key)``: a neighbour's study trials;
    ``finished(key)``: whether that neighbour's search has ended. The rate is returned only when every neighbour of
    every pair has finished and each group's best rate (``best_learning_rate``) is one and the same rate.
    """
    if not pairs:
        return None
    rates = set()
    for pair in pairs:
        for group in pair:
            if not all(finished(key) for key in group):
                return None
            rate = best_learning_rate([trial for key in group for trial in trials_of(key)])
            if rate is None:
                return None
            rates.add(rate)
    return rates.pop() if len(rates) == 1 else None


def probe_learning_rate(
    trials: Iterable[optuna.trial.FrozenTrial], best: float, low: float, high: float, step: float
) -> float | None:
    """The first sampler trial of a warm-started point: one step (a factor ``step`` > 1) from the warm-start rate
    ``best``, to the side where its neighbours' trials say the optimum more likely lies; None when the range
    [``low``, ``high``] leaves no room on either side.

    The side: the neighbours' nearest tried rate below ``best`` and nearest above (on a log scale), each scored by
    the mean objective of its completed trials (a rate with none completed, all pruned or failed, scores worst). A
    side with no tried rate is unexplored and goes first (the other side's rate is known to be worse than
    ``best``); with both sides tried, the lower score's side; with neither, or a tie, the side towards the middle of
    the range on a log scale (down at the middle). The probe is clipped to the range; a warm-start rate at the edge
    probes the other side. So the search walks along the learning rate as the sweep moves outward: a point whose
    neighbour's probe lost probes the other way, one whose neighbour's probe won goes on in the same direction.
    Rates are learning rates, ``trials`` the inward neighbours' study trials (objective: validation or test error, %).
    """
    scores: dict[float, list[float]] = {}
    for trial in trials:
        lr = trial.params.get("lr")
        if lr is None or lr == best or trial.state not in FINISHED_STATES:
            continue
        scores.setdefault(lr, [])  # a rate tried, even if no trial of it completed
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            scores[lr].append(trial.value)

    def score(lr: float) -> float:
        return sum(scores[lr]) / len(scores[lr]) if scores[lr] else math.inf

    below = max((lr for lr in scores if lr < best), default=None)
    above = min((lr for lr in scores if lr > best), default=None)
    towards_middle = 1 if math.log(best) < (math.log(low) + math.log(high)) / 2 else -1
    if below is None and above is None:
        direction = towards_middle
    elif below is None or above is None:
        direction = -1 if below is None else 1
    elif score(below) != score(above):
        direction = -1 if score(below) < score(above) else 1
    else:
        direction = towards_middle
    for side in (direction, -direction):
        probe = min(high, max(low, best * step**side))
        if abs(math.log(probe / best)) > 1e-9:
            return probe
    return None
