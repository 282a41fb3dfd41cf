"""Algorithms as a dimension of the sweep: validation, expansion, keys, labels, neighbours, refinement, dry run."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    Environment,
    SpecError,
    count_points,
    dry_run_report,
    expand,
    line_points,
    neighbourhood,
    refinement_budget,
    spec_from_mapping,
    spec_hash,
    trial_config,
)
from analog_sweep.workers import build_rpu_config

SHARED = {"settings": {"auto_granularity": 480}, "mapping": {"weight_scaling_omega": 0.6}}


def make(**fields):
    raw = {
        "name": "t",
        "data": {"dataset": "digits", "classes": [["5", "8"]]},
        "modes": ["analog_tl", "analog_scratch", "digital_tl"],
        "axes": {"sp_skew": [0, 10, 20]},
        "seeds": [0, 1],
    }
    raw.update(fields)
    return spec_from_mapping(raw)


def compared(**fields):
    return make(algorithm=SHARED, algorithms=["c-ttv2", {"name": "ttv2"}, {"name": "agad"}], **fields)


def test_each_entry_takes_the_shared_settings_and_overrides_them_key_by_key():
    spec = make(
        algorithm=SHARED,
        algorithms=[
            "c-ttv2",
            {"name": "ttv2", "settings": {"auto_granularity": 960}},
            {"name": "agad", "mapping": {"weight_scaling_omega": 0.3}, "freeze_analog": True},
        ],
    )
    assert [a.name for a in spec.algorithms] == ["c-ttv2", "ttv2", "agad"] and spec.compares_algorithms
    settings = [dict(a.settings) for a in spec.algorithms]
    assert settings == [{"auto_granularity": 480}, {"auto_granularity": 960}, {"auto_granularity": 480}]
    assert [a.mapping.weight_scaling_omega for a in spec.algorithms] == [0.6, 0.6, 0.3]
    assert [a.freeze_analog for a in spec.algorithms] == [False, False, True]
    assert spec.algorithm == spec.algorithms[0]


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"algorithm": {"name": "c-ttv2"}, "algorithms": ["ttv2"]},
            "algorithm.name: with algorithms, name each algorithm in its entry",
        ),
        ({"algorithms": ["c-ttv2", "c-ttv2"]}, "algorithms[1]: duplicate algorithm 'c-ttv2'"),
        ({"algorithms": ["c-ttv2", "tiki"]}, "algorithms[1].name:"),
        ({"algorithms": [{"settings": {}}]}, "algorithms[0].name: missing; choose one of"),
        ({"algorithms": [3]}, "algorithms[0]: must be an algorithm name or a mapping (name, settings, mapping), got 3"),
        ({"algorithms": ["c-ttv2", "sgd"]}, "algorithms[1].name: sgd cannot run in a sweep"),
        ({"algorithm": {"name": "sgd"}}, "algorithm.name: sgd cannot run in a sweep"),
        (
            {"modes": ["digital_tl"], "algorithms": ["c-ttv2", "ttv2"]},
            "algorithms: compares algorithms, but modes has no analog mode",
        ),
        ({"algorithms": []}, "algorithms: must not be empty"),
        ({"algorithms": "c-ttv2"}, "algorithms: must be a list"),
        (
            {"algorithms": [{"name": "ttv2", "settings": {"in_chop_prob": 0.1}}]},
            "algorithms[0].settings.in_chop_prob: must be 0 for ttv2",
        ),
        (
            {"algorithm": {"settings": {"in_chop_prob": 0.1}}, "algorithms": ["c-ttv2", "ttv2"]},
            "algorithms[1].settings.in_chop_prob: must be 0 for ttv2",
        ),
        ({"algorithms": [{"name": "agad", "settings": {"chop": 1}}]}, "algorithms[0].settings.chop: unknown field"),
        ({"algorithm": {"settings": {"chop": 1}}, "algorithms": ["agad"]}, "algorithm.settings.chop: unknown field"),
        (
            {"algorithms": [{"name": "agad", "mapping": {"weight_scaling_omega": 9}}]},
            "algorithms[0].mapping.weight_scaling_omega:",
        ),
        ({"algorithm": {"name": "ttv2", "settings": {"in_chop_prob": 0.5}}}, "algorithm.settings.in_chop_prob:"),
    ],
)
def test_bad_algorithm_lists_are_refused_in_one_line_naming_the_field(fields, message):
    with pytest.raises(SpecError) as caught:
        make(**fields)
    text = str(caught.value)
    assert message in text and "\n" not in text, text


def test_a_one_algorithm_spec_keeps_the_hash_of_its_algorithm_section():
    """The sweep's identity in the store: an unchanged spec stays the same sweep (it resumes, and a second run of a
    finished one says so). The value is this mapping's hash as the algorithm section has always given it."""
    raw = {
        "name": "h",
        "data": {"dataset": "digits", "classes": [["5", "8"]]},
        "modes": ["analog_tl", "digital_tl"],
        "algorithm": {"name": "agad", "settings": {"auto_granularity": 480}},
        "axes": {"sp_skew": [0, 10]},
    }
    assert spec_hash(spec_from_mapping(raw)) == "ee056a9fd372479a"
    listed = {**raw, "algorithm": None, "algorithms": [raw["algorithm"]]}
    assert spec_hash(spec_from_mapping(listed)) == "ee056a9fd372479a"
    compared = {**listed, "algorithms": [raw["algorithm"], "c-ttv2"]}
    assert spec_hash(spec_from_mapping(compared)) != "ee056a9fd372479a"


def test_a_list_of_one_algorithm_is_the_same_sweep_as_the_algorithm_section():
    """Same points, keys and labels: a spec may move to the list form without losing its stored results."""
    single = make(algorithm={"name": "c-ttv2", **SHARED})
    listed = make(algorithms=[{"name": "c-ttv2", **SHARED}])
    assert not listed.compares_algorithms
    assert [(p.key, p.label) for p in expand(single)] == [(p.key, p.label) for p in expand(listed)]
    assert all("algorithm=" not in p.label for p in expand(listed))


def test_every_algorithm_runs_at_every_analog_device_point_and_the_digital_modes_once():
    spec = compared()
    points = expand(spec)
    # analog TL and scratch: 3 sp_skew values x 3 algorithms; digital TL: 1; each x 2 seeds.
    assert len(points) == count_points(spec) == (3 * 3 + 3 * 3 + 1) * 2
    assert len({p.key for p in points}) == len(points)
    analog = [p for p in points if p.mode != "digital_tl"]
    for point in analog:
        assert point.algorithm_name == point.algorithm.name
        assert f"algorithm={point.algorithm.name}" in point.label
        assert trial_config(point, 0.1).algorithm == point.algorithm
    assert {(p.mode, p.algorithm_name) for p in points} == {
        (mode, name) for mode in ("analog_tl", "analog_scratch") for name in ("c-ttv2", "ttv2", "agad")
    } | {("digital_tl", None)}
    labels = {p.label for p in points}
    assert "analog_tl/5-8/algorithm=ttv2,sp_skew=10/seed1" in labels
    assert "analog_scratch/5-8/algorithm=agad/seed0" in labels
    assert "digital_tl/5-8/base/seed0" in labels
    # Each algorithm's own settings reach its rpu config: TTv2 without choppers, c-TTv2 with Table I's.
    configs = {p.algorithm_name: build_rpu_config(p.algorithm, p.device) for p in analog if p.seed == 0}
    assert configs["ttv2"].device.in_chop_prob == 0.0 and configs["c-ttv2"].device.in_chop_prob == 0.1
    assert type(configs["agad"].device).__name__ == "DynamicTransferCompound"
    assert {c.device.auto_granularity for c in configs.values()} == {480}


def test_warm_starts_and_shared_seeds_stay_within_one_algorithm():
    spec = compared(lr_search={"method": "tpe", "trials_per_point": 4})
    points = expand(spec)
    by_key = {p.key: p for p in points}
    geometry = neighbourhood(points, spec.device, shared_seeds=True)
    checked = 0
    for point in points:
        for other in geometry.neighbour_keys(point.key):
            assert by_key[other].series == point.series, (point.label, by_key[other].label)
            checked += 1
    assert checked > 0
    # Every sp_skew point has its inward neighbour: the base point of its own algorithm.
    skewed = [p for p in points if p.mode == "analog_tl" and p.device.sp_skew == 10]
    for point in skewed:
        inward = {by_key[k].label for k in geometry.neighbour_keys(point.key)}
        assert f"analog_tl/5-8/algorithm={point.algorithm_name}/seed0" in inward


def test_refinement_adds_points_per_algorithm():
    spec = compared(axes={"sp_skew": [0, 10, 20, 30, 40], "refine": {"sp_skew": {"points": 2, "rounds": 1}}})
    # Two analog modes respond to sp_skew, each with three algorithms; 1 task x 2 seeds.
    assert refinement_budget(spec) == 1 * 2 * (2 * 3) * 2
    added = line_points(spec, "analog_tl", ("5", "8"), "sp_skew", [15.0], "ttv2")
    assert [p.label for p in added] == [
        "analog_tl/5-8/algorithm=ttv2,sp_skew=15/seed0",
        "analog_tl/5-8/algorithm=ttv2,sp_skew=15/seed1",
    ]
    assert {p.key for p in added}.isdisjoint({p.key for p in expand(spec)})
    with pytest.raises(ValueError, match="no algorithm 'sgd'"):
        line_points(spec, "analog_tl", ("5", "8"), "sp_skew", [15.0], "sgd")


def test_the_dry_run_names_the_compared_algorithms_and_prices_every_point():
    spec = compared()
    report = dry_run_report(spec, expand(spec), environment=Environment(cpus=2, gpus=0, aihwkit_cuda=False))
    assert "Algorithms compared at every analog device point: c-ttv2, ttv2, agad" in report
    assert f"Points ({count_points(spec)}):" in report
    assert "analog_tl/5-8/algorithm=c-ttv2/seed0" in report
