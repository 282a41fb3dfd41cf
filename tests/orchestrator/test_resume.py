"""The driver is killed with SIGKILL in the middle of a sweep; ``resume`` completes it with nothing lost or doubled."""

from __future__ import annotations

import os
import signal
import time

import pytest

from results import open_store
from sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP
from .faults import analog_sweep, kill_session, snapshot, wait_for

# Long enough epochs (48 images) that the kill lands while trials are running.
KILL_SWEEP = [*NANO_SWEEP, "data.train_limit=48", "epochs=3", "modes=[analog_tl,digital_tl,analog_scratch]"]


@pytest.mark.slow
def test_sigkill_of_the_driver_mid_sweep_then_resume_completes_it(tmp_path):
    url = f"sqlite:///{tmp_path}/results.db"
    common = ["--store", url]
    overrides = [arg for item in KILL_SWEEP for arg in ("--set", item)]
    spec_file = str(shipped_specs()["quickstart"])
    driver = analog_sweep("run", spec_file, *overrides, "--storage-path", str(tmp_path / "storage"), *common,
                          cwd=tmp_path)

    def finished_and_running(state):
        statuses = list(state["trials"].values())
        running = [t for t, s in state["trials"].items() if s == "running"]
        return statuses.count("completed") >= 2 and any(t for t, _ in state["epochs"] if t in running)

    try:
        before = wait_for(finished_and_running, url, timeout=420)
    finally:
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait()
        time.sleep(2)
        kill_session(driver)  # what the OS would reap: the local Ray instance the killed driver had started
    with open_store(url) as store:
        assert store.get_sweep("quickstart")["status"] == "running"  # killed: nobody could say otherwise

    resumed = analog_sweep("resume", "quickstart", *common, cwd=tmp_path)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "finished" in output

    after = snapshot(url)
    spec = load_spec(spec_file, KILL_SWEEP)
    points = expand(spec)
    with open_store(url) as store:
        best = store.best_points("quickstart")
        assert store.get_sweep("quickstart")["status"] == "finished"
    # Every expected point has a chosen trial.
    assert len(best) == len(points) and all(row["trial_id"] and row["status"] == "done" for row in best)
    # Every trial ran to the end, once: one row per trial and epoch, and no more trials than the budget.
    assert len(after["trials"]) == len(points) * spec.lr_search.trials_per_point
    assert set(after["trials"].values()) == {"completed"}
    assert sorted(after["epochs"]) == sorted((t, e) for t in after["trials"] for e in range(1, spec.epochs + 1))
    # No trial that had finished ran again: its epoch rows are the very same (seconds included).
    for trial_id, status in before["trials"].items():
        if status == "completed":
            for epoch in range(1, spec.epochs + 1):
                assert after["epochs"][(trial_id, epoch)] == before["epochs"][(trial_id, epoch)]
    # Epochs a running trial had finished before the kill were not trained again either.
    for (trial_id, epoch), seconds in before["epochs"].items():
        assert after["epochs"][(trial_id, epoch)] == seconds
