"""Critical points (elbows): where test error starts rising from its flat level along a device axis, with a 95 %
interval, and a test of whether there is an elbow at all.

The paper reads its elbows off the plots ("test error mostly constant until the weight transfer noise exceeds 15 %
[2 classes] ... the elbow point was 10 % [5 classes]", Section III-B, Fig. 3; symmetry-point variability "about 10 %"
for 5 classes, Fig. 4). Here they are estimated from every replicate with ``piecewise-regression`` (Pilgrim 2021):

- **The fit**: one-breakpoint continuous segmented regression, test error = c + a x + b (x - bp)+, by Muggeo's
  iterative method (``piecewise_regression.main.Muggeo``). It is started from every midpoint between neighbouring axis
  values inside the fit range and the converged fit with the lowest residual sum of squares is kept: deterministic
  (no random restarts), so the same store always gives the same elbows (adaptive refinement relies on this).
- **The interval**: the library's breakpoint standard error (Muggeo 2003, delta method) with Student's t on
  ``n_obs - 4`` degrees of freedom, at level ``1 - alpha`` (the library's own 95 % interval when ``alpha`` is 0.05).
  It is a Wald interval: it covers the true elbow about as often as it says when the rise is large against the
  noise, and less often when the rise is weak (``bench/elbow_coverage.py`` measures the hit rate).
- **Is there an elbow?** The Davies (1987) test of "no change of slope" (``piecewise_regression.davies``), one-sided
  (alternative: the slope increases, i.e. error rises faster after the breakpoint), at ``alpha`` (0.05).

Rules (each "no" gives ``has_elbow`` False with the reason, and no breakpoint; ``tested`` says whether the Davies test
ran, so "not tested" (too few values) is never read as "tested, none found"):

- Seeds are replicates: every seed's observation enters the fit and the test (never a mean); the residual variance
  comes from the seeds' spread and the lack of fit. One seed is allowed: the interval then rests on the lack of fit
  alone, i.e. on the curve being piecewise linear around the elbow.
- At least ``MIN_AXIS_VALUES`` (5) distinct axis values: two on each side of the elbow define its two lines, and
  the Davies test scans breakpoints from the third-smallest to the third-largest value (the library's range), which
  needs five. At least ``MIN_OBSERVATIONS`` (6) observations, so the interval has two residual degrees of freedom.
  With fewer, the curve is not tested (``tested`` False, reason ``not tested: ...``).
- No elbow when the Davies p-value is ``alpha`` or more (a flat or straight curve), when the fit does not converge,
  when the breakpoint falls outside the open range between the second-smallest and second-largest axis value (one
  side would rest on a single value: "at the edge"), or when the slope does not increase at it or test error does
  not rise after it (the library's t test of ``slope_after``, made one-sided, not significant at ``alpha``: a curve
  that falls and then levels off changes slope upward but has no critical point).
- ``flat_level``: mean test error (percent) of the observations below the breakpoint. ``slope_after``: the fitted
  slope after it, in percent per axis unit, or per decade of the axis when ``log_x``.
- ``log_x``: the fit runs in log10 of the axis for the axes the paper plots on a log scale (``LOG_AXES``: transfer
  noise, Fig. 3); breakpoint and interval are transformed back into axis units. log10(0) does not exist, so an axis
  value of 0 (no noise) is placed one decade below the smallest positive value (at a tenth of it) for the fit; the
  breakpoint itself always lies above the smallest positive value, but an interval end below that value only says
  "between 0 and the smallest positive value", as it is transformed back from that nominal position.
"""

from __future__ import annotations

import math
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib.metadata import version
from typing import Any

import numpy as np

from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._labels import algorithm_rank
from analog_sweep.results._replicates import MIN_REPLICATES
from analog_sweep.results._schema import AXES

ALPHA = 0.05
MIN_AXIS_VALUES = 5
MIN_OBSERVATIONS = 6
# Davies test: how many breakpoints it scans between its range's ends (the library's default).
DAVIES_SCAN_POINTS = 10
NOT_TESTED = "not tested: "


@dataclass(frozen=True)
class Elbow:
    """The critical point of one axis for one mode and task, or why there is none.

    Axis values (``breakpoint``, ``ci_low``, ``ci_high``) are in the unit the store keeps the axis in (percent for
    transfer noise and the symmetry-point axes, fractions for pulse noise and dtod; README "What it does"); test
    errors in percent. ``tested``: whether the one-sided Davies test of "no breakpoint" ran (False with fewer than
    ``MIN_AXIS_VALUES`` axis values or ``MIN_OBSERVATIONS`` observations); ``p_value`` is its p-value (None when not
    tested). ``has_elbow`` is False both when not tested and when tested and none found: ``tested`` and ``reason``
    tell them apart. ``n_values`` distinct axis values, ``n_obs`` observations (one per value and seed). ``method``
    names the library and its version; ``reason`` says why there is no elbow (empty when there is one; starting
    ``not tested: `` when the test did not run). ``algorithm`` is the analog training algorithm of the curve
    (``points.algorithm``; None for a digital mode).
    """

    mode: str
    algorithm: str | None
    task: str
    axis: str
    n_values: int
    n_obs: int
    tested: bool
    has_elbow: bool
    breakpoint: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    flat_level: float | None
    slope_after: float | None
    log_x: bool
    method: str
    reason: str

    def as_row(self) -> dict[str, Any]:
        """The fields as a dict, in declaration order (a row for tables, CSV, JSON and Parquet)."""
        return asdict(self)

    @property
    def width(self) -> float | None:
        """The interval's width in axis units (None without an elbow)."""
        return None if self.ci_low is None or self.ci_high is None else self.ci_high - self.ci_low


def method_name() -> str:
    return f"piecewise-regression {version('piecewise-regression')}: Muggeo fit, one-sided Davies test"


def estimate_elbow(
    x: Sequence[float],
    y: Sequence[float],
    *,
    log_x: bool = False,
    alpha: float = ALPHA,
    mode: str = "",
    task: str = "",
    axis: str = "",
    algorithm: str | None = None,
) -> Elbow:
    """The elbow of test error ``y`` (percent) against axis values ``x``, one observation per point and seed.

    ``x`` and ``y`` are equal-length sequences of finite numbers (shape (n_obs,)); ``log_x`` fits in log10 of
    ``x`` (0 placed a decade below the smallest positive value, see the module docstring); ``alpha`` is the
    significance level of the Davies test and 1 - ``alpha`` the interval's level. ``mode``, ``algorithm``, ``task``
    and ``axis`` only label the result. Raises ``StoreInputError`` for unequal lengths, non-finite values, negative
    ``x`` with ``log_x``, or ``alpha`` outside (0, 1).
    """
    xs, ys = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if xs.shape != ys.shape or xs.ndim != 1:
        raise StoreInputError(f"x and y need one value per observation (got {xs.shape} and {ys.shape})")
    if not (np.isfinite(xs).all() and np.isfinite(ys).all()):
        raise StoreInputError("axis values and test errors must be finite numbers")
    if not 0 < alpha < 1:
        raise StoreInputError(f"alpha must be between 0 and 1, not {alpha}")
    if log_x and (xs < 0).any():
        raise StoreInputError(f"a log axis cannot have negative values ({axis or 'x'} down to {xs.min():g})")
    order = np.argsort(xs, kind="stable")
    xs, ys = xs[order], ys[order]
    values = np.unique(xs)

    def result(reason: str, **found: Any) -> Elbow:
        fields = dict(breakpoint=None, ci_low=None, ci_high=None, p_value=None, flat_level=None, slope_after=None)
        fields.update(found)
        return Elbow(
            mode=mode,
            algorithm=algorithm,
            task=task,
            axis=axis,
            n_values=len(values),
            n_obs=len(xs),
            tested=not reason.startswith(NOT_TESTED),
            has_elbow=not reason,
            log_x=log_x,
            method=method_name(),
            reason=reason,
            **fields,
        )

    if len(values) < MIN_AXIS_VALUES:
        return result(f"{NOT_TESTED}fewer than {MIN_AXIS_VALUES} axis values ({len(values)})")
    if len(xs) < MIN_OBSERVATIONS:
        return result(f"{NOT_TESTED}fewer than {MIN_OBSERVATIONS} observations ({len(xs)})")

    fx = _to_fit_space(xs, log_x)
    fvalues = np.unique(fx)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels warns about designs the Muggeo iterations leave behind
        p_value = _davies_p(fx, ys)
        fit = _best_fit(fx, ys, fvalues)
    p_value = None if p_value is None or not math.isfinite(p_value) else min(float(p_value), 1.0)
    if p_value is None:
        return result(f"{NOT_TESTED}the Davies test could not be computed")
    if p_value >= alpha:
        return result(f"no significant rise in slope (Davies p = {p_value:.3g} >= {alpha:g})", p_value=p_value)
    if fit is None:
        return result("the breakpoint fit did not converge", p_value=p_value)

    estimates = fit.estimates
    bp = float(estimates["breakpoint1"]["estimate"])
    se = float(estimates["breakpoint1"]["se"])
    change = float(estimates["beta1"]["estimate"])
    slope_after = float(estimates["alpha2"]["estimate"])
    to_axis = (lambda v: 10.0**v) if log_x else (lambda v: v)
    if not fvalues[1] < bp < fvalues[-2]:
        return result(
            f"breakpoint at the edge of the swept range ({to_axis(bp):.4g}: not between the second-smallest and "
            "second-largest axis value)",
            p_value=p_value,
        )
    # The library's two-sided t test of the slope after the breakpoint, made one-sided: does error rise there?
    rise_p = float(estimates["alpha2"]["p_t"]) / 2
    if change <= 0 or slope_after <= 0 or not rise_p < alpha:
        return result(
            f"test error does not rise after the breakpoint (slope {slope_after:.3g}, one-sided p = {rise_p:.3g})",
            p_value=p_value,
        )
    from scipy import stats

    half = float(stats.t.ppf(1 - alpha / 2, len(xs) - 4)) * se
    return result(
        "",
        breakpoint=to_axis(bp),
        ci_low=to_axis(bp - half),
        ci_high=to_axis(bp + half),
        p_value=p_value,
        flat_level=float(ys[fx < bp].mean()),
        slope_after=slope_after,
    )


def _to_fit_space(xs: np.ndarray, log_x: bool) -> np.ndarray:
    if not log_x:
        return xs
    positive = xs[xs > 0]
    if positive.size == 0:
        raise StoreInputError("a log axis needs a positive value")
    return np.log10(np.where(xs > 0, xs, positive.min() / 10))


def _davies_p(fx: np.ndarray, ys: np.ndarray) -> float | None:
    """The library's one-sided Davies test on data sorted by ``fx``.

    ``davies_test`` scans breakpoints from the third to the third-last observation *in the order given*: written
    for one observation per x value. With replicates, sorted order would put the ends of that range on the
    smallest and largest values, where the model is singular (its statistic there is NaN). So the observations go
    in an order whose third and third-last are the third-smallest and third-largest distinct values, the library's
    own range for one observation per value; the regressions themselves do not depend on the order.
    """
    from piecewise_regression import davies

    values = np.unique(fx)
    low, high = values[2], values[-3]
    n = len(fx)
    first_low = int(np.flatnonzero(fx == low)[0])
    if n == len(values):  # one observation per value: the library's case as it is
        order = np.arange(n)
    else:
        candidates = [i for i in np.flatnonzero(fx == high)[::-1] if i != first_low]
        if not candidates:  # five values with a single observation at the middle one: scan up to the fourth
            candidates = list(np.flatnonzero(fx == values[-2]))
        last_high = int(candidates[0])
        rest = [i for i in range(n) if i not in (first_low, last_high)]
        order = np.array([*rest[:2], first_low, *rest[2:-2], last_high, *rest[-2:]])
    p = davies.davies_test(fx[order], ys[order], k=DAVIES_SCAN_POINTS, alternative="greater")
    return None if p is None else float(p)


def _best_fit(fx: np.ndarray, ys: np.ndarray, fvalues: np.ndarray) -> Any | None:
    """The converged Muggeo fit with the lowest residual sum of squares over starts at every midpoint between
    neighbouring values from the second to the second-last (None if no start converges)."""
    from piecewise_regression.main import Muggeo

    starts = (fvalues[1:-2] + fvalues[2:-1]) / 2
    best = None
    for start in starts:
        fit = Muggeo(fx, ys, n_breakpoints=1, start_values=[float(start)])
        if fit.converged and fit.best_fit is not None:
            if best is None or fit.best_fit.residual_sum_squares < best.residual_sum_squares:
                best = fit.best_fit
    return best


def sweep_elbows(
    best_rows: Iterable[Mapping[str, Any]],
    *,
    axis: str | None = None,
    base: Mapping[str, float] | None = None,
    alpha: float = ALPHA,
) -> list[Elbow]:
    """The elbow of every axis the sweep varies, per mode, algorithm and task (one curve each).

    For each mode, algorithm and task and each axis (``axis`` only, if given): the points that vary that axis alone,
    every other axis at its base value, one observation per point and seed (its chosen trial's final test error; points
    without a chosen trial, i.e. whose trials all failed, were pruned or diverged, are left out). An axis counts as
    varied where such points have more than one value. The base value of an axis is ``base[axis]`` (the spec's
    ``device`` section) where given, else the value most points of that mode and task have (ties: the smallest):
    with the one-at-a-time expansion that is the base point's. Log axes: ``LOG_AXES``. A row's algorithm is its
    ``algorithm`` (None or absent for a digital point).

    Args:
        best_rows: ``Store.best_points`` rows, one per point and seed; test errors in percent.
        axis: Only this device axis (``AXES``); None: every axis the sweep varies.
        base: Base value of each axis, in the axis's unit (the spec's ``device`` section); None: the most common.
        alpha: Significance level of the Davies test that an elbow exists.

    Returns:
        The elbows by mode, algorithm, task and axis (``AXES`` order).

    Raises:
        StoreInputError: For an unknown ``axis`` or one that no mode and task varies.
    """
    if axis is not None and axis not in AXES:
        raise StoreInputError(f"unknown axis {axis!r}: expected one of {', '.join(AXES)}")
    groups: dict[tuple[str, str, str], list[Mapping[str, Any]]] = defaultdict(list)
    for row in best_rows:
        groups[(row["mode"], row.get("algorithm") or "", row["task"])].append(row)
    from analog_sweep.results._figures import LOG_AXES  # here: the figures import this module's elbow texts

    elbows = []
    varied: set[str] = set()
    for (mode, algorithm, task), rows in sorted(
        groups.items(), key=lambda g: (g[0][0], algorithm_rank(g[0][1]), g[0][2])
    ):
        bases = {a: _base_value(rows, a, base) for a in AXES}
        for name in AXES:
            at_base = [r for r in rows if all(r[o] == bases[o] for o in AXES if o != name)]
            if len({r[name] for r in at_base}) < 2:
                continue
            varied.add(name)
            if axis is not None and name != axis:
                continue
            # The chosen trial's test error at its chosen epoch (``test_error``; selected on validation or, the paper's
            # rule, on test: see ``results._best``). Rows without it (older callers) fall back to the final epoch's.
            error = "test_error" if any("test_error" in r for r in at_base) else "final_test_error"
            done = [r for r in at_base if r.get(error) is not None]
            elbows.append(
                estimate_elbow(
                    [r[name] for r in done],
                    [r[error] for r in done],
                    log_x=name in LOG_AXES,
                    alpha=alpha,
                    mode=mode,
                    task=task,
                    axis=name,
                    algorithm=algorithm or None,
                )
            )
    if axis is not None and axis not in varied:
        others = ", ".join(a for a in AXES if a in varied) or "none"
        raise StoreInputError(f"the sweep did not vary {axis} (axes it varied: {others})")
    return elbows


def _base_value(rows: Sequence[Mapping[str, Any]], axis: str, base: Mapping[str, float] | None) -> float:
    if base is not None and isinstance(base.get(axis), (int, float)) and not isinstance(base.get(axis), bool):
        return float(base[axis])
    counts = Counter(r[axis] for r in rows)
    return min(counts, key=lambda v: (-counts[v], v))


def elbow_tested(elbow: Mapping[str, Any]) -> bool:
    """Whether the elbow row (``Elbow.as_row()``) was tested; a row without ``tested`` counts as tested when it
    carries a p-value, or an elbow."""
    tested = elbow.get("tested")
    if tested is not None:
        return bool(tested)
    return bool(elbow.get("has_elbow")) or elbow.get("p_value") is not None


def elbow_outcome(elbow: Mapping[str, Any], unit: str = "") -> str:
    """An elbow row in words, keeping "not tested" apart from "tested, none found":

    - ``10.2 % [8, 12.5]``: the critical point and its 95 % interval (``unit`` after the point), followed by
      ``(fewer than 3 seeds: unreliable)`` where ``elbow_few_seeds``;
    - ``not tested: fewer than 5 axis values (3)``: the reason the test did not run;
    - ``tested, none found (p = 0.4)``, or with a significant rise but no usable breakpoint
      ``tested, none found (p = 0.012; the breakpoint fit did not converge)``.
    """
    point, low, high = elbow.get("breakpoint"), elbow.get("ci_low"), elbow.get("ci_high")
    if elbow.get("has_elbow") and point is not None:
        text = f"{point:.3g}{unit}" + (f" [{low:.3g}, {high:.3g}]" if low is not None and high is not None else "")
        return text + (f" ({FEW_SEEDS_MARK})" if elbow_few_seeds(elbow) else "")
    reason = str(elbow.get("reason") or "")
    if not elbow_tested(elbow):
        return reason if reason.startswith(NOT_TESTED) else f"{NOT_TESTED}{reason or 'too few values'}"
    p = elbow.get("p_value")
    found = f"p = {p:.2g}" if p is not None else ""
    if reason and not reason.startswith("no significant rise"):
        # A significant rise without a usable breakpoint (no convergence, at the range's edge, no rise after it):
        # the p-value alone would read as an elbow found.
        found += ("; " if found else "") + reason.split(" (", 1)[0]
    return f"tested, none found ({found})" if found else "tested, none found"


def elbow_few_seeds(elbow: Mapping[str, Any]) -> bool:
    """A tested curve with fewer than ``MIN_REPLICATES`` observations (seeds) per axis value on average: its critical
    point's interval rests on the scatter of single trials, flagged like every interval from fewer than 3 seeds."""
    values, observations = elbow.get("n_values"), elbow.get("n_obs")
    return bool(elbow_tested(elbow) and values and observations is not None and observations < MIN_REPLICATES * values)


FEW_SEEDS_MARK = "fewer than 3 seeds: unreliable"


def few_seeds_elbows_note(elbows: Iterable[Mapping[str, Any]]) -> str | None:
    """One sentence for the tested curves with fewer than ``MIN_REPLICATES`` seeds a value, or None."""
    few = [e for e in elbows if elbow_few_seeds(e)]
    if not few:
        return None
    return (
        f"Critical points from fewer than {MIN_REPLICATES} seeds a value for {len(few)} curve(s): their intervals "
        "rest on single trials' scatter and are unreliable."
    )


def untested_note(elbows: Iterable[Mapping[str, Any]]) -> str | None:
    """One sentence for the curves that were not tested, or None when every curve was: how many values the test needs
    (``MIN_AXIS_VALUES``) and how many the sweep has."""
    untested = [e for e in elbows if not elbow_tested(e)]
    if not untested:
        return None
    counts = sorted({int(e["n_values"]) for e in untested if e.get("n_values") is not None})
    have = f" (these have {' or '.join(map(str, counts))} axis values)" if counts else ""
    return (
        f"Critical points not tested for {len(untested)} curve(s): the test needs at least {MIN_AXIS_VALUES} axis "
        f"values and {MIN_OBSERVATIONS} observations{have}; not tested is not the same as no critical point."
    )
