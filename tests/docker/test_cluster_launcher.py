"""``docker/cluster.yaml`` passes Ray's own cluster-launcher preparation and schema validation (what ``ray up``
runs first) for an on-premise cluster, and every worker IP it lists joins."""

from __future__ import annotations

from pathlib import Path

import click
import pytest
import yaml
from ray.autoscaler._private.local.config import LOCAL_CLUSTER_NODE_TYPE
from ray.autoscaler._private.util import prepare_config, validate_config

CLUSTER_FILE = Path(__file__).resolve().parents[2] / "docker" / "cluster.yaml"
CONFIG = yaml.safe_load(CLUSTER_FILE.read_text())


def test_ray_up_accepts_the_config():
    prepared = prepare_config(CONFIG)  # 'ray up' aborts here on fields an on-premise cluster does not support
    validate_config(prepared)
    assert list(prepared["available_node_types"]) == [LOCAL_CLUSTER_NODE_TYPE]


def test_ray_up_refuses_node_types_on_premise():
    # The check above can fail: Ray makes the node types of a local cluster itself and refuses any given.
    config = {**CONFIG, "available_node_types": {"gpu_worker": {"resources": {}, "node_config": {}}}}
    with pytest.raises(click.ClickException, match="available_node_types"):
        prepare_config(config)


@pytest.mark.parametrize("extra_ips", [0, 1, 5])
def test_every_worker_ip_joins_and_adding_one_is_all_it_takes(extra_ips):
    # The file's advice: to add a machine, add its IP. A fixed max_workers would break that (below the IPs Ray's
    # validation fails; above them Ray cuts it down), so there is none, and Ray takes the IPs' count.
    assert "max_workers" not in CONFIG and "min_workers" not in CONFIG
    provider = {
        **CONFIG["provider"],
        "worker_ips": [*CONFIG["provider"]["worker_ips"], *(f"10.0.0.{i}" for i in range(extra_ips))],
    }
    prepared = prepare_config({**CONFIG, "provider": provider})
    validate_config(prepared)
    node_type = prepared["available_node_types"][LOCAL_CLUSTER_NODE_TYPE]
    assert node_type["min_workers"] == node_type["max_workers"] == len(provider["worker_ips"])


def test_the_head_runs_no_trials_and_every_node_runs_the_versioned_image():
    (start,) = [c for c in CONFIG["head_start_ray_commands"] if c.startswith("ray start")]
    assert "--num-gpus=0" in start.split()
    assert CONFIG["docker"]["image"].endswith(":0.1.0") and not CONFIG["docker"]["image"].endswith(":latest")
