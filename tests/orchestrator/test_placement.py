"""The pretraining stage never waits forever for a job no node can hold: while it waits, it checks
every few seconds that a live node can still hold the job, and stops with one line when none can (after nodes were
lost; a request above the largest node is refused before any job is submitted, see tests/faults/test_unplaceable)."""

from __future__ import annotations

import time

import pytest
import ray

from analog_sweep.orchestrator import ClusterError
from analog_sweep.orchestrator._cluster import wait_placeable


@ray.remote(num_cpus=0)
def _slow() -> int:
    time.sleep(30)
    return 1


def test_waiting_for_a_job_no_live_node_can_hold_stops_with_one_line(local_ray):
    ref = _slow.remote()
    started = time.monotonic()
    with pytest.raises(
        ClusterError, match=r"needs 64 CPU on one node, but no live node has that any more \(the largest has 2 CPU\)"
    ):
        wait_placeable(ref, 64, 0, every=0.5)
    assert time.monotonic() - started < 10
    ray.cancel(ref, force=True)


def test_a_job_that_fits_is_simply_waited_for(local_ray):
    ref = ray.remote(num_cpus=1)(lambda: 7).remote()
    wait_placeable(ref, 1, 0, every=0.5)
    assert ray.get(ref) == 7
