"""The sweep driver is SIGKILLed at four different moments of one sweep: during pretraining, between two trials,
while it writes a result to the store, and in the middle of a trial. After each kill ``analog-sweep resume`` takes
over (and is
itself killed at the next moment); the last resume completes the sweep, with every row present once, and nothing
that had finished trained again.

One sweep takes all four kills, one after another, rather than one sweep per moment: a driver start costs 20-40 s
here (imports, Ray actors), and a chain of kills of resumed drivers is the harder case anyway.

The drivers join one Ray node with ``--address`` (as on a cluster): a killed driver's trials die with it, as Ray ends
a dead driver's actors. Trials run one after another (each takes both CPUs), so that "between trials" and "in the
middle of a trial" are distinct moments the test can see in the store and the storage folder. "While writing" is
made exact without any hook in the code: the test holds the SQLite store's write lock, so the driver's write of an
epoch waits inside the store call until the kill.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ..orchestrator.faults import poll, try_snapshot
from .conftest import (
    FAULT_SWEEP,
    NAME,
    ONE_AT_A_TIME,
    assert_sweep_complete,
    checkpoint_stamps,
    fully_reported,
    pretraining_in_progress,
    spec_for,
    store_write_lock,
    study_has_step,
)

EPOCHS = 2
# Pretraining made long enough (a few seconds) to be seen running.
SWEEP = [*FAULT_SWEEP, *ONE_AT_A_TIME, f"epochs={EPOCHS}", "pretrain.epochs=10"]


def partial(state: dict) -> list[str]:
    """Trials with some but not all of their epochs in the store."""
    return [t for t in state["trials"] if 0 < sum((t, e) in state["epochs"] for e in range(1, EPOCHS + 1)) < EPOCHS]


def completed(state: dict) -> list[str]:
    return [t for t, status in state["trials"].items() if status == "completed"]


# A probe looks at the store and the storage folder (and at the state the previous kill left) and returns what it
# saw when the moment has come, else None.
Probe = Callable[[dict | None, Path, dict], str | None]


def during_pretraining(state: dict | None, storage: Path, previous: dict) -> str | None:
    if pretraining_in_progress(storage) and not (state and state["epochs"]):
        return "a pretraining job holds its cache lock, no model cached yet, no trial started"
    return None


def between_trials(state: dict | None, storage: Path, previous: dict) -> str | None:
    if state is None:
        return None
    new = [t for t in completed(state) if t not in completed(previous)]
    if new and not partial(state):
        return f"trial {new[0]} has just completed, no other trial has reported an epoch"
    return None


def mid_trial(state: dict | None, storage: Path, previous: dict) -> str | None:
    if state is None:
        return None
    running = [t for t in partial(state) if state["trials"][t] == "running" and t not in partial(previous)]
    if running and completed(state):
        return f"trial {running[0]} has finished 1 of {EPOCHS} epochs, {len(completed(state))} trial(s) completed"
    return None


def writing_results(state: dict | None, storage: Path, previous: dict) -> str | None:
    """A new trial is one epoch short of its last: the test then takes the store's write lock (see the test)."""
    if state is None:
        return None
    running = [t for t in partial(state) if state["trials"][t] == "running" and t not in partial(previous)]
    return f"trial {running[0]} is training its last epoch" if running else None


MOMENTS: list[tuple[str, Probe]] = [
    ("pretraining", during_pretraining),
    ("between trials", between_trials),
    ("writing results", writing_results),
    ("mid-trial", mid_trial),
]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_driver_sigkilled_at_four_moments_each_time_resume_continues_and_completes_the_sweep(
    tmp_path, shared_cluster, drivers
):
    spec = spec_for(SWEEP)
    storage = tmp_path / "storage"
    started = time.monotonic()
    empty = {"sweeps": {}, "trials": {}, "epochs": {}}
    seen_rows: dict = {}  # every epoch row seen at any kill: none may change afterwards
    stamps: dict[str, int] = {}  # checkpoints of trials that had reported every epoch: none may be rewritten
    previous = empty
    log = []

    driver = drivers.run(SWEEP, storage, address=shared_cluster.address)
    for moment, probe in MOMENTS:

        def look(probe=probe, previous=previous) -> str | None:
            return probe(try_snapshot(drivers.url), storage, previous)

        seen = poll(look, timeout=300, interval=0.05, what=f"moment {moment!r}", process=driver.process, log=driver.log)
        if moment == "writing results":
            trial_id = seen.split()[1]
            with store_write_lock(drivers.url):
                # The worker finishes the epoch; the driver gives the study its test error, then waits on the lock
                # to record the epoch in the store: killed there.
                poll(
                    lambda t=trial_id: study_has_step(storage, t, EPOCHS),
                    timeout=120,
                    interval=0.05,
                    what=f"the driver to report the last epoch of {trial_id}",
                    process=driver.process,
                    log=driver.log,
                )
                driver.kill()
            state = try_snapshot(drivers.url) or empty
            assert (trial_id, EPOCHS) not in state["epochs"], "the kill was meant to land before the write"
            seen += f"; killed while recording its epoch {EPOCHS}, which the store never got"
        else:
            driver.kill()
        state = try_snapshot(drivers.url) or empty
        log.append(
            f"{moment}: killed at {time.monotonic() - started:.0f} s: {seen}; "
            f"{len(completed(state))} trial(s) completed, {len(state['epochs'])} epoch row(s)"
        )
        assert state["sweeps"].get(NAME) == "running", f"after the kill {moment}: killed, nobody could say otherwise"
        changed = {k: (v, state["epochs"].get(k)) for k, v in seen_rows.items() if state["epochs"].get(k) != v}
        assert not changed, f"after the kill {moment}: epoch rows changed by the resume (before, after): {changed}"
        seen_rows.update(state["epochs"])
        for trial_id in fully_reported(state, EPOCHS):
            stamps.setdefault(trial_id, checkpoint_stamps(storage, [trial_id])[trial_id])
        previous = state
        driver = drivers.resume(address=shared_cluster.address)

    output = driver.finish(timeout=420)
    assert driver.process.returncode == 0, output
    assert f"sweep {NAME} finished" in output
    assert_sweep_complete(drivers.url, spec, storage, {"epochs": seen_rows}, stamps)
    print("\n".join([*log, f"finished at {time.monotonic() - started:.0f} s"]))
