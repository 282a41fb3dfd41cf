"""The dry-run's wall-time estimate against the real wall time of the same sweep; print the ratios.

Runs ``analog-sweep run SPEC --dry-run`` on an empty store (every epoch time modelled), then the sweep itself (timed
from the command's start to its exit, pretraining and Ray start-up included), then the dry run again of a copy of the
spec under another name with the finished sweep in the store (epoch times measured: the estimate a user gets for a
second sweep doing the same work). Target: the estimate within 25 % of the actual wall time.

    .venv/bin/python bench/estimate_vs_actual.py [--spec sweeps/quickstart.yaml] [--set epochs=2 ...] [--keep DIR]

Runs the real sweep (the quickstart's time is in the README, "The quickstart"); a loaded machine makes the actual
time, and so the ratio, larger (the model is fitted on an idle one). Where pruning or patience
makes the estimate a range, both bounds are printed, and beside them the compute divided by the slots, which the
dry run printed before it replayed how ``run`` hands out trials (``sweeps._schedule``). Recorded runs:
``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall_estimate(spec_path: str, overrides: list[str], store_url: str | None) -> tuple[float, float, float, str]:
    """The dry run's wall time here in seconds, computed by the same functions as ``run --dry-run`` but unrounded:
    its upper and lower bounds (the same without pruning or patience, as in the quickstart), the compute divided by
    the slots (what the dry run printed before it replayed how ``run`` hands out trials: ``sweeps._schedule``), and
    how the epoch times were priced."""
    from analog_sweep.results import open_store
    from analog_sweep.sweeps import detect_environment, dry_run_report, estimate_cost, expand, load_spec
    from analog_sweep.sweeps._environment import parallel_trials as _parallel_trials
    from analog_sweep.sweeps._measured import measured_epochs

    spec = load_spec(spec_path, overrides)
    measured = {}
    if store_url is not None:
        with open_store(store_url, read_only=True) as store:
            measured = measured_epochs(store.epoch_seconds())
    slots = _parallel_trials(spec, detect_environment())
    cost = estimate_cost(spec, expand(spec), measured=measured)
    shared_out = (cost.trial_seconds + cost.pretrain_seconds) / slots
    report = dry_run_report(spec, expand(spec), environment=detect_environment(), measured=measured)
    priced = next(line for line in report.splitlines() if line.startswith("Epoch times:"))
    return cost.wall_seconds(slots), cost.wall_seconds(slots, pruned=True), shared_out, priced


def epoch_table(spec_path: str, overrides: list[str], store_url: str) -> list[str]:
    """Per kind of trial (``sweeps._measured.timing_key``): the model's seconds per epoch against the median measured
    in the store, to see which part of the model is off."""
    from analog_sweep.results import open_store
    from analog_sweep.sweeps import expand, load_spec
    from analog_sweep.sweeps._cost import modelled_epoch_seconds
    from analog_sweep.sweeps._measured import measured_epochs, timing_key

    spec = load_spec(spec_path, overrides)
    with open_store(store_url, read_only=True) as store:
        measured = measured_epochs(store.epoch_seconds())
    lines = []
    for key, point in {timing_key(spec, p): p for p in expand(spec)}.items():
        per_epoch = modelled_epoch_seconds(spec, point, on_gpu=spec.resources.gpu > 0)
        found = measured.get(key)
        kind = f"{key[-2]} {'-'.join(point.classes)}"  # analog or digital, every mode alike
        if found is not None:
            lines.append(
                f"  {kind:24} modelled {per_epoch:6.2f} s/epoch, measured {found.seconds:6.2f} "
                f"(median of {found.epochs}), ratio {per_epoch / found.seconds:.2f}"
            )
    return lines


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analog_sweep", *args], capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/quickstart.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument(
        "--keep", type=Path, metavar="DIR", help="run in DIR (new or empty) and keep the store and storage there"
    )
    args = parser.parse_args()
    sets = [arg for item in args.overrides for arg in ("--set", item)]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: not empty (the estimate needs an empty store)")
    with tempfile.TemporaryDirectory() if args.keep is None else contextlib.nullcontext(str(args.keep)) as folder:
        url = f"sqlite:///{Path(folder) / 'results.db'}"
        modelled, modelled_low, modelled_shared, modelled_how = wall_estimate(args.spec, args.overrides, None)
        started = time.monotonic()
        run = cli("run", args.spec, *sets, "--store", url, "--storage-path", str(Path(folder) / "storage"))
        actual = time.monotonic() - started
        if run.returncode != 0:
            raise SystemExit(f"the sweep failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        measured, measured_low, measured_shared, measured_how = wall_estimate(
            args.spec, [*args.overrides, "name=estimate-check"], url
        )
        epochs = epoch_table(args.spec, args.overrides, url)
    print(f"spec {args.spec} {' '.join(sets)}")
    print(f"actual wall time            {actual:8.0f} s")
    for line in (run.stdout + run.stderr).splitlines():  # the run's own account of pretraining and of the sweep's part
        if line.startswith(("pretraining ", "sweep ")):
            print(f"  run: {line.strip()}")
    for label, high, low, shared, how in (
        ("modelled", modelled, modelled_low, modelled_shared, modelled_how),
        ("measured in store", measured, measured_low, measured_shared, measured_how),
    ):
        print(f"estimate, {label:17} {high:8.0f} s   ratio estimate/actual {high / actual:.2f}")
        if low < high:
            print(
                f"  lower bound (pruning, patience) {low:8.0f} s   ratio {low / actual:.2f}; the actual time is "
                + ("inside" if low <= actual <= high else "outside")
                + " the range"
            )
        print(f"  compute / slots             {shared:8.0f} s   ratio {shared / actual:.2f}")
        print(f"  ({how})")
    print("seconds per epoch by kind of trial:")
    print("\n".join(epochs))


if __name__ == "__main__":
    main()
