"""The driver is killed with SIGKILL in the middle of a sweep; ``resume`` completes it with nothing lost or doubled."""

from __future__ import annotations

import pytest

from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP
from .faults import analog_sweep, kill_driver, snapshot, wait_for

# Long enough epochs (48 images) that the kill lands while trials are running.
KILL_SWEEP = [*NANO_SWEEP, "data.train_limit=48", "epochs=3", "modes=[analog_tl,digital_tl,analog_scratch]"]


@pytest.mark.slow
def test_sigkill_of_the_driver_mid_sweep_then_resume_completes_it(tmp_path):
    url = f"sqlite:///{tmp_path}/results.db"
    common = ["--store", url]
    overrides = [arg for item in KILL_SWEEP for arg in ("--set", item)]
    spec_file = str(shipped_specs()["quickstart"])
    driver = analog_sweep(
        "run", spec_file, *overrides, "--storage-path", str(tmp_path / "storage"), *common, cwd=tmp_path
    )

    def finished_and_running(state):
        statuses = list(state["trials"].values())
        running = [t for t, s in state["trials"].items() if s == "running"]
        return statuses.count("completed") >= 2 and any(t for t, _ in state["epochs"] if t in running)

    try:
        before = wait_for(finished_and_running, url, timeout=420)
    finally:
        kill_driver(driver)
    with open_store(url) as store:
        assert store.get_sweep("quickstart")["status"] == "running"  # killed: nobody could say otherwise

    resumed = analog_sweep("resume", "quickstart", *common, cwd=tmp_path)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output
    assert "finished" in output

    after = snapshot(url)
    spec = load_spec(spec_file, KILL_SWEEP)
    points = expand(spec)
    with open_store(url) as store:
        best = store.best_points("quickstart")
        assert store.get_sweep("quickstart")["status"] == "finished"
    # Every expected point has a chosen trial.
    assert len(best) == len(points) and all(row["trial_id"] and row["status"] == "done" for row in best)
    # Every trial ran to the end, once: one row per trial and epoch, and no more trials than the budget.
    assert len(after["trials"]) == len(points) * spec.lr_search.trials_per_point
    assert set(after["trials"].values()) == {"completed"}
    assert sorted(after["epochs"]) == sorted((t, e) for t in after["trials"] for e in range(1, spec.epochs + 1))
    # No trial that had finished ran again: its epoch rows are the very same (seconds included).
    for trial_id, status in before["trials"].items():
        if status == "completed":
            for epoch in range(1, spec.epochs + 1):
                assert after["epochs"][(trial_id, epoch)] == before["epochs"][(trial_id, epoch)]
    # Epochs a running trial had finished before the kill were not trained again either.
    for (trial_id, epoch), seconds in before["epochs"].items():
        assert after["epochs"][(trial_id, epoch)] == seconds


# A sweep recorded before selection and validation splits existed (store schema 4 and older), as the driver of that
# time stored it: its spec mapping, hash and point key, taken from analog-sweep at commit 1b38410 for the quickstart
# with the nano overrides below. Read with today's defaults it would expand to other points (a validation split).
LEGACY_RAW = {
    "name": "legacy", "data": {"dataset": "digits", "classes": [["5", "8"]], "image_size": 16, "train_limit": 16,
                               "test_limit": 16, "source_limit": 100},
    "pretrain": {"optimizer": "adamw", "lr": 0.002, "weight_decay": 0.05, "epochs": 2, "batch_size": 32, "seed": 0},
    "model": {"preset": "swin_micro", "overrides": {"depths": [1, 1], "embed_dim": 12}}, "modes": ["digital_tl"],
    "algorithm": {"name": "c-ttv2", "settings": {"auto_granularity": 960},
                  "mapping": {"weight_scaling_omega": 0.6, "weight_scaling_columnwise": True}},
    "device": {"transfer_noise": 0, "sp_skew": 0, "sp_variability": 0, "pulse_noise": 3.75, "dtod": 0.3},
    "axes": None, "lr_search": {"method": "grid", "values": [0.05, 0.1]}, "epochs": 1, "batch_size": 8, "seeds": [0],
    "resources": {"cpu": 1, "gpu": 0}, "max_retries": 1,
}  # fmt: skip
LEGACY_HASH, LEGACY_POINT = "f944e8e9b462f8c2", "6b82972418378292"


def test_a_sweep_recorded_before_validation_splits_resumes_onto_the_points_it_ran():
    from analog_sweep.sweeps import spec_as_recorded, spec_from_mapping

    as_run = spec_as_recorded(LEGACY_RAW, selected_on="test", per_seed=True, source="legacy")
    assert [point.key for point in expand(as_run)] == [LEGACY_POINT]
    assert as_run.data.validation_fraction == 0 and as_run.selection.split == "test"
    # Today's defaults would make it another sweep: this is what the resume must not do.
    assert [point.key for point in expand(spec_from_mapping(LEGACY_RAW))] != [LEGACY_POINT]
    # A sweep recorded since then (its mapping names no selection, the store says validation) is read as it is.
    current = spec_as_recorded(LEGACY_RAW, selected_on="validation", per_seed=False, source="new")
    assert current == spec_from_mapping(LEGACY_RAW)


@pytest.mark.slow
def test_resume_of_a_legacy_sweep_finishes_it_under_its_own_hash_and_points(tmp_path, local_ray):
    from analog_sweep.orchestrator import resume_sweep
    from analog_sweep.results import AXES, PAPER_RULE

    url = f"sqlite:///{tmp_path / 'results.db'}"
    folder = tmp_path / "storage" / "legacy"
    folder.mkdir(parents=True)
    with open_store(url) as store:
        store.record_sweep("legacy", LEGACY_RAW, LEGACY_HASH, "interrupted", str(folder))  # as schema 5 upgrades it
        store.record_point(
            "legacy",
            LEGACY_POINT,
            mode="digital_tl",
            task="5-8",
            classes=["5", "8"],
            seed=0,
            axes={axis: 0.0 for axis in AXES} | {"pulse_noise": 3.75, "dtod": 0.3},
        )
        assert store.selection("legacy") == PAPER_RULE
        outcome = resume_sweep("legacy", store, echo=lambda line: None)
        assert outcome.status == "finished", outcome.message
        assert [p["point_key"] for p in store.list_points("legacy")] == [LEGACY_POINT]
        assert store.get_sweep("legacy")["spec_hash"] == LEGACY_HASH
        assert len(store.list_trials("legacy")) == 2
