"""Losing Ray nodes: one worker node of a multi-node cluster goes away mid-sweep (its trial moves to the node that is
left and continues from its checkpoint), and a whole cluster goes away (``resume --address`` on a new cluster
completes the sweep from the shared storage path).

The clusters are local multi-node Ray clusters (``ray.cluster_utils.Cluster``: each node its own raylet, as on
separate machines, sharing this machine's file system as the storage path); the driver joins with ``--address``.
"""

from __future__ import annotations

import os
import time

import pytest

from ..orchestrator.faults import (
    alive,
    descendants,
    holders_of,
    is_ancestor,
    poll,
    snapshot,
    try_snapshot,
)
from .conftest import (
    FAULT_SWEEP,
    NAME,
    ONE_AT_A_TIME,
    ONE_POINT,
    assert_sweep_complete,
    checkpoint_stamps,
    fully_reported,
    spec_for,
    trial_worker,
)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_lost_worker_node_moves_its_trial_to_the_node_left(tmp_path, clusters, drivers):
    epochs = 3
    overrides = [*FAULT_SWEEP, *ONE_POINT, f"epochs={epochs}"]  # 2 trials, one on each node
    spec = spec_for(overrides)
    storage = tmp_path / "storage"
    started = time.monotonic()
    cluster = clusters.start(head_cpus=0, worker_cpus=(1, 1))  # trials only ever run on the two worker nodes
    driver = drivers.run(overrides, storage, address=cluster.address)

    trial_id, pids = poll(
        trial_worker(drivers.url, storage),
        timeout=300,
        interval=0.1,
        what="a trial's worker after its first epoch",
        process=driver.process,
        log=driver.log,
    )
    [node] = [n for n in cluster.worker_nodes if is_ancestor(n.all_processes["raylet"][0].process.pid, pids[0])]
    clusters.lose_node(cluster, node)
    before = snapshot(drivers.url)
    lost_at = time.monotonic() - started
    poll(lambda: not any(alive(pid) for pid in pids), timeout=10, what="the lost node's worker to be gone")
    [left] = cluster.worker_nodes
    # The trial is retried on the node that is left: the process that takes its lock next runs there.
    lock = storage / NAME / "trials" / trial_id / "lock"
    holders = poll(
        lambda: holders_of(lock, descendants(os.getpid())),
        timeout=300,
        interval=0.1,
        what=f"{trial_id} to be retried",
        process=driver.process,
        log=driver.log,
    )
    assert all(is_ancestor(left.all_processes["raylet"][0].process.pid, pid) for pid in holders)

    output = driver.finish(timeout=420)
    assert driver.process.returncode == 0, output
    assert f"sweep {NAME} finished" in output
    after = assert_sweep_complete(drivers.url, spec, storage, before, checkpoint_stamps(storage, []))
    assert after["epochs"][(trial_id, 1)] == before["epochs"][(trial_id, 1)]  # continued, not started over
    print(f"node of {trial_id} lost at {lost_at:.0f} s; finished at {time.monotonic() - started:.0f} s")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_whole_cluster_goes_away_and_resume_on_a_new_cluster_completes_the_sweep(tmp_path, clusters, drivers):
    epochs = 2
    overrides = [*FAULT_SWEEP, *ONE_POINT, *ONE_AT_A_TIME, f"epochs={epochs}"]  # 2 trials, one after the other
    spec = spec_for(overrides)
    storage = tmp_path / "storage"
    started = time.monotonic()
    cluster = clusters.start(head_cpus=2)
    driver = drivers.run(overrides, storage, address=cluster.address)

    def one_done_one_started() -> dict | None:
        state = try_snapshot(drivers.url)
        started_next = state and set(state["trials"]) - set(fully_reported(state, epochs))
        if started_next and "completed" in state["trials"].values() and len(state["epochs"]) > epochs:
            return state
        return None

    poll(
        one_done_one_started,
        timeout=300,
        interval=0.1,
        what="one trial completed and the next one started",
        process=driver.process,
        log=driver.log,
    )
    # Every Ray process of the cluster ends at once, and the driver with them (it ran on the head node).
    clusters.lose(cluster)
    driver.kill()
    lost_at = time.monotonic() - started
    before = snapshot(drivers.url)
    assert before["sweeps"][NAME] == "running"
    done = fully_reported(before, epochs)
    stamps = checkpoint_stamps(storage, done)

    cluster = clusters.start(head_cpus=2)
    resumed = drivers.resume(address=cluster.address)
    output = resumed.finish(timeout=420)
    assert resumed.process.returncode == 0, output
    assert f"sweep {NAME} finished" in output
    assert_sweep_complete(drivers.url, spec, storage, before, stamps)
    assert os.path.isdir(storage / NAME / "ray" / "run-2")  # the resume ran its own Ray Tune experiment
    print(f"cluster lost at {lost_at:.0f} s with {done} done; finished at {time.monotonic() - started:.0f} s")
