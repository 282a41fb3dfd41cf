"""One warning phrase per problem with a trial's analog activity, naming what to change."""

from __future__ import annotations

from analog_sweep.results import activity_warnings, sweep_activity_warnings

LEARNED = {"mode": "analog_tl", "head_moved": 40.0, "blocks_moved": 99.9, "blocks_rel": 0.5}


def test_tiles_that_learned_give_no_warning_and_digital_rows_are_skipped():
    assert activity_warnings(LEARNED) == []
    assert activity_warnings({"mode": "digital_tl", "head_moved": None, "blocks_moved": None, "blocks_rel": None}) == []


def test_a_still_head_and_body_are_one_phrase_naming_the_time_constant():
    [problem] = activity_warnings({**LEARNED, "head_moved": 0.0, "blocks_moved": 0.5})
    assert problem.startswith("analog head and body barely moved (0 %, 0.5 % of their weights)")
    assert "auto_granularity" in problem
    [problem] = activity_warnings({**LEARNED, "head_moved": 0.99})
    assert problem.startswith("analog head barely moved (0.99 % of its weights)")
    assert activity_warnings({**LEARNED, "head_moved": 1.0}) == []  # the threshold is "under 1 %"


def test_an_overwritten_body_is_a_problem_for_transfer_learning_only():
    [problem] = activity_warnings({**LEARNED, "blocks_rel": 1.0})
    assert "body overwritten (mean|dW|/mean|W| = 1.00)" in problem and "algorithm.mapping" in problem
    assert activity_warnings({**LEARNED, "mode": "analog_scratch", "blocks_rel": 2.5}) == []


def test_a_still_head_beside_an_overwritten_body_gets_no_contradicting_advice():
    still_head, overwritten = activity_warnings({**LEARNED, "head_moved": 0.0, "blocks_rel": 1.8})
    assert still_head == "analog head barely moved (0 % of its weights)"
    assert "weight scaling (algorithm.mapping) first" in overwritten


def test_frozen_tiles_warn_only_if_they_moved():
    still = {**LEARNED, "head_moved": 0.0, "blocks_moved": 0.0, "blocks_rel": 0.0}
    assert activity_warnings(still, frozen=True) == []
    assert activity_warnings({**still, "head_moved": 2.0}, frozen=True) == [
        "analog head moved although the tiles are frozen"
    ]


# --- a sweep's points, read as a study: advice at the base point, notes along a swept axis -------------------------

AXES_AT_BASE = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
SCALED = {
    "algorithm": {"name": "c-ttv2", "settings": {"auto_granularity": 480}, "mapping": {"weight_scaling_omega": 0.6}}
}


def _row(mode: str, seed: int, variability: float = 0.0, algorithm: str | None = "c-ttv2", **activity) -> dict:
    where = "base" if variability == 0 else f"sp_variability={variability:g}"
    digital = mode.startswith("digital")
    fields = {"head_moved": None, "blocks_moved": None, "blocks_rel": None} if digital else {**LEARNED, **activity}
    return {
        **fields,
        "label": f"{mode}/5-7/{where}/seed{seed}",
        "mode": mode,
        "algorithm": None if digital else algorithm,
        "task": "5-7",
        **AXES_AT_BASE,
        "sp_variability": variability,
    }


def _study(**at_40) -> list[dict]:
    rows = [_row("digital_tl", seed) for seed in range(3)]
    for value in (0.0, 20.0, 40.0):
        rows += [_row("analog_tl", seed, value, **(at_40 if value == 40 else {})) for seed in range(3)]
    return rows


def test_an_effect_of_the_swept_axis_is_one_note_for_the_curve_not_advice_to_every_point():
    lines = sweep_activity_warnings(_study(blocks_rel=1.46), SCALED)
    assert lines == [
        "note: analog_tl/5-7: body overwritten (mean|dW|/mean|W| 1.46) at sp_variability 40 % (3 of 3 chosen trials), "
        "not at the base point: the swept sp_variability erases the pretrained weights there, which is what the study "
        "measures"
    ]


def test_a_problem_at_the_base_point_is_a_warning_naming_it_with_advice_that_reads_the_spec():
    rows = [
        {**row, "blocks_rel": 1.2}
        if row["mode"] == "analog_tl" and row["sp_variability"] == 0 and row["label"][-1] != "2"
        else row
        for row in _study()
    ]
    [line] = sweep_activity_warnings(rows, SCALED)
    assert line.startswith(
        "warning: analog_tl/5-7/base (2 of 3 seeds): analog body overwritten (mean|dW|/mean|W| = 1.20)"
    )
    assert "already scaled (algorithm.mapping weight_scaling_omega 0.6)" in line and "auto_granularity, now 480" in line
    assert "use weight scaling" not in line
    unscaled = {"algorithm": {"name": "c-ttv2"}}
    [line] = sweep_activity_warnings(rows, unscaled)
    assert "use weight scaling (algorithm.mapping) first" in line


def test_a_problem_at_the_base_point_and_along_the_axis_is_the_base_points_warning_and_each_points():
    rows = [{**row, "head_moved": 0.0} if row["mode"] == "analog_tl" else row for row in _study()]
    lines = sweep_activity_warnings(rows, SCALED)
    assert [line.split(":")[1].strip() for line in lines] == [
        "analog_tl/5-7/base (3 of 3 seeds)",
        "analog_tl/5-7/sp_variability=20 (3 of 3 seeds)",
        "analog_tl/5-7/sp_variability=40 (3 of 3 seeds)",
    ]
    assert all("barely moved (0 % of the weights): shorten the transfer's time constant" in line for line in lines)


def test_a_still_head_beside_an_overwritten_body_at_the_base_gets_one_advice():
    rows = [
        {**row, "head_moved": 0.0, "blocks_rel": 1.5}
        if row["mode"] == "analog_tl" and row["sp_variability"] == 0
        else row
        for row in _study()
    ]
    barely, overwritten = sweep_activity_warnings(rows, SCALED)
    assert barely.endswith("analog head barely moved (0 % of the weights)")
    assert "a longer time constant" in overwritten


def test_comparing_algorithms_names_the_curve_by_algorithm_and_frozen_sweeps_say_so_once():
    rows = _study(blocks_rel=1.3) + [
        {**row, "algorithm": "ttv2", "label": row["label"].replace("5-7/", "5-7/algorithm=ttv2,")}
        for row in _study()
        if row["mode"] == "analog_tl"
    ]
    [line] = sweep_activity_warnings(rows, {"algorithms": ["c-ttv2", "ttv2"]})
    assert line.startswith("note: analog_tl/5-7 (c-TTv2): body overwritten")
    still = [{**row, "head_moved": 0.0, "blocks_moved": 0.0, "blocks_rel": 0.0} for row in _study()]
    frozen = {"algorithm": {"name": "c-ttv2", "freeze_analog": True}}
    assert sweep_activity_warnings(still, frozen) == [
        "note: analog tiles frozen by algorithm.freeze_analog (a diagnostic ablation): no activity expected"
    ]
    assert sweep_activity_warnings(_study(), {}) == []
