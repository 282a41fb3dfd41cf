"""Seeds are replicates: summarise points that differ only by seed, and compare two sets of replicates.

Statistics come from scipy: the mean's 95 % interval is Student's t (``scipy.stats.t``), a difference of two means
is Welch's t interval (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``). One replicate has no spread:
its standard deviation and interval are None (n = 1 is shown as such, never as certainty).

Fewer than ``MIN_REPLICATES`` (3) seeds give a standard deviation and interval that say little: two seeds that hit the
same count of test images give sd 0, and the t interval of two is 9 sd wide on each side. Every table, figure and
finding flags them (``few_seeds``, ``Summary.few``, ``Difference.few``), and an sd of 0 is never shown as a precise
value (``spread_text``).
"""

from __future__ import annotations

import math
import statistics
import warnings
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from analog_sweep.results._labels import point_sort_key
from analog_sweep.results._schema import AXES, TRIAL_ACTIVITY_FIELDS

CONFIDENCE = 0.95
# Fewer seeds than this: the spread and interval are flagged as unreliable wherever they are shown.
MIN_REPLICATES = 3


@dataclass(frozen=True)
class Summary:
    """Replicates of one quantity: count, mean, sample standard deviation and the mean's t interval half-width."""

    n: int
    mean: float
    sd: float | None
    ci95: float | None

    @classmethod
    def of(cls, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError("no values to summarise")
        n, mean = len(values), statistics.fmean(values)
        if n == 1:
            return cls(1, mean, None, None)
        sd = statistics.stdev(values)
        from scipy import stats  # on use: a second of imports that a table without intervals does not need

        return cls(n, mean, sd, float(stats.t.ppf(0.5 + CONFIDENCE / 2, n - 1)) * sd / math.sqrt(n))

    @property
    def few(self) -> bool:
        """Fewer than ``MIN_REPLICATES`` values: the sd and interval are unreliable (None for one value)."""
        return self.n < MIN_REPLICATES

    @property
    def no_spread(self) -> bool:
        """Two values or more, all equal: sd 0, which is no measure of precision."""
        return self.sd == 0


def spread_text(n: int, sd: float | None) -> str | None:
    """How an sd must be read, or None when it can be shown as it is: ``n = 1, no sd``; ``sd 0 from 2 seeds`` (the
    seeds agree, which says nothing about the spread); ``from 2 seeds: unreliable``."""
    if n < 2 or sd is None:
        return f"n = {n}, no sd"
    if sd == 0:
        return f"sd 0 from {n} seeds"
    if n < MIN_REPLICATES:
        return f"from {n} seeds: unreliable"
    return None


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its Welch 95 % interval (``low``, ``high``); None bounds when either side has n < 2, or
    when neither side's values differ at all (``no_spread``: no interval, never a zero-width one). ``few``: a side
    has fewer than ``MIN_REPLICATES`` values, so the interval (if any) is unreliable."""

    difference: float
    low: float | None
    high: float | None
    n_a: int
    n_b: int
    no_spread: bool = False

    @property
    def few(self) -> bool:
        return min(self.n_a, self.n_b) < MIN_REPLICATES

    def __str__(self) -> str:
        counts = f"n = {self.n_a}, {self.n_b}"
        if self.no_spread:
            return f"{self.difference:+.1f} ({counts}, no spread among the seeds: no interval)"
        if self.low is None:
            return f"{self.difference:+.1f} ({counts}: no interval)"
        flag = f"; fewer than {MIN_REPLICATES} seeds on a side: unreliable" if self.few else ""
        return f"{self.difference:+.1f} [{self.low:+.1f}, {self.high:+.1f}] ({counts}{flag})"


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """mean(a) - mean(b) with Welch's t interval at ``CONFIDENCE`` (percentage points for test errors in percent).

    No interval (None bounds) when a side has one value, or when every value on both sides is the same
    (``no_spread``): a zero-width interval would read as an exact difference. Raises ``ValueError`` for an empty side.
    """
    if not a or not b:
        raise ValueError("both sides need at least one value")
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, None, None, len(a), len(b))
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return Difference(diff, None, None, len(a), len(b), no_spread=True)
    from scipy import stats

    with warnings.catch_warnings():  # nearly equal values: scipy warns of precision loss, the interval still holds
        warnings.simplefilter("ignore", RuntimeWarning)
        interval = stats.ttest_ind(a, b, equal_var=False).confidence_interval(CONFIDENCE)
    return Difference(diff, float(interval.low), float(interval.high), len(a), len(b))


def replicate_rows(best_rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One row per point without its seed (mode, algorithm, task and the device axes), from ``Store.best_points``
    rows.

    Each row has ``selected_on`` (validation, or test: the paper's rule), ``seeds`` (how many points have a chosen
    trial), ``lr`` (the chosen learning rates, one per seed, as text), ``test_error_mean``, ``test_error_sd`` and
    ``test_error_ci95`` (half-width of the mean's t interval; sd and interval are None for one seed) of the chosen
    trials' test errors at their chosen epochs (``test_error`` of the rows), and the mean of each trial activity
    column over the seeds (None for digital modes). Points without a chosen trial count in ``points`` but not in the
    statistics. Sorted by mode, algorithm, task and device axes.
    """
    groups: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in best_rows:
        groups[(row["mode"], row.get("algorithm"), row["task"], *(row[a] for a in AXES))].append(row)
    summaries = []
    for key, rows in groups.items():
        done = sorted((r for r in rows if r["test_error"] is not None), key=lambda r: r["seed"])
        summary = Summary.of([r["test_error"] for r in done]) if done else None
        out: dict[str, Any] = dict(zip(("mode", "algorithm", "task", *AXES), key))
        out.update(
            selected_on=",".join(sorted({r["selected_on"] for r in rows})),
            points=len(rows),
            seeds=len(done),
            lr=",".join("-" if r["lr"] is None else f"{r['lr']:g}" for r in done) or None,  # a chosen trial lost
            test_error_mean=summary.mean if summary else None,
            test_error_sd=summary.sd if summary else None,
            test_error_ci95=summary.ci95 if summary else None,
            few_seeds=len(done) < MIN_REPLICATES,
            spread_note=spread_text(summary.n, summary.sd) if summary else None,
        )
        for name in TRIAL_ACTIVITY_FIELDS:
            values = [r[name] for r in done if r.get(name) is not None]
            out[name] = statistics.fmean(values) if values else None
        summaries.append(out)
    summaries.sort(key=point_sort_key)
    return summaries


def few_seeds_note(rows: Iterable[Mapping[str, Any]], *, seeds: str = "seeds") -> str | None:
    """The footnote for a table of replicate rows (``replicate_rows``, ``Store.axis_curve`` rows with ``points``, or
    any rows with ``few_seeds``), or None when every row has ``MIN_REPLICATES`` seeds or more. ``seeds``: the column
    holding the count, when rows have no ``few_seeds``."""
    rows = list(rows)
    few = [r for r in rows if r.get("few_seeds", (r.get(seeds) or 0) < MIN_REPLICATES)]
    if not few:
        return None
    return (
        f"few_seeds: {len(few)} of {len(rows)} rows have fewer than {MIN_REPLICATES} seeds: their sd and 95 % "
        "interval are unreliable, and an sd of 0 means the seeds gave the same error, not an exact value"
    )
