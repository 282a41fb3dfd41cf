"""Ctrl-C on ``analog-sweep run`` while trials run: the trials stop, what finished stays in the store, the sweep is
marked interrupted, the command says how to resume and exits non-zero without a traceback; ``resume`` completes it.

Ray Tune catches the first SIGINT itself and ends the experiment gracefully (stopping the trials, saving its state);
the driver then finds points unfinished and reports the sweep as interrupted. Ray's own hint ("Tuner.restore") is
silenced by the command line, which prints the one that applies.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli

from ..orchestrator.faults import reap_session
from .conftest import (
    LONG_SWEEP,
    QUICKSTART,
    SWEEP_NAME,
    assert_complete,
    cli_process,
    set_args,
    snapshot,
    wait_for,
)


def finished_one_and_running(state: dict) -> bool:
    statuses = [status for status, _ in state["trials"].values()]
    return "completed" in statuses and "running" in statuses


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_keeps_what_finished_and_resume_completes_it(tmp_path, ray_cluster):
    url, storage = f"sqlite:///{tmp_path / 'results.db'}", tmp_path / "storage"
    driver = cli_process(
        "run", QUICKSTART, *set_args(LONG_SWEEP), "--store", url, "--storage-path", str(storage), cwd=tmp_path
    )
    try:
        before = wait_for(finished_one_and_running, url, timeout=300, process=driver, poll=0.2)
        signalled = time.monotonic()
        os.killpg(driver.pid, signal.SIGINT)  # what Ctrl-C in a terminal does: the driver's whole process group
        out, err = driver.communicate(timeout=120)
        stopped_in = time.monotonic() - signalled
    finally:
        if driver.poll() is None:
            driver.kill()
        clean = reap_session(driver)
    assert driver.returncode != 0, err
    assert "Traceback" not in err and "Traceback" not in out, err
    assert f"analog-sweep resume {SWEEP_NAME}" in err, err
    assert "Tuner.restore" not in err  # Ray's hint, which does not apply
    assert clean, "trials or Ray processes were left running after the driver exited"
    assert stopped_in < 60, stopped_in
    state = snapshot(url)
    assert state["sweeps"] == {SWEEP_NAME: "interrupted"}
    # What had finished before Ctrl-C is in the store as it was.
    for trial, (status, epochs) in before["trials"].items():
        if status == "completed":
            assert state["trials"][trial] == ("completed", epochs)
    for key, row in before["epochs"].items():
        assert state["epochs"][key] == row

    result = CliRunner().invoke(cli, ["resume", SWEEP_NAME, "--store", url])
    assert result.exit_code == 0, result.output
    after = assert_complete(url, LONG_SWEEP, storage)
    for trial, (status, _) in before["trials"].items():
        if status == "completed":  # not run again
            assert all(after["epochs"][k] == v for k, v in before["epochs"].items() if k[0] == trial)
    print(f"exit {driver.returncode} {stopped_in:.1f} s after SIGINT; before: {before['trials']}")


@pytest.mark.slow
def test_sigterm_stops_the_sweep_like_ctrl_c_marks_it_interrupted_and_exits_143(tmp_path, ray_cluster):
    """``kill PID`` (also what ``docker stop`` and batch schedulers send) reaches only the driver: Ray's own handler
    would exit mid-loop and dump core (exit 134, sweep marked failed); the command stops like Ctrl-C instead."""
    url, storage = f"sqlite:///{tmp_path / 'results.db'}", tmp_path / "storage"
    driver = cli_process(
        "run", QUICKSTART, *set_args(LONG_SWEEP), "--store", url, "--storage-path", str(storage), cwd=tmp_path
    )
    try:
        before = wait_for(finished_one_and_running, url, timeout=300, process=driver, poll=0.2)
        os.kill(driver.pid, signal.SIGTERM)  # the driver alone, not its process group
        out, err = driver.communicate(timeout=120)
    finally:
        if driver.poll() is None:
            driver.kill()
        clean = reap_session(driver)
    assert driver.returncode == 143, (driver.returncode, err)
    assert "Traceback" not in err and "Traceback" not in out, err
    assert "core dumped" not in err and "SIGABRT" not in err, err
    assert f"analog-sweep resume {SWEEP_NAME}" in err, err
    assert clean, "trials or Ray processes were left running after the driver exited"
    state = snapshot(url)
    assert state["sweeps"] == {SWEEP_NAME: "interrupted"}
    for trial, (status, epochs) in before["trials"].items():
        if status == "completed":
            assert state["trials"][trial] == ("completed", epochs)
    print(f"exit {driver.returncode}; last lines: {err.strip().splitlines()[-2:]}")
