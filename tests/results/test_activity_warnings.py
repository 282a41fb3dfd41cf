"""One warning phrase per problem with a trial's analog activity, naming what to change."""

from __future__ import annotations

from analog_sweep.results import activity_warnings

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
