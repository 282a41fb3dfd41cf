"""The Ray worker process training a trial is SIGKILLed mid-trial: Ray Tune retries the trial (``max_retries``), the
new worker continues from the trial's last epoch checkpoint, and the trial's epoch rows stay continuous, with the
epochs finished before the kill untouched.

The victim is found without any hook in the code under test: the process, among this test's descendants, that holds
the trial's checkpoint-folder lock (``trials/<trial id>/lock``, held by ``fine_tune`` while it trains).
"""

from __future__ import annotations

import time

import pytest

from analog_sweep.orchestrator import sweep_paths

from ..orchestrator.faults import (
    alive,
    kill_pids,
    poll,
    snapshot,
)
from .conftest import (
    FAULT_SWEEP,
    NAME,
    ONE_POINT,
    assert_sweep_complete,
    checkpoint_stamps,
    spec_for,
    trial_worker,
)

EPOCHS = 3
SWEEP = [*FAULT_SWEEP, *ONE_POINT, f"epochs={EPOCHS}"]  # 2 trials side by side, one per CPU


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_sigkilled_trial_worker_is_retried_from_its_last_epoch_checkpoint(tmp_path, shared_cluster, drivers):
    spec = spec_for(SWEEP)
    assert spec.max_retries >= 1
    storage = tmp_path / "storage"
    started = time.monotonic()
    driver = drivers.run(SWEEP, storage, address=shared_cluster.address)

    trial_id, pids = poll(
        trial_worker(drivers.url, storage),
        timeout=300,
        interval=0.1,
        what="a trial's worker after its first epoch",
        process=driver.process,
        log=driver.log,
    )
    kill_pids(pids)
    before = snapshot(drivers.url)
    killed_at = time.monotonic() - started
    poll(lambda: not any(alive(pid) for pid in pids), timeout=10, what="the killed worker to be gone")

    output = driver.finish(timeout=420)
    assert driver.process.returncode == 0, output  # the sweep finished in the same run: no resume was needed
    assert f"sweep {NAME} finished" in output
    after = assert_sweep_complete(drivers.url, spec, storage, before, checkpoint_stamps(storage, []))
    # The killed trial: epochs 1..EPOCHS once each (checked above), epoch 1 as it was before the kill, the later
    # ones trained after it by a new worker.
    assert sorted(e for t, e in after["epochs"] if t == trial_id) == list(range(1, EPOCHS + 1))
    assert after["epochs"][(trial_id, 1)] == before["epochs"][(trial_id, 1)]
    # Ray Tune saw the failure and retried the trial (it keeps the error of each failed attempt).
    errors = list(sweep_paths(storage, NAME).ray.glob(f"run-1/{trial_id}_*/error.txt"))
    assert errors, f"no Ray Tune error file for {trial_id}: was the trial retried at all?"
    print(f"worker {pids} of {trial_id} killed at {killed_at:.0f} s; finished at {time.monotonic() - started:.0f} s")
