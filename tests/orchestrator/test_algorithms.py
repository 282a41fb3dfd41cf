"""A sweep that compares algorithms, killed in the middle and resumed: every trial once, each point trained and
recorded with its own algorithm's rpu config."""

from __future__ import annotations

import pytest

from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP
from .faults import analog_sweep, kill_driver, snapshot, wait_for

# The quickstart at nano size with c-TTv2 and TTv2 side by side: 2 transfer-noise values x 2 algorithms of analog TL
# and digital TL at the base, 2 learning rates each: 10 trials of 3 epochs (48 images: long enough for the kill to
# land while trials run).
COMPARISON = [
    *NANO_SWEEP,
    "data.train_limit=48",
    "epochs=3",
    "modes=[analog_tl,digital_tl]",
    "axes.transfer_noise=[0,30]",
    "algorithm.name=null",
    "algorithms=[c-ttv2,ttv2]",
]


@pytest.mark.slow
def test_sigkill_mid_comparison_then_resume_runs_every_trial_of_every_algorithm_once(tmp_path):
    url = f"sqlite:///{tmp_path}/results.db"
    overrides = [arg for item in COMPARISON for arg in ("--set", item)]
    spec_file = str(shipped_specs()["quickstart"])
    driver = analog_sweep(
        "run", spec_file, *overrides, "--storage-path", str(tmp_path / "storage"), "--store", url, cwd=tmp_path
    )

    def finished_and_running(state):
        running = [t for t, s in state["trials"].items() if s == "running"]
        done = list(state["trials"].values()).count("completed")
        return done >= 2 and any(t for t, _ in state["epochs"] if t in running)

    try:
        before = wait_for(finished_and_running, url, timeout=420)
    finally:
        kill_driver(driver)
    resumed = analog_sweep("resume", "quickstart", "--store", url, cwd=tmp_path)
    output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, output

    spec = load_spec(spec_file, COMPARISON)
    points = {p.key: p for p in expand(spec)}
    after = snapshot(url)
    with open_store(url) as store:
        best = store.best_points("quickstart")
        stored = {row["point_key"]: row for row in store.list_points("quickstart")}
        trials = store.list_trials("quickstart")
        provenance = store.provenance("quickstart")
    assert len(points) == 2 * 2 + 1
    assert len(best) == len(points) and all(row["trial_id"] and row["status"] == "done" for row in best)
    # Every trial once, every epoch once; what had finished before the kill was not trained again.
    assert len(after["trials"]) == len(points) * spec.lr_search.trials_per_point
    assert set(after["trials"].values()) == {"completed"}
    assert sorted(after["epochs"]) == sorted((t, e) for t in after["trials"] for e in range(1, spec.epochs + 1))
    for key, seconds in before["epochs"].items():
        assert after["epochs"][key] == seconds
    # Each point keeps its algorithm, and its trials ran with that algorithm's rpu config: TTv2 without choppers.
    assert {key: row["algorithm"] for key, row in stored.items()} == {k: p.algorithm_name for k, p in points.items()}
    chopping = {}
    for config in provenance["rpu_configs"]:
        for key in config["point_keys"]:
            chopping[key] = config["rpu_config"]["device"]["in_chop_prob"]
    analog = {k for k, p in points.items() if p.algorithm_name}
    assert set(chopping) == analog
    assert {points[k].algorithm_name: chopping[k] for k in analog} == {"c-ttv2": 0.1, "ttv2": 0.0}
    assert {t["point_key"] for t in trials if t["rpu_config_hash"]} == analog
