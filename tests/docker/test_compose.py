"""``docker/compose.yaml`` gives each Ray worker its own GPU. Docker maps ``count: N`` to GPUs 0..N-1 in every
container, so workers asking for a count (scaled with ``--scale``) all land on GPU 0 while Ray counts one GPU each;
``device_ids`` pins each worker to its own."""

from __future__ import annotations

from pathlib import Path

import yaml

COMPOSE = yaml.safe_load((Path(__file__).resolve().parents[2] / "docker" / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _gpus(service: dict) -> list[dict]:
    devices = service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])
    return [d for d in devices if "gpu" in d.get("capabilities", [])]


def test_no_service_asks_for_gpus_by_count_or_all():
    # 'gpus: all' (or a count) gives a container every GPU (or the first N): workers would share them unseen by Ray.
    for name, service in SERVICES.items():
        assert "gpus" not in service, name


def test_every_gpu_worker_is_pinned_to_devices_no_other_worker_has():
    workers = {name: _gpus(s) for name, s in SERVICES.items() if _gpus(s)}
    assert len(workers) >= 2
    seen: dict[str, str] = {}
    for name, requests in workers.items():
        for request in requests:
            assert "count" not in request, f"{name}: a count maps to GPUs 0..N-1 in every container"
            for device in request["device_ids"]:
                assert device not in seen, f"{name} and {seen.get(device)} share GPU {device}"
                seen[device] = name


def test_gpu_workers_join_the_head_and_the_head_runs_no_trials():
    assert "--num-gpus=0" in SERVICES["head"]["command"].split()
    for name, service in SERVICES.items():
        if _gpus(service):
            assert service["command"].startswith("ray start --address=head:6379"), name
            assert service["image"] == SERVICES["head"]["image"], name
