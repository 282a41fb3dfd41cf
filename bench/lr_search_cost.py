"""Compare the learning-rate search's cost: an exhaustive grid, Optuna TPE with pruning, and TPE with pruning and
warm starts.

Three sweeps run one after the other through the real ``orchestrator.run_sweep`` on one local 2-CPU Ray instance
(1 CPU per trial, 2 trials at a time), with different sweep names, in one SQLite store and one storage folder
(so the pretrained model is trained once and shared):

- (a) *grid*: ``--grid-size`` learning rates log-spaced over [``--lr-low``, ``--lr-high``], every trial to the last
  epoch (``pruner: none``);
- (b) *tpe*: Optuna TPE over the same range, a budget of ``--tpe-trials`` trials per point, pruned epoch by epoch by
  ``--pruner`` (default ``median``, ``n_startup_trials`` 1, ``n_warmup_steps`` 0), ``lr_search.warm_start: none``;
- (c) *warm*: the same with ``lr_search.warm_start: neighbours`` (``orchestrator._warm_start``: a point starts from
  its neighbours' best rate, then probes one step from it) and ``lr_search.patience`` ``--patience`` (default 1, the
  spec's default): a warm-started point stops once that many sampler trials in a row did not beat its best.

The points (``bench/lr_search_points.yaml``): the 16x16 calibration's analog c-TTv2 transfer
learning (swin_micro, digits 5 vs 8, 3 epochs, choice on the validation split shared by the seeds) at transfer noise
0, 10, 30 and 60 %, each at ``--seeds`` (default 0 1 2; pretraining is fixed to seed 0, so the seeds differ only in
fine-tuning).

Printed, per point and seed: each method's chosen learning rate and test error (the store's choice, by the spec's
selection rule: the reported number of the sweep), and the trial-epochs each used (sum of ``epochs_done`` over the
point's trials, pruned trials counting the epochs they ran). Summary: the trial-epochs of each method and the ratios
(b)/(a) and (c)/(a) (target: (c)/(a) <= 0.33); the grid's seed-to-seed spread at each device point, the
sample standard deviation of its chosen test errors across seeds; and whether each method's choice is within it at
every device point, i.e. its mean chosen test error over the seeds - the grid's <= that point's spread (doing better
than the grid counts as within); the same per seed is printed too. The mean is the figure a sweep reports for the
point (seeds are replicates, ``results._replicates``); per seed, two methods that choose alike still differ by the
seed noise of each, about sqrt(2) spreads apart. With 4 or more seeds, a control: the grid against itself, its seeds
split in two halves that each choose as a grid run with only them would, and whether each half's mean lies within
the other's sd (the criterion's noise floor: what a method exactly as good as the grid scores with half the seeds).

Sweeps already in the store of ``--workdir`` are not run again (``--methods warm`` reruns only (c) against the grid
found there).

    .venv/bin/python bench/lr_search_cost.py [--grid-size 6] [--tpe-trials 4] [--pruner median] [--seeds 0 1 2]
"""

from __future__ import annotations

import argparse
import math
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import ray

from analog_sweep.orchestrator import run_sweep
from analog_sweep.results import _best, _queries, open_store
from analog_sweep.sweeps import expand, load_spec

HERE = Path(__file__).resolve().parent
AXES = ("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod")


def log_grid(low: float, high: float, size: int) -> list[float]:
    if size == 1:
        return [low]
    return [float(f"{low * (high / low) ** (i / (size - 1)):.4g}") for i in range(size)]


def trial_epochs(trials) -> int:
    """Epochs the trials ran, together (a pruned or stopped trial counts the epochs it ran)."""
    return sum(int(t["epochs_done"] or 0) for t in trials)


def point_label(row: dict[str, Any], varied: tuple[str, ...] = ()) -> str:
    """A device point's identity across sweeps: mode, task and the varied axes' values (not the seed, not the key)."""
    axes = ",".join(f"{a}={row[a]:g}" for a in varied)
    return f"{row['mode']}/{row['task']}/{axes or 'base'}"


def run_one(name: str, spec_path: str, overrides: list[str], store, storage: Path) -> tuple[Any, float]:
    spec = load_spec(spec_path, overrides=[*overrides, f"name={name}"])
    points = expand(spec)
    print(
        f"\n--- sweep {name}: {len(points)} points x {spec.lr_search.trials_per_point} trials, method "
        f"{spec.lr_search.method}, pruner {spec.lr_search.pruner} {dict(spec.lr_search.pruner_options) or ''}, "
        f"{spec.epochs} epochs",
        flush=True,
    )
    started = time.time()
    outcome = run_sweep(spec, store, storage_root=storage, echo=lambda line: print(f"  | {line}", flush=True))
    seconds = time.time() - started
    print(f"  | {outcome.message}", flush=True)
    return outcome, seconds


def collect(store, sweep: str) -> dict[tuple[str, int], dict[str, Any]]:
    """Per (device point, seed): the chosen trial and all trials of the sweep."""
    trials_by_point: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for trial in store.list_trials(sweep):
        trials_by_point[trial["point_key"]].append(trial)
    out = {}
    rows = store.best_points(sweep)
    varied = tuple(a for a in AXES if len({row[a] for row in rows}) > 1)
    for row in rows:
        trials = trials_by_point[row["point_key"]]
        out[(point_label(row, varied), int(row["seed"]))] = {
            "lr": row["lr"],
            "error": row["test_error"],  # at the chosen epoch, chosen by the sweep's rule
            "trials": trials,
            "trial_epochs": trial_epochs(trials),
            "completed": sum(t["status"] == "completed" for t in trials),
            "pruned": sum(t["status"] == "pruned" for t in trials),
            "failed": sum(t["status"] == "failed" for t in trials),
        }
    return out


def half_choices(store, sweep: str, seeds: list[int]) -> dict[str, list[float]]:
    """The grid's chosen test errors per device point when only ``seeds`` exist: the sweep's own selection rule
    (``results._best.choose``) applied to those seeds' trials alone, as a grid run with just them would choose."""
    every = store.best_points(sweep)
    varied = tuple(a for a in AXES if len({row[a] for row in every}) > 1)
    rows = [row for row in every if int(row["seed"]) in seeds]
    groups: dict[str, list[str]] = defaultdict(list)
    with store.transaction() as connection:
        selection = _queries.sweep_selection(connection, sweep)
        by_point = {row["point_key"]: _queries.candidates(connection, sweep, row["point_key"]) for row in rows}
    for row in rows:
        groups[point_label(row, varied)].append(row["point_key"])
    chosen = _best.choose(sweep, by_point, groups.values(), selection)
    return {
        label: [chosen[key].test_error for key in keys if chosen[key].test_error is not None]
        for label, keys in groups.items()
    }


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--spec", default=str(HERE / "lr_search_points.yaml"), help="the points (default: %(default)s)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the points' spec for both sweeps (repeatable)",
    )
    parser.add_argument("--name", default="bench-lr", help="sweep name prefix (default: %(default)s)")
    parser.add_argument(
        "--grid-name",
        help="the grid sweep's name (default: PREFIX-grid); with --workdir, a finished "
        "grid sweep of that name in its store is compared with instead of run again",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of every sweep (default: 0 1 2)")
    parser.add_argument("--lr-low", type=float, default=0.01, help="lowest learning rate (default: %(default)s)")
    parser.add_argument("--lr-high", type=float, default=0.3, help="highest learning rate (default: %(default)s)")
    parser.add_argument("--grid-size", type=int, default=6, help="grid values, log-spaced (default: %(default)s)")
    parser.add_argument("--tpe-trials", type=int, default=4, help="Optuna trials per point (default: %(default)s)")
    parser.add_argument("--pruner", default="median", choices=("none", "median", "hyperband", "successive_halving"))
    parser.add_argument("--min-resource", type=int, default=1, help="hyperband/successive_halving (default: 1)")
    parser.add_argument("--reduction-factor", type=int, default=3, help="hyperband/successive_halving (default: 3)")
    parser.add_argument("--n-startup-trials", type=int, default=1, help="median (default: 1)")
    parser.add_argument("--n-warmup-steps", type=int, default=0, help="median (default: 0)")
    parser.add_argument("--search-seed", type=int, default=0, help="Optuna sampler seed (default: 0)")
    parser.add_argument("--patience", default="1", help="warm: lr_search.patience, an integer or none (default: 1)")
    parser.add_argument(
        "--methods",
        nargs="+",
        choices=("grid", "tpe", "warm"),
        default=["grid", "tpe", "warm"],
        help="which sweeps to run, in this order (default: all three)",
    )
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (default: 2)")
    parser.add_argument("--workdir", help="folder for the store and storage (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    grid = log_grid(args.lr_low, args.lr_high, args.grid_size)
    seeds = f"seeds=[{','.join(str(s) for s in args.seeds)}]"
    common = [*args.overrides, seeds]
    grid_overrides = [
        *common,
        "lr_search.method=grid",
        f"lr_search.values=[{','.join(map(str, grid))}]",
        f"lr_search.trials_per_point={len(grid)}",
        "lr_search.pruner=none",
    ]
    if args.pruner == "median":
        options = f"{{n_startup_trials: {args.n_startup_trials}, n_warmup_steps: {args.n_warmup_steps}}}"
    elif args.pruner in ("hyperband", "successive_halving"):
        options = f"{{min_resource: {args.min_resource}, reduction_factor: {args.reduction_factor}}}"
    else:
        options = "{}"
    tpe_overrides = [
        *common,
        "lr_search.method=tpe",
        f"lr_search.low={args.lr_low}",
        f"lr_search.high={args.lr_high}",
        f"lr_search.trials_per_point={args.tpe_trials}",
        f"lr_search.pruner={args.pruner}",
        f"lr_search.pruner_options={options}",
        f"lr_search.seed={args.search_seed}",
    ]
    overrides = {
        "grid": grid_overrides,
        "tpe": [*tpe_overrides, "lr_search.warm_start=none"],
        "warm": [*tpe_overrides, "lr_search.warm_start=neighbours", f"lr_search.patience={args.patience}"],
    }

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lr-search-cost-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{workdir / 'results.sqlite'}")
    storage = workdir / "storage"
    names = {method: f"{args.name}-{method}" for method in ("grid", "tpe", "warm")}
    if args.grid_name:
        names["grid"] = args.grid_name
    stored = {row["sweep"] for row in store.sweep_progress() if row["status"] == "finished"}
    to_run = [m for m in args.methods if names[m] not in stored]
    methods = [m for m in ("grid", "tpe", "warm") if m in args.methods or names[m] in stored]
    print(
        f"grid learning rates: {', '.join(f'{v:g}' for v in grid)}; tpe range [{args.lr_low:g}, {args.lr_high:g}]; "
        f"workdir {workdir}",
        flush=True,
    )

    seconds: dict[str, float] = {}
    started = time.time()
    ray.init(
        address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
    )
    try:
        for method in to_run:
            outcome, seconds[method] = run_one(names[method], args.spec, overrides[method], store, storage)
            if outcome.status != "finished":
                print(f"sweep {names[method]} did not finish: {outcome.message}", file=sys.stderr)
                return 1
    finally:
        ray.shutdown()
    total_seconds = time.time() - started

    results = {method: collect(store, names[method]) for method in methods}
    keys = sorted({key for found in results.values() for key in found})
    labels = sorted({label for label, _ in keys})
    searched = [m for m in methods if m != "grid"]

    for method in methods:
        print(f"\nper trial of the {method} sweep (lr, status, epochs run, final test error %):")
        for key in keys:
            row = results[method].get(key)
            if row is None:
                continue
            listed = ", ".join(
                f"{t['lr']:.4g} {t['status'][:4]} {t['epochs_done']}ep {fmt(t['final_test_error'], '.1f')}"
                for t in sorted(row["trials"], key=lambda t: t["lr"])
            )
            print(f"  {key[0]} seed {key[1]}: {listed}")

    # The grid's seed-to-seed spread at each device point: the sample standard deviation of its chosen test errors.
    spread: dict[str, float] = {}
    grid = results.get("grid", {})
    for label in labels:
        errors = [grid[(label, s)]["error"] for s in args.seeds if (label, s) in grid]
        errors = [e for e in errors if e is not None]
        spread[label] = statistics.stdev(errors) if len(errors) > 1 else float("nan")

    width = 40 + 29 * len(methods)
    print()
    print("=" * width)
    print(
        f"LR SEARCH COST  (grid: {args.grid_size} values x every epoch; tpe/warm: {args.tpe_trials} trials/point, "
        f"pruner {args.pruner} {options}; seeds {args.seeds})"
    )
    print("-" * width)
    print(
        f"{'point':<30} {'seed':>4} {'sd':>5} |"
        + "|".join(f" {m + ' lr':>8} {'err%':>6} {'ep':>3} {'ok':>3} " for m in methods)
    )
    totals = {method: 0 for method in methods}
    within = {method: 0 for method in searched}
    for key in keys:
        cells = []
        for method in methods:
            row = results[method].get(key)
            if row is None:
                cells.append(f" {'missing':>8} {'':>6} {'':>3} {'':>3} ")
                continue
            totals[method] += row["trial_epochs"]
            ok = ""
            if method != "grid" and key in grid:
                g, e = grid[key]["error"], row["error"]
                good = (
                    e is not None
                    and g is not None
                    and not math.isnan(spread[key[0]])
                    and e - g <= spread[key[0]] + 1e-9
                )
                within[method] += good
                ok = "yes" if good else "NO"
            cells.append(f" {fmt(row['lr'], '8.4g')} {fmt(row['error'], '6.1f')} {row['trial_epochs']:>3} {ok:>3} ")
        print(f"{key[0]:<30} {key[1]:>4} {fmt(spread[key[0]], '5.1f')} |" + "|".join(cells))
    print("-" * width)
    print("trial-epochs: " + ", ".join(f"{m} {totals[m]}" for m in methods))
    if "grid" in totals and totals["grid"]:
        for method, name in (("tpe", "(b) tpe + pruning"), ("warm", "(c) tpe + pruning + warm starts")):
            if method in totals:
                ratio = totals[method] / totals["grid"]
                target = f"   [{'MEETS' if ratio <= 0.33 else 'ABOVE'} target <= 0.33]" if method == "warm" else ""
                print(
                    f"{name} / (a) grid = {totals[method]} / {totals['grid']} = {ratio:.3f}; chosen test error "
                    f"within the grid's seed sd at {within[method]} of {len(keys)} point-seeds{target}"
                )
    if "grid" in results:
        print(
            "\nper device point, mean chosen test error over the seeds (%) and its distance to the grid's, against "
            "the grid's seed sd:"
        )
        point_within = {method: 0 for method in searched}
        for label in labels:
            means = {}
            for method in methods:
                errors = [results[method][(label, s)]["error"] for s in args.seeds if (label, s) in results[method]]
                errors = [e for e in errors if e is not None]
                means[method] = statistics.mean(errors) if errors else float("nan")
            cells = [f"grid {fmt(means['grid'], '.1f')}"]
            for method in searched:
                gap = means[method] - means["grid"]
                good = not math.isnan(gap) and gap <= spread[label] + 1e-9
                point_within[method] += good
                cells.append(f"{method} {fmt(means[method], '.1f')} ({gap:+.1f}, {'within' if good else 'OUTSIDE'})")
            print(f"  {label:<30} sd {fmt(spread[label], '4.1f')} | " + " | ".join(cells))
        for method in searched:
            print(
                f"  {method}: mean chosen test error within the grid's seed sd at {point_within[method]} of "
                f"{len(labels)} device points"
            )
    if "grid" in results and len(args.seeds) >= 4:
        # The criterion's noise floor: the grid against itself. Its seeds split in two halves, each choosing as a grid
        # run with only those seeds would; how often does one half's mean land within the other's sd?
        half = len(args.seeds) // 2
        first, second = args.seeds[:half], args.seeds[half:]
        a, b = half_choices(store, names["grid"], first), half_choices(store, names["grid"], second)
        print(
            f"\ncontrol, the grid against itself: seeds {first} (A) and {second} (B), each choosing alone; mean "
            "chosen test error (%), sd over the half's seeds, and whether B is within A's sd (B - A <= sd A) and A "
            "within B's:"
        )
        counts = [0, 0]
        for label in labels:
            if len(a.get(label, ())) < 2 or len(b.get(label, ())) < 2:
                continue
            ma, mb, sa, sb = (
                statistics.mean(a[label]),
                statistics.mean(b[label]),
                statistics.stdev(a[label]),
                statistics.stdev(b[label]),
            )
            ok = (mb - ma <= sa + 1e-9, ma - mb <= sb + 1e-9)
            counts = [counts[0] + ok[0], counts[1] + ok[1]]
            print(
                f"  {label:<30} A {ma:5.1f} (sd {sa:4.1f}) | B {mb:5.1f} (sd {sb:4.1f}) | B within A: "
                f"{'yes' if ok[0] else 'NO'}, A within B: {'yes' if ok[1] else 'NO'}"
            )
        print(
            f"  the grid's halves are within each other's sd at {counts[0]} and {counts[1]} of {len(labels)} "
            "device points"
        )
    print(
        "grid's seed sd of the chosen test error, per point: "
        + ", ".join(f"{label}: {fmt(value, '.1f')} pp" for label, value in spread.items())
    )
    print(
        "wall time: "
        + ", ".join(f"{m} {seconds.get(m, float('nan')):.0f} s" for m in methods)
        + f" (the first includes pretraining); whole bench with Ray start {total_seconds:.0f} s"
    )
    print("=" * width)

    store.close()
    if args.keep or args.workdir:
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
