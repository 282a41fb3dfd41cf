"""``axes.refine``: validation, overrides, the points refinement adds, its budget in the dry run and in max_points,
and a spec hash that stays what it was for specs without refinement."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    Environment,
    RefineSpec,
    SpecError,
    dry_run_report,
    expand,
    line_points,
    load_spec,
    refinement_budget,
    refinement_cost,
    shipped_specs,
    spec_from_mapping,
    spec_hash,
)

LAPTOP = Environment(cpus=2, gpus=0, aihwkit_cuda=False)


def make(refine=None, **fields):
    axes = {"transfer_noise": [0, 10, 30, 60, 100], "sp_skew": [0, 5]}
    if refine is not None:
        axes["refine"] = refine
    raw = {
        "name": "t",
        "data": {"dataset": "digits", "classes": [["5", "8"], ["6", "9"]]},
        "modes": ["analog_tl", "analog_scratch", "digital_tl"],
        "axes": axes,
        "seeds": [0, 1],
        "lr_search": {"values": [0.05, 0.1]},
    }
    raw.update(fields)
    return spec_from_mapping(raw)


def test_refine_settings_and_defaults():
    spec = make({"transfer_noise": {"points": 3, "width": 2.5}, "sp_skew": None})
    assert spec.axes.refine == (RefineSpec("transfer_noise", 3, 2, 2.5), RefineSpec("sp_skew", 4, 2, None))


@pytest.mark.parametrize(
    ("refine", "message"),
    [
        ({"dtod": {}}, "axes.refine.dtod: refines an axis the sweep does not vary"),
        ({"volume": {}}, "axes.refine.volume: unknown field"),
        ({"transfer_noise": {"points": 0}}, "axes.refine.transfer_noise.points: must be an integer from 1"),
        ({"transfer_noise": {"rounds": 1.5}}, "axes.refine.transfer_noise.rounds: must be an integer"),
        ({"transfer_noise": {"width": 0}}, "axes.refine.transfer_noise.width: must be a positive number"),
        ({"transfer_noise": {"step": 1}}, "axes.refine.transfer_noise.step: unknown field"),
        ({"transfer_noise": 3}, "axes.refine.transfer_noise: must be a mapping"),
    ],
)
def test_bad_refine_settings_are_one_line_errors(refine, message):
    with pytest.raises(SpecError, match=message):
        make(refine)


def test_overrides_reach_refine_fields_and_refuse_others():
    spec = load_spec(shipped_specs()["quickstart"], ["axes.refine.transfer_noise.points=2"])
    assert spec.axes.refine == (RefineSpec("transfer_noise", 2, 2, None),)
    for bad, says in (
        ("axes.refine.transfer_noise.pts=2", "has points, rounds, width"),
        ("axes.refine.volume=1", "axes.refine has transfer_noise"),
        ("axes.refine.transfer_noise.points.x=1", "has no sub-fields"),
    ):
        with pytest.raises(SpecError, match=says):
            load_spec(shipped_specs()["quickstart"], [bad])


def test_a_spec_without_refinement_keeps_its_hash():
    # A spec without refinement hashes as if axes.refine did not exist; asking for refinement makes another sweep.
    # (Stored sweeps resume under their recorded hash whatever today's hash of their mapping:
    # tests/orchestrator/test_resume.py, the legacy sweep.)
    plain = spec_hash(load_spec(shipped_specs()["quickstart"]))
    assert spec_hash(load_spec(shipped_specs()["quickstart"], ["axes.refine={}"])) == plain
    assert spec_hash(load_spec(shipped_specs()["quickstart"], ["axes.refine.transfer_noise.points=2"])) != plain
    assert spec_hash(make()) != spec_hash(make({"transfer_noise": {}}))
    assert spec_hash(make({"transfer_noise": {}})) != spec_hash(make({"transfer_noise": {"points": 5}}))


def test_line_points_vary_one_axis_at_the_base_of_the_others_for_every_seed():
    spec = make({"transfer_noise": {}})
    points = line_points(spec, "analog_tl", ("5", "8"), "transfer_noise", [12.5, 20.0])
    assert [(p.device.transfer_noise, p.device.sp_skew, p.seed) for p in points] == [
        (12.5, 0.0, 0),
        (12.5, 0.0, 1),
        (20.0, 0.0, 0),
        (20.0, 0.0, 1),
    ]
    assert points[0].label == "analog_tl/5-8/transfer_noise=12.5/seed0"
    # A value the grid has gives the grid's very point (same key), so the store and the studies see one point.
    grid = {p.key for p in expand(spec)}
    assert {p.key for p in line_points(spec, "analog_tl", ("5", "8"), "transfer_noise", [10.0])} <= grid
    with pytest.raises(ValueError, match="does not respond"):
        line_points(spec, "analog_scratch", ("5", "8"), "transfer_noise", [1.0])


def test_budget_counts_modes_that_respond_tasks_and_seeds():
    spec = make({"transfer_noise": {"points": 3, "rounds": 2}, "sp_skew": {"points": 1, "rounds": 1}})
    # transfer noise: analog_tl only; skew: analog_tl and analog_scratch; 2 tasks x 2 seeds each.
    assert refinement_budget(spec) == 2 * 3 * 1 * 4 + 1 * 1 * 2 * 4 == 32
    cost = refinement_cost(spec)
    assert (cost.points, cost.trials, cost.pretrain_jobs) == (32, 64, 0)
    report = dry_run_report(spec, expand(spec), environment=LAPTOP)
    assert "Refinement, after the grid" in report
    assert "transfer_noise: up to 2 round(s) x 3 value(s) per mode and task, every round; modes analog_tl" in report
    assert "Budget: at most 32 more points, 64 trials" in report
    assert "Refinement" not in dry_run_report(make(), expand(make()), environment=LAPTOP)


def test_max_points_counts_the_refinement_budget():
    grid = len(expand(make()))
    with pytest.raises(SpecError, match=rf"expands to {grid} points \(and refinement may add 8\)"):
        make({"transfer_noise": {"points": 1, "rounds": 2}}, max_points=grid + 7)
    make({"transfer_noise": {"points": 1, "rounds": 2}}, max_points=grid + 8)
