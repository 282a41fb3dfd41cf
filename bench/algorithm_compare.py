"""Compare analog training algorithms along the symmetry-point skew on the embedded miniature.

For every algorithm (``--algorithms``: ``c-ttv2``, ``ttv2``, ``agad``) and every symmetry-point skew (``--sp-skew``,
percent of the weight range, ``workers._devices``) it runs, per seed and learning rate, an analog trial (analog TL by
default, ``--mode analog_scratch`` for training from scratch) on the quickstart's setting (``sweeps/quickstart.yaml``,
overridable with ``--set``): digits 5 vs 7 at 8x8, swin_micro, its epochs and cosine schedule, its algorithm settings
(``auto_granularity``) and weight mapping, its base device with only ``sp_skew`` changed. ``ttv2`` runs with
``in_chop_prob`` 0 (the choppers off), as ``workers._devices.build_rpu_config`` requires.

Per algorithm and skew the learning rate and epoch are chosen as a sweep with
``selection: {split: validation, per_seed: false}`` chooses them: the rate completed by the most seeds, then with the
lowest mean validation error over the seeds at its best epoch (ties: the earlier epoch, the smaller rate). Printed per
algorithm and skew: the seeds' test errors at that rate and epoch, mean (sd); the chosen rate and epoch; each rate's
mean validation error at its best epoch; the mean weight change of the body's tiles at the chosen epoch
(``blocks_rel``: mean|dW| / mean|W| since conversion); the mean seconds per trial. Then per skew the difference of
c-TTv2 and TTv2 (and of AGAD and c-TTv2 when run) with its Welch 95 % interval.

Trials run two at a time (``--workers``), one torch thread each, without Ray; the pretrained model is cached in
``--cache-dir``. With ``--store FILE`` every finished trial is appended to FILE (JSON lines, by config key) and a
later run with the same FILE reuses the trials it holds, so a design can be widened (more seeds, skews, rates)
without running its trials again.

    .venv/bin/python bench/algorithm_compare.py --algorithms c-ttv2 ttv2 --sp-skew 0 20 40 --seeds 0 1
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analog_sweep.results import difference  # noqa: E402
from analog_sweep.sweeps import expand, load_spec, shipped_specs, trial_config  # noqa: E402
from analog_sweep.workers import TrialConfig  # noqa: E402

ALGORITHMS = ("c-ttv2", "ttv2", "agad")


def run_one(args: tuple[TrialConfig, str]) -> dict:
    import torch

    from analog_sweep.workers import run_trial

    config, cache_dir = args
    torch.set_num_threads(1)
    started = time.perf_counter()
    try:
        reports = [r.to_dict() for r in run_trial(config, cache_dir=cache_dir).reports]
        error = None
    except Exception as exc:  # a diverged or failed trial is reported, and never chosen
        reports, error = [], f"{type(exc).__name__}: {exc}"
    return {"seconds": time.perf_counter() - started, "reports": reports, "error": error}


def with_algorithm(config: TrialConfig, name: str, sp_skew: float, seed: int) -> TrialConfig:
    """``config`` with algorithm ``name`` (its settings kept; ttv2 with the choppers off), skew and seed."""
    settings = dict(config.algorithm.settings)
    if name == "ttv2":
        settings["in_chop_prob"] = 0.0
    algorithm = dataclasses.replace(config.algorithm, name=name, settings=tuple(sorted(settings.items())))
    device = dataclasses.replace(config.device, sp_skew=sp_skew)
    return dataclasses.replace(config, algorithm=algorithm, device=device, seed=seed)


def choose(by_lr: dict[float, list[dict]]) -> tuple[float, int, float] | None:
    """(rate, epoch, mean validation error) of the sweep's shared validation choice; None if no trial completed."""
    options = []
    for lr, runs in by_lr.items():
        done = [r for r in runs if r["reports"]]
        if not done:
            continue
        measured = ({p["epoch"] for p in r["reports"] if p["validation_error"] is not None} for r in done)
        epochs = set.intersection(*measured)
        if not epochs:
            continue
        means = {e: statistics.fmean(at(r, e)["validation_error"] for r in done) for e in epochs}
        epoch = min(epochs, key=lambda e: (means[e], e))
        options.append((-len(done), means[epoch], lr, epoch))
    if not options:
        return None
    _, score, lr, epoch = min(options)
    return lr, epoch, score


def at(run: dict, epoch: int) -> dict:
    return next(p for p in run["reports"] if p["epoch"] == epoch)


def text(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.fmean(values):.1f} ({statistics.stdev(values):.1f})" if len(values) > 1 else f"{values[0]:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", nargs="+", choices=ALGORITHMS, default=["c-ttv2", "ttv2"])
    parser.add_argument("--sp-skew", type=float, nargs="+", default=[0.0, 20.0, 40.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--lr", type=float, nargs="+", default=None, help="default: the spec's grid")
    parser.add_argument("--mode", choices=("analog_tl", "analog_scratch"), default="analog_tl")
    parser.add_argument("--set", action="append", default=[], help="spec override PATH=VALUE, as `run --set`")
    parser.add_argument("--cache-dir", default="/tmp/algorithm-compare-cache")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--store", default=None, help="JSON-lines file of finished trials, reused by later runs")
    options = parser.parse_args()
    print("$ " + shlex.join([".venv/bin/python", "bench/algorithm_compare.py", *sys.argv[1:]]), flush=True)

    spec = load_spec(shipped_specs()["quickstart"], options.set)
    points = {p.mode: p for p in expand(spec) if p.seed == spec.seeds[0] and p.device.transfer_noise == 0}
    lrs = options.lr or list(spec.lr_search.values)
    jobs = [
        ((name, skew, lr), with_algorithm(trial_config(points[options.mode], lr), name, skew, seed))
        for name in options.algorithms
        for skew in options.sp_skew
        for seed in options.seeds
        for lr in lrs
    ]
    run_one((dataclasses.replace(trial_config(points["digital_tl"], 0.05), epochs=1), options.cache_dir))  # pretrain
    stored: dict[str, dict] = {}
    if options.store and Path(options.store).exists():
        for line in Path(options.store).read_text().splitlines():
            record = json.loads(line)
            stored[record["key"]] = record["result"]
    results: dict[tuple, list[dict]] = {}
    for key, config in jobs:
        if config.key() in stored:
            results.setdefault(key, []).append(stored[config.key()])
    todo = [(key, config) for key, config in jobs if config.key() not in stored]
    if stored:
        print(f"{len(jobs) - len(todo)} of {len(jobs)} trials reused from {options.store}", file=sys.stderr)
    started = time.perf_counter()
    with ProcessPoolExecutor(options.workers) as pool:
        for (key, config), result in zip(todo, pool.map(run_one, [(c, options.cache_dir) for _, c in todo])):
            results.setdefault(key, []).append(result)
            if options.store and result["reports"]:
                with open(options.store, "a") as store:
                    store.write(json.dumps({"key": config.key(), "result": result}) + "\n")
            final = f"{result['reports'][-1]['test_error']:.1f} %" if result["reports"] else result["error"]
            print(
                f"[{sum(map(len, results.values()))}/{len(jobs)}] {key} seed {config.seed}: {final}, "
                f"{result['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - started

    print(
        f"{options.mode}, digits {'-'.join(points[options.mode].classes)}, {spec.epochs} epochs {spec.lr_schedule}, "
        f"seeds {options.seeds}, rates {lrs}, device {dataclasses.asdict(points[options.mode].device)} but sp_skew; "
        f"test error % at the rate and epoch chosen on validation (seeds share the choice), mean (sd)"
    )
    header = ["algorithm", "sp_skew", "test error", "lr", "epoch", *(f"val@{lr:g}" for lr in lrs), "body rel", "s"]
    rows, chosen_errors = [], {}
    for name in options.algorithms:
        for skew in options.sp_skew:
            by_lr = {lr: results[name, skew, lr] for lr in lrs}
            per_lr = []
            for lr in lrs:
                one = choose({lr: by_lr[lr]})
                failed = sum(1 for r in by_lr[lr] if not r["reports"])
                per_lr.append(("-" if one is None else f"{one[2]:.1f}") + (f" ({failed} failed)" if failed else ""))
            seconds = statistics.fmean(r["seconds"] for runs in by_lr.values() for r in runs)
            pick = choose(by_lr)
            if pick is None:
                rows.append([name, f"{skew:g}", "-", "-", "-", *per_lr, "-", f"{seconds:.0f}"])
                continue
            lr, epoch, _ = pick
            done = [r for r in by_lr[lr] if r["reports"]]
            errors = [at(r, epoch)["test_error"] for r in done]
            rel = [at(r, epoch)["blocks_rel"] for r in done if at(r, epoch)["blocks_rel"] is not None]
            chosen_errors[name, skew] = errors
            rows.append(
                [
                    name,
                    f"{skew:g}",
                    text(errors),
                    f"{lr:g}",
                    str(epoch),
                    *per_lr,
                    f"{statistics.fmean(rel):.2f}" if rel else "-",
                    f"{seconds:.0f}",
                ]
            )
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))
    pairs = [(a, b) for a, b in (("c-ttv2", "ttv2"), ("agad", "c-ttv2")) if {a, b} <= set(options.algorithms)]
    for a, b in pairs:
        for skew in options.sp_skew:
            if (a, skew) in chosen_errors and (b, skew) in chosen_errors:
                print(f"{a} - {b} at sp_skew {skew:g}: {difference(chosen_errors[a, skew], chosen_errors[b, skew])}")
    if todo:
        per_trial = options.workers * wall / len(todo)
        print(f"{len(todo)} trials run in {wall:.0f} s on {options.workers} workers ({per_trial:.1f} s per trial)")


if __name__ == "__main__":
    main()
