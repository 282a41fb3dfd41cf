"""``--profile smoke`` makes any shipped spec a short CPU run on its own data, applied and validated like ``--set``;
and every validation error that offers choices lists them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from analog_sweep.results._activity import BARELY_MOVED_PERCENT
from analog_sweep.sweeps import (
    PROFILES,
    SpecError,
    estimate_cost,
    expand,
    load_spec,
    profile_overrides,
    shipped_specs,
    spec_from_mapping,
    spec_hash,
    trial_config,
)
from analog_sweep.sweeps._profiles import SMOKE_AUTO_GRANULARITY

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
# "Minutes": the cost model's estimate (the sweeps package's cost model, fitted to CPU measurements) on 2 CPU cores,
# 2 trials at a time. The largest shipped spec under smoke is estimated at about half a minute; 5 minutes leaves
# room for a model that is off by the 15 % it was fitted to, and for Ray's start-up.
SMOKE_BUDGET_SECONDS = 300


@pytest.mark.parametrize("name", sorted(shipped_specs()))
def test_smoke_keeps_the_data_tasks_and_modes_and_runs_on_cpus(name):
    full = load_spec(shipped_specs()[name])
    smoke = load_spec(shipped_specs()[name], profile="smoke")
    assert smoke.name == f"{name}-smoke"
    assert (smoke.data.dataset, smoke.data.tasks, smoke.modes) == (full.data.dataset, full.data.tasks, full.modes)
    assert smoke.profile == "smoke" and full.profile is None
    assert [a.name for a in smoke.algorithms] == [a.name for a in full.algorithms] and smoke.device == full.device
    for ours, theirs in zip(smoke.algorithms, full.algorithms, strict=True):
        assert dict(ours.settings) == {**dict(theirs.settings), "auto_granularity": SMOKE_AUTO_GRANULARITY}
        assert (ours.mapping, ours.freeze_analog) == (theirs.mapping, theirs.freeze_analog)
    assert (smoke.resources.cpu, smoke.resources.gpu) == (1.0, 0.0)
    assert smoke.model.preset == "swin_micro" and smoke.epochs == 1 and smoke.seeds == full.seeds[:1]
    assert smoke.lr_search.trials_per_point == 1 and smoke.lr_search.pruner == "none"
    for (axis, values), (full_axis, full_values) in zip(smoke.axes.values, full.axes.values, strict=True):
        assert axis == full_axis and values == tuple(dict.fromkeys((full_values[0], full_values[-1])))
    points = expand(smoke)
    assert 0 < len(points) <= len(expand(full))
    assert estimate_cost(smoke, points).wall_seconds(2) < SMOKE_BUDGET_SECONDS


def test_smoke_scales_an_algorithm_entrys_own_time_constant_too(tmp_path):
    raw = yaml.safe_load(shipped_specs()["quickstart"].read_text())
    del raw["algorithm"]["name"]
    raw["algorithms"] = ["c-ttv2", {"name": "ttv2", "settings": {"auto_granularity": 777, "in_chop_prob": 0}}]
    path = tmp_path / "two.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_spec(path, profile="smoke")
    assert [dict(a.settings)["auto_granularity"] for a in spec.algorithms] == [SMOKE_AUTO_GRANULARITY] * 2
    # --set after the profile still wins, as everywhere
    spec = load_spec(shipped_specs()["quickstart"], ["algorithm.settings.auto_granularity=50"], profile="smoke")
    assert dict(spec.algorithm.settings)["auto_granularity"] == 50


def test_a_recorded_profile_changes_the_hash_and_no_profile_keeps_it():
    quickstart = shipped_specs()["quickstart"]
    raw = yaml.safe_load(quickstart.read_text())
    assert spec_hash(spec_from_mapping(raw, overrides=["profile=smoke"])) != spec_hash(load_spec(quickstart))
    assert spec_hash(spec_from_mapping(raw, overrides=["profile=null"])) == spec_hash(load_spec(quickstart))


def test_only_the_profile_sets_the_profile_field(tmp_path):
    """By hand it would label a full run a smoke run, or take the label off a smoke run: refused in one line."""
    quickstart = shipped_specs()["quickstart"]
    for overrides, profile in ((["profile=smoke"], None), (["profile=null"], "smoke"), (["profile=tiny"], None)):
        with pytest.raises(SpecError) as caught:
            load_spec(quickstart, overrides, profile=profile)
        assert "profile is set by --profile, not by --set" in str(caught.value) and "\n" not in str(caught.value)
    written = tmp_path / "hand.yaml"
    written.write_text(quickstart.read_text() + "profile: smoke\n")
    with pytest.raises(SpecError, match="profile: set by --profile, not in the spec file"):
        load_spec(written)
    # a stored spec (resume reads the store's mapping) keeps its recorded profile
    stored = load_spec(quickstart, profile="smoke").raw
    assert spec_from_mapping(stored).profile == "smoke"


def test_an_unknown_recorded_profile_is_one_line():
    raw = yaml.safe_load(shipped_specs()["quickstart"].read_text())
    with pytest.raises(SpecError) as caught:
        spec_from_mapping({**raw, "profile": "tiny"}, source="stored")
    assert str(caught.value) == "stored: profile: unknown profile 'tiny'; choose one of smoke"


def _final(config, cache_dir) -> dict:
    import torch

    from analog_sweep.workers import run_trial

    torch.set_num_threads(1)
    return run_trial(config, cache_dir=cache_dir).reports[-1].to_dict()


def test_the_smoke_time_constant_moves_the_analog_head_where_table_is_does_not(tmp_path):
    """Real aihwkit trials of the quickstart's smoke run (32 images, 1 epoch): at Table I's time constant no head
    weight moves in any of 3 seeds (measured 0 %); at the smoke profile's every seed moves more than the
    ``BARELY_MOVED_PERCENT`` the activity warnings flag (measured 24 % for seed 0 at lr 0.1)."""
    smoke = load_spec(shipped_specs()["quickstart"], ["seeds=[0,1,2]"], profile="smoke")
    table_i = load_spec(
        shipped_specs()["quickstart"], ["seeds=[0,1,2]", "algorithm.settings.auto_granularity=10000"], profile="smoke"
    )
    lr = 0.1
    for spec, moves in ((smoke, True), (table_i, False)):
        base = [p for p in expand(spec) if p.mode == "analog_tl" and p.device.transfer_noise == 0]
        assert len(base) == 3
        for point in base:
            moved = _final(trial_config(point, lr), tmp_path)["head_moved"]
            assert (moved > BARELY_MOVED_PERCENT) == moves, (point.label, spec.profile, moved)


def test_profile_overrides_come_first_so_set_wins():
    spec = load_spec(shipped_specs()["quickstart"], ["epochs=2", "name=mine"], profile="smoke")
    assert spec.epochs == 2 and spec.name == "mine"
    raw = yaml.safe_load(shipped_specs()["quickstart"].read_text())
    assert spec.overrides == (*profile_overrides(raw, "smoke", source="x"), "epochs=2", "name=mine")
    assert "epochs=1" in spec.overrides  # recorded, so the store shows how the run was made


def test_smoke_keeps_the_first_grid_rate_and_seed():
    spec = load_spec(shipped_specs()["quickstart"], profile="smoke")
    full = load_spec(shipped_specs()["quickstart"])
    assert spec.lr_search.values == full.lr_search.values[:1] and spec.seeds == full.seeds[:1]


def test_unknown_profile_lists_the_profiles():
    with pytest.raises(SpecError) as caught:
        load_spec(shipped_specs()["quickstart"], profile="tiny")
    assert str(caught.value).endswith(f"unknown profile 'tiny'; choose one of {', '.join(PROFILES)}")


CHOICE = re.compile(r"choose (?:[a-z ]*?)(?:one of|from)\s*(.*)$")


def _errors() -> list[str]:
    messages = []
    for path in BROKEN:
        try:
            load_spec(path)
        except SpecError as error:
            messages.append(str(error))
    quickstart, fig2 = shipped_specs()["quickstart"], shipped_specs()["paper_fig2_modes"]
    for spec, overrides in [
        (fig2, ["lr_search.pruner=none"]),  # the paper spec's hyperband options are left behind
        (fig2, ["lr_search.pruner=median"]),
        (quickstart, ["data.dataset=cifar"]),
        (quickstart, ["algorithm.mapping.omega=1"]),
        (quickstart, ["lr_search.pruner=fast"]),
        (quickstart, ["modes=[analog]"]),
    ]:
        with pytest.raises(SpecError) as caught:
            load_spec(spec, overrides)
        messages.append(str(caught.value))
    return messages


def test_every_error_that_offers_choices_lists_them():
    offered = [m for m in _errors() if "choose" in m]
    assert len(offered) >= 10
    for message in offered:
        match = CHOICE.search(message)
        assert match and re.match(r"[\w.-]", match.group(1)), message


def test_a_pruner_without_options_says_which_pruners_take_them():
    with pytest.raises(SpecError) as caught:
        load_spec(shipped_specs()["paper_fig2_modes"], ["lr_search.pruner=none"])
    message = str(caught.value)
    assert "lr_search.pruner_options.min_resource: pruner none takes no options" in message
    assert "hyperband: min_resource, reduction_factor" in message
