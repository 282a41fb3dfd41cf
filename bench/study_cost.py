"""The headline cost of a robustness study: locating a critical point our way against the paper's way.

Our way runs one real sweep through ``orchestrator.run_sweep`` on a local 2-CPU Ray instance: by default the embedded
Fig. 3 study (``sweeps/embedded_fig3_transfer_noise.yaml``: the quickstart's miniature, analog c-TTv2 transfer
learning on digits 5 vs 7 at 8x8, 20 epochs with a cosine schedule) along a *coarse* transfer-noise grid
(``--coarse``, at least 5 values, as the elbow fit needs), ``--seeds``, with adaptive refinement
(``axes.refine.transfer_noise``: ``--refine-points`` new values per round inside the 95 % interval of the critical
point, ``--refine-rounds`` rounds) and the learning-rate search: TPE over [``--lr-low``, ``--lr-high``],
``--tpe-trials`` trials per point, median pruning (1 start-up trial), warm starts across points and
``lr_search.patience`` 1. Its cost is the trial-epochs every trial of the sweep ran (pruned trials count the epochs
they ran), grid and refinement rounds together; the critical point and its 95 % interval are the store's
(``results elbows``), with the width before refinement (the coarse grid alone) and after.

The paper's way: a uniform transfer-noise grid times an exhaustive learning-rate grid of ``--grid-size`` values
(log-spaced over the same range), every trial run to its last epoch, the same seeds and epochs. It is priced at the
spacing our interval's width asks for (``floor(range / width) + 1`` values); that price assumes a grid with spacing w
locates the critical point to within w, which no noisy grid achieves. ``--paper-values K`` therefore also *runs* it:
K values spaced evenly over the coarse range, no pruning, no warm starts, as a second sweep (``--name``-paperK) in
the same store, and prints the interval it actually gets and the ratio of the two costs as run. Target: ours /
paper's <= 0.25 at an interval at least as narrow. ``bench/study_cost_model.py`` models both ways on synthetic noisy
curves. A sweep already finished in the store of ``--workdir`` is reported again, not re-run; ``--paper-name``
compares a second run of our way (a new ``--name``) with a paper's way already run there. Measured figures are in
``sweeps/README.md``, "The cost of locating a critical point".

    .venv/bin/python bench/study_cost.py [--coarse 0 20 40 70 100] [--seeds 0 1 2] [--workdir DIR] [--paper-values K]

If the sweep finds no critical point (the Davies test does not reject "no elbow"), there is no width to match and
the script says so instead of printing a ratio.
"""

from __future__ import annotations

import argparse
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import ray
from lr_search_cost import log_grid, trial_epochs  # bench/ is the script's folder, first on sys.path

from analog_sweep.orchestrator import SweepStateError, run_sweep
from analog_sweep.results import AXES, open_store, sweep_elbows
from analog_sweep.sweeps import expand, load_spec

HERE = Path(__file__).resolve().parent
AXIS = "transfer_noise"


def paper_values(low: float, high: float, width: float) -> int:
    """Values of a uniform grid from ``low`` to ``high`` whose spacing is at most ``width``."""
    steps = math.ceil((high - low) / width - 1e-9)
    return steps + 1


def base_device(spec) -> dict[str, float]:
    """The spec's base device point, by axis (what ``sweep_elbows`` measures the axis from)."""
    return {name: getattr(spec.device, name) for name in AXES}


def report_paper_run(store, spec, ours: int, ours_elbows, wall: str) -> None:
    """Print what the paper's way got when run: its interval against its spacing, and its cost against ours."""
    trials = store.list_trials(spec.name)
    cost = trial_epochs(trials)
    rows = store.best_points(spec.name)
    values = sorted({row[AXIS] for row in rows})
    spacing = (values[-1] - values[0]) / (len(values) - 1)
    base = base_device(spec)
    print("-" * 100)
    print(
        f"the paper's way, run: {len(values)} uniform {AXIS} values (spacing {spacing:.4g}), {len(trials)} trials, "
        f"{cost} trial-epochs, wall {wall}"
    )
    for paper, our in zip(sweep_elbows(rows, axis=AXIS, base=base), ours_elbows, strict=True):
        where = f"{paper.mode}/{paper.task}"
        if not paper.has_elbow:
            print(f"  {where}: no critical point ({paper.reason}): at spacing {spacing:.4g} it does not locate one")
            continue
        print(
            f"  {where}: critical point {paper.breakpoint:.4g} %, 95 % interval [{paper.ci_low:.4g}, "
            f"{paper.ci_high:.4g}], width {paper.width:.4g} against its spacing {spacing:.4g} (Davies p "
            f"{paper.p_value:.3g}, {paper.n_obs} observations)"
        )
        if our.has_elbow:
            narrower = "ours is at least as narrow" if our.width <= paper.width else "ours is wider"
            print(
                f"  ours / the paper's way run = {ours} / {cost} = {ours / cost:.3f}; widths {our.width:.4g} (ours) "
                f"and {paper.width:.4g}: {narrower}"
            )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument(
        "--spec",
        default=str(HERE.parent / "sweeps" / "embedded_fig3_transfer_noise.yaml"),
        help="the study (default: %(default)s)",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a field of the spec (repeatable)",
    )
    parser.add_argument("--name", default="bench-study", help="sweep name (default: %(default)s)")
    parser.add_argument(
        "--coarse",
        type=float,
        nargs="+",
        default=[0, 20, 40, 70, 100],
        help="the coarse transfer-noise grid, %% (default: 0 20 40 70 100)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds (default: 0 1 2)")
    parser.add_argument("--refine-points", type=int, default=3, help="new values per round (default: %(default)s)")
    parser.add_argument("--refine-rounds", type=int, default=1, help="refinement rounds (default: %(default)s)")
    parser.add_argument("--lr-low", type=float, default=0.05, help="lowest learning rate (default: %(default)s)")
    parser.add_argument("--lr-high", type=float, default=0.8, help="highest learning rate (default: %(default)s)")
    parser.add_argument("--tpe-trials", type=int, default=4, help="TPE trials per point (default: %(default)s)")
    parser.add_argument(
        "--grid-size",
        type=int,
        default=6,
        help="the paper's way: learning rates per point (default: %(default)s, as bench/lr_search_cost.py)",
    )
    parser.add_argument(
        "--paper-values",
        type=int,
        help="also run the paper's way: this many uniform values over the coarse range, each with the "
        "exhaustive learning-rate grid (at least 5; default: priced only)",
    )
    parser.add_argument(
        "--paper-name",
        help="the paper's way's sweep name (default: NAME-paperK); naming one already finished in the "
        "store compares another run of our way (a new --name) with it without running it again",
    )
    parser.add_argument("--num-cpus", type=int, default=2, help="CPUs of the local Ray instance (default: 2)")
    parser.add_argument("--workdir", help="folder for the store and storage (default: a new temporary folder, removed)")
    args = parser.parse_args()
    if len(set(args.coarse)) < 5:
        parser.error("--coarse needs at least 5 distinct values (the elbow fit's minimum)")
    if args.paper_values is not None and args.paper_values < 5:
        parser.error("--paper-values needs at least 5 (the elbow fit's minimum)")
    if args.paper_name is not None and args.paper_values is None:
        parser.error("--paper-name needs --paper-values (the paper's way it names)")

    coarse = sorted(set(args.coarse))
    overrides = [
        *args.overrides,
        f"name={args.name}",
        f"seeds=[{','.join(map(str, args.seeds))}]",
        f"axes.{AXIS}=[{','.join(f'{v:g}' for v in coarse)}]",
        f"axes.refine={{{AXIS}: {{points: {args.refine_points}, rounds: {args.refine_rounds}}}}}",
        "lr_search.method=tpe",
        "lr_search.values=null",
        f"lr_search.low={args.lr_low}",
        f"lr_search.high={args.lr_high}",
        f"lr_search.trials_per_point={args.tpe_trials}",
        "lr_search.pruner=median",
        "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
        "lr_search.warm_start=neighbours",
        "lr_search.patience=1",
    ]
    spec = load_spec(args.spec, overrides=overrides)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="study-cost-"))
    workdir.mkdir(parents=True, exist_ok=True)
    store = open_store(f"sqlite:///{workdir / 'results.sqlite'}")
    print(
        f"our way: {len(expand(spec))} grid points ({AXIS} {', '.join(f'{v:g}' for v in coarse)}; seeds "
        f"{list(spec.seeds)}), TPE {args.tpe_trials} trials/point over [{args.lr_low:g}, {args.lr_high:g}], median "
        f"pruning, warm starts, patience 1; refinement {args.refine_rounds} x {args.refine_points} values; "
        f"{spec.epochs} epochs; workdir {workdir}",
        flush=True,
    )

    paper_spec = None
    if args.paper_values is not None:
        low, high = coarse[0], coarse[-1]
        uniform = [low + (high - low) * i / (args.paper_values - 1) for i in range(args.paper_values)]
        rates = log_grid(args.lr_low, args.lr_high, args.grid_size)
        paper_spec = load_spec(
            args.spec,
            overrides=[
                *args.overrides,
                f"name={args.paper_name or f'{args.name}-paper{args.paper_values}'}",
                f"seeds=[{','.join(map(str, args.seeds))}]",
                f"axes.{AXIS}=[{','.join(f'{v:.6g}' for v in uniform)}]",
                "axes.refine=null",  # a uniform grid only
                "lr_search.method=grid",
                f"lr_search.values=[{','.join(map(str, rates))}]",
                f"lr_search.trials_per_point={len(rates)}",
                "lr_search.pruner=none",
            ],
        )
        print(
            f"the paper's way, run: {len(expand(paper_spec))} points ({AXIS} "
            f"{', '.join(f'{v:.4g}' for v in uniform)}), learning rates {rates}, every trial to the end",
            flush=True,
        )

    ray.init(
        address="local", num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, logging_level="WARNING"
    )
    try:
        wall = {}
        for one in (spec, paper_spec):
            if one is None:
                continue
            started = time.time()
            try:
                outcome = run_sweep(
                    one, store, storage_root=workdir / "storage", echo=lambda line: print(f"  | {line}", flush=True)
                )
            except SweepStateError as exc:  # e.g. --paper-name naming a sweep of another spec
                print(f"study_cost.py: {exc}", file=sys.stderr)
                return 2
            wall[one.name] = (
                "not run again (finished in the store)"
                if "already finished" in outcome.message
                else f"{(time.time() - started) / 60:.1f} min"
            )
            print(f"  | {outcome.message}", flush=True)
            if outcome.status != "finished":
                print(f"the sweep {one.name} did not finish: {outcome.message}", file=sys.stderr)
                return 1
    finally:
        ray.shutdown()

    trials = store.list_trials(spec.name)
    ours = trial_epochs(trials)
    grid_keys = {p.key for p in expand(spec)}
    ours_grid = trial_epochs(t for t in trials if t["point_key"] in grid_keys)
    rows = store.best_points(spec.name)
    base = base_device(spec)
    values = sorted({row[AXIS] for row in rows})
    before = [e for e in sweep_elbows([r for r in rows if r[AXIS] in coarse], axis=AXIS, base=base)]
    after = [e for e in sweep_elbows(rows, axis=AXIS, base=base)]

    print()
    print("=" * 100)
    print(
        f"STUDY COST: locating the {AXIS} critical point of {spec.name} (model {spec.model.preset}, "
        f"{'/'.join(spec.modes)}, seeds {list(spec.seeds)}, {spec.epochs} epochs)"
    )
    print("-" * 100)
    print(
        f"our way: {len(values)} {AXIS} values ({', '.join(f'{v:g}' for v in values)}), {len(trials)} trials, "
        f"{ours} trial-epochs ({ours_grid} on the coarse grid, {ours - ours_grid} in refinement), "
        f"wall {wall[spec.name]}"
    )
    status = 0
    for b, a in zip(before, after, strict=True):
        where = f"{a.mode}/{a.task}"
        coarse_width = f"{b.width:.4g} [{b.ci_low:.4g}, {b.ci_high:.4g}]" if b.has_elbow else f"none ({b.reason})"
        print(f"  {where}: 95 % interval on the coarse grid {coarse_width}")
        if not a.has_elbow:
            print(f"  {where}: no critical point after refinement ({a.reason}): no width to match, no ratio")
            status = 1
            continue
        print(
            f"  {where}: critical point {a.breakpoint:.4g} %, 95 % interval [{a.ci_low:.4g}, {a.ci_high:.4g}], "
            f"width {a.width:.4g} (Davies p {a.p_value:.3g}, {a.n_obs} observations)"
        )
        low, high = min(values), max(values)
        n_values = paper_values(low, high, a.width)
        paper = n_values * args.grid_size * len(spec.seeds) * spec.epochs
        ratio = ours / paper
        print(
            f"paper's way (priced): a uniform {AXIS} grid over [{low:g}, {high:g}] with spacing <= {a.width:.4g}: "
            f"{n_values} values x {args.grid_size} learning rates x {len(spec.seeds)} seeds x {spec.epochs} epochs "
            f"= {paper} trial-epochs"
        )
        print(
            f"ours / paper's = {ours} / {paper} = {ratio:.3f}   [{'MEETS' if ratio <= 0.25 else 'ABOVE'} target "
            f"<= 0.25]"
        )
    if paper_spec is not None:
        report_paper_run(store, paper_spec, ours, after, wall[paper_spec.name])
    print("=" * 100)
    store.close()
    if args.workdir:
        print(f"kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
