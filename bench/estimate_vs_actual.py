"""The dry-run's wall-time estimate against the real wall time of the same sweep; print the ratios.

Runs ``analog-sweep run SPEC --dry-run`` on an empty store (every epoch time modelled), then the sweep itself (timed
from the command's start to its exit, pretraining and Ray start-up included), then the dry run again of a copy of the
spec under another name with the finished sweep in the store (epoch times measured: the estimate a user gets for a
second sweep doing the same work). Target (issue 11): the estimate within 25 % of the actual wall time.

    .venv/bin/python bench/estimate_vs_actual.py [--spec sweeps/quickstart.yaml] [--set epochs=2 ...] [--keep DIR]

Runs the real sweep: about 6.5 min on an idle 2-core machine for the quickstart (382 s measured); a loaded machine
makes the actual time, and so the ratio, larger (the model is fitted on an idle one).
"""

from __future__ import annotations

import argparse
import contextlib
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall_estimate(spec_path: str, overrides: list[str], store_url: str | None) -> tuple[float, str]:
    """The dry run's wall time here in seconds (the upper bound: no pruning in the quickstart), computed by the same
    functions as ``run --dry-run`` but unrounded, and how the epoch times were priced."""
    from results import open_store
    from sweeps import detect_environment, dry_run_report, estimate_cost, expand, load_spec
    from sweeps._cost import _parallel_trials
    from sweeps._measured import measured_epochs

    spec = load_spec(spec_path, overrides)
    measured = {}
    if store_url is not None:
        with open_store(store_url, read_only=True) as store:
            measured = measured_epochs(store.epoch_seconds())
    slots = _parallel_trials(spec, detect_environment())
    seconds = estimate_cost(spec, expand(spec), measured=measured).wall_seconds(slots)
    report = dry_run_report(spec, expand(spec), environment=detect_environment(), measured=measured)
    priced = next(line for line in report.splitlines() if line.startswith("Epoch times:"))
    return seconds, priced


def epoch_table(spec_path: str, overrides: list[str], store_url: str) -> list[str]:
    """Per kind of trial (``sweeps._measured.timing_key``): the model's seconds per epoch against the median measured
    in the store, to see which part of the model is off."""
    from results import open_store
    from sweeps import expand, load_spec
    from sweeps._cost import modelled_epoch_seconds
    from sweeps._measured import measured_epochs, timing_key

    spec = load_spec(spec_path, overrides)
    with open_store(store_url, read_only=True) as store:
        measured = measured_epochs(store.epoch_seconds())
    lines = []
    for key, point in {timing_key(spec, p): p for p in expand(spec)}.items():
        per_epoch = modelled_epoch_seconds(spec, point, on_gpu=spec.resources.gpu > 0)
        found = measured.get(key)
        kind = f"{key[-2]} {'-'.join(point.classes)}"  # analog or digital, every mode alike
        if found is not None:
            lines.append(f"  {kind:24} modelled {per_epoch:6.2f} s/epoch, measured {found.seconds:6.2f} "
                         f"(median of {found.epochs}), ratio {per_epoch / found.seconds:.2f}")
    return lines


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "analog_sweep", *args], capture_output=True, text=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default="sweeps/quickstart.yaml")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="PATH=VALUE")
    parser.add_argument("--keep", type=Path, metavar="DIR",
                        help="run in DIR (new or empty) and keep the store and storage there")
    args = parser.parse_args()
    sets = [arg for item in args.overrides for arg in ("--set", item)]
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        if any(args.keep.iterdir()):
            raise SystemExit(f"--keep {args.keep}: not empty (the estimate needs an empty store)")
    with tempfile.TemporaryDirectory() if args.keep is None else contextlib.nullcontext(str(args.keep)) as folder:
        url = f"sqlite:///{Path(folder) / 'results.db'}"
        modelled, modelled_how = wall_estimate(args.spec, args.overrides, None)
        started = time.monotonic()
        run = cli("run", args.spec, *sets, "--store", url, "--storage-path", str(Path(folder) / "storage"))
        actual = time.monotonic() - started
        if run.returncode != 0:
            raise SystemExit(f"the sweep failed (exit {run.returncode}):\n{run.stderr[-2000:]}")
        measured, measured_how = wall_estimate(args.spec, [*args.overrides, "name=estimate-check"], url)
        epochs = epoch_table(args.spec, args.overrides, url)
    print(f"spec {args.spec} {' '.join(sets)}")
    print(f"actual wall time            {actual:8.0f} s")
    for line in (run.stdout + run.stderr).splitlines():  # the run's own account of pretraining and of the sweep's part
        if line.startswith(("pretraining ", "sweep ")):
            print(f"  run: {line.strip()}")
    print(f"estimate, modelled          {modelled:8.0f} s   ratio estimate/actual {modelled / actual:.2f}")
    print(f"  ({modelled_how})")
    print(f"estimate, measured in store {measured:8.0f} s   ratio estimate/actual {measured / actual:.2f}")
    print(f"  ({measured_how})")
    print("seconds per epoch by kind of trial:")
    print("\n".join(epochs))


if __name__ == "__main__":
    main()
