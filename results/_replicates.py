"""Seeds are replicates: summarise points that differ only by seed, and compare two sets of replicates.

Statistics come from scipy: the mean's 95 % interval is Student's t (``scipy.stats.t``), a difference of two means
is Welch's t interval (``scipy.stats.ttest_ind(equal_var=False).confidence_interval``). One replicate has no spread:
its standard deviation and interval are None (n = 1 is shown as such, never as certainty).
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


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its Welch 95 % interval (``low``, ``high``); None bounds when either side has n < 2."""

    difference: float
    low: float | None
    high: float | None
    n_a: int
    n_b: int

    def __str__(self) -> str:
        if self.low is None:
            return f"{self.difference:+.1f} (n = {self.n_a}, {self.n_b}: no interval)"
        return f"{self.difference:+.1f} [{self.low:+.1f}, {self.high:+.1f}] (n = {self.n_a}, {self.n_b})"


def difference(a: Sequence[float], b: Sequence[float]) -> Difference:
    """mean(a) - mean(b) with Welch's t interval at ``CONFIDENCE``."""
    if not a or not b:
        raise ValueError("both sides need at least one value")
    diff = statistics.fmean(a) - statistics.fmean(b)
    if len(a) < 2 or len(b) < 2:
        return Difference(diff, None, None, len(a), len(b))
    if statistics.pstdev(a) == 0 and statistics.pstdev(b) == 0:
        return Difference(diff, diff, diff, len(a), len(b))
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
            lr=",".join(f"{r['lr']:g}" for r in done) or None,
            test_error_mean=summary.mean if summary else None,
            test_error_sd=summary.sd if summary else None,
            test_error_ci95=summary.ci95 if summary else None,
        )
        for name in TRIAL_ACTIVITY_FIELDS:
            values = [r[name] for r in done if r.get(name) is not None]
            out[name] = statistics.fmean(values) if values else None
        summaries.append(out)
    summaries.sort(key=point_sort_key)
    return summaries
