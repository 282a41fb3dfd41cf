"""The dry run's wall time replays how ``run`` hands out trials (``sweeps._schedule``); here the real searcher,
``orchestrator._search.LearningRateSearch``, hands them out against a simulated clock, and both must agree.

Each trial takes the seconds the dry run prices it at (``CostEstimate.searches``), reports one result at its end, and
frees its slot; a free slot asks the searcher for the next trial, as Ray Tune does with ``max_concurrent_trials``.
Two outcomes bracket what a real sweep does under ``lr_search.patience``: every trial beats the ones before it (no
point stops before its budget: the dry run's upper bound) or none does (every point stops as early as it may: the
lower bound). Without a pruner the lower bound's trials run to their end too, so both are exact.
"""

from __future__ import annotations

import heapq
import itertools
import random

import pytest
from ray.tune.search import Searcher

from analog_sweep.orchestrator._search import LearningRateSearch
from analog_sweep.sweeps import expand, load_spec, shipped_specs
from analog_sweep.sweeps._cost import modelled_epoch_seconds, run_order, schedule_searches
from analog_sweep.sweeps._schedule import makespan, most_parallel


def drive(spec, points, seconds_of, slots, objective, journal, earlier=None):
    """Wall seconds until the real searcher has handed out and seen the end of every trial; the most at once.
    ``earlier``: the points of a phase already run in the same journal (a refinement round's grid)."""
    search = LearningRateSearch(
        spec.name,
        list(points),
        spec.lr_search,
        journal,
        {},
        selection=spec.selection,
        base=spec.device,
        earlier=earlier,
    )
    ids = itertools.count()
    running: list[tuple[float, str, int]] = []
    now, peak = 0.0, 0
    while True:
        while len(running) < slots:
            trial_id = f"t{next(ids)}"
            config = search.suggest(trial_id)
            if config is None or config == Searcher.FINISHED:
                break
            issued = search.issued(trial_id)
            heapq.heappush(running, (now + seconds_of[issued.point_key], trial_id, issued.number))
        peak = max(peak, len(running))
        if not running:
            break
        now, trial_id, number = heapq.heappop(running)
        search.on_trial_complete(trial_id, {search.metric_name: objective(number), "epoch": spec.epochs})
    assert all(search.point_finished(point.key) for point in points)
    return now, peak


def improving(number: int) -> float:  # every trial beats the ones before it
    return 50.0 - number


def flat(number: int) -> float:  # no trial beats the first
    return 50.0 + number


CASES = {
    # One seed, patience 1, three transfer-noise values and the digital mode at the base: chains along the axis.
    "axis": (
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=4",
        "lr_search.patience=1",
        "modes=[analog_tl, digital_tl]",
        "seeds=[0]",
        "axes.transfer_noise=[0, 10, 30]",
    ),
    # Seeds sharing their search (followers), two axes, two tasks of different sizes.
    "followers": (
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=4",
        "lr_search.patience=1",
        "modes=[analog_tl]",
        'data.classes=[["5", "8"], ["5", "6", "9"]]',
        "axes.transfer_noise=[0, 10, 30]",
        "axes.dtod=[0.3, 0.6]",
    ),
    # A choice per seed: earlier seeds are neighbours too; patience 2 of 6 trials.
    "per_seed": (
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=6",
        "lr_search.patience=2",
        "modes=[analog_tl]",
        "selection.per_seed=true",
        "axes.transfer_noise=[0, 10]",
    ),
    # No patience: every trial of a point may run at once.
    "no_patience": (
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=3",
        "lr_search.patience=none",
        "modes=[analog_tl, digital_tl]",
    ),
    # The quickstart as shipped: a grid.
    "grid": (),
    # Two axes crossed (expand: grid): points with two inward neighbours.
    "cartesian": (
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=3",
        "lr_search.patience=1",
        "modes=[analog_tl]",
        "seeds=[0]",
        "axes.expand=grid",
        "axes.transfer_noise=[0, 10, 30]",
        "axes.dtod=[0.3, 0.6]",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_dry_runs_replay_matches_the_real_searcher(case, tmp_path):
    spec = load_spec(shipped_specs()["quickstart"], overrides=("lr_search.pruner=none", *CASES[case]))
    points = run_order(spec, expand(spec))
    epochs = _epochs(spec, points)
    upper, lower = schedule_searches(spec, points, epochs)
    seconds_of = {point.key: search.seconds[0] for point, search in zip(points, upper, strict=True)}
    journals = (str(tmp_path / f"{n}.log") for n in itertools.count())
    for slots in (1, 3, 8, 64):
        assert makespan(upper, slots) == pytest.approx(
            drive(spec, points, seconds_of, slots, improving, next(journals))[0]
        ), slots
        assert makespan(lower, slots) == pytest.approx(
            drive(spec, points, seconds_of, slots, flat, next(journals))[0]
        ), slots
    # With a slot for every trial: the peak the report's "more ... would not shorten it" rests on.
    assert most_parallel(upper) == drive(spec, points, seconds_of, 10_000, improving, next(journals))[1]
    assert most_parallel(lower) == drive(spec, points, seconds_of, 10_000, flat, next(journals))[1]


@pytest.mark.parametrize("per_seed", ["false", "true"])
def test_a_refinement_rounds_replay_matches_the_real_searcher(per_seed, tmp_path):
    """A round's points take their neighbours among the grid's, all finished: every point starts warm and, at the
    fewest, a bracketed one runs one trial; with a choice per seed a later seed still waits for its earlier ones."""
    from analog_sweep.sweeps._expand import line_points
    from analog_sweep.sweeps._neighbours import neighbourhood

    spec = load_spec(
        shipped_specs()["quickstart"],
        overrides=(
            "lr_search.pruner=none",
            "lr_search.method=tpe",
            "lr_search.values=null",
            "lr_search.trials_per_point=4",
            "lr_search.patience=1",
            "modes=[analog_tl]",
            "seeds=[0, 1]",
            "axes.transfer_noise=[0, 10, 30, 50]",
            f"selection.per_seed={per_seed}",
        ),
    )
    grid = run_order(spec, expand(spec))
    new = line_points(spec, "analog_tl", grid[0].classes, "transfer_noise", [5.0, 20.0, 40.0])
    by_key = {point.key: point for point in new}
    new = [by_key[key] for key in neighbourhood(new, spec.device, shared_seeds=per_seed == "false", earlier=grid).order]
    upper, lower = schedule_searches(spec, new, _epochs(spec, new), refinement=True)
    seconds_of = {point.key: search.seconds[0] for point, search in zip(new, upper, strict=True)}
    seconds_of |= {point.key: 10.0 for point in grid}
    journals = (str(tmp_path / f"{n}.log") for n in itertools.count())
    for slots in (1, 2, 4, 100):
        for objective, searches in ((improving, upper), (flat, lower)):
            journal = next(journals)
            # The grid first, one trial at a time: every grid point starts warm, so under "flat" they all agree on
            # one rate and a round point between two of them is bracketed (the lower bound).
            drive(spec, grid, seconds_of, 1, objective, journal)
            assert makespan(searches, slots) == pytest.approx(
                drive(spec, new, seconds_of, slots, objective, journal, earlier=grid)[0]
            ), (slots, objective)


def _epochs(spec, points):
    """The dry run's epoch times, each point's scaled by its own seeded random factor so that no two trials of
    different points end at the same instant (which of two trials ending together a searcher hears of first is
    arbitrary)."""
    rng = random.Random(0)
    return [modelled_epoch_seconds(spec, point, on_gpu=False) * rng.uniform(0.8, 1.2) for point in points]
