"""The KubeRay manifests parse and agree with the Dockerfile and the command line: image, working folder, the
shared volume and the environment variables the code reads, the GPU worker group, and the RayJob's entrypoint."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import click
import pytest
import yaml

from analog_sweep.cli import cli
from analog_sweep.cli.run import STORAGE_ENV
from results import STORE_ENV
from workers.data import DATA_ROOT_ENV

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "docker" / "kuberay"
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()


def _documents(name: str) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((KUBERAY / name).read_text()) if doc}


CLUSTER = _documents("raycluster.yaml")
JOB = _documents("rayjob.yaml")["RayJob"]
RAY_CLUSTER = CLUSTER["RayCluster"]
HEAD = RAY_CLUSTER["spec"]["headGroupSpec"]
WORKERS = RAY_CLUSTER["spec"]["workerGroupSpecs"]
GROUPS = [("head", HEAD), *((group["groupName"], group) for group in WORKERS)]


def _container(group: dict) -> dict:
    (container,) = group["template"]["spec"]["containers"]
    return container


def _env(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def _image_tag() -> str:
    match = re.search(r"docker build -f docker/Dockerfile -t (\S+) \.", DOCKERFILE)
    assert match, "the Dockerfile's build line names no tag"
    return match.group(1)


def _workdir() -> str:
    return re.findall(r"^WORKDIR (\S+)", DOCKERFILE, re.M)[-1]


def _shared_mount(group: dict) -> str:
    """Where the group mounts the shared claim; the claim must be the PVC the file defines."""
    volumes = {v["name"]: v for v in group["template"]["spec"]["volumes"]}
    claim = CLUSTER["PersistentVolumeClaim"]["metadata"]["name"]
    claims = {name for name, v in volumes.items() if v.get("persistentVolumeClaim", {}).get("claimName") == claim}
    (mount,) = [m["mountPath"] for m in _container(group)["volumeMounts"] if m["name"] in claims]
    return mount


def test_the_claim_is_shared_by_every_pod():
    assert CLUSTER["PersistentVolumeClaim"]["spec"]["accessModes"] == ["ReadWriteMany"]


@pytest.mark.parametrize("name, group", GROUPS, ids=[name for name, _ in GROUPS])
def test_every_pod_runs_the_worker_image_in_its_working_folder(name, group):
    container = _container(group)
    assert container["image"].split(":")[0] == _image_tag()
    assert container["workingDir"] == _workdir()


@pytest.mark.parametrize("name, group", GROUPS, ids=[name for name, _ in GROUPS])
def test_storage_and_data_are_on_the_shared_volume_under_the_names_the_code_reads(name, group):
    env = _env(_container(group))
    mount = _shared_mount(group)
    for variable in (STORAGE_ENV, DATA_ROOT_ENV):
        assert Path(env[variable]["value"]).is_relative_to(mount), (variable, mount)
    storages = {_env(_container(g))[STORAGE_ENV]["value"] for _, g in GROUPS}
    assert len(storages) == 1  # every node sees the same storage path


def test_only_the_head_gets_the_store_and_it_comes_from_a_secret():
    store = _env(_container(HEAD))[STORE_ENV]
    assert "value" not in store and store["valueFrom"]["secretKeyRef"]["key"]
    for group in WORKERS:
        assert STORE_ENV not in _env(_container(group))


def test_the_head_has_no_gpus_and_the_workers_do():
    assert HEAD["rayStartParams"]["num-gpus"] == "0"
    assert "nvidia.com/gpu" not in str(_container(HEAD)["resources"])
    assert HEAD["rayStartParams"]["dashboard-host"] == "0.0.0.0"  # the jobs server 'submit' talks to
    assert {p["containerPort"] for p in _container(HEAD)["ports"]} >= {6379, 8265}
    for group in WORKERS:
        resources = _container(group)["resources"]
        assert int(resources["limits"]["nvidia.com/gpu"]) >= 1


def test_ray_version_is_the_pinned_one():
    pinned = re.search(r"^ray==(\S+)$", (REPO / "constraints.txt").read_text(), re.M).group(1)
    assert RAY_CLUSTER["spec"]["rayVersion"] == pinned


def test_the_rayjob_runs_a_shipped_spec_on_this_cluster_with_a_valid_command_line():
    assert JOB["spec"]["clusterSelector"]["ray.io/cluster"] == RAY_CLUSTER["metadata"]["name"]
    program, command, *args = shlex.split(JOB["spec"]["entrypoint"])
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert program in scripts and scripts[program] == "analog_sweep.cli:main"
    ctx = click.Context(cli)
    parsed = cli.get_command(ctx, command).make_context(command, list(args), parent=ctx)
    # The spec is in the image: under the working folder, in a folder the Dockerfile copies, and shipped here.
    spec = Path(parsed.params["spec_file"])
    relative = spec.relative_to(_workdir())
    assert f"COPY {relative.parts[0]} {relative.parts[0]}" in DOCKERFILE
    assert (REPO / relative).is_file()
    # Joins the cluster (inside a job RAY_ADDRESS names it); store and storage come from the head's environment.
    assert parsed.params["address"] == "auto"
    assert parsed.params["store_url"] is None and "--storage-path" not in args
