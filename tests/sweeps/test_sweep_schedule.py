"""The wall-time simulation of how ``run`` hands out trials (``sweeps._schedule``), with durations worked by hand."""

from __future__ import annotations

import pytest

from sweeps._schedule import Search, makespan, most_parallel


def test_independent_trials_fill_every_slot():
    # 5 trials of 10 s that may all run at once: 2 slots take three waves, 5 slots one.
    searches = [Search((10.0,) * 3), Search((10.0,) * 2)]
    assert makespan(searches, 2) == 30
    assert makespan(searches, 5) == 10
    assert makespan(searches, 1) == 50


def test_a_point_under_patience_runs_its_trials_one_after_another():
    # Warm-started (1 start-up trial): 4 trials end to end whatever the slots.
    assert makespan([Search((10.0, 5.0, 5.0, 5.0), start_up=1)], 8) == 25
    # The base point's spread start-up trials run side by side, then one at a time.
    assert makespan([Search((10.0, 10.0, 10.0, 10.0), start_up=2)], 8) == 30


def test_a_chain_sets_a_floor_the_compute_over_the_slots_does_not_see():
    # One chain of 4 x 10 s and 6 free trials of 10 s. On 2 slots the compute divided by the slots (50 s) decides; on
    # 4 slots the chain does (40 s, where the compute over 4 is 25 s).
    searches = [Search((10.0,) * 4, start_up=1), Search((10.0,) * 6)]
    assert makespan(searches, 2) == 50
    assert makespan(searches, 4) == 40
    assert makespan([Search((10.0,) * 4, start_up=1), Search((10.0,) * 2)], 2) == 40


def test_followers_run_beside_their_leader_and_never_before_it():
    # A device point's first seed leads (patience: one trial at a time); its two later seeds run each trial beside it.
    leader = Search((10.0, 10.0, 10.0), start_up=1)
    followers = [Search((10.0, 10.0, 10.0), leader=0), Search((10.0, 10.0, 10.0), leader=0)]
    assert makespan([leader, *followers], 3) == 30
    assert makespan([leader, *followers], 9) == 30  # a follower may not run ahead of its leader's trials
    assert makespan([leader, *followers], 1) == 90


def test_breadth_first_hands_out_the_lowest_trial_number_first():
    # As run's _new_trial does: trial 0 of every point before trial 1 of any. A free point first and a chain second,
    # on 2 slots: breadth-first runs them side by side (30 s); handing out the free point's trials first would leave
    # the chain to run alone afterwards (40 s).
    assert makespan([Search((10.0,) * 3), Search((10.0,) * 3, start_up=1)], 2) == 30


def test_most_parallel_is_the_peak_with_a_slot_for_every_trial():
    # A base point's 2 start-up trials with its 2 followers (6), beside a free point's 3 trials: 9 at once at first.
    base = Search((10.0,) * 4, start_up=2)
    searches = [base, Search((10.0,) * 4, leader=0), Search((10.0,) * 4, leader=0), Search((5.0,) * 3)]
    assert most_parallel(searches) == 9
    assert makespan(searches, 9) == makespan(searches, 100) == 30
    assert makespan(searches, 8) == 30  # the peak bounds the slots that can help; fewer may do as well
    assert most_parallel([Search((10.0,) * 5, start_up=1)]) == 1


def test_nothing_to_run_takes_no_time():
    assert makespan([], 4) == 0
    assert makespan([Search(())], 4) == 0


@pytest.mark.parametrize(
    ("searches", "slots", "message"),
    [
        ([Search((1.0,))], 0, "at least 1 trial at a time"),
        ([Search((1.0,), leader=0)], 2, "its leader must come before it"),
        ([Search((1.0,)), Search((1.0, 1.0), leader=0)], 2, "more trials than its leader"),
    ],
)
def test_bad_input_is_refused(searches, slots, message):
    with pytest.raises(ValueError, match=message):
        makespan(searches, slots)
