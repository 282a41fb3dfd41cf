"""Adaptive refinement's planner (``orchestrator._refine``) on a test-scale synthetic sweep: the grid's and each
round's points are "run" by reading a known curve with seeded noise (a stand-in for the trials' test errors, so the
true critical point is known), and each round is planned from the store-like rows exactly as the driver plans it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analog_sweep import results
from analog_sweep.orchestrator import run_sweep
from analog_sweep.orchestrator._refine import plan_round, refinement_summary, round_points
from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, refinement_budget, shipped_specs, spec_from_mapping

from .conftest import NANO_SWEEP

TRUE_ELBOW = 25.0  # percent transfer noise


def synthetic_spec(**refine):
    raw = {
        "name": "synthetic",
        "data": {"dataset": "digits", "classes": [["5", "8"]]},
        "modes": ["analog_tl", "digital_tl"],
        "axes": {
            "transfer_noise": [0, 5, 10, 20, 40, 70, 100],
            "refine": {"transfer_noise": {"points": 4, "rounds": 3, **refine}},
        },
        "lr_search": {"values": [0.05]},
        "seeds": [0, 1, 2],
    }
    return spec_from_mapping(raw)


def row(point, flat: bool = False) -> dict:
    """A ``best_points`` row for ``point``: analog TL flat at 10 % until TRUE_ELBOW, then +30 % per decade; digital
    TL 5 %; noise sd 2 %, seeded by the point's key."""
    x = point.device.transfer_noise
    rise = 30 * max(math.log10(max(x, 0.5)) - math.log10(TRUE_ELBOW), 0) if point.mode == "analog_tl" else 0
    mean = (10 + (0 if flat else rise)) if point.mode == "analog_tl" else 5
    error = mean + np.random.default_rng(int(point.key[:8], 16)).normal(0, 2)
    return {
        "point_key": point.key,
        "mode": point.mode,
        "algorithm": point.algorithm_name,
        "task": point.task,
        "seed": point.seed,
        "final_test_error": float(error),
        **{axis: getattr(point.device, axis) for axis in results.AXES},
    }


def run_rounds(spec, flat=False):
    rows = [row(p, flat) for p in expand(spec)]
    rounds = []
    for round_ in range(1, 10):
        plans = plan_round(spec, rows, round_)
        points = round_points(spec, plans)
        rounds.append((plans, points))
        if not points:
            break
        rows += [row(p, flat) for p in points]
    return rows, rounds


def test_refinement_narrows_the_interval_round_by_round():
    spec = synthetic_spec()
    rows, rounds = run_rounds(spec)
    widths = [plans[0].elbow.width for plans, _ in rounds if plans]
    [final] = results.sweep_elbows(rows, axis="transfer_noise", base={"transfer_noise": 0.0})
    widths.append(final.width)
    print("interval width by round:", " -> ".join(f"{w:.3g}" for w in widths))
    # Three rounds of 4 values x 3 seeds; each narrows the interval, and the last is well under half the first.
    assert len(rounds) == 4 and [len(points) for _, points in rounds] == [12, 12, 12, 0]
    assert all(later < earlier for earlier, later in zip(widths, widths[1:]))
    assert widths[-1] < widths[0] / 2
    assert final.ci_low <= TRUE_ELBOW <= final.ci_high
    # Only the mode that responds to the axis is refined, within the budget the dry run shows.
    assert {p.mode for _, points in rounds for p in points} == {"analog_tl"}
    assert sum(len(points) for _, points in rounds) == refinement_budget(spec) == 36
    # New values lie inside the interval they refine and are new to the line.
    grid = {p.device.transfer_noise for p in expand(spec)}
    for plans, _points in rounds[:-1]:
        [plan] = plans
        assert all(plan.elbow.ci_low <= v <= plan.elbow.ci_high for v in plan.values)
        assert not set(plan.values) & grid
    # What ran, not the budget: one 3-epoch trial at every point (grid ones too), one more of 1 epoch at a new one.
    added = [p for _, points in rounds for p in points]
    trials = [{"point_key": r["point_key"], "epochs_done": 3} for r in rows] + [
        {"point_key": added[0].key, "epochs_done": 1}
    ]
    [summary] = refinement_summary(spec, rows, [rounds[0][0][0]], trials)
    assert summary.startswith("refinement of transfer_noise, analog_tl/5-8: 95 % interval width")
    assert "(36 points, 37 trials, 109 trial-epochs added)" in summary, summary


def test_a_round_is_planned_from_earlier_rounds_only():
    # What the driver relies on for resume: with round 2's points partly in the store (an interrupted round), round 2
    # is planned the same, point for point; so is a round planned twice.
    spec = synthetic_spec()
    rows = [row(p) for p in expand(spec)]
    rows += [row(p) for p in round_points(spec, plan_round(spec, rows, 1))]
    round_two = round_points(spec, plan_round(spec, rows, 2))
    partial = rows + [row(p) for p in round_two[:5]]
    assert [p.key for p in round_points(spec, plan_round(spec, partial, 2))] == [p.key for p in round_two]
    # Round 1 re-derived from the rows after round 1 ran: the same points again.
    first = round_points(spec, plan_round(spec, [row(p) for p in expand(spec)], 1))
    assert [p.key for p in round_points(spec, plan_round(spec, partial, 1))] == [p.key for p in first]


def test_a_line_without_a_critical_point_or_narrow_enough_stops():
    spec = synthetic_spec()
    _, rounds = run_rounds(spec, flat=True)
    [(plans, points)] = rounds
    assert points == [] and plans[0].why_stop == "no critical point to refine"
    assert "no critical point" in plans[0].describe()
    wide = synthetic_spec(width=1000.0)
    [(plans, points)] = run_rounds(wide)[1]
    assert points == [] and plans[0].why_stop.startswith("interval width")


@pytest.mark.slow
def test_a_real_sweep_runs_the_planned_round_and_a_resume_replans_it(tmp_path, local_ray):
    # A nano analog-TL sweep along transfer noise with one refinement round. Whether the nano model's curve has a
    # critical point depends on its (clock-seeded) analog noise, so the test checks what holds either way: the points
    # the driver added are exactly the ones planned from the grid's results in the store, and planning again from
    # the finished store (what a resume does) gives the same points, all of them done.
    spec = load_spec(
        shipped_specs()["quickstart"],
        [
            *NANO_SWEEP,
            "name=refine-nano",
            "modes=[analog_tl]",
            "lr_search.values=[0.05]",
            "axes.transfer_noise=[0,50,100,200,400,800]",
            "axes.refine.transfer_noise.points=2",
            "axes.refine.transfer_noise.rounds=1",
        ],
    )
    lines = []
    with open_store(f"sqlite:///{tmp_path}/results.db") as store:
        outcome = run_sweep(spec, store, storage_root=tmp_path / "storage", echo=lines.append)
        rows = store.best_points(spec.name)
    grid_keys = {p.key for p in expand(spec)}
    grid_rows = [r for r in rows if r["point_key"] in grid_keys]
    planned = round_points(spec, plan_round(spec, grid_rows, 1))
    assert outcome.status == "finished"
    assert {r["point_key"] for r in rows} == grid_keys | {p.key for p in planned}
    assert [p.key for p in round_points(spec, plan_round(spec, rows, 1))] == [p.key for p in planned]
    assert all(r["status"] == "done" for r in rows)
    assert any(line.startswith("refinement round 1, transfer_noise, analog_tl/5-7: ") for line in lines), lines
    if planned:
        assert len(planned) == 2 and outcome.points == len(grid_keys) + 2
        assert any(
            line.startswith("refinement of transfer_noise, analog_tl/5-7: 95 % interval width") for line in lines
        )


def test_each_algorithms_line_is_refined_on_its_own():
    """Algorithms compared: TTv2's curve bends (its line gets new values), c-TTv2's is flat (its line stops)."""
    raw = {**synthetic_spec().raw, "algorithms": ["c-ttv2", "ttv2"]}
    spec = spec_from_mapping(raw)
    rows = [row(p, flat=p.algorithm_name == "c-ttv2") for p in expand(spec)]
    plans = {plan.algorithm: plan for plan in plan_round(spec, rows, 1)}
    assert set(plans) == {"c-ttv2", "ttv2"}
    assert plans["c-ttv2"].why_stop == "no critical point to refine" and plans["ttv2"].values
    assert "transfer_noise, analog_tl/ttv2/5-8: critical point" in plans["ttv2"].describe()
    added = round_points(spec, plans.values())
    assert {p.algorithm_name for p in added} == {"ttv2"} and len(added) == 4 * 3
    assert all(p.label.startswith("analog_tl/5-8/algorithm=ttv2,transfer_noise=") for p in added)
