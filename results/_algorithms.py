"""Algorithms side by side: the analog training algorithms a sweep compares, and their differences per axis value.

A spec with ``algorithms`` (``sweeps/README.md``, "Comparing algorithms") runs every listed algorithm at every device
point of every analog mode, each with its own learning-rate search; the store keeps each analog point's algorithm
(``points.algorithm``: ``c-ttv2``, ``ttv2``, ``agad``, ``sgd``). Seeds are replicates, so two algorithms are compared
at one device point by Welch's difference of their seeds' test errors (``_replicates.difference``), never of two
means: ``c-TTv2 - TTv2 at sp_skew 20 %: -12.3 [-15.1, -9.5] points`` (negative: the first is better).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from itertools import combinations
from typing import Any

from analog_sweep.results._basepoint import base_points, device_point
from analog_sweep.results._labels import algorithm_rank
from analog_sweep.results._replicates import MIN_REPLICATES, Summary, difference
from analog_sweep.results._schema import ANALOG_MODES, AXES, AXIS_UNITS

# The field's names for aihwkit's algorithms (the paper's c-TTv2; TTv2 and AGAD of its reference [20] and
# Rasch et al. 2024; plain SGD on one device per weight); ``ALGORITHM_ORDER`` is the order tables list them in.
ALGORITHM_LABELS = {"c-ttv2": "c-TTv2", "ttv2": "TTv2", "agad": "AGAD", "sgd": "analog SGD"}


def algorithm_label(name: str | None) -> str:
    """``c-TTv2`` for ``c-ttv2``; an unknown name as it is; empty for None (a digital mode)."""
    return "" if name is None else ALGORITHM_LABELS.get(name, name)


def compared_algorithms(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The distinct algorithms of ``rows`` (point rows with ``algorithm``), in ``ALGORITHM_ORDER``
    (``_labels.algorithm_rank``); a sweep compares algorithms when there are two or more (``compares_algorithms``)."""
    return sorted({str(r["algorithm"]) for r in rows if r.get("algorithm")}, key=algorithm_rank)


def compares_algorithms(rows: Iterable[Mapping[str, Any]]) -> bool:
    """Whether ``rows`` hold two algorithms or more: the tables, figures and findings then name and compare them."""
    return len(compared_algorithms(rows)) > 1


def algorithm_differences(best_rows: Sequence[Mapping[str, Any]], *, axis: str | None = None) -> list[dict[str, Any]]:
    """Every pair of compared algorithms at every value of every axis their analog modes vary, per task and mode.

    ``best_rows``: ``Store.best_points`` rows (one per point and seed; ``test_error`` in percent, None for a point
    without a chosen trial, which is left out). A line along an axis holds the points that differ from the task's
    base device point (``_basepoint``) in that axis alone; the base point itself starts every line. A mode that
    varies no axis is compared at the base point (``axis`` None in the row). ``axis``: only that device axis.

    Each row: ``task``, ``mode``, ``axis``, ``value`` (axis unit), ``comparison`` (``c-TTv2 - TTv2``), ``a``, ``b``
    (algorithm names), ``a_mean``, ``a_n``, ``b_mean``, ``b_n`` (percent, seeds), ``difference`` (percentage points, A -
    B: negative means A has the lower error) with its Welch 95 % interval ``ci_low``, ``ci_high`` (None when a side has
    one seed, or when neither side's seeds differ at all: no interval, never a zero-width one), ``few_seeds`` (a side
    has fewer than ``MIN_REPLICATES`` seeds: the interval is unreliable), ``resolved`` (the interval excludes 0 and
    neither side has few seeds) and ``text`` (the row in one line, saying so). Empty when the rows hold fewer than two
    algorithms. Sorted by task, mode, axis (``AXES`` order), value, then pair.
    """
    done = [r for r in best_rows if r.get("test_error") is not None and r.get("algorithm")]
    algorithms = compared_algorithms(done)
    if len(algorithms) < 2:
        return []
    bases = base_points(best_rows)
    errors: dict[tuple, list[float]] = defaultdict(list)
    for row in done:
        errors[(row["task"], row["mode"], row["algorithm"], device_point(row))].append(float(row["test_error"]))
    out = []
    for task in sorted(bases):
        base = bases[task]
        for mode in [m for m in ANALOG_MODES if any(k[:2] == (task, m) for k in errors)]:
            places = {k[3] for k in errors if k[:2] == (task, mode)}
            varied = [a for i, a in enumerate(AXES) if len({p[i] for p in places}) > 1]
            lines = [(a, AXES.index(a)) for a in varied if axis is None or a == axis]
            if not varied and axis is None:
                lines = [(None, None)]
            for name, index in lines:
                on_line = sorted(
                    p for p in places if all(v == base[i] for i, v in enumerate(p) if i != index) or p == base
                )
                for place in on_line:
                    for a, b in combinations(algorithms, 2):
                        first, second = errors.get((task, mode, a, place)), errors.get((task, mode, b, place))
                        if not first or not second:
                            continue
                        out.append(_row(task, mode, name, None if index is None else place[index], a, b, first, second))
    return out


def _row(
    task: str, mode: str, axis: str | None, value: float | None, a: str, b: str, first: list[float], second: list[float]
) -> dict[str, Any]:
    diff = difference(first, second)
    comparison = f"{algorithm_label(a)} - {algorithm_label(b)}"
    where = "at the base device" if axis is None else f"at {axis} {value:g}{AXIS_UNITS[axis]}"
    low, high = diff.low, diff.high
    if diff.no_spread:  # every seed alike on both sides: no spread to build an interval from, not an exact result
        interval = f" (n = {diff.n_a}, {diff.n_b}, no spread among the seeds: no interval)"
    elif low is None:
        interval = f" (n = {diff.n_a}, {diff.n_b}: no interval)"
    elif diff.few:
        interval = (
            f" [{low:+.1f}, {high:+.1f}] (n = {diff.n_a}, {diff.n_b}: fewer than {MIN_REPLICATES} seeds, unreliable)"
        )
    else:
        interval = f" [{low:+.1f}, {high:+.1f}]"
    # Fewer than MIN_REPLICATES seeds on a side: the interval says too little to call the difference resolved.
    resolved = low is not None and (low > 0 or high < 0) and not diff.few
    return {
        "task": task,
        "mode": mode,
        "axis": axis,
        "value": value,
        "comparison": comparison,
        "a": a,
        "b": b,
        "a_mean": Summary.of(first).mean,
        "a_n": diff.n_a,
        "b_mean": Summary.of(second).mean,
        "b_n": diff.n_b,
        "difference": diff.difference,
        "ci_low": low,
        "ci_high": high,
        "resolved": resolved,
        "few_seeds": diff.few,
        "text": f"{comparison} {where}: {diff.difference:+.1f}{interval} points",
    }
