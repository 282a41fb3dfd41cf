"""How often the elbow's 95 % interval contains the true critical point, and how often a curve without one gets one.

``results.estimate_elbow`` on synthetic curves with a known shape and Gaussian noise, ``--draws`` seeded draws each
(draw d uses ``numpy.random.default_rng(d)``), at several noise levels:

- *hinge*: flat at 10 % until 43, then +0.3 % per axis unit, on the axis values 0, 10, ..., 100 (a linear axis),
  ``--seeds`` observations per value;
- *paper*: the paper's Fig. 3 shape on its ten transfer-noise levels (0-100 %, fitted on log10): flat at 10 % until
  15 % noise (2 classes) or at 20 % until 10 % (5 classes), then rising linearly in log10 to 45 % or 50 % at 100 %;
- *flat* and *line*: flat at 20 %, and a straight rise 10 + 0.3 x, on the hinge's axis: no elbow exists.

Printed per case: the fraction of draws with an elbow, the hit rate (draws whose interval contains the true
breakpoint; a draw without an elbow is a miss), and the median interval width. Nominal: hit rate 0.95, and at most
0.05 elbows on the flat and straight curves.

    .venv/bin/python bench/elbow_coverage.py [--draws 200] [--seeds 3] [--sd 0.5 1 2 4]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time

import numpy as np

from analog_sweep import results

HINGE_AXIS = np.arange(0.0, 101.0, 10.0)
PAPER_NOISE = np.array([0, 1, 2, 5, 10, 15, 20, 30, 50, 100], dtype=float)


def paper_curve(x: np.ndarray, flat: float, elbow: float, top: float) -> np.ndarray:
    lx = np.log10(np.where(x > 0, x, 0.1))
    return flat + (top - flat) * np.maximum(lx - math.log10(elbow), 0.0) / (2 - math.log10(elbow))


def cases(seeds: int) -> list[tuple[str, np.ndarray, np.ndarray, float | None, bool]]:
    """(name, x, noiseless y, true breakpoint or None, log_x)."""
    x = np.repeat(HINGE_AXIS, seeds)
    xp = np.repeat(PAPER_NOISE, seeds)
    return [
        ("hinge bp=43 slope=0.3", x, 10.0 + 0.3 * np.maximum(x - 43.0, 0.0), 43.0, False),
        ("paper 2-class elbow 15 %", xp, paper_curve(xp, 10.0, 15.0, 45.0), 15.0, True),
        ("paper 5-class elbow 10 %", xp, paper_curve(xp, 20.0, 10.0, 50.0), 10.0, True),
        ("flat 20 %", x, np.full(x.size, 20.0), None, False),
        ("line 10 + 0.3 x", x, 10.0 + 0.3 * x, None, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--seeds", type=int, default=3, help="observations (seeds) per axis value")
    parser.add_argument("--sd", type=float, nargs="+", default=[0.5, 1.0, 2.0, 4.0], help="noise sd, percent")
    args = parser.parse_args()
    print(f"{args.draws} draws per case, {args.seeds} seeds per axis value, 95 % intervals, Davies alpha 0.05")
    print(f"{'case':<26} {'sd %':>5} {'elbows':>7} {'hit rate':>9} {'median width':>13} {'ms/fit':>7}")
    for name, x, mean, truth, log_x in cases(args.seeds):
        for sd in args.sd:
            found = hits = 0
            widths = []
            started = time.perf_counter()
            for draw in range(args.draws):
                y = mean + np.random.default_rng(draw).normal(0.0, sd, mean.size)
                elbow = results.estimate_elbow(x, y, log_x=log_x)
                found += elbow.has_elbow
                if elbow.has_elbow:
                    widths.append(elbow.width)
                    hits += truth is not None and elbow.ci_low <= truth <= elbow.ci_high
            ms = 1000 * (time.perf_counter() - started) / args.draws
            rate = f"{hits / args.draws:.3f}" if truth is not None else "-"
            width = f"{statistics.median(widths):.3g}" if widths else "-"
            print(f"{name:<26} {sd:>5g} {found / args.draws:>7.3f} {rate:>9} {width:>13} {ms:>7.0f}", flush=True)


if __name__ == "__main__":
    main()
