"""The rules for which trial runs next (``sweeps._scheduling``), on plain counts and trial records."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    COMPLETE,
    FAILED,
    PRUNED,
    BreadthFirst,
    TrialRecord,
    bracket_pending,
    expand,
    has_finished,
    has_settled,
    is_ready,
    load_spec,
    may_ask,
    may_warm_start,
    seed_leaders,
    shipped_specs,
    start_up_count,
    stops_by_patience,
    warm_starts,
)


def load(*overrides):
    return load_spec(shipped_specs()["quickstart"], overrides=overrides)


TPE = ("lr_search.method=tpe", "lr_search.values=null", "lr_search.trials_per_point=4")


def ended(*values, start=0):
    """Ended trials numbered from ``start``: a number is a completed trial's objective, a state name that state."""
    return [
        TrialRecord(number, value, None) if isinstance(value, str) else TrialRecord(number, COMPLETE, value)
        for number, value in enumerate(values, start=start)
    ]


def test_a_point_runs_its_start_up_trials_at_once_then_one_sampler_trial_at_a_time():
    assert may_ask(0, 4, start_up=2, running=0)
    assert may_ask(1, 4, start_up=2, running=1)  # still a start-up trial
    assert not may_ask(2, 4, start_up=2, running=1)  # a sampler trial waits for every earlier one to end
    assert may_ask(2, 4, start_up=2, running=0)
    assert not may_ask(2, 4, start_up=2, running=0, stopped=lambda: True)  # its search settled
    assert not may_ask(4, 4)  # the budget is spent
    assert may_ask(3, 4, running=3)  # no patience: every trial at once


def test_the_stopped_rule_is_asked_only_when_the_answer_depends_on_it():
    def never():
        raise AssertionError("asked")

    assert may_ask(1, 4, start_up=2, running=0, stopped=never)
    assert not may_ask(2, 4, start_up=2, running=1, stopped=never)
    assert not is_ready(0, leader_asked=0, inward_finished=never)
    assert is_ready(1, inward_finished=never)


def test_a_follower_seed_follows_its_leader_trial_by_trial():
    assert not may_ask(1, 4, leader_asked=1, start_up=1, running=0)
    assert may_ask(1, 4, leader_asked=2, start_up=1, running=5)  # waits for nothing else
    assert not may_ask(4, 4, leader_asked=5)
    assert is_ready(1, leader_asked=2, inward_finished=lambda: False)
    assert not is_ready(2, leader_asked=2, inward_finished=lambda: True)


def test_a_new_point_is_ready_once_its_inward_neighbours_finished():
    assert not is_ready(0, inward_finished=lambda: False)
    assert is_ready(0, inward_finished=lambda: True)


def test_a_point_has_finished_once_its_target_trials_all_ended():
    assert has_finished(3, 3, 3)
    assert not has_finished(3, 2, 3)
    assert not has_finished(2, 2, 3)
    assert not has_finished(0, 0, 0)  # a point that never ran a trial never finished


def test_start_up_trials_are_the_warm_start_ones_else_the_spread_ones():
    assert start_up_count([0.05], 3) == 1
    assert start_up_count([], 3) == 3
    assert start_up_count(None, 3) == 0


@pytest.mark.parametrize(
    ("values", "patience", "expected"),
    [
        ((10.0, 12.0), 1, True),  # the sampler trial did not beat the warm-start trial
        ((10.0, 9.0), 1, False),
        ((10.0, 9.0, 11.0), 1, True),
        ((10.0, PRUNED, FAILED), 2, True),  # pruned and failed trials never beat the best
        ((10.0, PRUNED), 2, False),  # fewer sampler trials than the patience
        ((PRUNED, PRUNED), 1, False),  # nothing completed before the window
    ],
)
def test_a_search_settles_once_patience_sampler_trials_in_a_row_do_not_beat_its_best(values, patience, expected):
    assert has_settled([ended(*values)], start_up=1, patience=patience) is expected


def test_a_search_with_a_trial_running_or_without_patience_or_record_never_settles():
    running = [*ended(10.0, 12.0), TrialRecord(2)]
    assert not has_settled([running], start_up=1, patience=1)
    assert not has_settled([ended(10.0, 12.0)], start_up=1, patience=None)
    assert not has_settled([ended(10.0, 12.0)], start_up=0, patience=1)


def test_a_bracketed_point_settles_once_its_warm_start_trial_completed_at_every_seed():
    leader, follower = ended(10.0), ended(11.0)
    assert has_settled([leader, follower], start_up=1, patience=1, bracketed=True)
    assert bracket_pending([leader, []], 1)  # the follower's warm-start trial was not handed out yet
    assert not has_settled([leader, []], start_up=1, patience=1, bracketed=True)
    assert bracket_pending([leader, [TrialRecord(0)]], 1)
    # Where it failed at one seed, the point searches on under the patience rule.
    assert not has_settled([leader, ended(FAILED)], start_up=1, patience=1, bracketed=True)
    assert has_settled([[*leader, *ended(12.0, start=1)], ended(FAILED)], start_up=1, patience=1, bracketed=True)


def test_later_seeds_follow_the_first_seed_of_their_device_point_only_when_seeds_share_a_tpe_search():
    spec = load(*TPE, "seeds=[0, 1]", "modes=[analog_tl]", "axes.transfer_noise=[0, 10]")
    points = expand(spec)
    leaders = seed_leaders(points, spec.lr_search, spec.selection)
    assert leaders  # every later seed has a leader: the first seed at the same device
    for follower, leader in leaders.items():
        assert points[follower].device == points[leader].device and points[leader].seed == 0
    assert {points[index].seed for index in range(len(points)) if index not in leaders} == {0}
    per_seed = load(*TPE, "seeds=[0, 1]", "selection.per_seed=true")
    assert seed_leaders(expand(per_seed), per_seed.lr_search, per_seed.selection) == {}
    assert seed_leaders(points, spec.lr_search, None) == {}


def test_warm_starts_and_patience_need_tpe_with_neighbours():
    spec = load(*TPE, "lr_search.patience=1", "seeds=[0, 1]", "axes.transfer_noise=[0, 10]", "modes=[analog_tl]")
    assert warm_starts(spec.lr_search) and stops_by_patience(spec.lr_search)
    assert not warm_starts(load().lr_search)  # the quickstart's grid
    warm = {(point.seed, point.device.transfer_noise): may_warm_start(spec, point) for point in expand(spec)}
    assert warm == {(0, 0.0): False, (1, 0.0): False, (0, 10.0): True, (1, 10.0): True}
    per_seed = load(*TPE, "seeds=[0, 1]", "selection.per_seed=true", "modes=[analog_tl]", "axes=null")
    assert [may_warm_start(per_seed, point) for point in expand(per_seed)] == [False, True]  # the later seed


def test_breadth_first_hands_out_the_lowest_trial_number_then_the_earliest_ready_point():
    asked = [1, 0, 0]
    queue = BreadthFirst(asked)
    assert queue.pick(asked, lambda index: True, lambda index: True) == 1
    # A point that is not ready waits while a ready one has a trial, even a later trial number.
    queue = BreadthFirst(asked)
    assert queue.pick(asked, lambda index: True, lambda index: index == 0) == 0
    # No point ready: the first that may ask, rather than an idle slot.
    queue = BreadthFirst(asked)
    assert queue.pick(asked, lambda index: index != 1, lambda index: False) == 2
    queue = BreadthFirst(asked)
    assert queue.pick(asked, lambda index: False, lambda index: True) is None


def test_a_point_dropped_from_the_queue_comes_back_when_offered_again():
    asked = [0, 0]
    queue = BreadthFirst(asked)
    assert queue.pick(asked, lambda index: False, lambda index: True) is None  # both dropped
    assert queue.pick(asked, lambda index: True, lambda index: True) is None
    queue.offer(1, asked[1])
    assert queue.pick(asked, lambda index: True, lambda index: True) == 1
    asked[1] += 1  # its trial was handed out: the entry is stale until offered again
    assert queue.pick(asked, lambda index: True, lambda index: True) is None
    queue.offer(0, asked[0])
    queue.offer(1, asked[1])
    assert queue.pick(asked, lambda index: True, lambda index: True) == 0
