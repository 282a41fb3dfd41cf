"""The wall-time simulation of how ``run`` hands out trials (``sweeps._schedule``), with durations worked by hand."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps._schedule import Search, makespan, most_parallel


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


def test_a_point_waits_for_its_inward_neighbours_while_others_have_work():
    # Two points in a line (each 2 trials of 10 s, one at a time) and an independent one of 4 trials of 10 s, 2
    # slots. The outer point is not ready until the inner one finished (20 s), so the free trials fill the slots
    # first: 10 + 10 (inner, beside two free ones) then the outer's two trials beside the rest: 40 s.
    inner = Search((10.0, 10.0), start_up=1)
    outer = Search((10.0, 10.0), start_up=1, inward=(0,))
    free = Search((10.0,) * 4)
    assert makespan([inner, outer, free], 2) == 40
    # With nothing else to run it starts at once, unready, beside the inner point: 20 s.
    assert makespan([inner, outer], 2) == 20


def test_a_point_that_starts_before_a_neighbour_completed_runs_its_spread_start_up_trials_at_once():
    # The outer point starts at once on a free slot (its neighbour has completed nothing yet): cold, so its 3 spread
    # start-up trials run side by side, then 1 sampler trial: 2 trial lengths. Started warm it would run 1 + 3: 4.
    inner = Search((10.0,) * 4, start_up=3, cold_start_up=3)
    outer = Search((10.0,) * 4, start_up=1, cold_start_up=3, inward=(0,))
    assert makespan([inner, outer], 8) == 20
    # With one slot the inner point ends first, so the outer starts warm: 40 + 40.
    assert makespan([inner, outer], 1) == 80
    # Always warm (a refinement point): 1 + 3 one after another even with slots to spare.
    assert makespan([Search((10.0,) * 4, start_up=1)], 8) == 40


def test_the_lower_bound_stops_after_the_start_up_trials_and_its_patience():
    # Warm: 1 start-up trial + 2 (patience) of the 5 it may run; cold: 3 + 2. Pruned trials are shorter.
    assert makespan([Search((10.0, 2.0, 2.0, 2.0, 2.0), complete=1, start_up=1, settle_after=2)], 8) == 14
    cold = Search((10.0, 2.0, 2.0, 2.0, 2.0), complete=1, start_up=1, cold_start_up=3, settle_after=2)
    assert makespan([cold], 8) == 14  # 10 (3 side by side) + 2 + 2
    assert most_parallel([cold]) == 3
    # A bracketed refinement point: its warm-start trial alone.
    assert makespan([Search((10.0, 2.0, 2.0), complete=1, start_up=1, settle_after=1, bracketed=True)], 8) == 10
    # ... but a later seed (choice per seed) that starts before its earlier seed finished searches on: one slot
    # runs them one after another (bracketed: 10 + 10), eight side by side (10, then the later seed's sampler: 12).
    first = Search((10.0, 2.0, 2.0), complete=1, start_up=1, settle_after=1, bracketed=True)
    later = Search((10.0, 2.0, 2.0), complete=1, start_up=1, settle_after=1, bracketed=True, inward=(0,))
    assert makespan([first, later], 1) == 20
    assert makespan([first, later], 8) == 12
    # Its followers stop with it.
    leader = Search((10.0, 2.0, 2.0, 2.0), complete=1, start_up=1, settle_after=1)
    assert makespan([leader, Search(leader.seconds, leader=0)], 2) == 12
    assert makespan([leader, Search(leader.seconds, leader=0)], 1) == 24


def test_nothing_to_run_takes_no_time():
    assert makespan([], 4) == 0
    assert makespan([Search(())], 4) == 0


@pytest.mark.parametrize(
    ("searches", "slots", "message"),
    [
        ([Search((1.0,))], 0, "at least 1 trial at a time"),
        ([Search((1.0,), leader=0)], 2, "its leader must come before it"),
        ([Search((1.0,)), Search((1.0, 1.0), leader=0)], 2, "more trials than its leader"),
        ([Search((1.0,), inward=(1,))], 2, "inward index out of range"),
    ],
)
def test_bad_input_is_refused(searches, slots, message):
    with pytest.raises(ValueError, match=message):
        makespan(searches, slots)
