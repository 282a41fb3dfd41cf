"""How often our way can meet the study-cost target at a given observation noise: a seeded model of study_cost.py.

``bench/study_cost.py`` runs one real sweep and prints one ratio. A run takes 10 to 25 minutes and aihwkit 1.1.0
seeds its cycle-to-cycle noise from the clock, so two runs of the same design give different ratios (0.313, 0.437,
0.548, 0.627 and "no critical point" so far), and one run cannot say how often a design meets the target or what it
would take. This script replays the same design on synthetic observations, ``--draws`` times (draw d uses
``numpy.random.default_rng(d)``):

- **The curve**: test error (%) flat at ``--flat`` up to the critical point ``--breakpoint`` (% transfer noise),
  then rising ``--slope`` percentage points per decade of transfer noise: the paper's Fig. 3 shape, linear in
  log10 of the axis as ``results`` fits it (``results._elbows``, ``LOG_AXES``).
- **The observations**: one per axis value and seed, the curve plus Gaussian noise of standard deviation ``sd``
  (percentage points; ``--sd``, several values compared). The real ones are the chosen trial's test error per seed.
- **The fit, the interval and the refinement** are the product's own: ``results.estimate_elbow`` (Muggeo fit, Davies
  test, 95 % interval) after the coarse grid and after each round, and the new values of a round are
  ``orchestrator._refine``'s (``--refine-points`` spread evenly inside the interval on the log scale).
- **The cost** of our way is trial-epochs per axis value and seed: ``--cost-base`` for the base point (the only
  one searched without a warm start), ``--cost-coarse`` for each other coarse value, ``--cost-refined`` for each
  refinement value, times ``--seeds``. **The paper's way** is priced exactly as ``bench/study_cost.py`` prices
  it: a uniform grid over the same range with spacing at most our final interval's width, times ``--grid-size``
  learning rates, the seeds and the epochs. That price takes a grid of spacing w to locate the critical point to
  within w, which noise does not allow; so the paper's way is also **modelled under the same noise**: uniform grids
  of ``--paper-grid`` values over the coarse range, ``--paper-draws`` draws each (draw d uses
  ``default_rng(10000 + d)``), the same fit, and the median width of the interval each gets.

``--store DIR/results.sqlite`` (a workdir kept by ``study_cost.py --workdir DIR``) calibrates the model from that
real run instead: the curve from its final fit (flat level, breakpoint, slope after it), the noise from the pooled
within-value standard deviation of its seeds' observations, and the three costs from its trials' epochs. Without it
the defaults are the figures measured in earlier runs (see each option's help).

Printed for each design (``--coarse``, each of ``--rounds``) and noise: the share of draws in which the sweep finds a
critical point (without one there is no width to match and no priced ratio, as in ``study_cost.py``), the quartiles
of the priced ratio over the draws that find one, the share of all draws that meet the target (ratio <= 0.25), our
median interval width and "vs equal width": our median cost over the cost of the paper's way with the fewest uniform
values whose median width is no wider than ours (that number of values in brackets). Both medians are over all
draws, a draw without a critical point counting as infinitely wide (so "inf" when half or more find none), and our
cost counts every draw. Then the uniform grids: values, spacing, cost, and per noise the share of draws that find a
critical point and the median width.

    .venv/bin/python bench/study_cost_model.py [--sd 4 7 10] [--draws 200] [--store DIR/results.sqlite]

About 0.1 s a fit on one core. Recorded runs: ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import warnings
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from study_cost import paper_values  # bench/ is the script's folder, first on sys.path

from analog_sweep.orchestrator._refine import _new_values
from analog_sweep.results import AXES, estimate_elbow, open_store, sweep_elbows

AXIS = "transfer_noise"
TARGET = 0.25


@dataclass(frozen=True)
class Curve:
    """Test error (%) flat at ``flat`` up to ``breakpoint`` (% transfer noise), then ``slope`` pp per decade."""

    flat: float
    breakpoint: float
    slope: float

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Test error at transfer noise ``x`` (%, shape (n,)); ``flat`` at 0 (no noise) and below the breakpoint."""
        lx = np.log10(np.where(x > 0, x, self.breakpoint))
        return np.where(x > 0, self.flat + self.slope * np.maximum(lx - math.log10(self.breakpoint), 0.0), self.flat)


@dataclass(frozen=True)
class Costs:
    """Trial-epochs per axis value and seed (the seeds share each learning rate: ``selection.per_seed`` false)."""

    base: float
    coarse: float
    refined: float


@dataclass(frozen=True)
class Design:
    """The coarse grid (% transfer noise, its first value the base point) and the refinement of our way."""

    coarse: tuple[float, ...]
    rounds: int
    points: int

    def describe(self) -> str:
        grid = " ".join(f"{v:g}" for v in self.coarse)
        return f"coarse {grid}; {self.rounds} x {self.points}" if self.rounds else f"coarse {grid}; no refinement"


def one_draw(
    design: Design,
    curve: Curve,
    sd: float,
    costs: Costs,
    *,
    seeds: int,
    epochs: int,
    grid_size: int,
    rng: np.random.Generator,
) -> tuple[float, float | None, float]:
    """Our cost (trial-epochs), the priced study-cost ratio and the final interval width of one simulated sweep; the
    ratio None and the width infinite when it finds no critical point (its cost was spent all the same)."""
    xs: list[float] = []
    ys: list[float] = []

    def observe(values: Sequence[float]) -> None:
        for value in values:
            for _ in range(seeds):
                xs.append(value)
                ys.append(float(curve(np.array([value], dtype=float))[0] + rng.normal(0.0, sd)))

    observe(design.coarse)
    cost = (costs.base + costs.coarse * (len(design.coarse) - 1)) * seeds
    line = set(design.coarse)
    elbow = estimate_elbow(xs, ys, log_x=True)
    for _ in range(design.rounds):
        if not elbow.has_elbow:
            break
        new = _new_values(elbow, line, design.points)
        if not new:
            break
        observe(new)
        line |= set(new)
        cost += costs.refined * len(new) * seeds
        elbow = estimate_elbow(xs, ys, log_x=True)
    if not elbow.has_elbow:
        return cost, None, math.inf
    paper = paper_values(min(line), max(line), elbow.width) * grid_size * seeds * epochs
    return cost, cost / paper, elbow.width


def uniform_widths(
    low: float, high: float, ks: Sequence[int], curve: Curve, sd: float, *, seeds: int, draws: int
) -> dict[int, tuple[float, float]]:
    """The paper's way under the same noise: for a uniform grid of k values over [low, high], the share of draws
    whose fit finds a critical point and the median width of its 95 % interval over all draws, a draw without one
    counting as infinitely wide (so the median is infinite when at most half find one)."""
    out: dict[int, tuple[float, float]] = {}
    for k in ks:
        values = np.linspace(low, high, k)
        widths = []
        for draw in range(draws):
            rng = np.random.default_rng(10_000 + draw)
            xs = np.repeat(values, seeds)
            ys = curve(xs) + rng.normal(0.0, sd, xs.size)
            elbow = estimate_elbow(xs, ys, log_x=True)
            widths.append(elbow.width if elbow.has_elbow else math.inf)
        out[k] = (sum(math.isfinite(w) for w in widths) / draws, float(np.median(widths)))
    return out


@dataclass(frozen=True)
class Calibration:
    """What a real study_cost.py sweep measured and how it was run."""

    curve: Curve
    sd: float
    costs: Costs
    design: Design
    seeds: int
    epochs: int


def calibrate(path: str, name: str) -> Calibration:
    """Curve, noise sd, costs and design of the real sweep ``name`` in a store kept by study_cost.py."""
    store = open_store(f"sqlite:///{Path(path).resolve()}")
    try:
        spec = store.get_sweep(name)["spec"]
        rows = [r for r in store.best_points(name) if r.get("test_error") is not None]
        value_of = {p["point_key"]: p[AXIS] for p in store.list_points(name)}
        trials = store.list_trials(name)
    finally:
        store.close()
    coarse = tuple(sorted(float(v) for v in spec["axes"][AXIS]))
    base = {a: float(spec["device"][a]) for a in AXES}
    elbow = sweep_elbows(rows, axis=AXIS, base=base)[0]
    if not elbow.has_elbow:
        raise SystemExit(f"{path}: the real sweep found no critical point ({elbow.reason}): nothing to calibrate from")
    by_value: dict[float, list[float]] = defaultdict(list)
    for row in rows:
        by_value[row[AXIS]].append(row["test_error"])
    spread = [(len(v) - 1, statistics.variance(v)) for v in by_value.values() if len(v) > 1]
    sd = math.sqrt(sum(d * v for d, v in spread) / sum(d for d, _ in spread))
    epochs: dict[float, int] = defaultdict(int)
    for trial in trials:
        epochs[value_of[trial["point_key"]]] += int(trial["epochs_done"] or 0)
    refined = sorted(set(epochs) - set(coarse))
    seeds = len(spec["seeds"])
    costs = Costs(
        base=epochs[base[AXIS]] / seeds,
        coarse=statistics.fmean(epochs[v] for v in coarse if v != base[AXIS]) / seeds,
        refined=statistics.fmean(epochs[v] for v in refined) / seeds if refined else 0.0,
    )
    refine = (spec["axes"].get("refine") or {}).get(AXIS) or {}
    return Calibration(
        curve=Curve(flat=elbow.flat_level, breakpoint=elbow.breakpoint, slope=elbow.slope_after),
        sd=sd,
        costs=costs,
        design=Design(coarse, int(refine.get("rounds", 0)), int(refine.get("points", 0))),
        seeds=seeds,
        epochs=int(spec["epochs"]),
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument(
        "--sd",
        type=float,
        nargs="+",
        default=[4.0, 7.0, 10.0],
        help="observation noise, pp (default: %(default)s; measured: pooled seed sd 7.15 in a "
        "study_cost.py run, per point 7.5 to 11.9 in bench/lr_search_cost.py's "
        "6-seed grid; bench/RESULTS.md)",
    )
    # Defaults: a study_cost.py run's figures (this script's --store on it gives them), rounded; bench/RESULTS.md.
    parser.add_argument(
        "--flat", type=float, default=20.0, help="flat test error, %% (default: %(default)s; measured 20.2)"
    )
    parser.add_argument(
        "--breakpoint",
        type=float,
        default=25.0,
        help="critical point, %% transfer noise (default: %(default)s; measured 25.1; other real runs "
        "found 10.1 to 37.9, the paper 15 for 2 classes)",
    )
    parser.add_argument(
        "--slope", type=float, default=45.0, help="rise after it, pp per decade (default: %(default)s; measured 44.8)"
    )
    parser.add_argument(
        "--cost-base",
        type=float,
        default=7.0,
        help="trial-epochs of the base point per seed (default: %(default)s; measured 7)",
    )
    parser.add_argument(
        "--cost-coarse",
        type=float,
        default=5.6,
        help="trial-epochs of another coarse value per seed (default: %(default)s; measured 5.6)",
    )
    parser.add_argument(
        "--cost-refined",
        type=float,
        default=5.7,
        help="trial-epochs of a refinement value per seed (default: %(default)s; measured 5.67 in "
        "that run, 3 to 3.4 in earlier ones)",
    )
    parser.add_argument(
        "--coarse",
        type=float,
        nargs="+",
        default=[0, 5, 10, 20, 40, 80],
        help="the coarse grid, %% transfer noise, base point first (default: study_cost.py's, %(default)s)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        nargs="+",
        default=[0, 1, 2, 4],
        help="refinement rounds to compare (default: %(default)s; study_cost.py runs 2)",
    )
    parser.add_argument("--refine-points", type=int, default=3, help="new values per round (default: %(default)s)")
    parser.add_argument(
        "--store",
        help="calibrate curve, noise, costs, coarse grid, refinement points, seeds and "
        "epochs from a kept study_cost.py store instead (its rounds are added to --rounds)",
    )
    parser.add_argument("--name", default="bench-study", help="the sweep in --store (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=3, help="seeds (default: %(default)s)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per trial (default: %(default)s)")
    parser.add_argument("--grid-size", type=int, default=6, help="the paper's way: learning rates (default: 6)")
    parser.add_argument(
        "--paper-grid",
        type=int,
        nargs="+",
        default=[5, 7, 9, 11, 13, 17, 21, 25, 33, 41],
        help="uniform grid sizes tried for the paper's way under the same noise (default: %(default)s)",
    )
    parser.add_argument(
        "--paper-draws", type=int, default=60, help="draws per uniform grid and noise (default: %(default)s)"
    )
    parser.add_argument("--draws", type=int, default=200, help="draws per design and noise (default: %(default)s)")
    args = parser.parse_args()

    curve = Curve(args.flat, args.breakpoint, args.slope)
    costs = Costs(args.cost_base, args.cost_coarse, args.cost_refined)
    sds = list(args.sd)
    coarse, rounds, points = tuple(sorted(set(args.coarse))), sorted(set(args.rounds)), args.refine_points
    if args.store:
        real = calibrate(args.store, args.name)
        curve, costs, args.seeds, args.epochs = real.curve, real.costs, real.seeds, real.epochs
        coarse, points = real.design.coarse, real.design.points or points
        rounds = sorted({*rounds, real.design.rounds})
        sds = sorted({round(real.sd, 2), *sds})
        print(
            f"calibrated from {args.store}: {real.design.describe()}, {real.seeds} seeds, {real.epochs} epochs; "
            f"curve flat {curve.flat:.1f} %, critical point {curve.breakpoint:.3g} %, slope {curve.slope:.1f} "
            f"pp/decade; pooled seed sd {real.sd:.2f} pp; trial-epochs per value and seed: base "
            f"{costs.base:.3g}, coarse {costs.coarse:.3g}, refined {costs.refined:.3g}"
        )
    designs = [Design(coarse, r, points) for r in rounds]
    print(
        f"curve: flat {curve.flat:g} %, critical point {curve.breakpoint:g} %, then +{curve.slope:g} pp per decade; "
        f"{args.seeds} seeds, {args.epochs} epochs, paper's grid {args.grid_size} learning rates; trial-epochs per "
        f"value and seed: base {costs.base:.3g}, coarse {costs.coarse:.3g}, refined {costs.refined:.3g}; "
        f"{args.draws} draws each"
    )
    ks = sorted({k for k in args.paper_grid if k >= 5})
    low, high = min(designs[0].coarse), max(designs[0].coarse)
    started = time.time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print()
        print(
            f"{'design':44s} {'sd pp':>6s} {'critical point':>15s} {'ratio q25':>10s} {'median':>8s} {'q75':>8s} "
            f"{'meets <= 0.25':>14s} {'width median':>13s} {'vs equal width':>15s}"
        )
        uniform = {}
        for sd in sds:
            uniform[sd] = uniform_widths(low, high, ks, curve, sd, seeds=args.seeds, draws=args.paper_draws)
        for design in designs:
            for sd in sds:
                draws = [
                    one_draw(
                        design,
                        curve,
                        sd,
                        costs,
                        seeds=args.seeds,
                        epochs=args.epochs,
                        grid_size=args.grid_size,
                        rng=np.random.default_rng(draw),
                    )
                    for draw in range(args.draws)
                ]
                ratios = [r for _, r, _ in draws if r is not None]
                found = len(ratios) / args.draws
                meets = sum(r <= TARGET for r in ratios) / args.draws
                quartiles = (
                    " ".join(
                        f"{q:{w}.3f}" for q, w in zip(np.quantile(ratios, [0.25, 0.5, 0.75]), (10, 8, 8), strict=True)
                    )
                    if ratios
                    else f"{'-':>10s} {'-':>8s} {'-':>8s}"
                )
                # Over all draws, a draw without a critical point counting as infinitely wide; our cost is spent
                # either way. The paper's way at equal width: the fewest uniform values whose median is no wider.
                width = float(np.median([w for _, _, w in draws]))
                cost = statistics.median(c for c, _, _ in draws)
                k = next((k for k in ks if uniform[sd][k][1] <= width), None) if math.isfinite(width) else None
                if k is not None:
                    equal = f"{cost / (k * args.grid_size * args.seeds * args.epochs):8.3f} ({k:3d})"
                elif math.isfinite(width):
                    equal = f"< {cost / (ks[-1] * args.grid_size * args.seeds * args.epochs):.3f} (>{ks[-1]})"
                else:
                    equal = "-"
                extra = f"{width:13.3g} {equal:>15s}"
                print(f"{design.describe():44s} {sd:6.2f} {found:15.2f} {quartiles} {meets:14.2f} {extra}", flush=True)
        print()
        print(
            f"the paper's way under the same noise: uniform grids over [{low:g}, {high:g}], {args.seeds} seeds, "
            f"{args.paper_draws} draws each"
        )
        print(
            f"{'values':>7s} {'spacing':>8s} {'trial-epochs':>13s} "
            + " ".join(f"{f'sd {sd:g}: found, median width':>30s}" for sd in sds)
        )
        for k in ks:
            cells = []
            for sd in sds:
                share, width = uniform[sd][k]
                cells.append(f"{share:19.2f}, {width:9.3g}")
            print(
                f"{k:7d} {(high - low) / (k - 1):8.3g} {k * args.grid_size * args.seeds * args.epochs:13d} "
                + " ".join(f"{c:>30s}" for c in cells)
            )
    print(f"\n{time.time() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
