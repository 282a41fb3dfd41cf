"""The KubeRay manifests are valid against the operator's own CRD schemas and mean what the README says: the
worker group scales (only with the in-tree autoscaler), pods can become Ready, images are pulled from where they
are, the shared claim can bind, and the RayJob needs no submitter pod; they agree with the Dockerfile and the
command line (image, working folder, the shared volume and the environment variables the code reads, the GPU worker
group, the RayJob's entrypoint).

``crds/`` holds KubeRay v1.7.0's CRDs (``helm-chart/kuberay-operator/crds/`` of ray-project/kuberay, gzipped), the
operator version the manifests are written for.
"""

from __future__ import annotations

import gzip
import re
import shlex
import tomllib
from pathlib import Path

import click
import jsonschema
import pytest
import yaml

from analog_sweep.cli import cli
from analog_sweep.cli.run import STORAGE_ENV
from analog_sweep.results import STORE_ENV
from analog_sweep.workers import DATA_ROOT_ENV

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "docker" / "kuberay"
DOCKERFILE = (REPO / "docker" / "Dockerfile").read_text()
CRDS = Path(__file__).resolve().parent / "crds"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def _documents(name: str) -> dict[str, dict]:
    return {doc["kind"]: doc for doc in yaml.safe_load_all((KUBERAY / name).read_text()) if doc}


CLUSTER = _documents("raycluster.yaml")
JOB = _documents("rayjob.yaml")["RayJob"]
RAY_CLUSTER = CLUSTER["RayCluster"]
HEAD = RAY_CLUSTER["spec"]["headGroupSpec"]
WORKERS = RAY_CLUSTER["spec"]["workerGroupSpecs"]
GROUPS = [("head", HEAD), *((group["groupName"], group) for group in WORKERS)]


def _strict(schema: dict) -> dict:
    """The CRD's OpenAPI schema as JSON Schema that refuses unknown fields, as ``kubectl apply`` does (strict field
    validation, its default since Kubernetes 1.27), except where the CRD preserves unknown fields."""
    if isinstance(schema, list):
        return [_strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {key: _strict(value) for key, value in schema.items()}
    open_ended = "additionalProperties" in out or out.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in out and not open_ended:
        out["additionalProperties"] = False
    return out


def _crd_schema(kind: str) -> dict:
    crd = yaml.safe_load(gzip.decompress((CRDS / f"ray.io_{kind.lower()}s.yaml.gz").read_bytes()))
    assert crd["spec"]["names"]["kind"] == kind
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


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


@pytest.mark.parametrize("manifest", [RAY_CLUSTER, JOB], ids=["RayCluster", "RayJob"])
def test_the_manifests_are_valid_against_kuberays_crds(manifest):
    assert manifest["apiVersion"] == "ray.io/v1"
    jsonschema.validate(manifest, _crd_schema(manifest["kind"]))


def test_the_crd_check_refuses_a_misspelt_field():
    spec = {**RAY_CLUSTER["spec"], "enableInTreeAutoScaling": True}
    with pytest.raises(jsonschema.ValidationError, match="enableInTreeAutoScaling"):
        jsonschema.validate({**RAY_CLUSTER, "spec": spec}, _crd_schema("RayCluster"))


def test_the_claim_is_shared_by_every_pod_and_names_a_class_that_can_share_it():
    spec = CLUSTER["PersistentVolumeClaim"]["spec"]
    assert spec["accessModes"] == ["ReadWriteMany"]
    # Without a class the cluster's default is used, and most cannot mount ReadWriteMany: the claim stays Pending.
    assert spec.get("storageClassName")
    kustomization = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
    (patch,) = [p for p in kustomization["patches"] if p["target"]["kind"] == "PersistentVolumeClaim"]
    assert patch["target"]["name"] == CLUSTER["PersistentVolumeClaim"]["metadata"]["name"]
    assert yaml.safe_load(patch["patch"])[0]["path"] == "/spec/storageClassName"


def test_worker_groups_scale_only_where_the_autoscaler_runs():
    # KubeRay keeps exactly 'replicas' pods unless the in-tree autoscaler is on; min/maxReplicas alone change nothing.
    for group in WORKERS:
        if group.get("minReplicas") != group.get("maxReplicas"):
            assert RAY_CLUSTER["spec"].get("enableInTreeAutoscaling") is True, group["groupName"]
            assert group["minReplicas"] <= group["replicas"] <= group["maxReplicas"]


def test_pods_can_pass_the_operators_probes():
    # KubeRay operators before 1.6 (and any operator for Ray before 2.53) probe Ray pods with 'wget' in an exec
    # probe: an image without it never becomes Ready there.
    install = re.search(r"apt-get install -y --no-install-recommends([^&]*)&&", DOCKERFILE, re.S)
    assert install and "wget" in install.group(1).split()


def _all_containers() -> list[dict]:
    return [_container(group) for _, group in GROUPS]


def test_images_are_versioned_and_pulled_only_when_missing():
    # ':latest' (or no tag) means pull-always: a cluster would pull an image no public registry has.
    for container in _all_containers():
        name, _, tag = container["image"].rpartition(":")
        assert tag == VERSION and name == _image_tag().split(":")[0]
        assert container["imagePullPolicy"] == "IfNotPresent"
    assert RAY_CLUSTER["spec"]["autoscalerOptions"]["imagePullPolicy"] == "IfNotPresent"
    assert _image_tag() == f"analog-sweep-worker:{VERSION}"
    # kustomization.yaml is where the image's registry is set, for every pod of the cluster.
    kustomization = yaml.safe_load((KUBERAY / "kustomization.yaml").read_text())
    (image,) = kustomization["images"]
    assert image["name"] == _image_tag().split(":")[0] and image["newTag"] == VERSION
    assert kustomization["resources"] == ["raycluster.yaml"]


def test_requests_equal_limits_as_in_kuberays_samples():
    resources = [c["resources"] for c in _all_containers()] + [RAY_CLUSTER["spec"]["autoscalerOptions"]["resources"]]
    for each in resources:
        assert each["requests"] == each["limits"]


def test_the_rayjob_needs_no_submitter_pod():
    # K8sJobMode (the default) starts a submitter pod from the head's multi-GB image to run 'ray job submit';
    # HTTPMode submits from the operator itself, and works with a clusterSelector (SidecarMode does not).
    assert JOB["spec"]["submissionMode"] == "HTTPMode"


@pytest.mark.parametrize("name, group", GROUPS, ids=[name for name, _ in GROUPS])
def test_every_pod_runs_the_worker_image_in_its_working_folder(name, group):
    container = _container(group)
    assert container["image"] == _image_tag()
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
