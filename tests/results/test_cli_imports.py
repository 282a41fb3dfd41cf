"""Commands that read the store start light: Ray, torch, aihwkit, timm and Optuna load only in commands that run,
submit or show trials (``run``, ``resume``, ``trial``, ``submit``, ``dashboard``), never for ``--help``.

Each command runs in a fresh interpreter on a small sweep in a SQLite store; the test lists the top-level modules
it imported. ``bench/cli_startup.py`` measures how long each command takes to start.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from analog_sweep import results

TRAINING_LIBRARIES = {"ray", "torch", "aihwkit", "timm", "optuna", "optuna_dashboard", "torchvision"}
SCRIPT = """
import json, sys
from analog_sweep.cli import cli
try:
    cli.main(sys.argv[1:], prog_name="analog-sweep", standalone_mode=False)
except SystemExit as exc:
    if exc.code not in (0, None):
        print("EXIT", exc.code, file=sys.stderr)
print(json.dumps(sorted({name.split(".")[0] for name in sys.modules})))
"""

READ_COMMANDS = [
    ["--help"],
    ["results", "--help"],
    ["status"],
    ["status", "noise"],
    ["results", "sweeps"],
    ["results", "best", "noise"],
    ["results", "curves", "noise"],
    ["results", "trials", "noise"],
    ["results", "elbows", "noise"],
    ["results", "provenance", "noise"],
    ["results", "query", "SELECT count(*) AS n FROM trials"],
    ["results", "best", "noise", "--format", "json"],
    ["results", "best", "noise", "--axis", "transfer_noise", "--plot", "OUT/fig3.png"],
    ["results", "curves", "noise", "--plot", "OUT/fig2.png"],
    ["results", "export", "noise", "--out", "OUT/epochs.parquet"],
    ["results", "export", "noise", "--out", "OUT/points.parquet", "--per", "point"],
    ["report", "noise", "--out", "OUT/report"],
    *([command, "--help"] for command in ("run", "resume", "trial", "submit", "jobs", "logs", "dashboard", "report")),
]


def _imported(args: list[str], env: dict[str, str], cwd: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0 and "EXIT" not in done.stderr, f"analog-sweep {' '.join(args)}: {done.stderr[-2000:]}"
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("args", READ_COMMANDS, ids=lambda args: " ".join(args))
def test_read_commands_do_not_load_the_training_stack(args, tmp_path, sample, monkeypatch):
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with results.open_store(url) as store:
        sample.write(store)
    env = {**os.environ, results.STORE_ENV: url}
    args = [str(tmp_path / arg[4:]) if arg.startswith("OUT/") else arg for arg in args]
    loaded = _imported(args, env, tmp_path)
    assert "analog_sweep" in loaded  # the probe ran the command
    for written in (Path(arg) for arg in args if arg.startswith(str(tmp_path))):
        assert written.exists(), f"analog-sweep {' '.join(args)} wrote no {written.name}"
    assert not loaded & TRAINING_LIBRARIES, (
        f"analog-sweep {' '.join(args)} imported {sorted(loaded & TRAINING_LIBRARIES)}"
    )


def test_the_probe_sees_a_command_that_trains(tmp_path):
    """The same probe on ``trial`` (which trains) lists torch and aihwkit, so an empty list above means something."""
    args = ["trial", "--mode", "analog_tl", "--epochs", "1", "--train-limit", "8", "--test-limit", "8"]
    args += ["--cache-dir", str(tmp_path / "cache"), "--pretrain-epochs", "1"]
    loaded = _imported(args, dict(os.environ), tmp_path)
    assert {"torch", "aihwkit", "timm"} <= loaded
