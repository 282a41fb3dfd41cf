"""The results side at a study's size: a store of ``--trials`` trials x ``--epochs`` epochs, and how long the
read commands take on it, with their peak memory.

It builds (once; ``--rebuild`` to start over) a sweep ``scale`` in ``--store`` shaped like a real study: analog TL and
analog scratch along the five device axes one at a time, ``--seeds`` seeds sharing each point's choice on validation
(the shipped default; ``--selection test``: the paper's rule, each seed alone on test), ``--lrs`` learning rates a
point, error curves that fall with the epochs and rise past a critical value of each axis, the nine activity columns,
and a real resolved c-TTv2 rpu config per device point (as ``workers.trial_rpu_config_json`` writes it). Rows go in
by bulk inserts; the trials' summaries are then refreshed trial by trial and every point is closed with
``Store.choose_best``, as the driver does when a point's trials end (timed: the driver's bookkeeping per point). Then
each command runs ``--repeats`` times as a fresh process (``python -m analog_sweep``) and the median wall time and
peak resident memory (GNU time's %M) are printed.

Targets on 2 million epoch rows (20,000 trials x 100 epochs): ``results best`` and ``results elbows`` under 2 s,
``report`` under 30 s, ``results export`` in memory well below the table's size.

    .venv/bin/python bench/store_scale.py --store sqlite:////tmp/scale/results.db [--trials 20000] [--epochs 100]
    .venv/bin/python bench/store_scale.py --store postgresql+psycopg://postgres@127.0.0.1:5432/scale
"""

from __future__ import annotations

import argparse
import math
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
import yaml

from analog_sweep.results import _schema, open_store
from analog_sweep.results._schema import ACTIVITY_FIELDS, AXES, epochs, points, trials
from analog_sweep.results._summaries import refresh_trial_summary
from analog_sweep.sweeps import shipped_specs

SWEEP = "scale"
MODES = ("analog_tl", "analog_scratch")
# Where the error starts to rise along each axis, and the axis's largest value (the paper's units).
CRITICAL = {"transfer_noise": 20.0, "sp_skew": 15.0, "sp_variability": 20.0, "pulse_noise": 10.0, "dtod": 0.6}
TOP = {"transfer_noise": 60.0, "sp_skew": 40.0, "sp_variability": 50.0, "pulse_noise": 30.0, "dtod": 1.5}


def study_points(trials_wanted: int, lrs: int, seeds: int) -> list[dict]:
    """Device points (per mode: the base, then each axis's other values) x seeds, about trials_wanted / lrs."""
    device_points = max(2, trials_wanted // (lrs * seeds))
    per_axis = max(2, (device_points // len(MODES) - 1) // len(AXES))
    base = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
    found = []
    for mode in MODES:
        device = [dict(base)]
        for axis in AXES:
            low = base[axis]
            for i in range(1, per_axis + 1):
                device.append({**base, axis: round(low + (TOP[axis] - low) * i / per_axis, 6)})
        for d, values in enumerate(device):
            varied = [a for a in AXES if values[a] != base[a]]
            term = f"{varied[0]}={values[varied[0]]:g}" if varied else "base"
            for seed in range(seeds):
                found.append(
                    {
                        "point_key": f"{mode}-{d:05d}-s{seed}",
                        "label": f"{mode}/5-7/{term}/seed{seed}",
                        "mode": mode,
                        "seed": seed,
                        "device_index": d,
                        **values,
                    }
                )
    return found


def point_error(point: dict, rng: random.Random) -> float:
    """The point's final error (percent): a floor, plus a rise past each axis's critical value, plus seed noise."""
    error = 8.0 if point["mode"] == "analog_tl" else 20.0
    for axis, critical in CRITICAL.items():
        excess = max(0.0, point[axis] - critical) / TOP[axis]
        error += 60.0 * excess
    return min(95.0, error + rng.gauss(0, 1.5))


def rpu_config_json() -> dict:
    """A real resolved c-TTv2 rpu config, as the worker records it."""
    from analog_sweep.workers import DEFAULT_DEVICE, AlgorithmConfig, build_rpu_config
    from analog_sweep.workers._rpu_json import rpu_config_json as to_json

    return to_json(build_rpu_config(AlgorithmConfig(), DEFAULT_DEVICE))


def _rpu_columns(config: dict, pending: dict[str, dict]) -> dict:
    """The trial's rpu config columns in this version's schema: one shared row per config (``rpu_configs``, added to
    ``pending`` until written, then kept there as None) and its hash, or, in a store before the configs were shared,
    the JSON in the trial row."""
    if "rpu_config" in trials.c:
        return {"rpu_config": config}
    from analog_sweep.results import config_hash

    digest = config_hash(config)
    pending.setdefault(digest, config)
    return {"rpu_config_hash": digest}


def build(url: str, trials_wanted: int, epochs_per_trial: int, lrs: int, seeds: int, selection: str) -> None:
    rng = random.Random(0)
    spec = yaml.safe_load(shipped_specs()["quickstart"].read_text())
    spec = {**spec, "name": SWEEP, "seeds": list(range(seeds)), "epochs": epochs_per_trial}
    config = rpu_config_json()
    found = study_points(trials_wanted, lrs, seeds)
    configs: dict[str, dict] = {}
    rates = [10 ** (-3 + 2 * i / max(1, lrs - 1)) for i in range(lrs)]
    started = time.perf_counter()
    with open_store(url) as store:
        # The shipped default: seeds share the choice on validation; ``test``: the paper's rule (each seed alone).
        rule = {"validation": None, "test": {"split": "test", "per_seed": True}}[selection]
        spec = {**spec, "selection": rule} if rule else spec
        store.record_sweep(SWEEP, spec, "scale-bench", status="running", selection=_selection(selection))
        shared_configs = getattr(_schema, "rpu_configs", None)
        with store.transaction() as connection:
            connection.execute(
                sa.insert(points),
                [
                    {
                        "sweep": SWEEP,
                        "point_key": p["point_key"],
                        "mode": p["mode"],
                        "task": "5-7",
                        "classes": ["5", "7"],
                        "seed": p["seed"],
                        **{a: p[a] for a in AXES},
                        "status": "running",
                        "label": p["label"],
                    }
                    for p in found
                ],
            )
        now = datetime.now(UTC)
        trial_rows, epoch_rows, count = [], [], 0
        for p in found:
            floor = point_error(p, rng)
            device_config = {**config, "device_point": p["device_index"]}
            for i, lr in enumerate(rates):
                trial_id = f"{p['point_key']}-lr{i}"
                penalty = 6.0 * abs(i - lrs // 2)  # the middle rate learns best
                trial_rows.append(
                    {
                        "trial_id": trial_id,
                        "sweep": SWEEP,
                        "point_key": p["point_key"],
                        "lr": lr,
                        "status": "completed",
                        "ray_trial_id": f"r{count:06d}",
                        "started_at": now,
                        "ended_at": now + timedelta(minutes=10),
                        **_rpu_columns(device_config, configs),
                    }
                )
                for epoch in range(1, epochs_per_trial + 1):
                    decay = 50.0 * math.exp(-epoch / (epochs_per_trial / 5))
                    test = min(100.0, floor + penalty + decay + rng.gauss(0, 1.0))
                    epoch_rows.append(
                        {
                            "trial_id": trial_id,
                            "epoch": epoch,
                            "train_loss": 0.05 + decay / 50,
                            "test_error": test,
                            "test_accuracy": 100.0 - test,
                            "validation_error": min(100.0, test + rng.gauss(0, 2.0)),
                            "seconds": 6.0,
                            **{
                                name: (epoch * 3 if name.endswith("_transfers") else rng.random())
                                for name in ACTIVITY_FIELDS
                            },
                        }
                    )
                count += 1
            if len(epoch_rows) >= 50_000 or p is found[-1]:
                with store.transaction() as connection:
                    new = {digest: c for digest, c in configs.items() if c is not None}
                    if new:
                        connection.execute(
                            sa.insert(shared_configs),
                            [{"config_hash": digest, "rpu_config": c} for digest, c in new.items()],
                        )
                        configs.update(dict.fromkeys(new))  # written: None marks it
                    connection.execute(sa.insert(trials), trial_rows)
                    connection.execute(sa.insert(epochs), epoch_rows)
                trial_rows, epoch_rows = [], []
        inserted = time.perf_counter() - started
        with store.transaction() as connection:
            for trial_id in connection.scalars(sa.select(trials.c.trial_id).where(trials.c.sweep == SWEEP)).all():
                refresh_trial_summary(connection, trial_id)
        summarised = time.perf_counter() - started - inserted
        chose = time.perf_counter()
        for p in found:
            store.choose_best(SWEEP, p["point_key"])
        per_point = (time.perf_counter() - chose) / len(found)
        store.set_sweep_status(SWEEP, "finished")
    print(
        f"built {len(found)} points, {count} trials, {count * epochs_per_trial} epoch rows: inserts {inserted:.0f} s, "
        f"summaries {summarised:.0f} s, choose_best {per_point * 1000:.1f} ms a point"
    )


def _selection(name: str):
    """The sweep's rule as the store takes it; None, as the code before selection rules took none, means the
    paper's rule, which is also what ``test`` asks for."""
    from analog_sweep import results

    if name == "test" or not hasattr(results, "Selection"):
        return None
    return results.Selection("validation", per_seed=False)


def commands(point: str, out: str) -> list[list[str]]:
    return [
        ["results", "sweeps"],
        ["status", SWEEP],
        ["results", "best", SWEEP],
        ["results", "elbows", SWEEP],
        ["results", "curves", SWEEP, "--point", point],
        ["results", "trials", SWEEP, "--point", point],
        ["results", "provenance", SWEEP],
        ["report", SWEEP, "--out", f"{out}/report"],
        ["results", "export", SWEEP, "--per", "point", "--out", f"{out}/points.parquet"],
        ["results", "export", SWEEP, "--out", f"{out}/epochs.parquet"],
    ]


def time_command(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, peak resident MB, exit code and the last line of stderr of one fresh run."""
    started = time.perf_counter()
    done = subprocess.run(
        ["/usr/bin/time", "-f", "maxrss-kb %M", sys.executable, "-m", "analog_sweep", *args],
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    found = re.findall(r"^maxrss-kb (\d+)$", done.stderr, flags=re.M)
    errors = [line for line in done.stderr.splitlines() if line and not line.startswith("maxrss-kb")]
    return wall, int(found[-1]) / 1024 if found else float("nan"), done.returncode, (errors[-1] if errors else "")


def store_size(url: str) -> str:
    with open_store(url, read_only=True) as store, store.transaction() as connection:
        if connection.dialect.name == "sqlite":
            path = store.engine.url.database
            return f"{os.path.getsize(path) / 1e6:.0f} MB file"
        size = connection.scalar(sa.text("SELECT pg_database_size(current_database())"))
        return f"{size / 1e6:.0f} MB database"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", required=True, help="SQLAlchemy URL (SQLite or PostgreSQL)")
    parser.add_argument("--trials", type=int, default=20_000)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--lrs", type=int, default=8)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--rebuild", action="store_true", help="drop the sweep first and build it again")
    parser.add_argument(
        "--selection",
        choices=["validation", "test"],
        default="validation",
        help="validation: seeds share the choice on validation (the default of specs); test: the paper's rule",
    )
    parser.add_argument("--only", default=None, help="time only commands whose line contains this text")
    options = parser.parse_args()

    with open_store(options.store) as store:
        known = {row["sweep"] for row in store.sweep_progress()}
        if SWEEP in known and options.rebuild:
            with store.transaction() as connection:
                ids = sa.select(trials.c.trial_id).where(trials.c.sweep == SWEEP)
                connection.execute(sa.delete(epochs).where(epochs.c.trial_id.in_(ids)))
                connection.execute(sa.delete(trials).where(trials.c.sweep == SWEEP))
                connection.execute(sa.delete(points).where(points.c.sweep == SWEEP))
                connection.execute(sa.text("DELETE FROM sweeps WHERE name = :n"), {"n": SWEEP})
                if "rpu_configs" in sa.inspect(connection).get_table_names():
                    connection.execute(
                        sa.text(
                            "DELETE FROM rpu_configs WHERE config_hash NOT IN "
                            "(SELECT rpu_config_hash FROM trials WHERE rpu_config_hash IS NOT NULL)"
                        )
                    )
            known.discard(SWEEP)
    if SWEEP not in known:
        build(options.store, options.trials, options.epochs, options.lrs, options.seeds, options.selection)
    with open_store(options.store, read_only=True) as store:
        progress = next(row for row in store.sweep_progress() if row["sweep"] == SWEEP)
        with store.transaction() as connection:
            rows = connection.scalar(
                sa.select(sa.func.count())
                .select_from(epochs.join(trials, trials.c.trial_id == epochs.c.trial_id))
                .where(trials.c.sweep == SWEEP)
            )
        point = store.list_points(SWEEP)[len(store.list_points(SWEEP)) // 2]["label"]
    trials_total = sum(v for k, v in progress.items() if k.startswith("trials_"))
    print(
        f"store: {progress['points_total']} points, {trials_total} trials, {rows} epoch rows, "
        f"{store_size(options.store)}"
    )
    env = {**os.environ, "ANALOG_SWEEP_STORE": options.store}
    print(f"{'command':<62} {'wall s':>7} {'peak MB':>8} {'exit':>4}")
    with tempfile.TemporaryDirectory() as out:
        for args in commands(point, out):
            line = " ".join(args).replace(out, "DIR")
            if options.only and options.only not in line:
                continue
            runs = [time_command(args, env) for _ in range(options.repeats)]
            wall = statistics.median(r[0] for r in runs)
            peak = statistics.median(r[1] for r in runs)
            failed = f"  {runs[-1][3]}" if runs[-1][2] else ""
            print(f"{line:<62} {wall:7.2f} {peak:8.0f} {runs[-1][2]:4d}{failed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
