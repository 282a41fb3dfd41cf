"""How long the command line takes to start: import time, wall time and memory of each read command.

For each command it runs ``python -X importtime -m analog_sweep ...`` as a fresh process, ``--repeats`` times, and
prints the median of: the seconds spent importing modules (the sum of the top-level entries of ``-X importtime``),
the command's wall time, its peak resident memory, and which heavy libraries it imported. Target: under 0.5 s of
imports for ``--help`` and every ``results`` / ``status`` / ``report`` command; Ray, torch, aihwkit and timm only in
commands that run or submit trials.

    .venv/bin/python bench/cli_startup.py [--sweep quickstart] [--store URL] [--repeats 3]

The commands read the sweep ``--sweep`` from ``--store`` (default: the default store, ``./sweep-store``); run
``make run`` first so that they do real work. ``--python`` and ``--pythonpath`` time another checkout of the project
with the same interpreter, for a before-and-after comparison.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

HEAVY = ("ray", "torch", "aihwkit", "timm", "optuna", "matplotlib", "scipy", "sklearn", "pandas", "pyarrow")
IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def commands(sweep: str, report_dir: str) -> list[list[str]]:
    """The command lines timed, as argument lists after ``analog-sweep``."""
    return [
        ["--help"],
        ["results", "--help"],
        ["status"],
        ["status", sweep],
        ["results", "sweeps"],
        ["results", "best", sweep],
        ["results", "curves", sweep],
        ["results", "elbows", sweep],
        ["results", "provenance", sweep],
        ["results", "best", sweep, "--axis", "transfer_noise", "--plot", f"{report_dir}/fig3.png"],
        ["results", "curves", sweep, "--plot", f"{report_dir}/fig2.png"],
        ["results", "export", sweep, "--out", f"{report_dir}/epochs.parquet"],
        ["report", "--help"],
        ["report", sweep, "--out", report_dir],
    ]


def parse_importtime(stderr: str) -> tuple[float, set[str]]:
    """Seconds of imports (top-level cumulative entries) and the heavy libraries among the modules imported."""
    total_us, heavy = 0, set()
    for line in stderr.splitlines():
        match = IMPORT_LINE.match(line)
        if not match:
            continue
        cumulative, indent, name = int(match.group(2)), len(match.group(3)), match.group(4)
        if indent == 1:  # "| name": imported by the program itself, cumulative of what it pulled in
            total_us += cumulative
        top = name.split(".")[0]
        if top in HEAVY:
            heavy.add(top)
    return total_us / 1e6, heavy


def time_command(python: str, args: list[str], env: dict[str, str]) -> tuple[float, float, float, set[str], int]:
    """Import seconds, wall seconds, peak resident MB (GNU time's %M), heavy libraries and exit code of one run."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss-kb %M", python, "-X", "importtime", "-m", "analog_sweep", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    imports, heavy = parse_importtime(done.stderr)
    found = re.findall(r"^maxrss-kb (\d+)$", done.stderr, flags=re.M)
    return imports, wall, int(found[-1]) / 1024 if found else float("nan"), heavy, done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sweep", default="quickstart")
    parser.add_argument("--store", default=None, help="store URL (default: $ANALOG_SWEEP_STORE, else ./sweep-store)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--pythonpath", default=None, help="prepend to PYTHONPATH (another checkout's root)")
    options = parser.parse_args()

    env = dict(os.environ)
    if options.store:
        env["ANALOG_SWEEP_STORE"] = options.store
    if options.pythonpath:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [options.pythonpath, env.get("PYTHONPATH")]))
    print(f"{'command':<66} {'imports s':>9} {'wall s':>7} {'peak MB':>8} {'exit':>4}  heavy libraries imported")
    with tempfile.TemporaryDirectory() as report_dir:
        for args in commands(options.sweep, report_dir):
            runs = [time_command(options.python, args, env) for _ in range(options.repeats)]
            imports = statistics.median(run[0] for run in runs)
            wall = statistics.median(run[1] for run in runs)
            peak = statistics.median(run[2] for run in runs)
            heavy = ", ".join(sorted(runs[-1][3])) or "-"
            label = " ".join(args).replace(report_dir, "DIR")
            print(f"{label:<66} {imports:9.2f} {wall:7.2f} {peak:8.0f} {runs[-1][4]:4d}  {heavy}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
