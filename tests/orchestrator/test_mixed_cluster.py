"""A Ray cluster whose nodes have other package versions than the driver: refused before any trial runs, or, with
--allow-mixed-versions, run with one warning per node and each trial's node recorded with its versions.

The cluster is a local multi-node Ray cluster (``ray.cluster_utils.Cluster``: each node its own raylet, as on
separate machines). One worker node's raylet, and so every worker it starts, has a folder holding another timm's
distribution metadata first on its ``PYTHONPATH``: ``importlib.metadata`` there finds timm 0.0.1 as the installed
distribution, as it would on a machine where that version was installed, while the driver and the other node find
the venv's.
"""

from __future__ import annotations

import csv
import importlib.metadata
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from analog_sweep.orchestrator import ClusterError
from analog_sweep.orchestrator._node_versions import NodeVersions, difference_text, installed_versions
from analog_sweep.results import NotFound, open_store, package_differences

from ..faults import conftest as faults
from ..faults.conftest import FAULT_SWEEP, NAME, ONE_POINT, SPEC_FILE, set_args

# The fault suite's fixtures: local Ray clusters and CLI drivers, taken down after each test, in a private Ray folder.
clusters, drivers, ray_temp_dir = faults.clusters, faults.drivers, faults.ray_temp_dir

OTHER_TIMM = "0.0.1"
ALLOW = "--allow-mixed-versions"


def other_timm(folder: Path) -> Path:
    """A folder holding only the metadata of a timm 0.0.1 distribution, as pip leaves it in site-packages."""
    info = folder / f"timm-{OTHER_TIMM}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: timm\nVersion: {OTHER_TIMM}\n")
    (info / "INSTALLER").write_text("pip\n")
    return folder


def mixed_cluster(clusters, folder: Path):
    """A head without CPUs (trials run on the workers only), one worker node with the driver's versions and one whose
    timm is 0.0.1, 1 CPU each; returns (cluster, the same node, the other node)."""
    cluster = clusters.start(head_cpus=0, worker_cpus=(1,))
    [same] = cluster.worker_nodes
    other = cluster.add_node(num_cpus=1, env_vars={"PYTHONPATH": str(other_timm(folder))})
    cluster.wait_for_nodes()
    return cluster, same, other


def node_text(node) -> str:
    return f"node {node.node_ip_address} ({node.node_id[:8]})"


def provenance(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "analog_sweep", "results", "provenance", NAME, "--store", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_node_with_another_timm_is_refused_or_run_with_one_warning_and_recorded(tmp_path, clusters, drivers):
    timm = importlib.metadata.version("timm")
    assert timm != OTHER_TIMM
    overrides = [*FAULT_SWEEP, *ONE_POINT, "epochs=1"]  # 2 trials of 1 CPU: one on each worker node at once
    storage = tmp_path / "storage"
    cluster, same, other = mixed_cluster(clusters, tmp_path / "other-timm")

    # Refused: one line naming the node and the package, a non-zero exit, nothing run or recorded.
    refused = drivers.start(*run_args(overrides, storage), address=cluster.address)
    output = refused.finish(timeout=300)
    assert refused.process.returncode != 0, output
    expected = (
        f"{node_text(other)} has timm {OTHER_TIMM}, the driver {timm}: trials there would differ; install the same "
        f"versions or pass {ALLOW}"
    )
    assert expected in output.splitlines()[-1], output
    assert "Traceback" not in output and node_text(same) not in output
    with open_store(drivers.url) as store, pytest.raises(NotFound):
        store.get_sweep(NAME)
    assert not (storage / NAME / "trials").exists() and not (storage / NAME / "ray").exists()

    # Allowed: the sweep runs, one warning about that node, and each trial records the node it ran on.
    allowed = drivers.start(*run_args(overrides, storage), ALLOW, address=cluster.address)
    output = allowed.finish(timeout=420)
    assert allowed.process.returncode == 0, output
    assert f"sweep {NAME} finished" in output
    warnings = [line for line in output.splitlines() if line.startswith("warning:") and "timm" in line]
    assert warnings == [
        f"warning: {node_text(other)} has timm {OTHER_TIMM}, the driver {timm}: its trials may differ ({ALLOW}); "
        "each trial records its node's versions"
    ], output

    engine = sa.create_engine(drivers.url)
    with engine.connect() as connection:
        ran = connection.execute(
            sa.text(
                "SELECT t.trial_id, n.node_id, n.packages FROM trials t "
                "JOIN node_environments n ON n.environment_hash = t.node_environment_hash"
            )
        ).all()
        trials = connection.scalar(sa.text("SELECT count(*) FROM trials"))
    engine.dispose()
    assert len(ran) == trials == 2
    timm_on = {same.node_id: timm, other.node_id: OTHER_TIMM}
    for trial_id, node_id, packages in ran:
        packages = json.loads(packages) if isinstance(packages, str) else packages
        assert packages["timm"] == timm_on[node_id], (trial_id, node_id, packages)
        assert {k: v for k, v in packages.items() if k != "timm"} == {
            k: v for k, v in installed_versions().items() if k != "timm"
        }
    assert {node_id for _, node_id, _ in ran} == {same.node_id, other.node_id}  # one trial on each node

    # Provenance lists both environments: the nodes, their trials, and what differs from the driver.
    listed = provenance(drivers.url, "--format", "json")
    assert listed.returncode == 0, listed.stderr
    nodes = {node["node_id"]: node for node in json.loads(listed.stdout)["nodes"]}
    assert set(nodes) == {cluster.head_node.node_id, same.node_id, other.node_id}  # the head was checked too
    assert nodes[other.node_id]["differences"] == {"timm": {"node": OTHER_TIMM, "driver": timm}}
    assert nodes[same.node_id]["differences"] == {} == nodes[cluster.head_node.node_id]["differences"]
    assert (nodes[other.node_id]["trials"], nodes[same.node_id]["trials"]) == (1, 1)
    assert nodes[cluster.head_node.node_id]["trials"] == 0
    facts = provenance(drivers.url, "--format", "csv")
    assert facts.returncode == 0, facts.stderr
    rows = {
        (r["item"], r["field"]): r["value"] for r in csv.DictReader(io.StringIO(facts.stdout)) if r["section"] == "node"
    }
    assert rows["all", "summary"] == "3 nodes, 2 package sets; 1 node differs from the driver (1 trial)"
    item = f"{other.node_ip_address} ({other.node_id[:8]})"
    assert rows[item, "differences"] == f"timm {OTHER_TIMM} (the driver {timm})" and rows[item, "trials"] == "1"


def run_args(overrides: list[str], storage: Path) -> list[str]:
    return ["run", str(SPEC_FILE), *set_args(overrides), "--storage-path", str(storage)]


# --- the comparison, without a cluster ------------------------------------------------------------------------------

DRIVER = {"python": "3.11.7", "analog-sweep": "0.1.0", "torch": "2.10.0", "aihwkit": "1.1.0", "timm": "1.0.31"}


def a_node(node_id: str, **packages: str | None) -> dict:
    return {"node_id": node_id, "host": "gpu-7", "ip": "10.0.0.7", "packages": {**DRIVER, **packages}}


def test_differences_name_each_package_and_a_missing_one():
    assert package_differences(DRIVER, DRIVER) == {}
    assert package_differences({**DRIVER, "aihwkit": "1.0.0", "timm": None}, DRIVER) == {
        "aihwkit": {"node": "1.0.0", "driver": "1.1.0"},
        "timm": {"node": None, "driver": "1.0.31"},
    }
    # A package only one side recorded (an older record) is no difference.
    assert package_differences({**DRIVER, "numpy": "2.4.6"}, DRIVER) == {}
    node = a_node("abc12345ffff", aihwkit="1.0.0")
    assert difference_text(node, DRIVER) == "node 10.0.0.7 (abc12345) has aihwkit 1.0.0, the driver 1.1.0"
    node = a_node("abc12345ffff", aihwkit="1.0.0", timm=None, torch="2.9.1")
    assert difference_text(node, DRIVER) == (
        "node 10.0.0.7 (abc12345) has torch 2.9.1, aihwkit 1.0.0 and no timm, the driver 2.10.0, 1.1.0 and 1.0.31"
    )
    assert difference_text(a_node("abc12345ffff"), DRIVER) is None


def test_a_differing_node_is_refused_unless_mixing_is_allowed():
    nodes = [a_node("aaaa0000"), a_node("bbbb1111", aihwkit="1.0.0"), a_node("cccc2222", timm="0.9")]
    said: list[str] = []
    refusal = (
        r"^node 10.0.0.7 \(bbbb1111\) has aihwkit 1.0.0, the driver 1.1.0: trials there would differ \(and 1 more "
        r"node\); install the same versions or pass --allow-mixed-versions$"
    )
    with pytest.raises(ClusterError, match=refusal):
        NodeVersions(False, said.append, DRIVER)._judge(nodes, [])
    assert said == []
    with pytest.raises(ClusterError, match=r"^the package versions of node 10.0.0.8 \(dddd3333\) did not answer"):
        NodeVersions(False, said.append, DRIVER)._judge([nodes[0]], ["node 10.0.0.8 (dddd3333) did not answer"])

    allowed = NodeVersions(True, said.append, DRIVER)
    assert allowed._judge(nodes, []) == nodes
    assert said == [
        "warning: node 10.0.0.7 (bbbb1111) has aihwkit 1.0.0, the driver 1.1.0: its trials may differ "
        "(--allow-mixed-versions); each trial records its node's versions",
        "warning: node 10.0.0.7 (cccc2222) has timm 0.9, the driver 1.0.31: its trials may differ "
        "(--allow-mixed-versions); each trial records its node's versions",
    ]
    # Their trials' reports say nothing more: each node was warned about once.
    said.clear()
    for node in nodes * 2:
        allowed.trial_environment(node)
    assert said == []


def test_a_node_that_joins_later_is_warned_about_once_through_its_trials():
    said: list[str] = []
    versions = NodeVersions(False, said.append, DRIVER)
    versions._judge([a_node("aaaa0000")], [])
    joined = a_node("eeee4444", torch="2.9.1")
    for node in (a_node("aaaa0000"), joined, joined, a_node("ffff5555"), joined):
        versions.trial_environment(node)
    assert said == [
        "warning: node 10.0.0.7 (eeee4444) has torch 2.9.1, the driver 2.10.0 (it was not checked when the sweep "
        "started): its trials may differ; each trial records its node's versions (analog-sweep results provenance)"
    ]
