"""The base device point of a task: where the four modes are compared (the paper's Fig. 2 and Sec. III.A).

Digital modes run only at the base point and analog modes run there too in a one-at-a-time sweep
(``sweeps/README.md``, "Expansion"), so the base point is read off the points themselves: the device point most
modes share, and among those the one every other point differs from in one axis at most. No spec is needed, so
stores written by any version give the same answer.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from analog_sweep.results._schema import AXES

DevicePoint = tuple[float, ...]  # the values of AXES, in that order


def device_point(row: Mapping[str, Any]) -> DevicePoint:
    """A row's device axes as a tuple in ``AXES`` order."""
    return tuple(float(row[a]) for a in AXES)


def base_points(rows: Iterable[Mapping[str, Any]]) -> dict[str, DevicePoint]:
    """Per task, its base device point. ``rows`` need ``task``, ``mode`` and the ``AXES`` columns (point rows)."""
    modes: dict[str, dict[DevicePoint, set[str]]] = defaultdict(lambda: defaultdict(set))
    for row in rows:
        modes[row["task"]][device_point(row)].add(row["mode"])
    return {task: _central(by_point) for task, by_point in modes.items()}


def _central(by_point: Mapping[DevicePoint, set[str]]) -> DevicePoint:
    candidates = sorted(by_point)

    def neighbours(point: DevicePoint) -> int:
        return sum(sum(a != b for a, b in zip(point, other)) <= 1 for other in candidates)

    return max(candidates, key=lambda p: (len(by_point[p]), neighbours(p), [-v for v in p]))


def varied_axes(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The device axes with more than one value among ``rows``, in ``AXES`` order."""
    values: dict[str, set[float]] = defaultdict(set)
    for row in rows:
        for axis in AXES:
            values[axis].add(float(row[axis]))
    return [a for a in AXES if len(values[a]) > 1]
