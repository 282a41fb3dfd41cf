"""Several sweeps at once into one results store, with a reader on it all the while: are all trials recorded once,
and how long did a reader, and a writer, wait?

For each store (SQLite in a fresh folder, PostgreSQL in a fresh schema of ``--pg``, dropped afterwards) two
measurements:

- ``sweeps``: ``--sweeps`` real ``analog-sweep run`` processes started at the same moment on a store that does not
  exist yet, each a nano quickstart of its own name (2 points x 2 learning rates x 2 epochs; the ``digital_tl`` point
  shares one pretrained model, so the drivers meet in the cache too; each driver starts its own local Ray instance).
  Meanwhile a reader process opens the store read-only over and over and reads every sweep's progress, best points
  and trials, timing each round. Printed: per sweep, the trials recorded against the spec's count (points x
  learning rates), trials with other than all their epochs, the exit codes, and the reader's rounds, median and
  longest wait; and whether any output said "database is locked".
- ``writes``: ``--writers`` processes make the driver's store calls (sweep, points, trials, one epoch at a time,
  choosing each point's best) as fast as they can into one new store, each timing every call, while the same
  reader runs: the longest a writer waited for the store (the other writers and the reader), and the reader's waits.

    flock /tmp/ray.lock .venv/bin/python bench/shared_store.py [--sweeps 2] [--writers 4] \
        [--pg postgresql+psycopg://postgres@127.0.0.1:5432/test] [--skip-sweeps]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa

from analog_sweep.sweeps import expand, load_spec, shipped_specs

QUICKSTART = str(shipped_specs()["quickstart"])
NANO = [
    "data.image_size=16",
    "model.overrides.window_size=4",
    "lr_schedule=constant",
    "data.train_limit=16",
    "data.test_limit=16",
    "data.source_limit=100",
    "model.overrides.depths=[1,1]",
    "model.overrides.embed_dim=12",
    "pretrain.epochs=2",
    "epochs=2",
    "seeds=[0]",
    "modes=[digital_tl,digital_scratch]",
    "axes=null",
]
LOCKED = "database is locked"

# The reader: until STOP exists, opens the store read-only and reads each sweep's progress, best points and trials;
# one JSON line per round into OUT (a file, not a pipe nobody drains until the end): seconds, the error if it failed.
READER = r"""
import json, sys, time
from pathlib import Path
from analog_sweep.results import StoreError, open_store
url, stop, out, names = sys.argv[1], Path(sys.argv[2]), open(sys.argv[3], "w"), sys.argv[4:]
while not stop.exists():
    started = time.monotonic()
    error = None
    try:
        with open_store(url, read_only=True) as store:
            store.sweep_progress()
            for name in names:
                store.best_points(name)
                store.list_trials(name)
    except StoreError as exc:
        error = str(exc)
    except Exception as exc:  # shown among the figures, so that a reader that cannot read is not a silent zero
        error = f"{type(exc).__name__}: {exc}"
    seconds = time.monotonic() - started
    wal = Path(url.removeprefix("sqlite:///") + "-wal") if url.startswith("sqlite:///") else None
    size = wal.stat().st_size if wal is not None and wal.exists() else 0
    print(json.dumps({"seconds": seconds, "error": error, "wal": size}), file=out, flush=True)
    if error is not None:
        time.sleep(0.05)  # not there yet: ask again soon, without taking a core from the drivers that make it
"""

# A writer: the driver's calls for POINTS points x 2 learning rates x EPOCHS epochs, each call timed; prints one JSON
# line: every call's seconds and the errors.
WRITER = r"""
import json, sys, time
from pathlib import Path
from analog_sweep.results import StoreError, open_store
url, name, points, epochs, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), Path(sys.argv[5])
axes = dict.fromkeys(("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod"), 0.0)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
waits, errors = [], []
def call(method, *args, **kwargs):
    started = time.monotonic()
    try:
        method(*args, **kwargs)
    except StoreError as exc:
        errors.append(str(exc))
    waits.append((method.__name__, time.monotonic() - started))
started = time.monotonic()
store = open_store(url)
waits.append(("open_store", time.monotonic() - started))
call(store.record_sweep, name, {"name": name}, "hash-" + name, "running", "/nowhere/" + name)
for p in range(points):
    call(store.record_point, name, f"p{p}", mode="digital_tl", task="5-7", classes=["5", "7"], seed=p, axes=axes)
for p in range(points):
    for lr in (0.1, 0.4):
        trial = f"{name}-p{p}-{lr}"
        call(store.record_trial, trial, name, f"p{p}", lr=lr, status="running")
        for epoch in range(1, epochs + 1):
            call(store.record_epoch, trial, epoch, train_loss=0.5, test_error=10.0 + epoch, test_accuracy=90.0 - epoch,
                 seconds=0.1, validation_error=9.0 + epoch)
        call(store.record_trial, trial, name, f"p{p}", lr=lr, status="completed")
    call(store.choose_best, name, f"p{p}")
call(store.set_sweep_status, name, "finished")
store.close()
print(json.dumps({"waits": waits, "errors": errors}))
"""


def python(script: str, *args: str, **popen: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", script, *args], text=True, **popen)


def start_reader(url: str, folder: Path, names: list[str], **popen: object) -> subprocess.Popen:
    return python(
        READER,
        url,
        str(folder / "stop-reading"),
        str(folder / "reader.jsonl"),
        *names,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **popen,
    )


def stop_reader(reader: subprocess.Popen, folder: Path) -> list[dict]:
    (folder / "stop-reading").touch()
    out, _ = reader.communicate(timeout=300)
    if reader.returncode != 0:
        print("    the reader failed: " + " | ".join(out.strip().splitlines()[-3:]))
    lines = (folder / "reader.jsonl").read_text().splitlines() if (folder / "reader.jsonl").exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def reader_figures(rounds: list[dict]) -> str:
    answered = [r["seconds"] for r in rounds if r["error"] is None]
    failed = [r["error"] for r in rounds if r["error"] is not None]
    # Failures before every sweep is in the store ("no store", "unknown sweep") are expected; others are shown.
    others = sorted(
        {e for e in failed if "no store" not in e and "no analog-sweep store" not in e and "unknown" not in e}
    )
    if not answered:
        return (
            f"reader: no round answered ({len(failed)} failed; the last: {failed[-1] if failed else '-'}; "
            f"others: {others[:3]})"
        )
    wal = max(r.get("wal", 0) for r in rounds)
    return (
        f"reader: {len(answered)} rounds answered, median {statistics.median(answered) * 1000:.0f} ms, "
        f"longest {max(answered) * 1000:.0f} ms; {len(failed)} before the sweeps were in the store"
        + (f"; largest SQLite write-ahead log seen {wal / 2**20:.1f} MiB" if wal else "")
        + (f"; OTHER ERRORS: {others[:3]}" if others else "")
    )


def count_rows(url: str, name: str) -> tuple[int, int, str]:
    """(trials, trials whose epoch rows are not exactly 1..epochs_done, status) of sweep ``name``."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            trials = connection.execute(
                sa.text("SELECT trial_id, epochs_done FROM trials WHERE sweep = :s"), {"s": name}
            ).all()
            epochs = connection.execute(
                sa.text(
                    "SELECT e.trial_id, count(*), count(DISTINCT e.epoch), max(e.epoch) FROM epochs e "
                    "JOIN trials t ON t.trial_id = e.trial_id WHERE t.sweep = :s GROUP BY e.trial_id"
                ),
                {"s": name},
            ).all()
            status = connection.scalar(sa.text("SELECT status FROM sweeps WHERE name = :s"), {"s": name})
    finally:
        engine.dispose()
    by_trial = {row[0]: row[1:] for row in epochs}
    bad = sum(1 for t, done in trials if by_trial.get(t) != (done, done, done))
    return len(trials), bad, str(status)


def run_sweeps(url: str, store_args: list[str], folder: Path, count: int) -> None:
    """``count`` real sweeps at once into ``url`` (``store_args`` given to each command), a reader meanwhile."""
    names = [f"shared-{n}" for n in range(count)]
    env = {
        k: v for k, v in os.environ.items() if k not in ("ANALOG_SWEEP_STORE", "ANALOG_SWEEP_STORAGE", "RAY_ADDRESS")
    }
    env["ANALOG_SWEEP_CACHE"] = str(folder / "cache")
    reader = start_reader(url, folder, names, env=env)
    started = time.monotonic()
    drivers = {
        name: subprocess.Popen(
            [sys.executable, "-m", "analog_sweep", "run", QUICKSTART, *store_args]
            + [arg for item in [*NANO, f"name={name}"] for arg in ("--set", item)],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in names
    }
    outputs = {name: driver.communicate(timeout=3600)[0] for name, driver in drivers.items()}
    seconds = time.monotonic() - started
    rounds = stop_reader(reader, folder)
    spec = load_spec(QUICKSTART, NANO)
    want = len(expand(spec)) * spec.lr_search.trials_per_point
    print(f"  sweeps: {count} at once, all ended after {seconds:.0f} s")
    for name, driver in drivers.items():
        got, bad, status = count_rows(url, name)
        locked = LOCKED in outputs[name]
        retried = outputs[name].count("results store unavailable (")
        print(
            f"    {name}: exit {driver.returncode}, {status}, trials {got} of {want} expected, "
            f"{bad} with missing or doubled epochs, {retried} retried writes"
            + (", 'database is locked' in its output" if locked else "")
        )
        if driver.returncode != 0:
            print("      " + "\n      ".join(outputs[name].strip().splitlines()[-5:]))
    print("    " + reader_figures(rounds))


def run_writes(url: str, folder: Path, count: int, points: int, epochs: int) -> None:
    """``count`` processes making the driver's store calls as fast as they can into ``url``, a reader meanwhile."""
    names = [f"writes-{n}" for n in range(count)]
    go = folder / "go"
    writers = [
        python(WRITER, url, name, str(points), str(epochs), str(go), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        for name in names
    ]
    for writer in writers:
        assert writer.stdout.readline().strip() == "ready"
    reader = start_reader(url, folder, names)
    started = time.monotonic()
    go.touch()
    results = []
    for writer in writers:
        out = writer.communicate(timeout=3600)[0]
        lines = [line for line in out.splitlines() if line.startswith("{")]
        results.append(json.loads(lines[-1]) if lines else {"waits": [], "errors": [out.strip()[-300:]]})
    seconds = time.monotonic() - started
    rounds = stop_reader(reader, folder)
    calls = [w for r in results for w in r["waits"]]
    waits = [seconds for _, seconds in calls]
    slowest = max(calls, key=lambda call: call[1]) if calls else ("-", 0.0)
    errors = [e for r in results for e in r["errors"]]
    want = points * 2
    counts = [count_rows(url, name) for name in names]
    print(f"  writes: {count} writers x {points} points x 2 trials x {epochs} epochs, {seconds:.1f} s")
    print(
        f"    trials per writer {[c[0] for c in counts]} of {want} expected, "
        f"{sum(c[1] for c in counts)} with missing or doubled epochs; {len(waits)} store calls, median "
        f"{statistics.median(waits) * 1000:.1f} ms, longest {slowest[1] * 1000:.0f} ms ({slowest[0]}); "
        f"{len(errors)} errors" + (f": {sorted(set(errors))[:3]}" if errors else "")
    )
    print("    " + reader_figures(rounds))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sweeps", type=int, default=2, help="real sweeps at once (default 2)")
    parser.add_argument("--writers", type=int, default=4, help="processes making the driver's calls (default 4)")
    parser.add_argument("--points", type=int, default=20, help="points per writer (default 20)")
    parser.add_argument("--epochs", type=int, default=5, help="epochs per writer trial (default 5)")
    parser.add_argument("--pg", default="postgresql+psycopg://postgres@127.0.0.1:5432/test", help="'' skips it")
    parser.add_argument("--skip-sweeps", action="store_true", help="only the writes measurement")
    args = parser.parse_args()

    stores = ["sqlite"] + (["postgresql"] if args.pg else [])
    for backend in stores:
        for measurement in ("sweeps", "writes"):
            if measurement == "sweeps" and args.skip_sweeps:
                continue
            folder = Path(tempfile.mkdtemp(prefix=f"shared-store-{backend}-"))
            schema = None
            try:
                if backend == "sqlite":
                    url = f"sqlite:///{folder / 'sweep-store' / 'results.db'}"
                    store_args: list[str] = []  # the default store of the working folder
                else:
                    schema = f"shared_bench_{uuid.uuid4().hex[:10]}"
                    with sa.create_engine(args.pg).begin() as connection:
                        connection.execute(sa.text(f"CREATE SCHEMA {schema}"))
                    url = (
                        sa.make_url(args.pg)
                        .update_query_dict({"options": f"-csearch_path={schema}"})
                        .render_as_string(hide_password=False)
                    )
                    store_args = ["--store", url]
                print(f"{backend}:")
                if measurement == "sweeps":
                    run_sweeps(url, store_args, folder, args.sweeps)
                else:
                    (folder / "sweep-store").mkdir(exist_ok=True)
                    run_writes(url, folder, args.writers, args.points, args.epochs)
            finally:
                if schema is not None:
                    with sa.create_engine(args.pg).begin() as connection:
                        connection.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
                shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
