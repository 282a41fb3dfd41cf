"""The study's findings as table rows: mode comparisons, critical points, analog learning activity (per algorithm
where a sweep compares several: the modes are then compared within each algorithm, and the algorithms with each
other in ``results._algorithms``).

Seeds are replicates: a comparison is Welch's difference of two modes' seeds (``_replicates.difference``), never of
two means. Test errors and their differences are in percent and percentage points. Where the sweep fine-tunes on
one of the paper's tasks, each row carries the paper's value for the same quantity (``_paper``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from analog_sweep.results._activity import sweep_activity_warnings
from analog_sweep.results._algorithms import compared_algorithms, compares_algorithms
from analog_sweep.results._basepoint import base_points, device_point
from analog_sweep.results._elbows import elbow_outcome, elbow_tested
from analog_sweep.results._figures import AXIS_UNITS, series_style
from analog_sweep.results._labels import algorithm_rank
from analog_sweep.results._paper import CRITICAL_POINT, DIFFERENCE, paper_task, paper_value
from analog_sweep.results._replicates import MIN_REPLICATES, Difference, Summary, difference
from analog_sweep.results._schema import ANALOG_MODES

# The paper's two comparisons (Sec. III.A): A - B in test error, so a negative difference means A is better.
COMPARISONS = (("analog_tl", "analog_scratch"), ("analog_tl", "digital_tl"))


def task_names(best_rows: Iterable[Mapping[str, Any]], dataset: str | None) -> dict[str, str | None]:
    """Per task of the sweep, the paper's name for it when the sweep fine-tunes on a paper task, else None."""
    return {row["task"]: paper_task(dataset, row["classes"]) for row in best_rows}


def mode_differences(best_rows: list[Mapping[str, Any]], *, dataset: str | None = None) -> list[dict[str, Any]]:
    """Per task, at its base device point, ``analog_tl - analog_scratch`` and ``analog_tl - digital_tl``.

    Each row: ``task``, ``comparison`` (labels), ``a_mean``, ``a_n``, ``b_mean``, ``b_n`` (percent, seeds),
    ``difference`` (percentage points) with its Welch 95 % interval ``ci_low``, ``ci_high`` (None when a side has one
    seed, or when no seed of either mode differs from the others: no interval, never a zero-width one),
    ``few_seeds`` (a side has fewer than ``MIN_REPLICATES`` seeds), ``verdict`` (what the interval says, in words:
    unreliable with few seeds, never resolved), and ``paper`` (the paper's value as text, or None; None for every
    row when ``dataset`` is None, as for a smoke run).
    Comparisons whose modes the sweep did not run at a task's base point are left out. In a sweep that compares
    algorithms, each comparison is made per algorithm (analog scratch of the same algorithm; the digital mode is
    shared), and the labels name it (``analog TL, c-TTv2 - digital TL``).
    """
    bases = base_points(best_rows)
    papers = task_names(best_rows, dataset)
    compare = compares_algorithms(best_rows)
    errors: dict[tuple[str, str, str | None], list[float]] = defaultdict(list)
    for row in best_rows:
        if row.get("test_error") is not None and device_point(row) == bases[row["task"]]:
            errors[(row["task"], row["mode"], row.get("algorithm"))].append(float(row["test_error"]))
    out = []
    for task in sorted(bases):
        for a, b in COMPARISONS:
            for algorithm in sorted({k[2] for k in errors if k[:2] == (task, a)}, key=algorithm_rank):
                first = errors[(task, a, algorithm)]
                second = errors.get((task, b, algorithm if b in ANALOG_MODES else None), [])
                if not first or not second:
                    continue
                diff = difference(first, second)
                reference = paper_value(papers[task], DIFFERENCE, f"{a} - {b}")
                label_a = series_style(a, algorithm, compare=compare).label
                label_b = series_style(b, algorithm if b in ANALOG_MODES else None, compare=compare).label
                out.append(
                    {
                        "task": task,
                        "comparison": f"{label_a} - {label_b}",
                        "a_mean": Summary.of(first).mean,
                        "a_n": diff.n_a,
                        "b_mean": Summary.of(second).mean,
                        "b_n": diff.n_b,
                        "difference": diff.difference,
                        "ci_low": diff.low,
                        "ci_high": diff.high,
                        "few_seeds": diff.few,
                        "verdict": _verdict(label_a, label_b, diff),
                        "paper": reference.text() if reference else None,
                    }
                )
    return out


def _verdict(a: str, b: str, diff: Difference) -> str:
    better = a if diff.difference < 0 else b
    lower = (
        f"{better} lower by {abs(diff.difference):.1f} points"
        if round(abs(diff.difference), 1) > 0
        else "the same mean error (0.0 points apart)"
    )
    few = f"fewer than {MIN_REPLICATES} seeds on a side (n = {diff.n_a}, {diff.n_b})"
    if diff.no_spread:
        return f"{lower}; every seed of both modes gave the same error, so no interval (not an exact difference)" + (
            f"; {few}: unreliable" if diff.few else ""
        )
    if diff.low is None or diff.high is None:
        return f"{lower}; one seed on a side, so no interval"
    if diff.few:
        return f"{lower}; {few}: unreliable, not resolved"
    if diff.low > 0 or diff.high < 0:
        return f"{lower}; the 95 % interval excludes 0"
    return f"{lower}, but the 95 % interval includes 0: not resolved by these seeds"


def critical_points(
    elbow_rows: Iterable[Mapping[str, Any]], best_rows: list[Mapping[str, Any]], *, dataset: str | None = None
) -> list[dict[str, Any]]:
    """The critical point per axis, task and mode (and algorithm; ``results.sweep_elbows`` rows, ``Elbow.as_row()``)
    as report rows: ``axis``, ``task``, ``mode`` (naming the algorithm where the sweep compares several),
    ``tested`` (whether the test for an elbow ran), ``critical_point`` (``_elbows.elbow_outcome``: the point with unit
    and 95 % interval, ``not tested: ...``, or ``tested, none found (p = ...)``), ``p_value``, ``n_values``,
    ``n_obs``, ``method``, ``reason``, and ``paper`` (the paper's value as text, or None; None for every row when
    ``dataset`` is None, as for a smoke run).
    """
    papers = task_names(best_rows, dataset)
    compare = compares_algorithms(best_rows)
    out = []
    for elbow in sorted(elbow_rows, key=lambda e: (e["axis"], e["task"], e["mode"], e.get("algorithm") or "")):
        text = elbow_outcome(elbow, AXIS_UNITS.get(elbow["axis"], ""))
        reference = paper_value(papers.get(elbow["task"]), CRITICAL_POINT, elbow["axis"])
        out.append(
            {
                "axis": elbow["axis"],
                "task": elbow["task"],
                "mode": series_style(elbow["mode"], elbow.get("algorithm"), compare=compare).label,
                "tested": elbow_tested(elbow),
                "critical_point": text,
                "p_value": elbow.get("p_value"),
                "n_values": elbow.get("n_values"),
                "n_obs": elbow.get("n_obs"),
                "method": elbow.get("method"),
                "reason": elbow.get("reason"),
                "paper": reference.text() if reference and elbow["mode"] == "analog_tl" else None,
            }
        )
    return out


def activity_by_mode(best_rows: list[Mapping[str, Any]], spec: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Analog learning activity per task and analog mode (and algorithm), from the chosen trials' activity columns.

    ``head_moved`` and ``blocks_moved`` (percent of the group's analog weights changed since conversion) and
    ``blocks_rel`` (body mean|dW| / mean|W|; ``workers._activity``): means over the seeds at the base device point,
    ``seeds`` how many had them. ``warnings``: what the curve's activity says as the study reads it
    (``sweep_activity_warnings`` with the sweep's stored ``spec``: a warning with advice per point at the base device,
    one note per axis where only the swept property caused it), without the ``warning:``/``note:`` prefix. Modes
    without activity (digital, or a store from before schema version 3) are left out.
    """
    spec = spec or {}
    bases = base_points(best_rows)
    algorithms = compared_algorithms(best_rows)
    compare = len(algorithms) > 1
    out = []
    for task in sorted(bases):
        for mode, algorithm in [(m, a) for m in ANALOG_MODES for a in (algorithms if compare else [None])]:
            rows = [
                r
                for r in best_rows
                if r["task"] == task
                and r["mode"] == mode
                and r.get("trial_id")
                and (not compare or r.get("algorithm") == algorithm)
            ]
            at_base = [r for r in rows if device_point(r) == bases[task] and r.get("head_moved") is not None]
            if not any(r.get("head_moved") is not None for r in rows):
                continue
            lines = sweep_activity_warnings(rows, spec, bases=bases)
            lines = [line.split(": ", 1)[1] for line in lines]
            out.append(
                {
                    "task": task,
                    "mode": series_style(mode, algorithm, compare=compare).label,
                    "seeds": len(at_base),
                    **{name: _mean(at_base, name) for name in ("head_moved", "blocks_moved", "blocks_rel")},
                    "warnings": lines,
                }
            )
    return out


def _mean(rows: list[Mapping[str, Any]], name: str) -> float | None:
    values = [float(r[name]) for r in rows if r.get(name) is not None]
    return Summary.of(values).mean if values else None
