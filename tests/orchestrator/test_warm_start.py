"""Warm starts across points (``lr_search.warm_start: neighbours``): run order, inward neighbours, the first trial's
learning rate, readiness, like-with-like pruning, and exactness after a crash at any journal write."""

from __future__ import annotations

import math

import optuna
import pytest
from optuna.trial import TrialState

from analog_sweep.orchestrator import LearningRateSearch
from analog_sweep.orchestrator._search import ENDED_AS, WARM_BRACKETED, WARM_PROBE, WARM_START
from analog_sweep.orchestrator._warm_start import best_learning_rate, bracketed_rate, probe_learning_rate
from analog_sweep.sweeps import expand, load_spec, neighbourhood, shipped_specs

SETTINGS = {"trials_dir": "unused", "cache_dir": "unused", "threads": 1, "gpu": 0}
TPE = ["lr_search.method=tpe", "lr_search.values=null", "lr_search.low=0.001", "lr_search.high=1.0"]
FOUR = ["modes=[analog_tl]", "axes.transfer_noise=[0,10,30,100]", "epochs=3"]


def spec_with(*overrides: str):
    return load_spec(shipped_specs()["quickstart"], [*TPE, *FOUR, *overrides])


def search_for(spec, journal, points=None) -> LearningRateSearch:
    return LearningRateSearch(
        spec.name, points or expand(spec), spec.lr_search, journal, SETTINGS, selection=spec.selection, base=spec.device
    )


def error_at(lr: float, noise: float) -> float:
    """A made-up objective: best at lr 0.1 whatever the point, higher with more transfer noise (%)."""
    return 10.0 + 20.0 * abs(math.log10(lr) + 1.0) + noise / 10.0


def label(points, key):
    return next(p.label for p in points if p.key == key)


def test_points_run_base_first_then_outward_and_each_has_its_nearest_inward_neighbour():
    spec = spec_with("seeds=[0,1]", "selection.per_seed=true")
    points = expand(spec)
    hood = neighbourhood(points, spec.device, shared_seeds=False)
    assert [label(points, k) for k in hood.order] == [
        "analog_tl/5-7/base/seed0",
        "analog_tl/5-7/base/seed1",
        "analog_tl/5-7/transfer_noise=10/seed0",
        "analog_tl/5-7/transfer_noise=10/seed1",
        "analog_tl/5-7/transfer_noise=30/seed0",
        "analog_tl/5-7/transfer_noise=30/seed1",
        "analog_tl/5-7/transfer_noise=100/seed0",
        "analog_tl/5-7/transfer_noise=100/seed1",
    ]
    inward = {
        label(points, k): [[label(points, o) for o in group] for group in groups] for k, groups in hood.inward.items()
    }
    assert inward["analog_tl/5-7/base/seed0"] == []
    # Each seed searching on its own (per_seed: true): the earlier seeds of the same device point are one more group.
    assert inward["analog_tl/5-7/base/seed1"] == [["analog_tl/5-7/base/seed0"]]
    assert inward["analog_tl/5-7/transfer_noise=10/seed1"] == [
        ["analog_tl/5-7/transfer_noise=10/seed0"],
        ["analog_tl/5-7/base/seed1"],
    ]
    assert inward["analog_tl/5-7/transfer_noise=100/seed0"] == [["analog_tl/5-7/transfer_noise=30/seed0"]]
    # Seeds that share their choice: the neighbour is the whole device point.
    shared = neighbourhood(points, spec.device, shared_seeds=True)
    first = next(p.key for p in points if p.label == "analog_tl/5-7/transfer_noise=30/seed0")
    assert [[label(points, o) for o in g] for g in shared.inward[first]] == [
        ["analog_tl/5-7/transfer_noise=10/seed0", "analog_tl/5-7/transfer_noise=10/seed1"]
    ]


def test_in_a_full_grid_a_point_has_one_inward_neighbour_per_axis_it_moved_along():
    spec = spec_with("seeds=[0]", "axes.expand=grid", "axes.transfer_noise=[0,10,30]", "axes.dtod=[0.1,0.3]")
    points = expand(spec)
    hood = neighbourhood(points, spec.device, shared_seeds=False)  # base: transfer noise 0, dtod 0.3
    corner = next(p.key for p in points if p.axes_dict == {"transfer_noise": 30.0, "dtod": 0.1})
    neighbours = sorted(
        tuple(sorted(next(p.axes_dict for p in points if p.key == g[0]).items())) for g in hood.inward[corner]
    )
    assert neighbours == [(("dtod", 0.1), ("transfer_noise", 10.0)), (("dtod", 0.3), ("transfer_noise", 30.0))]
    assert label(points, hood.order[0]).endswith("/base/seed0")


def test_the_best_rate_is_the_one_most_seeds_completed_then_the_lowest_mean():
    def done(lr, value):
        return optuna.trial.create_trial(
            params={"lr": lr},
            distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)},
            value=value,
        )

    assert best_learning_rate([]) is None
    # 0.1 has the lowest single value but only one seed completed it; 0.05 completed at two seeds wins.
    trials = [done(0.1, 5.0), done(0.05, 9.0), done(0.05, 11.0), done(0.2, 8.0)]
    assert best_learning_rate(trials) == 0.05
    assert best_learning_rate([done(0.1, 7.0), done(0.03, 7.0)]) == 0.03  # a tie goes to the smaller rate


def frozen(lr: float, value: float | None, state: TrialState = TrialState.COMPLETE):
    return optuna.trial.create_trial(
        params={"lr": lr},
        distributions={"lr": optuna.distributions.FloatDistribution(1e-3, 1.0, log=True)},
        value=value if state == TrialState.COMPLETE else None,
        state=state,
    )


STEP = 1000**0.25  # one of 4 equal parts of [0.001, 1] on a log scale


@pytest.mark.parametrize(
    ("neighbours", "best", "expected"),
    [
        # Nothing tried beside the best: towards the middle of the range (log middle 0.0316).
        ([frozen(0.1, 9.0)], 0.1, 0.1 / STEP),
        ([frozen(0.01, 9.0)], 0.01, 0.01 * STEP),
        # One side tried (and so worse than the best): the other, unexplored side.
        ([frozen(0.1, 9.0), frozen(0.3, 12.0)], 0.1, 0.1 / STEP),
        ([frozen(0.01, 9.0), frozen(0.002, 12.0)], 0.01, 0.01 * STEP),
        # Both tried: the side whose nearest rate scored lower (its mean over seeds).
        ([frozen(0.1, 9.0), frozen(0.03, 10.0), frozen(0.3, 20.0)], 0.1, 0.1 / STEP),
        ([frozen(0.1, 9.0), frozen(0.03, 10.0), frozen(0.03, 30.0), frozen(0.3, 15.0)], 0.1, 0.1 * STEP),
        # A pruned or failed rate scores worst; only the nearest rate on each side counts.
        ([frozen(0.1, 9.0), frozen(0.03, None, TrialState.PRUNED), frozen(0.3, 40.0)], 0.1, 0.1 * STEP),
        ([frozen(0.1, 9.0), frozen(0.05, 30.0), frozen(0.003, 10.0), frozen(0.3, 20.0)], 0.1, 0.1 * STEP),
        # A tie: towards the middle. Running trials say nothing yet.
        ([frozen(0.1, 9.0), frozen(0.03, 20.0), frozen(0.3, 20.0)], 0.1, 0.1 / STEP),
        ([frozen(0.1, 9.0), frozen(0.3, None, TrialState.RUNNING)], 0.1, 0.1 / STEP),
        # Clipped to the range; a best at the edge probes the other side.
        ([frozen(0.5, 9.0), frozen(0.1, 20.0)], 0.5, 1.0),
        ([frozen(1.0, 9.0), frozen(0.3, 20.0)], 1.0, 1.0 / STEP),
    ],
)
def test_a_warm_started_points_probe_goes_one_step_to_the_side_its_neighbours_favour(neighbours, best, expected):
    assert probe_learning_rate(neighbours, best, 0.001, 1.0, STEP) == pytest.approx(expected, rel=1e-12)


def test_no_probe_where_the_range_leaves_no_room():
    assert probe_learning_rate([frozen(0.1, 9.0)], 0.1, 0.1, 0.1, 2.0) is None


def drive(
    search: LearningRateSearch,
    slots: int,
    objective,
    prefix: str = "r",
    epochs: int = 3,
    stop_after: int | None = None,
    events: list | None = None,
) -> list[dict]:
    """What Ray Tune does with the searcher, at ``slots`` trials at a time: fill the slots, then end the oldest
    trial (reporting each epoch to the pruner, as the scheduler does; failing it where ``objective`` gives None) and
    fill again. Returns every suggestion in
    the order handed out; ``events`` (if given) gets ("start" | "end", trial id) in the order they happened."""
    events = [] if events is None else events
    running: list[tuple[str, dict]] = []
    handed: list[dict] = []
    while True:
        while len(running) < slots:
            ray_id = f"{prefix}{len(handed)}"
            suggestion = search.suggest(ray_id)
            if suggestion in (None, LearningRateSearch.FINISHED):
                break
            running.append((ray_id, suggestion))
            handed.append(suggestion)
            events.append(("start", suggestion["trial_id"]))
            if stop_after is not None and len(handed) >= stop_after:
                return handed
        if not running:
            return handed
        ray_id, suggestion = running.pop(0)
        noise = suggestion["trial"]["device"]["transfer_noise"]
        seed = {"seed": suggestion["trial"]["seed"]} if getattr(objective, "by_seed", False) else {}
        value = objective(suggestion["lr"], noise, **seed)
        if value is None:  # the objective says this trial fails (bad data, a crash): it ends without a result
            search.on_trial_complete(ray_id, {"epoch": 1, ENDED_AS: "failed", "error": "injected failure"})
            events.append(("end", suggestion["trial_id"]))
            continue
        result = {"epoch": epochs, "validation_error": value, "test_error": value}
        for epoch in range(1, epochs + 1):
            result = {"epoch": epoch, "validation_error": value + (epochs - epoch), "test_error": value}
            if search.should_prune(ray_id, result):
                break
        search.on_trial_complete(ray_id, result)
        events.append(("end", suggestion["trial_id"]))


def test_a_point_starts_from_its_finished_neighbours_best_rate(tmp_path):
    spec = spec_with("seeds=[0]", "lr_search.trials_per_point=4", "lr_search.patience=none")
    search = search_for(spec, tmp_path / "optuna.journal")
    handed = drive(search, slots=2, objective=error_at)
    points = {p.key: p for p in search.points}
    by_point: dict[str, list[dict]] = {}
    for suggestion in handed:
        by_point.setdefault(suggestion["point_key"], []).append(suggestion)
    base = next(k for k, p in points.items() if p.label.endswith("/base/seed0"))
    # The base point has no neighbour: its study records no warm start, and its first two trials (TPE's start-up,
    # 4 // 2) run the log midpoints of the two halves of [0.001, 1]: 0.001 x 1000**0.25 and 0.001 x 1000**0.75.
    assert search.study(base).user_attrs[WARM_START] == []
    assert [s["lr"] for s in by_point[base][:2]] == pytest.approx([10**-2.25, 10**-0.75], rel=1e-12)
    assert all(s["lr"] not in (10**-2.25, 10**-0.75) for s in by_point[base][2:])
    for key, suggestions in by_point.items():
        if key == base:
            continue
        study = search.study(key)
        recorded = study.user_attrs[WARM_START]
        (inward,) = search._warm.neighbour_keys(key)
        assert recorded == [best_learning_rate(search.study(inward).get_trials(deepcopy=False))], points[key].label
        assert suggestions[0]["lr"] == recorded[0]  # the first trial handed out runs it
        # Its first sampler trial is the probe decided with the warm rate (from the neighbour's trials then), one
        # step of 1000 ** (1 / 4) from it or clipped to the range; the rest are TPE's own (the spread start-up is for
        # points without a warm rate).
        probe = study.user_attrs[WARM_PROBE]
        assert abs(math.log(probe / recorded[0])) == pytest.approx(math.log(1000) / 4) or probe in (0.001, 1.0)
        assert suggestions[1]["lr"] == probe
        assert not [t for t in study.trials[2:] if "fixed_params" in t.system_attrs], points[key].label
        assert len(suggestions) == 4
    # Outward order with waiting: no point's first trial was handed out before its inward neighbour had them all.
    position = {s["trial_id"]: i for i, s in enumerate(handed)}
    for key, suggestions in by_point.items():
        for neighbour in search._warm.neighbour_keys(key):
            assert position[suggestions[0]["trial_id"]] > max(position[s["trial_id"]] for s in by_point[neighbour])


def test_without_warm_start_the_search_is_breadth_first_as_before(tmp_path):
    spec = spec_with("seeds=[0]", "lr_search.trials_per_point=3", "lr_search.warm_start=none")
    search = search_for(spec, tmp_path / "optuna.journal")
    handed = drive(search, slots=2, objective=error_at)
    assert [s["point_key"] for s in handed[:4]] == [p.key for p in search.points]
    assert all(WARM_START not in search.study(p.key).user_attrs for p in search.points)


def test_seeds_that_share_their_choice_follow_the_first_seed_and_it_follows_the_neighbours(tmp_path):
    spec = spec_with("seeds=[0,1]", "lr_search.trials_per_point=3", "lr_search.patience=none")
    assert spec.selection.per_seed is False
    search = search_for(spec, tmp_path / "optuna.journal")
    handed = drive(search, slots=2, objective=error_at)
    for group in {(p.task, p.axes): None for p in search.points}:
        seeds = [p for p in search.points if (p.task, p.axes) == group]
        rates = [[s["lr"] for s in handed if s["point_key"] == p.key] for p in seeds]
        assert rates[0] == rates[1] and len(rates[0]) == 3  # the follower ran the leader's rates, in order


def test_a_trial_worse_than_the_running_warm_started_trial_of_its_point_is_pruned_and_the_warm_one_never(tmp_path):
    spec = spec_with(
        "seeds=[0]",
        "lr_search.trials_per_point=4",
        "lr_search.pruner=median",
        "lr_search.patience=none",
        "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
    )
    search = search_for(spec, tmp_path / "optuna.journal")
    handed = drive(search, slots=2, objective=error_at)
    for point in search.points:
        trials = search.study(point.key).get_trials(deepcopy=False)
        assert trials[0].state == TrialState.COMPLETE  # the first trial (warm-started where there is a neighbour)
        for trial in trials[1:]:
            if trial.state == TrialState.PRUNED:
                # pruned at epoch 1, when worse than the median of its point's other trials there
                assert trial.last_step == 1
    pruned = sum(t.state == TrialState.PRUNED for p in search.points for t in search.study(p.key).trials)
    assert pruned >= 4, pruned  # made-up errors spread over 40 points: most sampler trials lose to the warm rate
    assert len(handed) == 16


def test_like_with_like_pruning_never_compares_with_another_point_while_its_own_has_trials(tmp_path):
    """A point whose errors are all 30 points higher than its neighbour's is pruned only against itself."""
    spec = spec_with(
        "seeds=[0]",
        "lr_search.trials_per_point=4",
        "lr_search.pruner=median",
        "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
    )
    search = search_for(spec, tmp_path / "optuna.journal")

    def harder_outward(lr: float, noise: float) -> float:
        return error_at(lr, 0.0) + (30.0 if noise >= 100 else 0.0)

    drive(search, slots=2, objective=harder_outward)
    far = next(p for p in search.points if p.axes_dict.get("transfer_noise") == 100)
    states = [t.state for t in search.study(far.key).trials]
    assert states[0] == TrialState.COMPLETE and states.count(TrialState.COMPLETE) >= 1


@pytest.mark.parametrize("slots", [1, 2])
def test_after_a_crash_at_any_journal_write_each_point_runs_its_budget_once_and_its_warm_rate_once(tmp_path, slots):
    """The reliability issue's item 3 for warm starts: the decision (one journal write), the queueing (another) and
    the ask (a third) can each be cut off. Cut the journal after every record of a whole search, resume, and run to
    the end: every point has exactly its budget of trials, under distinct ids, and a recorded warm-start rate ran
    exactly once, as the point's first trial."""
    spec = spec_with("seeds=[0]", "axes.transfer_noise=[0,10,30]", "lr_search.trials_per_point=2")
    points = expand(spec)
    reference = tmp_path / "reference.journal"
    drive(search_for(spec, reference, points), slots=slots, objective=error_at)
    records = reference.read_bytes().splitlines(keepends=True)
    assert len(records) > 20
    for cut in range(len(records) + 1):
        journal = tmp_path / f"cut-{cut}.journal"
        journal.write_bytes(b"".join(records[:cut]))
        resumed = search_for(spec, journal, points)
        drive(resumed, slots=slots, objective=error_at, prefix=f"c{cut}-")
        for point in points:
            study = resumed.study(point.key)
            trials = study.get_trials(deepcopy=False)
            assert [t.state for t in trials] == [TrialState.COMPLETE] * 2, (cut, point.label, trials)
            rates = study.user_attrs.get(WARM_START)
            queued = [t for t in trials if "fixed_params" in t.system_attrs]
            assert rates is not None, (cut, point.label)
            # A point without a warm-start rate (the base) runs the spread start-up instead: 1 trial (2 // 2), the
            # log midpoint of [0.001, 1]; a warm-started one its warm rate, then its recorded probe.
            probe = study.user_attrs.get(WARM_PROBE)
            expected = [*rates, probe] if rates else [pytest.approx(10**-1.5, rel=1e-12)]
            assert not rates or probe is not None, (cut, point.label)
            assert [t.params["lr"] for t in queued] == expected, (cut, point.label)
            assert [t.number for t in queued] == list(range(len(expected))), (cut, point.label)


def test_a_sweep_stopped_part_way_continues_with_the_same_warm_rates(tmp_path):
    spec = spec_with("seeds=[0]", "lr_search.trials_per_point=3")
    journal = tmp_path / "optuna.journal"
    first = search_for(spec, journal)
    handed = drive(first, slots=2, objective=error_at, stop_after=7)
    assert len(handed) == 7
    recorded = {p.key: first.study(p.key).user_attrs.get(WARM_START) for p in first.points}
    resumed = search_for(spec, journal)
    drive(resumed, slots=2, objective=error_at, prefix="again")
    for point in resumed.points:
        if recorded[point.key] is not None:
            assert resumed.study(point.key).user_attrs[WARM_START] == recorded[point.key]
        assert resumed.point_finished(point.key)


def test_the_spec_field_is_validated_and_the_default_keeps_every_recorded_hash():
    from analog_sweep.sweeps import SpecError, spec_hash

    with pytest.raises(
        SpecError,
        match=r"lr_search.warm_start: unknown warm start 'nearest'; choose one of "
        r"neighbours, none",
    ):
        spec_with("lr_search.warm_start=nearest")
    default, off = spec_with(), spec_with("lr_search.warm_start=none")
    assert default.lr_search.warm_start == "neighbours"
    assert spec_hash(default) != spec_hash(off)
    assert spec_hash(default) == spec_hash(spec_with("lr_search.warm_start=neighbours"))


def far_optimum(lr: float, noise: float) -> float:
    """A made-up objective whose best rate moves from 0.1 (noise below 100 %) to 0.003 (noise 100 %)."""
    best = -2.5 if noise >= 100 else -1.0
    return 10.0 + 20.0 * abs(math.log10(lr) - best) + noise / 10.0


FAR_SEED = 5  # a seed for which the far point's first sampler draw beats its warm start (see the end of the test)


@pytest.mark.parametrize("patience", [1, 2])
def test_a_warm_started_point_stops_once_patience_sampler_trials_in_a_row_do_not_beat_its_best(tmp_path, patience):
    """With ``lr_search.patience`` P a point runs its start-up trials (a warm-started point's warm-start trial; the
    base point's S spread start-up trials, here 3 of a budget of 6), then sampler trials one at a time (each only
    after every earlier trial of the point ended), and stops once P in a row did not beat the best before them; a
    point whose sampler keeps improving runs on."""
    budget = 6
    spec = spec_with(
        "seeds=[0]",
        f"lr_search.trials_per_point={budget}",
        f"lr_search.patience={patience}",
        f"lr_search.seed={FAR_SEED}",
    )
    search = search_for(spec, tmp_path / "optuna.journal")
    from analog_sweep.orchestrator._progress import ProgressLine

    progress = ProgressLine(search, 2, echo=lambda line: None)
    assert search.planned_trials() == budget * len(search.points)
    assert f"of at most {budget * len(search.points)} |" in progress.line()
    events: list = []
    handed = drive(search, slots=2, objective=far_optimum, events=events)
    # What the progress line counts down to shrank to what ran.
    assert search.planned_trials() == len(handed) < budget * len(search.points)
    assert f"{len(handed)} done, 0 pruned, 0 failed of {len(handed)} |" in progress.line()
    at = {event: i for i, event in enumerate(events)}
    stopped_early = 0
    for point in search.points:
        study = search.study(point.key)
        trials = study.get_trials(deepcopy=False)
        assert all(t.state == TrialState.COMPLETE for t in trials)
        assert search.point_finished(point.key)
        start_up = len(study.user_attrs[WARM_START]) or budget // 2  # the base point: 3 spread start-up trials
        assert start_up == (budget // 2 if point.label == "analog_tl/5-7/base/seed0" else 1), point.label
        ids = [f"{spec.name}-{point.key}-lr{t.number}" for t in trials]
        for later in range(start_up, len(ids)):  # sampler trials: each started after every earlier trial had ended
            assert at[("start", ids[later])] > max(at[("end", earlier)] for earlier in ids[:later]), point.label
        values = [t.value for t in trials]
        improved = [values[i] < min(values[:i]) for i in range(1, len(values))]  # improved[i - 1]: trial i did
        if len(trials) < budget:
            stopped_early += 1
            assert search.settled(point.key) and not any(improved[-patience:]), (point.label, values)
        else:
            assert not search.settled(point.key), point.label
        for done in range(start_up + patience, len(trials)):  # it went on after `done` trials: one of the last P
            assert any(improved[done - 1 - patience : done - 1]), (point.label, values)  # sampler trials improved
        if len(trials) < budget:  # and it went on whenever one of the last P had improved
            assert not any(improved[len(trials) - 1 - patience : len(trials) - 1]), (point.label, values)
    assert stopped_early >= 1
    far = next(p for p in search.points if p.axes_dict.get("transfer_noise") == 100)
    far_values = [t.value for t in search.study(far.key).trials]
    # The neighbours' rate (near 0.1) is 30 points off the far point's optimum: with this seed the sampler beat it
    # (a random start-up draw does with probability 2/3) and went on.
    assert len(far_values) > 1 + patience and min(far_values[1:]) < far_values[0], far_values


@pytest.mark.parametrize(("patience", "base_trials"), [("1", 3), ("2", 4), ("none", 4)])
def test_the_base_point_stops_by_patience_after_its_spread_start_up(tmp_path, patience, base_trials):
    """The base point gets no warm-start rate: its 2 spread start-up trials (budget 4 over [0.001, 1]: 0.00562 and
    0.178) run, then sampler trials under patience. With the objective lowest exactly at 0.178, no sampler trial can
    beat it (a draw of exactly 0.178 has probability 0): patience 1 ends the search after 3 trials, patience 2 and
    none run all 4. The seeds sharing the choice follow the first seed's trial count."""
    spec = spec_with(
        "seeds=[0,1]", "axes.transfer_noise=[0,10]", "lr_search.trials_per_point=4", f"lr_search.patience={patience}"
    )
    search = search_for(spec, tmp_path / "optuna.journal")
    spread = 0.001 * 1000**0.75

    def lowest_at_a_spread_rate(lr: float, noise: float) -> float:
        return 10.0 + 20.0 * abs(math.log10(lr) - math.log10(spread)) + noise / 10.0

    drive(search, slots=2, objective=lowest_at_a_spread_rate)
    base = [point for point in search.points if point.axes_dict.get("transfer_noise") == 0]
    assert [point.seed for point in base] == [0, 1]
    assert search.study(base[0].key).user_attrs[WARM_START] == []  # seed 1 follows seed 0's rates
    for point in base:
        trials = search.study(point.key).trials
        assert [t.params["lr"] for t in trials[:2]] == pytest.approx([0.001 * 1000**0.25, spread]), point.label
        assert len(trials) == base_trials, (point.label, [t.params["lr"] for t in trials])
        assert all(t.state == TrialState.COMPLETE for t in trials), point.label
        assert all(t.value > trials[1].value for t in trials[2:]), point.label
        # Settled: its last P sampler trials did not beat its best (with patience 2 that is also its whole budget).
        assert search.settled(point.key) == (patience != "none"), point.label
        assert search.point_finished(point.key)


def test_a_follower_seed_drops_a_rate_its_leader_pruned(tmp_path):
    """Seeds sharing one choice: a rate the first seed pruned can never be chosen, so the other seeds' trials of it
    are pruned at their next epoch instead of running to the end."""
    spec = spec_with(
        "seeds=[0,1]",
        "lr_search.trials_per_point=4",
        "lr_search.pruner=median",
        "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
        "lr_search.patience=none",
    )
    search = search_for(spec, tmp_path / "optuna.journal")

    def seed_one_is_flat(lr: float, noise: float, seed: int) -> float:
        # Seed 1 cannot tell the rates apart, so on its own it would never prune (never above its median).
        return error_at(lr, noise) if seed == 0 else 20.0

    seed_one_is_flat.by_seed = True
    drive(search, slots=2, objective=seed_one_is_flat)
    checked = 0
    for follower_key, leader_key in search._leaders.items():
        follower, leader = search.study(follower_key).trials, search.study(leader_key).trials
        for mine, theirs in zip(follower, leader, strict=True):
            assert mine.params["lr"] == theirs.params["lr"]
            if theirs.state == TrialState.PRUNED:
                assert mine.state == TrialState.PRUNED and mine.last_step == 1, (mine.number, mine.intermediate_values)
                checked += 1
    assert checked >= 2


def test_patience_is_validated_and_its_default_keeps_every_recorded_hash():
    from analog_sweep.sweeps import SpecError, spec_hash

    assert spec_with().lr_search.patience == 1
    assert spec_with("lr_search.patience=none").lr_search.patience is None
    assert spec_with("lr_search.patience=null").lr_search.patience == 1  # null is the default, as for every field
    for bad in ("0", "1.5", "two", "true"):
        with pytest.raises(
            SpecError,
            match=r"lr_search.patience: must be an integer from 1 to 8 "
            r"\(lr_search.trials_per_point\), or none, got ",
        ):
            spec_with(f"lr_search.patience={bad}")
    with pytest.raises(SpecError, match=r"lr_search.patience: must be an integer from 1 to 3 .*, got 4"):
        spec_with("lr_search.trials_per_point=3", "lr_search.patience=4")
    with pytest.raises(SpecError, match=r"lr_search.patience: belongs to method tpe with warm_start neighbours"):
        spec_with("lr_search.warm_start=none", "lr_search.patience=2")
    grid = load_spec(shipped_specs()["quickstart"])
    assert grid.lr_search.method == "grid"
    with pytest.raises(SpecError, match=r"lr_search.patience: belongs to method tpe"):
        load_spec(shipped_specs()["quickstart"], ["lr_search.patience=1"])
    assert spec_hash(spec_with()) == spec_hash(spec_with("lr_search.patience=1"))
    assert spec_hash(spec_with()) != spec_hash(spec_with("lr_search.patience=2"))


def test_a_refinement_round_warm_starts_from_the_grid_points_around_it(tmp_path):
    """Refinement runs new axis values as a later phase of the sweep (``orchestrator._refine``): each new point (every
    seed) starts from the best rate of its inward neighbour among the grid's points, which ended in the phase before,
    and stops by patience like the grid's warm-started points."""
    spec = spec_with("seeds=[0,1]", "lr_search.trials_per_point=4", "axes.transfer_noise=[0,10,30,100]")
    grid = expand(spec)
    journal = tmp_path / "optuna.journal"
    drive(search_for(spec, journal, grid), slots=2, objective=error_at)
    finer = [
        p
        for p in expand(
            spec_with("seeds=[0,1]", "lr_search.trials_per_point=4", "axes.transfer_noise=[0,10,20,30,60,100]")
        )
        if p.axes_dict.get("transfer_noise") in (20.0, 60.0)
    ]
    assert len(finer) == 4
    refined = LearningRateSearch(
        spec.name, finer, spec.lr_search, journal, SETTINGS, selection=spec.selection, base=spec.device, earlier=grid
    )
    handed = drive(refined, slots=2, objective=error_at, prefix="round1-")
    assert {s["point_key"] for s in handed} == {p.key for p in finer}  # the grid's points are not run again
    inward = {20.0: 10.0, 60.0: 30.0}
    for point in finer:
        neighbours = [p for p in grid if p.axes_dict.get("transfer_noise") == inward[point.axes_dict["transfer_noise"]]]
        best = best_learning_rate([t for p in neighbours for t in refined.study(p.key).get_trials(deepcopy=False)])
        mine = [s["lr"] for s in handed if s["point_key"] == point.key]
        assert mine[0] == best, point.label
        assert refined.point_finished(point.key)
        assert len(mine) < 4 and refined.settled(point.key), (
            point.label,
            mine,
        )  # error_at's best rate is 0.1 everywhere


def refinement(seeds: str = "[0,1]", *overrides: str):
    """A grid along transfer noise 0/10/30/100 and a round of refinement points at 5, 20, 25, 60 and 150 (150: beyond
    the grid's last value, so it has no outward neighbour)."""
    spec = spec_with(f"seeds={seeds}", "lr_search.trials_per_point=4", *overrides)
    finer = spec_with(
        f"seeds={seeds}", "lr_search.trials_per_point=4", *overrides, "axes.transfer_noise=[0,5,10,20,25,30,60,100,150]"
    )
    round_ = [p for p in expand(finer) if p.axes_dict.get("transfer_noise") in (5.0, 20.0, 25.0, 60.0, 150.0)]
    return spec, expand(spec), round_


def test_a_refinement_round_takes_its_neighbours_among_the_finished_points_on_both_sides():
    """A round's points take their axis neighbours among the earlier phases' points only (all ended): 20 and 25, new
    values between grid values 10 and 30, both have 10 inward and 30 outward, not each other, so neither waits. A
    point beyond the last grid value has no outward neighbour: not bracketed."""
    spec, grid, round_ = refinement()
    hood = neighbourhood(round_, spec.device, shared_seeds=True, earlier=grid)
    everything = [*grid, *round_]

    def names(group):
        return [label(everything, key) for key in group]

    def at(noise):
        return next(p.key for p in round_ if p.axes_dict["transfer_noise"] == noise and p.seed == 0)

    for noise, inner, outer in [
        (5.0, "base", "transfer_noise=10"),
        (20.0, "transfer_noise=10", "transfer_noise=30"),
        (25.0, "transfer_noise=10", "transfer_noise=30"),
        (60.0, "transfer_noise=30", "transfer_noise=100"),
    ]:
        expected = [
            [f"analog_tl/5-7/{inner}/seed{s}" for s in (0, 1)],
            [f"analog_tl/5-7/{outer}/seed{s}" for s in (0, 1)],
        ]
        assert [names(group) for group in hood.inward[at(noise)]] == expected[:1], noise
        assert [[names(g) for g in pair] for pair in hood.brackets[at(noise)]] == [expected], noise
    assert names(hood.inward[at(150.0)][0]) == [f"analog_tl/5-7/transfer_noise=100/seed{s}" for s in (0, 1)]
    assert hood.brackets[at(150.0)] == ()
    assert set(hood.order) == {p.key for p in round_}
    # Without earlier phases (the grid itself) a point's outward neighbour is the next grid point.
    own = neighbourhood(grid, spec.device, shared_seeds=True)
    ten = next(p.key for p in grid if p.axes_dict["transfer_noise"] == 10 and p.seed == 0)
    assert [[names(g) for g in pair] for pair in own.brackets[ten]] == [
        [[f"analog_tl/5-7/base/seed{s}" for s in (0, 1)], [f"analog_tl/5-7/transfer_noise=30/seed{s}" for s in (0, 1)]]
    ]


def test_a_bracketed_rate_needs_every_neighbour_on_both_sides_finished_and_agreeing():
    trials = {
        "in": [frozen(0.1, 20.0), frozen(0.3, 25.0)],
        "in2": [frozen(0.1, 22.0)],
        "out": [frozen(0.1, 30.0), frozen(0.03, 31.0)],
        "other": [frozen(0.03, 10.0)],
        "none": [frozen(0.1, None, TrialState.PRUNED)],
    }
    done = set(trials)

    def rate(pairs, finished=done):
        return bracketed_rate(pairs, lambda key: trials[key], lambda key: key in finished)

    assert rate([(("in", "in2"), ("out",))]) == 0.1
    assert rate([]) is None  # not bracketed (no outward neighbour on some axis)
    assert rate([(("in",), ("other",))]) is None  # the two sides chose different rates
    assert rate([(("in",), ("out",)), (("in2",), ("other",))]) is None  # a second axis disagrees
    assert rate([(("in",), ("none",))]) is None  # a side with no completed trial has no rate
    assert rate([(("in", "in2"), ("out",))], finished=done - {"in2"}) is None  # a neighbour still searching


def up_far(lr: float, noise: float) -> float:
    """A made-up objective whose best rate moves from 0.178 (noise below 100 %) to 1.0 (noise 100 % and more)."""
    best = 0.0 if noise >= 100 else -0.75
    return 10.0 + 20.0 * abs(math.log10(lr) - best) + noise / 10.0


@pytest.mark.parametrize("patience", ["1", "none"])
def test_under_patience_a_point_bracketed_by_neighbours_agreeing_on_a_rate_runs_that_rate_alone(tmp_path, patience):
    """Under ``lr_search.patience`` a refinement point whose finished neighbours on both sides chose one rate runs it
    and stops (recorded as bracketed, with no probe); one whose sides disagree (60: between 30, best 0.178, and 100,
    best 1.0) or that has no outward neighbour (150) probes and searches as before. Without patience no point is
    bracketed and every point runs its whole budget. Seeds that share their choice follow their first seed."""
    spec, grid, round_ = refinement("[0,1]", f"lr_search.patience={patience}")
    journal = tmp_path / "optuna.journal"
    first = search_for(spec, journal, grid)
    drive(first, slots=2, objective=up_far)
    chosen = {}
    for point in grid:
        seeds = [p for p in grid if p.device == point.device]
        chosen[point.axes_dict.get("transfer_noise", 0.0)] = best_learning_rate(
            [t for p in seeds for t in first.study(p.key).get_trials(deepcopy=False)]
        )
    assert chosen[10.0] == chosen[30.0] == chosen[0.0] != chosen[100.0], chosen
    refined = LearningRateSearch(
        spec.name, round_, spec.lr_search, journal, SETTINGS, selection=spec.selection, base=spec.device, earlier=grid
    )
    drive(refined, slots=2, objective=up_far, prefix="round1-")
    for point in round_:
        noise = point.axes_dict["transfer_noise"]
        leader = next(p for p in round_ if p.device == point.device and p.seed == 0)
        attrs = refined.study(leader.key).user_attrs
        rates = [t.params["lr"] for t in refined.study(point.key).get_trials(deepcopy=False)]
        assert refined.point_finished(point.key), point.label
        if patience == "1" and noise in (5.0, 20.0, 25.0):
            assert attrs[WARM_BRACKETED] is True and attrs[WARM_PROBE] is None, point.label
            assert rates == [chosen[0.0]] and refined.settled(point.key), (point.label, rates)
        else:
            assert attrs[WARM_BRACKETED] is False and attrs[WARM_PROBE] is not None, point.label
            assert rates[1] == attrs[WARM_PROBE] and len(rates) >= 2, (point.label, rates)
            if patience == "none":
                assert len(rates) == 4, (point.label, rates)


@pytest.mark.parametrize("failing_seed", [0, 1])
def test_a_bracketed_point_whose_warm_start_trial_fails_at_any_seed_searches_on(tmp_path, failing_seed):
    """Seeds share the search: the bracketed point 20 (between grid points 10 and 30, which agree) settles only once
    its warm-start rate completed at every seed. Where it failed at one seed (the first, or a follower, which would
    otherwise end with no completed trial), the point runs a sampler trial at every seed (no probe: TPE's draw), so
    every seed ends with a completed trial."""
    spec, grid, round_ = refinement("[0,1]", "lr_search.patience=1")
    journal = tmp_path / "optuna.journal"
    drive(search_for(spec, journal, grid), slots=2, objective=up_far)
    twenty = [p for p in round_ if p.axes_dict["transfer_noise"] == 20.0]
    failed = []

    def objective(lr, noise, seed):
        if noise == 20.0 and seed == failing_seed and not failed:
            failed.append(lr)
            return None
        return up_far(lr, noise)

    objective.by_seed = True
    refined = LearningRateSearch(
        spec.name, twenty, spec.lr_search, journal, SETTINGS, selection=spec.selection, base=spec.device, earlier=grid
    )
    drive(refined, slots=2, objective=objective, prefix="round1-")
    leader = refined.study(twenty[0].key)
    assert leader.user_attrs[WARM_BRACKETED] is True and leader.user_attrs[WARM_PROBE] is None
    assert failed == leader.user_attrs[WARM_START]
    for point in twenty:
        trials = refined.study(point.key).get_trials(deepcopy=False)
        states = [t.state for t in trials]
        assert states[0] == (TrialState.FAIL if point.seed == failing_seed else TrialState.COMPLETE), point.label
        assert len(trials) >= 2 and TrialState.COMPLETE in states[1:], (point.label, states)
        assert refined.point_finished(point.key) and refined.settled(point.key)
    rates = [[t.params["lr"] for t in refined.study(p.key).get_trials(deepcopy=False)] for p in twenty]
    assert rates[0] == rates[1]  # the follower ran the leader's rates


def test_after_a_crash_at_any_journal_write_of_a_refinement_round_its_brackets_and_rates_are_kept(tmp_path):
    """The bracket decision is one more journal write, between the probe's and the warm start's: cut the round's
    journal after every record, resume, run to the end: every point records the same bracket, warm rate and probe
    as the uncut run, and runs the same rates once each."""
    spec, grid, round_ = refinement("[0]")
    reference = tmp_path / "reference.journal"
    drive(search_for(spec, reference, grid), slots=1, objective=up_far)  # one slot: every grid point warm-started
    grid_records = len(reference.read_bytes().splitlines())

    def run_round(journal, prefix):
        search = LearningRateSearch(
            spec.name,
            round_,
            spec.lr_search,
            journal,
            SETTINGS,
            selection=spec.selection,
            base=spec.device,
            earlier=grid,
        )
        drive(search, slots=2, objective=up_far, prefix=prefix)
        return {
            p.key: (
                {k: search.study(p.key).user_attrs.get(k) for k in (WARM_BRACKETED, WARM_START, WARM_PROBE)},
                [t.params["lr"] for t in search.study(p.key).get_trials(deepcopy=False)],
            )
            for p in round_
        }

    expected = run_round(reference, "ref-")
    assert sum(attrs[WARM_BRACKETED] for attrs, _ in expected.values()) == 3  # 5, 20 and 25; not 60 nor 150
    records = reference.read_bytes().splitlines(keepends=True)
    for cut in range(grid_records, len(records) + 1):
        journal = tmp_path / f"cut-{cut}.journal"
        journal.write_bytes(b"".join(records[:cut]))
        assert run_round(journal, f"c{cut}-") == expected, cut


def test_with_a_choice_per_seed_a_later_seed_starts_from_the_earlier_seeds_best_rate(tmp_path):
    # Without patience the base point's first seed hands out its trials at once and ends before the others start, so
    # each later seed's warm start is the best of every trial of its earlier seeds and inward neighbours.
    spec = spec_with(
        "seeds=[0,1,2]",
        "selection.per_seed=true",
        "lr_search.trials_per_point=4",
        "axes.transfer_noise=[0,10]",
        "lr_search.patience=none",
    )
    search = search_for(spec, tmp_path / "optuna.journal")
    handed = drive(search, slots=2, objective=error_at)
    for point in search.points:
        first = next(s["lr"] for s in handed if s["point_key"] == point.key)
        if point.label == "analog_tl/5-7/base/seed0":
            assert search.study(point.key).user_attrs[WARM_START] == []
            continue
        earlier = [p for p in search.points if p.axes == point.axes and p.seed < point.seed]
        inward = [
            p
            for p in search.points
            if p.seed == point.seed and p.axes != point.axes and point.axes_dict.get("transfer_noise") == 10.0
        ]
        best = best_learning_rate([t for p in earlier + inward for t in search.study(p.key).get_trials(deepcopy=False)])
        assert search.study(point.key).user_attrs[WARM_START] == [best] and first == best, point.label


def test_a_point_started_before_its_neighbours_finished_keeps_a_completed_trial(tmp_path):
    """With more slots than ready trials a point starts without a warm-start rate (nothing of its neighbours has
    completed yet); compared only with the neighbours' completed trials, all its trials could be pruned, leaving the
    point without a result. A trial is never pruned while no other trial of its point has completed or is running."""
    spec = spec_with(
        "seeds=[0]",
        "axes.transfer_noise=[0,10]",
        "lr_search.trials_per_point=2",
        "lr_search.pruner=median",
        "lr_search.pruner_options={n_startup_trials: 1}",
    )
    search = search_for(spec, tmp_path / "optuna.journal")

    def harder_with_noise(lr: float, noise: float) -> float:
        return 10.0 + (10.0 if noise > 0 else 0.0)  # flat in lr: every trial of the noisy point is 10 points worse

    drive(search, slots=4, objective=harder_with_noise)
    noisy = next(p for p in search.points if p.axes_dict.get("transfer_noise") == 10.0)
    assert search.study(noisy.key).user_attrs[WARM_START] == []  # started before the base point had completed
    for point in search.points:
        states = [t.state for t in search.study(point.key).trials]
        assert TrialState.COMPLETE in states, (point.label, states)


def test_no_trial_is_pruned_after_its_last_epoch_and_a_follower_never_vetoes_its_leaders_rate(tmp_path):
    """The pruner is not asked after a trial's last epoch (that would throw a finished result away), and a follower
    seed's own median never prunes a rate its leader kept (that would remove it from the shared choice)."""
    spec = spec_with(
        "seeds=[0,1]",
        "lr_search.trials_per_point=4",
        "lr_search.pruner=median",
        "lr_search.pruner_options={n_startup_trials: 1, n_warmup_steps: 0}",
        "lr_search.patience=none",
    )
    search = search_for(spec, tmp_path / "optuna.journal")

    def seed_one_disagrees(lr: float, noise: float, seed: int) -> float:
        # Seed 1 ranks the rates the other way round, so its own median would prune what seed 0 keeps.
        distance = abs(math.log10(lr) + 1.0)
        return 10.0 + 20.0 * (distance if seed == 0 else 3.0 - distance) + noise / 10.0

    seed_one_disagrees.by_seed = True
    drive(search, slots=2, objective=seed_one_disagrees)
    kept = 0
    for follower_key, leader_key in search._leaders.items():
        for mine, theirs in zip(search.study(follower_key).trials, search.study(leader_key).trials, strict=True):
            assert (mine.state == TrialState.PRUNED) == (theirs.state == TrialState.PRUNED), (mine.number, mine.state)
            kept += theirs.state == TrialState.COMPLETE
    assert kept >= len(search._leaders)
    for point in search.points:
        for trial in search.study(point.key).trials:
            if trial.state == TrialState.PRUNED:
                assert trial.last_step < 3, (point.label, trial.intermediate_values)


def test_a_resumed_search_never_runs_a_rate_it_already_ran(tmp_path):
    """A reopened study's sampler is seeded by the trials it holds: seeded as at the start, TPE drew the rates it had
    drawn before the interruption again, so a point could run one rate twice."""
    spec = spec_with(
        "seeds=[0]",
        "axes.transfer_noise=[0,10]",
        "lr_search.low=0.01",
        "lr_search.high=0.3",
        "lr_search.trials_per_point=4",
        "lr_search.patience=none",
    )
    points = expand(spec)
    for stop in range(1, 8):
        journal = tmp_path / f"stop-{stop}.journal"
        drive(search_for(spec, journal, points), slots=1, objective=error_at, stop_after=stop)
        resumed = search_for(spec, journal, points)
        drive(resumed, slots=1, objective=error_at, prefix="again")
        for point in points:
            rates = [t.params["lr"] for t in resumed.study(point.key).trials]
            assert len(rates) == 4 and len(set(rates)) == 4, (stop, point.label, rates)
