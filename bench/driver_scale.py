"""The driver at a study's size: the real driver, learning-rate search, store and Ray Tune experiment, with a stand-in
trial, at ``--trials`` trials; prints what the orchestration costs and how big its files grow.

The stand-in trial does what the real one does around training and nothing else: it builds its trial config,
resolves its aihwkit rpu config (reported with its first epoch, as the real trial does), writes a real per-epoch
checkpoint (``workers.TrialCheckpoint``, a two-weight model) and reports each epoch to Ray Tune, sleeping
``--epoch-ms`` for the epoch's work. It is passed to ``run_sweep(trainable=...)``, which specs and the command line
cannot reach.

The sweep: the embedded digits, analog scratch (no pretraining) along pulse noise, ``--seeds`` seeds and a grid
of ``--lrs`` learning rates, so ``--trials`` / (seeds x lrs) pulse-noise values; ``--epochs`` epochs a trial; one trial
at a time (each asks for every CPU), so the stand-in's own time adds up without overlap.

Printed: orchestration per trial (the sweep's wall time minus the stand-in's own time, divided by trials), the
driver's peak resident memory, the size of Ray's experiment folder, of the Optuna journal, of the trial checkpoints
and of the store; with ``--resume``, the sweep is run again in a child process, stopped (SIGINT) once half its trials
ended, and resumed: how long the resume took to start its first new trial, and the same for a resume of the
finished sweep (how long it took to say so).

    .venv/bin/python bench/driver_scale.py --trials 1000 [--epochs 5] [--workdir /tmp/driver-scale] [--resume]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

SWEEP = "driver-scale"


def standin_trial(config: dict[str, Any]) -> None:
    """The stand-in Ray Tune runs for each trial (see the module docstring)."""
    started = time.perf_counter()
    import torch
    from ray import tune

    from analog_sweep.orchestrator._rpu_text import rpu_config_text
    from analog_sweep.workers import EpochReport, TrialCheckpoint, TrialConfig, trial_rpu_config_json

    trial = TrialConfig.from_dict(config["trial"])
    folder = Path(config["trials_dir"]) / config["trial_id"]
    with open(Path(config["trials_dir"]).parent / "starts.log", "a") as log:  # the sweep's folder
        log.write(f"{time.time()}\n")
    about = {"trial_id": config["trial_id"], "rpu_config": rpu_config_text(trial_rpu_config_json(trial))}
    checkpoint = TrialCheckpoint(folder, trial.checkpoint_key())
    model = torch.nn.Linear(2, 1, bias=False)
    optimizer = torch.optim.SGD(model.parameters(), lr=trial.lr)
    reports = checkpoint.reports()
    if not reports:
        checkpoint.start_over(model)
    sleep = float(os.environ.get("STANDIN_EPOCH_MS", "2")) / 1000
    for epoch in range(len(reports) + 1, trial.epochs + 1):
        time.sleep(sleep)
        error = 50.0 / epoch + 10 * abs(trial.lr - 0.05)
        reports.append(EpochReport(epoch, 1.0 / epoch, error, 100 - error, time.perf_counter() - started, error + 1.0))
        checkpoint.save(model, optimizer, reports)
        own = time.perf_counter() - started
        with open(Path(config["trials_dir"]).parent / "standin-seconds.log", "a") as log:
            log.write(f"{own}\n")
        started = time.perf_counter()
        tune.report({**reports[-1].to_dict(), **about})
        about = {"trial_id": config["trial_id"]}  # the rpu config goes with the first report only, as fine_tune's


def spec_mapping(trials: int, epochs: int, seeds: int, lrs: int) -> dict[str, Any]:
    values = max(1, trials // (seeds * lrs))
    return {
        "name": SWEEP,
        "data": {"dataset": "digits", "classes": [["5", "7"]], "image_size": 8, "train_limit": 48},
        "model": {"preset": "swin_micro", "overrides": {"window_size": 2}},
        "modes": ["analog_scratch"],
        "algorithm": {"name": "c-ttv2", "settings": {"auto_granularity": 480}},
        "device": {"transfer_noise": 0, "sp_skew": 0, "sp_variability": 0, "pulse_noise": 3.75, "dtod": 0.3},
        "axes": {"expand": "one_at_a_time", "pulse_noise": [round(i * 10 / values, 6) for i in range(values)]},
        "lr_search": {"method": "grid", "values": [round(10 ** (-3 + 2 * i / max(1, lrs - 1)), 8) for i in range(lrs)]},
        "epochs": epochs,
        "batch_size": 8,
        "seeds": list(range(seeds)),
        "resources": {"cpu": os.cpu_count() or 1, "gpu": 0},
    }


def folder_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def child(options: argparse.Namespace) -> int:
    """Run or resume the sweep in this process; print one JSON line with what it measured."""
    from analog_sweep.orchestrator import resume_sweep, run_sweep
    from analog_sweep.results import open_store
    from analog_sweep.sweeps import spec_from_mapping

    work = Path(options.workdir)
    os.environ["STANDIN_EPOCH_MS"] = str(options.epoch_ms)
    store = open_store(f"sqlite:///{work / 'results.db'}")
    started = time.perf_counter()
    try:
        if options.child == "run":
            spec = spec_from_mapping(spec_mapping(options.trials, options.epochs, options.seeds, options.lrs))
            outcome = run_sweep(spec, store, storage_root=work / "storage", trainable=standin_trial, echo=print)
        else:
            outcome = resume_sweep(SWEEP, store, trainable=standin_trial, echo=print)
        status = outcome.status
    except KeyboardInterrupt:
        status = "interrupted"
    wall = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"status": status, "wall": wall, "peak_mb": peak_mb}), flush=True)
    return 0


def run_child(options: argparse.Namespace, kind: str, work: Path, stop_when=None) -> dict[str, Any]:
    """Run the sweep (``kind`` run or resume) in a child process in ``work``; SIGINT it once ``stop_when()``."""
    args = [
        sys.executable,
        __file__,
        "--child",
        kind,
        *("--trials", str(options.trials), "--epochs", str(options.epochs), "--seeds", str(options.seeds)),
        *("--lrs", str(options.lrs), "--epoch-ms", str(options.epoch_ms), "--workdir", str(work)),
    ]
    log = work / f"{kind}.log"
    with open(log, "a") as out:  # a file, not a pipe: a child blocked on a full pipe would stall the sweep
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, text=True)
        if stop_when is not None:
            while process.poll() is None:
                time.sleep(0.5)
                if stop_when():
                    process.send_signal(signal.SIGINT)
                    break
        process.wait()
    output = log.read_text()
    lines = [line for line in output.splitlines() if line.startswith("{")]
    if not lines:
        raise SystemExit(f"the {kind} child printed no result:\n{output[-3000:]}")
    return json.loads(lines[-1])


def ended_trials(work: Path) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{work / 'results.db'}")
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT count(*) FROM trials WHERE status != 'running'")) or 0
    except sa.exc.OperationalError:
        return 0
    finally:
        engine.dispose()


def starts(work: Path) -> list[float]:
    log = work / "storage" / SWEEP / "starts.log"
    return [float(line) for line in log.read_text().split()] if log.exists() else []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--lrs", type=int, default=4)
    parser.add_argument("--epoch-ms", type=float, default=2.0)
    parser.add_argument("--workdir", default="/tmp/driver-scale")
    parser.add_argument("--resume", action="store_true", help="also time resumes (runs the sweep twice)")
    parser.add_argument("--child", choices=["run", "resume"], help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        return child(options)

    work = Path(options.workdir)
    if work.exists() and any(work.iterdir()):
        raise SystemExit(f"{work} is not empty: give a new --workdir")
    (work / "full").mkdir(parents=True, exist_ok=True)
    result = run_child(options, "run", work / "full")
    folder = work / "full" / "storage" / SWEEP
    own = sum(float(x) for x in (folder / "standin-seconds.log").read_text().split())
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{work / 'full' / 'results.db'}")
    with engine.connect() as connection:
        trials = connection.scalar(sa.text("SELECT count(*) FROM trials"))
        epochs = connection.scalar(sa.text("SELECT count(*) FROM epochs"))
    engine.dispose()
    mb = 1e6
    print(f"trials {trials} (asked {options.trials}), epoch rows {epochs}, status {result['status']}")
    print(
        f"wall {result['wall']:.0f} s, stand-in's own {own:.0f} s, orchestration "
        f"{(result['wall'] - own) / max(1, trials) * 1000:.0f} ms a trial, driver peak {result['peak_mb']:.0f} MB"
    )
    print(
        f"ray experiment {folder_bytes(folder / 'ray') / mb:.1f} MB, journal "
        f"{(folder / 'optuna.journal').stat().st_size / mb:.1f} MB, checkpoints "
        f"{folder_bytes(folder / 'trials') / mb:.1f} MB, "
        f"store {(work / 'full' / 'results.db').stat().st_size / mb:.1f} MB",
        flush=True,
    )
    if options.resume:
        finished = run_child(options, "resume", work / "full")
        print(f"resume of the finished sweep: {finished['wall']:.1f} s ({finished['status']})", flush=True)
        half = work / "half"
        half.mkdir()
        stopped = run_child(options, "run", half, stop_when=lambda: ended_trials(half) >= trials // 2)
        done = ended_trials(half)
        moment = time.time()
        resumed = run_child(options, "resume", half, stop_when=lambda: any(s >= moment for s in starts(half)))
        first = min(s for s in starts(half) if s >= moment) - moment
        print(
            f"resume of the half-done sweep ({done} of {trials} trials ended, {stopped['status']}): first new trial "
            f"started after {first:.1f} s ({resumed['status']})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
