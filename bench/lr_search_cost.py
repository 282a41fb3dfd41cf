"""Compare the learning-rate search's cost: Optuna TPE with pruning against an exhaustive grid, on the same points.

Two sweeps run one after the other through the real ``orchestrator.run_sweep`` on one local 2-CPU Ray instance
(1 CPU per trial, 2 trials at a time), with different sweep names, in one SQLite store and one storage folder
(so the pretrained model is trained once and shared):

- *grid*: ``--grid-size`` learning rates log-spaced over [``--lr-low``, ``--lr-high``], every trial to the last epoch
  (``pruner: none``);
- *tpe*: Optuna TPE over the same range, a budget of ``--tpe-trials`` trials per point, pruned epoch by epoch by
  ``--pruner`` (default ``hyperband``, ``min_resource`` 1, ``reduction_factor`` 3).

The points (``bench/lr_search_points.yaml``): analog c-TTv2 transfer learning, digits 5 vs 8, a nano Swin, transfer
noise 0 % and 30 %, 6 epochs, each at ``--seeds`` (default 0 and 1: both methods run at both seeds; pretraining is
fixed to seed 0, so the seeds differ only in fine-tuning).

Printed, per point: each method's chosen learning rate and final test error (the store's choice: the lowest final
test error among completed trials), and the trial-epochs each used (sum of ``epochs_done`` over the point's trials,
pruned trials counting the epochs they ran). Summary: the trial-epochs of each method and their ratio (target:
tpe / grid <= 0.5); the grid's run-to-run spread at each device point, |best error at seed a - best error at seed b|
(the largest pairwise difference when more than two seeds); and whether Optuna's choice is within it at every point,
i.e. tpe error - grid error <= that point's spread (Optuna doing better than the grid counts as within).

    .venv/bin/python bench/lr_search_cost.py [--grid-size 8] [--tpe-trials 8] [--pruner hyperband] [--seeds 0 1]
"""

from __future__ import annotations

import argparse
import itertools
import math
import shutil
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import ray

from orchestrator import run_sweep
from results import open_store
from sweeps import expand, load_spec

HERE = Path(__file__).resolve().parent
AXES = ("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod")


def log_grid(low: float, high: float, size: int) -> list[float]:
    if size == 1:
        return [low]
    return [float(f"{low * (high / low) ** (i / (size - 1)):.4g}") for i in range(size)]


def point_label(row: dict[str, Any], varied: tuple[str, ...] = ()) -> str:
    """A device point's identity across sweeps: mode, task and the varied axes' values (not the seed, not the key)."""
    axes = ",".join(f"{a}={row[a]:g}" for a in varied)
    return f"{row['mode']}/{row['task']}/{axes or 'base'}"


def run_one(name: str, spec_path: str, overrides: list[str], store, storage: Path) -> tuple[Any, float]:
    spec = load_spec(spec_path, overrides=[*overrides, f"name={name}"])
    points = expand(spec)
    print(f"\n--- sweep {name}: {len(points)} points x {spec.lr_search.trials_per_point} trials, method "
          f"{spec.lr_search.method}, pruner {spec.lr_search.pruner} {dict(spec.lr_search.pruner_options) or ''}, "
          f"{spec.epochs} epochs", flush=True)
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
            "trial_epochs": sum(int(t["epochs_done"] or 0) for t in trials),
            "completed": sum(t["status"] == "completed" for t in trials),
            "pruned": sum(t["status"] == "pruned" for t in trials),
            "failed": sum(t["status"] == "failed" for t in trials),
        }
    return out


def fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--spec", default=str(HERE / "lr_search_points.yaml"), help="the points (default: %(default)s)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a field of the points' spec for both sweeps (repeatable)")
    parser.add_argument("--name", default="bench-lr", help="sweep name prefix (default: %(default)s)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="seeds of both sweeps (default: 0 1)")
    parser.add_argument("--lr-low", type=float, default=0.003, help="lowest learning rate (default: %(default)s)")
    parser.add_argument("--lr-high", type=float, default=0.3, help="highest learning rate (default: %(default)s)")
    parser.add_argument("--grid-size", type=int, default=8, help="grid values, log-spaced (default: %(default)s)")
    parser.add_argument("--tpe-trials", type=int, default=8, help="Optuna trials per point (default: %(default)s)")
    parser.add_argument("--pruner", default="hyperband", choices=("none", "median", "hyperband", "successive_halving"))
    parser.add_argument("--min-resource", type=int, default=1, help="hyperband/successive_halving (default: 1)")
    parser.add_argument("--reduction-factor", type=int, default=3, help="hyperband/successive_halving (default: 3)")
    parser.add_argument("--n-startup-trials", type=int, default=2, help="median (default: 2)")
    parser.add_argument("--n-warmup-steps", type=int, default=1, help="median (default: 1)")
    parser.add_argument("--search-seed", type=int, default=0, help="Optuna sampler seed (default: 0)")
    parser.add_argument("--order", choices=("grid-first", "tpe-first"), default="grid-first")
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (default: 2)")
    parser.add_argument("--workdir", help="folder for the store and storage (default: a new temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and print its path")
    args = parser.parse_args()

    grid = log_grid(args.lr_low, args.lr_high, args.grid_size)
    seeds = f"seeds=[{','.join(str(s) for s in args.seeds)}]"
    common = [*args.overrides, seeds]
    grid_overrides = [*common, "lr_search.method=grid", f"lr_search.values=[{','.join(map(str, grid))}]",
                      f"lr_search.trials_per_point={len(grid)}", "lr_search.pruner=none"]
    if args.pruner == "median":
        options = f"{{n_startup_trials: {args.n_startup_trials}, n_warmup_steps: {args.n_warmup_steps}}}"
    elif args.pruner in ("hyperband", "successive_halving"):
        options = f"{{min_resource: {args.min_resource}, reduction_factor: {args.reduction_factor}}}"
    else:
        options = "{}"
    tpe_overrides = [*common, "lr_search.method=tpe", f"lr_search.low={args.lr_low}", f"lr_search.high={args.lr_high}",
                     f"lr_search.trials_per_point={args.tpe_trials}", f"lr_search.pruner={args.pruner}",
                     f"lr_search.pruner_options={options}", f"lr_search.seed={args.search_seed}"]

    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="lr-search-cost-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{workdir / 'results.sqlite'}")
    storage = workdir / "storage"
    names = {"grid": f"{args.name}-grid", "tpe": f"{args.name}-tpe"}
    print(f"grid learning rates: {', '.join(f'{v:g}' for v in grid)}; tpe range [{args.lr_low:g}, {args.lr_high:g}]; "
          f"workdir {workdir}", flush=True)

    order = ("grid", "tpe") if args.order == "grid-first" else ("tpe", "grid")
    seconds: dict[str, float] = {}
    started = time.time()
    ray.init(address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING")
    try:
        for method in order:
            outcome, seconds[method] = run_one(names[method], args.spec,
                                               grid_overrides if method == "grid" else tpe_overrides, store, storage)
            if outcome.status != "finished":
                print(f"sweep {names[method]} did not finish: {outcome.message}", file=sys.stderr)
                return 1
    finally:
        ray.shutdown()
    total_seconds = time.time() - started

    results = {method: collect(store, names[method]) for method in names}
    keys = sorted(set(results["grid"]) | set(results["tpe"]))
    labels = sorted({label for label, _ in keys})

    print("\nper trial of the tpe sweep (lr, status, epochs run, final test error %):")
    for key in keys:
        row = results["tpe"].get(key)
        if row is None:
            continue
        listed = ", ".join(f"{t['lr']:.4g} {t['status'][:4]} {t['epochs_done']}ep {fmt(t['final_test_error'], '.1f')}"
                           for t in sorted(row["trials"], key=lambda t: t["lr"]))
        print(f"  {key[0]} seed {key[1]}: {listed}")
    print("per trial of the grid sweep (lr: final test error %):")
    for key in keys:
        row = results["grid"].get(key)
        if row is None:
            continue
        listed = ", ".join(f"{t['lr']:.4g}: {fmt(t['final_test_error'], '.1f')}" for t in sorted(row["trials"], key=lambda t: t["lr"]))
        print(f"  {key[0]} seed {key[1]}: {listed}")

    # The grid's run-to-run spread at each device point: the largest difference of its best error across seeds.
    spread: dict[str, float] = {}
    for label in labels:
        errors = [results["grid"][(label, s)]["error"] for s in args.seeds if (label, s) in results["grid"]]
        errors = [e for e in errors if e is not None]
        spread[label] = max((abs(a - b) for a, b in itertools.combinations(errors, 2)), default=float("nan"))

    print()
    print("=" * 112)
    print(f"LR SEARCH COST SUMMARY  (grid: {len(grid)} values x all epochs; tpe: {args.tpe_trials} trials/point, "
          f"pruner {args.pruner} {options}; seeds {args.seeds})")
    print("-" * 112)
    print(f"{'point':<34} {'seed':>4} | {'grid lr':>8} {'grid err%':>9} {'ep':>4} | {'tpe lr':>8} {'tpe err%':>8} "
          f"{'ep':>4} {'done/pruned':>11} | {'tpe-grid':>8} {'spread':>6} {'within':>6}")
    within_all = True
    totals = {"grid": 0, "tpe": 0}
    for key in keys:
        g, t = results["grid"].get(key), results["tpe"].get(key)
        if g is None or t is None:
            print(f"{key[0]:<34} {key[1]:>4} | missing in {'grid' if g is None else 'tpe'} sweep")
            within_all = False
            continue
        totals["grid"] += g["trial_epochs"]
        totals["tpe"] += t["trial_epochs"]
        diff = (t["error"] - g["error"]) if t["error"] is not None and g["error"] is not None else float("nan")
        ok = (diff <= spread[key[0]] + 1e-9) if not math.isnan(diff) and not math.isnan(spread[key[0]]) else False
        within_all &= ok
        print(f"{key[0]:<34} {key[1]:>4} | {fmt(g['lr'], '8.4g')} {fmt(g['error'], '9.2f')} {g['trial_epochs']:>4} | "
              f"{fmt(t['lr'], '8.4g')} {fmt(t['error'], '8.2f')} {t['trial_epochs']:>4} "
              f"{t['completed']:>5}/{t['pruned']:<5} | {fmt(diff, '+8.2f')} {fmt(spread[key[0]], '6.2f')} "
              f"{'yes' if ok else 'NO':>6}")
    print("-" * 112)
    ratio = totals["tpe"] / totals["grid"] if totals["grid"] else float("nan")
    print(f"trial-epochs: grid {totals['grid']}, tpe {totals['tpe']}, ratio tpe/grid = {ratio:.3f}   "
          f"[{'MEETS' if ratio <= 0.5 else 'ABOVE'} target <= 0.5]")
    print("grid run-to-run spread of the best error (|seed difference|): "
          + ", ".join(f"{label}: {fmt(value)} pp" for label, value in spread.items()))
    print(f"tpe's chosen error within the grid's spread at every point: {'yes' if within_all else 'NO'}")
    print(f"wall time: grid sweep {seconds.get('grid', float('nan')):.0f} s, tpe sweep "
          f"{seconds.get('tpe', float('nan')):.0f} s (the first of the two includes pretraining), "
          f"whole bench with Ray start {total_seconds:.0f} s")
    print("=" * 112)

    store.close()
    if args.keep or args.workdir:
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
