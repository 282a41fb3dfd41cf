"""What a sweep's design lets its results say, known before it runs: warnings for the dry run and the run's start.

The report fits a critical point (``results._elbows``) to every axis with at least ``MIN_AXIS_VALUES`` values, and
gives every point's mean an interval over its seeds (``results._replicates``). With fewer than ``MIN_REPLICATES``
seeds those intervals are flagged as unreliable wherever they appear, and a critical point's interval then rests on
the scatter of single trials: a design that asks for critical points should have at least that many seeds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from analog_sweep.results._elbows import MIN_AXIS_VALUES
from analog_sweep.results._replicates import MIN_REPLICATES


def design_warnings(seeds: int, axes: Mapping[str, Sequence[float]], refined: Iterable[str] = ()) -> list[str]:
    """Problems of a sweep's design for the statistics its report computes, one line each; [] when there are none.

    Args:
        seeds: How many seeds (replicates) every point runs (``len(spec.seeds)``).
        axes: Each swept device axis and its values (``spec.axes.values``), in the spec's units.
        refined: The axes refined around their critical points (``axes.refine``).

    Returns:
        One warning naming the axes and the field to change when the sweep asks for critical points (an axis with
        ``MIN_AXIS_VALUES`` values or more, or a refined axis) with fewer than ``MIN_REPLICATES`` seeds.
    """
    refined = set(refined)
    asked = [axis for axis, values in axes.items() if len(set(values)) >= MIN_AXIS_VALUES or axis in refined]
    if not asked or seeds >= MIN_REPLICATES:
        return []
    return [
        f"critical points are asked for ({', '.join(asked)}) with {seeds} seed(s): every point's interval comes from "
        f"fewer than {MIN_REPLICATES} replicates and is flagged unreliable, and a critical point's interval rests on "
        f"single trials' scatter; give seeds at least {MIN_REPLICATES} values"
    ]
