"""A real sweep records its provenance: the run, a resume on other package versions (warned about), the pretrained
model with its file hash, and each analog trial's resolved rpu config."""

from __future__ import annotations

import hashlib
import json
import subprocess
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from orchestrator import Invocation, gather_environment, resume_sweep, run_sweep, version_warnings
from results import open_store
from sweeps import expand, load_spec, shipped_specs, trial_config
from workers.rpu_json import trial_rpu_config_json

from .conftest import NANO_SWEEP

REPO = Path(__file__).resolve().parents[2]
# One analog and one digital transfer-learning point, two learning rates each, one epoch.
SWEEP = [*NANO_SWEEP, "epochs=1", "modes=[analog_tl,digital_tl]", "axes=null"]


@pytest.mark.slow
def test_a_run_and_a_resume_record_their_provenance(tmp_path, local_ray):
    spec = load_spec(shipped_specs()["quickstart"], SWEEP)
    url = f"sqlite:///{tmp_path}/results.db"
    secret = f"Pw-{uuid.uuid4().hex}"
    command = ["analog-sweep", "run", "quickstart.yaml", "--set", "epochs=1", "--store",
               f"postgresql+psycopg://me:{secret}@db.example.org/sweeps"]
    lines: list[str] = []
    with open_store(url) as store:
        outcome = run_sweep(spec, store, storage_root=tmp_path / "storage", echo=lines.append,
                            invocation=Invocation(command, {"overrides": SWEEP, "store": "label"}))
        assert outcome.status == "finished", outcome.message
        # An earlier run on other versions: what the store says the first run had.
        with store.engine.begin() as connection:
            connection.execute(sa.text("UPDATE sweeps SET status = 'interrupted'"))
            old = store.provenance(spec.name)["runs"][0]
            older = {**old["packages"], "torch": "2.9.1", "optuna": "3.0.0"}
            connection.execute(sa.text("UPDATE sweep_runs SET packages = :p"), {"p": json.dumps(older)})
        lines.clear()
        resumed = resume_sweep(spec.name, store, echo=lines.append)
        assert resumed.status == "finished", resumed.message
        found = store.provenance(spec.name)

    now = gather_environment()["packages"]
    warnings = [line for line in lines if line.startswith("warning: resuming")]
    assert warnings == [f"warning: resuming with torch {now['torch']} (the sweep ran with 2.9.1)",
                        f"warning: resuming with optuna {now['optuna']} (the sweep ran with 3.0.0)"], lines

    first, second = found["runs"]
    assert (first["kind"], second["kind"]) == ("run", "resume") and first["started_at"] < second["started_at"]
    assert secret not in first["command"] and "me:***@db.example.org" in first["command"]
    assert first["options"]["overrides"] == SWEEP and first["options"]["cpu_fallback"] is False
    assert first["options"]["trial_resources"] == {"cpu": 1.0, "gpu": 0.0, "slots": 2}
    assert second["packages"] == now and set(now) >= {"python", "torch", "torchvision", "aihwkit", "timm", "ray",
                                                       "optuna", "sqlalchemy", "pyarrow"}
    assert all(now[name] for name in now)  # every one of them is installed here
    assert first["aihwkit_cuda"] is False  # the PyPI wheel
    assert first["cluster"]["nodes"] == 1 and first["cluster"]["cpus"] == 2.0
    assert first["cpu"]["count"] >= 1 and first["host"]
    assert first["project"]["version"]
    if (REPO / ".git").exists():  # run from a checkout: its commit, and whether tracked files differ from it
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True)
        assert first["project"]["commit"] == head.stdout.strip() and first["project"]["dirty"] in (True, False)

    # One pretrained model (the resume took it from the cache: the same file, so still one row).
    [model] = found["pretrained"]
    cache_file = Path(model["path"])
    assert model["file_hash"] == hashlib.sha256(cache_file.read_bytes()).hexdigest()
    assert model["trained_now"] is True and model["run"] == 1 and model["train_seconds"] > 0
    assert any(f"source test error {model['source_error']:.1f} %" in line for line in lines)

    # Each analog trial's rpu config, as the worker built it; the digital trials have none.
    points = {point.key: point for point in expand(spec)}
    with open_store(url) as store:
        trials = store.list_trials(spec.name)
    analog = [t for t in trials if points[t["point_key"]].mode == "analog_tl"]
    assert len(analog) == spec.lr_search.trials_per_point
    for trial in analog:
        assert trial["rpu_config"] == trial_rpu_config_json(trial_config(points[trial["point_key"]], trial["lr"]))
    [group] = found["rpu_configs"]  # one device point: one config
    assert sorted(group["trial_ids"]) == sorted(t["trial_id"] for t in analog)
    assert group["rpu_config"]["__class__"].endswith("ChoppedTTv2ReRamSBPreset")
    assert found["trials_without_rpu_config"] == len(trials) - len(analog)
