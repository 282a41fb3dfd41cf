"""The geometry of a sweep's points around its base device: the order ``run`` starts them in and each point's
neighbours (definitions: ``orchestrator._warm_start``, which uses them for warm starts). It lives here, beside the
expansion, because the dry run's wall time (``sweeps._schedule``) needs the same order and neighbours as ``run``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from analog_sweep.sweeps._expand import Point
from analog_sweep.workers import DevicePoint


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
    """The order and neighbours of ``points`` around the base device.

    Args:
        points: The points to order, in the expansion's order.
        base: The base device (the spec's ``device``).
        shared_seeds: Seeds share one learning-rate choice (``selection.per_seed`` false), so a neighbour is every
            seed of its device point.
        earlier: The points of the sweep's earlier phases (the grid, and the refinement rounds before this one), all
            ended. When given, ``points`` (a refinement round's) take their axis neighbours among them only, the
            nearest *finished* points on each side: points of one round placed between the same two grid values
            would otherwise wait for each other, and the later ones start before their neighbour has a result.

    Returns:
        The run order, inward neighbours and brackets of ``points``.
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
        by_place[(point.series, point.task, point.seed, point.axes)] = point
    for point in [*points, *earlier]:
        seeds_of[(point.series, point.task, point.axes)].append(point.key)

    def nearest(point: Point, axis: str, candidates: Iterable[int]) -> tuple[str, ...] | None:
        """The group of the first point found at the axis ranks ``candidates`` (nearest first), else None."""
        for candidate in candidates:
            axes = tuple((a, ranks[a][candidate] if a == axis else v) for a, v in point.axes)
            neighbour = by_place.get((point.series, point.task, point.seed, axes))
            if neighbour is not None:
                return tuple(seeds_of[(point.series, point.task, axes)]) if shared_seeds else (neighbour.key,)
        return None

    inward: dict[str, tuple[tuple[str, ...], ...]] = {}
    brackets: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {}
    for point in points:
        groups = []
        if not shared_seeds:
            seeds = seeds_of[(point.series, point.task, point.axes)]
            before = seeds[: seeds.index(point.key)]
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
