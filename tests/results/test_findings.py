"""The findings table: mode differences over seeds, critical points and activity, beside the paper's values."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from analog_sweep.results._basepoint import base_points
from analog_sweep.results._findings import activity_by_mode, critical_points, mode_differences


def welch(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch's 95 % interval written out (Welch-Satterthwaite degrees of freedom), to check the library's."""
    va, vb = stats.tvar(a) / len(a), stats.tvar(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    diff = sum(a) / len(a) - sum(b) / len(b)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    return diff, diff - half, diff + half


def test_modes_compared_at_the_base_point_over_seeds_with_the_paper_beside(study_store, study):
    rows = mode_differences(study_store.best_points(study.name), dataset="cifar")
    by = {(r["task"], r["comparison"]): r for r in rows}
    assert set(by) == {
        (t, c) for t in ("5-8", "beaver-otter") for c in ("analog TL - analog scratch", "analog TL - digital TL")
    }
    seeds = study.seeds
    tl = [study.final_error("5-8", "analog_tl", 0.0, s) for s in seeds]
    scratch = [study.final_error("5-8", "analog_scratch", 0.0, s) for s in seeds]
    row = by[("5-8", "analog TL - analog scratch")]
    assert (row["difference"], row["ci_low"], row["ci_high"]) == pytest.approx(welch(tl, scratch))
    assert (row["a_n"], row["b_n"]) == (3, 3) and row["a_mean"] == pytest.approx(10.0)
    assert row["verdict"] == "analog TL lower by 15.0 points; the 95 % interval excludes 0"
    assert row["paper"] is None  # digits 5-8 is not a paper task
    assert by[("beaver-otter", "analog TL - digital TL")]["paper"] == "about +2 points (Fig. 2, Sec. III.A)"
    # on another data set the same class names are not the paper's task
    assert all(r["paper"] is None for r in mode_differences(study_store.best_points(study.name), dataset="digits"))


def test_an_interval_that_includes_zero_is_called_unresolved_and_one_seed_has_none():
    close = [
        row("analog_tl", 0, 10.0),
        row("analog_tl", 1, 14.0),
        row("analog_tl", 2, 12.0),
        row("digital_tl", 0, 11.0),
        row("digital_tl", 1, 12.0),
        row("digital_tl", 2, 13.0),
    ]
    [found] = mode_differences(close)
    assert found["ci_low"] < 0 < found["ci_high"] and not found["few_seeds"]
    assert found["verdict"].endswith("the 95 % interval includes 0: not resolved by these seeds")
    [single] = mode_differences([close[0], close[3]])
    assert single["ci_low"] is None and "one seed on a side, so no interval" in single["verdict"]


def row(mode, seed, error):
    return {
        "task": "t",
        "mode": mode,
        "seed": seed,
        "classes": ["a", "b"],
        "test_error": error,
        "transfer_noise": 0.0,
        "sp_skew": 0.0,
        "sp_variability": 0.0,
        "pulse_noise": 3.75,
        "dtod": 0.3,
    }


def test_two_seeds_a_side_are_unreliable_even_when_the_interval_excludes_0():
    # 2 seeds each, 20 points apart with a spread of 1: Welch's interval excludes 0, but 2 seeds say too little
    two = [row("analog_tl", 0, 30.0), row("analog_tl", 1, 31.0), row("digital_tl", 0, 10.0), row("digital_tl", 1, 11.0)]
    [found] = mode_differences(two)
    assert found["ci_low"] > 0 and found["few_seeds"]
    assert found["verdict"] == (
        "digital TL lower by 20.0 points; fewer than 3 seeds on a side (n = 2, 2): unreliable, not resolved"
    )


def test_seeds_that_all_agree_give_no_interval_not_a_zero_width_one():
    # both seeds of each mode hit the same count of test images: no spread, which is no sign of an exact difference
    same = [row("analog_tl", s, 28.04) for s in (0, 1)] + [row("digital_tl", s, 20.56) for s in (0, 1)]
    [found] = mode_differences(same)
    assert found["ci_low"] is None and found["ci_high"] is None and found["few_seeds"]
    assert "every seed of both modes gave the same error, so no interval (not an exact difference)" in found["verdict"]
    assert found["verdict"].endswith("fewer than 3 seeds on a side (n = 2, 2): unreliable")


def test_critical_points_as_rows_with_the_paper_value_for_analog_tl_only(study_store, study):
    best = study_store.best_points(study.name)
    elbows = [
        {
            "mode": "analog_tl",
            "task": "beaver-otter",
            "axis": "transfer_noise",
            "has_elbow": True,
            "breakpoint": 10.2,
            "ci_low": 8.0,
            "ci_high": 12.5,
            "p_value": 0.001,
            "n_values": 6,
            "n_obs": 18,
            "method": "piecewise-regression",
            "reason": None,
        },
        {
            "mode": "analog_tl",
            "task": "5-8",
            "axis": "transfer_noise",
            "has_elbow": False,
            "breakpoint": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": 0.4,
            "n_values": 6,
            "n_obs": 18,
            "method": "davies",
            "tested": True,
            "reason": "no significant rise in slope (Davies p = 0.4 >= 0.05)",
        },
        {
            "mode": "analog_scratch",
            "task": "5-8",
            "axis": "transfer_noise",
            "tested": False,
            "has_elbow": False,
            "breakpoint": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": None,
            "n_values": 3,
            "n_obs": 9,
            "method": "davies",
            "reason": "not tested: fewer than 5 axis values (3)",
        },
    ]
    rows = critical_points(elbows, best, dataset="cifar")
    assert [(r["task"], r["mode"], r["tested"], r["critical_point"], r["paper"]) for r in rows] == [
        ("5-8", "analog scratch", False, "not tested: fewer than 5 axis values (3)", None),
        ("5-8", "analog TL", True, "tested, none found (p = 0.4)", None),
        ("beaver-otter", "analog TL", True, "10.2 % [8, 12.5]", "elbow at about 15 % (Fig. 3, Sec. III.B)"),
    ]
    assert rows[1]["reason"] == "no significant rise in slope (Davies p = 0.4 >= 0.05)"
    # no dataset (a smoke run): no paper value on any row
    assert all(r["paper"] is None for r in critical_points(elbows, best, dataset=None))


def test_activity_per_analog_mode_at_the_base_point_with_the_studys_reading_of_every_point(study_store, study):
    rows = activity_by_mode(study_store.best_points(study.name))
    assert [(r["task"], r["mode"], r["seeds"]) for r in rows] == [
        ("5-8", "analog TL", 3),
        ("5-8", "analog scratch", 3),
        ("beaver-otter", "analog TL", 3),
        ("beaver-otter", "analog scratch", 3),
    ]
    tl = rows[0]
    assert tl["head_moved"] == pytest.approx(41.0) and tl["blocks_moved"] == pytest.approx(90.0)
    # the 50 % transfer-noise point's body barely moved, the base point's did not: what the swept noise does, one
    # note for the curve naming the value and its 3 chosen trials, without advice
    [warning] = tl["warnings"]
    assert warning.startswith("analog_tl/5-8: body barely moved (0.5 % of the weights) at transfer_noise 50 % (3 of 3")
    assert "auto_granularity" not in warning
    assert rows[1]["warnings"] == []


def test_the_base_point_is_the_one_the_others_vary_from():
    def point(mode, pulse, dtod):
        return {
            "task": "t",
            "mode": mode,
            "transfer_noise": 0.0,
            "sp_skew": 0.0,
            "sp_variability": 0.0,
            "pulse_noise": pulse,
            "dtod": dtod,
        }

    # analog TL alone, pulse noise and dtod one at a time around the preset 3.75 / 0.3: not the smallest values
    rows = [point("analog_tl", p, 0.3) for p in (0, 1, 3.75, 5)] + [point("analog_tl", 3.75, d) for d in (0, 0.5)]
    assert base_points(rows) == {"t": (0.0, 0.0, 0.0, 3.75, 0.3)}
    # a digital mode runs only at the base point, which decides
    rows = [point("analog_tl", 1, 0.3), point("analog_tl", 2, 0.3), point("digital_tl", 2, 0.3)]
    assert base_points(rows) == {"t": (0.0, 0.0, 0.0, 2.0, 0.3)}
