"""Requests no node can hold are refused at once.

A trial (and a pretraining job) runs on one node, so a request is compared with the largest node, not with the
cluster's totals: on two 2-CPU nodes, ``resources.cpu: 3`` would wait forever. The driver must say so in one line,
naming the largest node, before it writes anything or starts pretraining; the same for GPUs. The cluster is a real
local multi-node Ray cluster (``ray.cluster_utils.Cluster``); the driver joins it with ``--address``.
"""

from __future__ import annotations

import time

import pytest

from ..orchestrator.conftest import NANO_SWEEP
from ..reliability.conftest import assert_one_line_error
from .conftest import try_snapshot

# Digital TL: the sweep needs a pretraining job first, so the check must come before the pretraining stage.
UNPLACEABLE = ["modes=[digital_tl]", "axes=null"]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_request_no_single_node_can_hold_is_one_line_naming_the_largest_node(tmp_path, clusters, drivers):
    cluster = clusters.start(head_cpus=2, worker_cpus=(2,))  # 4 CPUs in all, 2 per node
    storage = tmp_path / "storage"

    started = time.monotonic()
    log = drivers.run([*NANO_SWEEP, *UNPLACEABLE, "resources.cpu=3"], storage, address=cluster.address).finish(180)
    assert time.monotonic() - started < 120, "refused at once, not after waiting"
    assert_one_line_error(log, "3 CPU per trial", "the largest node has 2 CPU", "4 CPU", "2 nodes")
    assert drivers.started[-1].process.returncode == 1
    assert not (storage / "cache").exists()  # no pretraining job was submitted
    assert (try_snapshot(drivers.url) or {}).get("sweeps", {}) == {}  # nothing written

    cluster.add_node(num_cpus=2, num_gpus=1)
    cluster.wait_for_nodes()
    log = drivers.run([*NANO_SWEEP, *UNPLACEABLE, "resources.gpu=2"], storage, address=cluster.address).finish(180)
    assert_one_line_error(log, "2 GPU per trial", "the largest node has 1 GPU", "3 nodes")
    assert not (storage / "cache").exists()
    assert (try_snapshot(drivers.url) or {}).get("sweeps", {}) == {}
