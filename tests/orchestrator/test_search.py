"""The per-point learning-rate search: budgets, order, grid values, pruning, and hand-out again after a crash."""

from __future__ import annotations

import optuna
import pytest
from optuna.trial import TrialState

from analog_sweep.orchestrator import LearningRateSearch, trial_id_for
from analog_sweep.sweeps import expand, load_spec, shipped_specs

QUICK = ["data.train_limit=16", "data.test_limit=16", "epochs=3", "seeds=[0]"]


def make_search(tmp_path, overrides=()):
    spec = load_spec(shipped_specs()["quickstart"], [*QUICK, *overrides])
    settings = {"trials_dir": str(tmp_path / "trials"), "cache_dir": str(tmp_path / "cache"), "threads": 1, "gpu": 0}
    return spec, LearningRateSearch(spec.name, expand(spec), spec.lr_search, tmp_path / "optuna.journal", settings)


def drain(search, prefix="ray"):
    """Ask until the searcher has nothing more to hand out; return the suggestions by Ray trial id."""
    suggestions = {}
    while True:
        ray_id = f"{prefix}{len(suggestions)}"
        suggestion = search.suggest(ray_id)
        if suggestion is None or suggestion == LearningRateSearch.FINISHED:
            return suggestions
        suggestions[ray_id] = suggestion


def test_grid_search_hands_out_every_value_once_per_point_breadth_first(tmp_path):
    spec, search = make_search(tmp_path)
    suggestions = list(drain(search).values())
    points = expand(spec)
    assert len(suggestions) == len(points) * len(spec.lr_search.values)
    # Breadth-first: every point gets its first trial before any gets its second.
    assert [s["point_key"] for s in suggestions[: len(points)]] == [p.key for p in points]
    for point in points:
        lrs = sorted(s["lr"] for s in suggestions if s["point_key"] == point.key)
        assert lrs == sorted(spec.lr_search.values)
    first = suggestions[0]
    assert first["trial"]["lr"] == first["lr"] and first["trial"]["mode"] == points[0].mode
    assert first["trial_id"] == trial_id_for("quickstart", first["point_key"], 0)


def test_tpe_search_respects_the_budget_and_range(tmp_path):
    spec, search = make_search(
        tmp_path,
        [
            "lr_search.method=tpe",
            "lr_search.values=null",
            "lr_search.low=0.001",
            "lr_search.high=0.1",
            "lr_search.trials_per_point=3",
        ],
    )
    suggestions = list(drain(search).values())
    assert len(suggestions) == len(expand(spec)) * 3
    assert all(0.001 <= s["lr"] <= 0.1 for s in suggestions)


def test_completed_trials_are_told_and_the_search_then_finishes(tmp_path):
    _, search = make_search(tmp_path)
    suggestions = drain(search)
    for ray_id, suggestion in suggestions.items():
        search.on_trial_complete(ray_id, {"test_error": 10 * suggestion["lr"], "epoch": 3})
    assert search.suggest("another") == LearningRateSearch.FINISHED
    counts = search.counts()
    assert counts["complete"] == len(suggestions) and counts["points_done"] == len(search.points)
    assert all(search.point_finished(p.key) for p in search.points)


def test_points_with_a_trial_ended_count_as_begun_until_they_finish(tmp_path):
    """The grid hands every point its first rate before any its second, so no point finishes until the last round:
    the progress line counts the points with a trial ended (``points_begun``); handed-out trials do not count."""
    _, search = make_search(tmp_path)
    suggestions = list(drain(search).items())
    assert search.counts()["points_begun"] == 0 and search.counts()["running"] == len(suggestions)
    first_round = suggestions[: len(search.points)]
    for ray_id, suggestion in first_round[:3]:
        search.on_trial_complete(ray_id, {"test_error": 10 * suggestion["lr"], "epoch": 3})
    counts = search.counts()
    assert (counts["points_done"], counts["points_begun"]) == (0, 3)
    for ray_id, suggestion in suggestions:
        if (ray_id, suggestion) not in first_round[:3]:
            search.on_trial_complete(ray_id, {"test_error": 10 * suggestion["lr"], "epoch": 3})
    counts = search.counts()
    assert (counts["points_done"], counts["points_begun"]) == (len(search.points), 0)


def test_trials_interrupted_by_a_driver_crash_are_handed_out_again_under_their_own_ids(tmp_path):
    _, search = make_search(tmp_path)
    suggestions = drain(search)
    finished = dict(list(suggestions.items())[:4])
    for ray_id in finished:
        search.on_trial_complete(ray_id, {"test_error": 5.0, "epoch": 3})
    # The driver dies here. A new searcher on the same journal hands out exactly the unfinished trials, once each.
    _, resumed = make_search(tmp_path)
    again = drain(resumed, prefix="new")
    assert sorted(s["trial_id"] for s in again.values()) == sorted(
        s["trial_id"] for r, s in suggestions.items() if r not in finished
    )
    assert {s["trial_id"]: s["lr"] for s in again.values()} == {
        s["trial_id"]: s["lr"] for r, s in suggestions.items() if r not in finished
    }


def test_a_failed_trial_is_recorded_as_failed_and_not_retried_by_the_search(tmp_path):
    _, search = make_search(tmp_path)
    ray_id, suggestion = next(iter(drain(search).items()))
    search.on_trial_complete(ray_id, None, error=True)
    study = search.study(suggestion["point_key"])
    assert study.trials[0].state == TrialState.FAIL


@pytest.mark.parametrize("pruner", ["median", "successive_halving"])
def test_pruning_stops_a_trial_that_is_worse_than_its_finished_rivals(tmp_path, pruner):
    options = (
        ["lr_search.pruner_options.n_startup_trials=1"]
        if pruner == "median"
        else ["lr_search.pruner_options.min_resource=1", "lr_search.pruner_options.reduction_factor=2"]
    )
    _, search = make_search(tmp_path, [f"lr_search.pruner={pruner}", *options])
    suggestions = drain(search)
    point = search.points[0].key
    good, bad = [r for r, s in suggestions.items() if s["point_key"] == point]
    for epoch in (1, 2, 3):
        assert not search.should_prune(good, {"test_error": 5.0, "epoch": epoch})
    search.on_trial_complete(good, {"test_error": 5.0, "epoch": 3})
    pruned_at = next(epoch for epoch in (1, 2, 3) if search.should_prune(bad, {"test_error": 90.0, "epoch": epoch}))
    assert pruned_at <= 2 and search.was_pruned(bad) and not search.was_pruned(good)
    search.on_trial_complete(bad, {"test_error": 90.0, "epoch": pruned_at})
    states = [t.state for t in search.study(point).trials if t.state != TrialState.WAITING]
    assert sorted(s.name for s in states) == ["COMPLETE", "PRUNED"]


def test_the_studies_persist_in_the_journal(tmp_path):
    _, search = make_search(tmp_path)
    drain(search)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(tmp_path / "optuna.journal"))
    )
    names = {s.study_name for s in optuna.get_all_study_summaries(storage)}
    assert names == {p.key for p in search.points}


def test_two_sweeps_over_the_same_points_get_distinct_trial_ids(tmp_path):
    spec, search = make_search(tmp_path / "a")
    other = LearningRateSearch(
        "other", search.points, spec.lr_search, tmp_path / "b" / "optuna.journal", search.trial_settings
    )
    ours = {s["trial_id"] for s in drain(search).values()}
    theirs = {s["trial_id"] for s in drain(other).values()}
    assert len(ours) == len(theirs) == len(search.points) * spec.lr_search.trials_per_point
    assert not ours & theirs


def make_selecting_search(tmp_path, overrides=()):
    spec = load_spec(shipped_specs()["quickstart"], [*QUICK, *overrides])
    settings = {"trials_dir": str(tmp_path / "trials"), "cache_dir": str(tmp_path / "cache"), "threads": 1, "gpu": 0}
    search = LearningRateSearch(
        spec.name, expand(spec), spec.lr_search, tmp_path / "optuna.journal", settings, selection=spec.selection
    )
    return spec, search


def test_on_validation_the_study_minimises_the_lowest_validation_error_and_prunes_on_it(tmp_path):
    spec, search = make_selecting_search(
        tmp_path, ["lr_search.pruner=median", "lr_search.pruner_options.n_startup_trials=1"]
    )
    assert search.metric_name == "validation_error"
    suggestions = drain(search)
    point = search.points[0].key
    good, bad = [r for r, s in suggestions.items() if s["point_key"] == point]
    # The test error says nothing here: a low test error with a high validation error is not good.
    for epoch, validation in ((1, 20.0), (2, 8.0), (3, 12.0)):
        assert not search.should_prune(good, {"validation_error": validation, "test_error": 50.0, "epoch": epoch})
    search.on_trial_complete(good, {"validation_error": 12.0, "test_error": 50.0, "epoch": 3})
    assert search.study(point).trials[0].value == 8.0  # the best epoch's, since the epoch is chosen too
    assert search.should_prune(bad, {"validation_error": 90.0, "test_error": 1.0, "epoch": 1})


def test_seeds_sharing_a_tpe_search_run_the_first_seeds_learning_rates(tmp_path):
    tpe = [
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=3",
        "seeds=[0,1,2]",
        "axes=null",
        "modes=[analog_tl,digital_tl]",
    ]
    spec, search = make_selecting_search(tmp_path, tpe)
    suggestions = list(drain(search).values())
    by_point = {}
    for s in suggestions:
        by_point.setdefault(s["point_key"], []).append(s["lr"])
    points = expand(spec)
    for mode in ("analog_tl", "digital_tl"):
        seeds = [by_point[p.key] for p in points if p.mode == mode]
        assert len(seeds) == 3 and seeds[0] == seeds[1] == seeds[2] and len(set(seeds[0])) == 3
    # Per seed, each draws its own.
    _, alone = make_selecting_search(tmp_path / "alone", [*tpe, "selection.per_seed=true"])
    drawn = {}
    for s in drain(alone).values():
        drawn.setdefault(s["point_key"], []).append(s["lr"])
    assert len({tuple(v) for v in drawn.values()}) == len(drawn)


def test_a_follower_value_queued_before_a_crash_is_asked_once(tmp_path):
    tpe = [
        "lr_search.method=tpe",
        "lr_search.values=null",
        "lr_search.trials_per_point=2",
        "seeds=[0,1]",
        "axes=null",
        "modes=[digital_tl]",
    ]
    spec, search = make_selecting_search(tmp_path, tpe)
    leader, follower = expand(spec)
    first = search.suggest("r0")
    assert first["point_key"] == leader.key
    # The driver queued the follower's value and died before asking it.
    search.study(follower.key).enqueue_trial({"lr": first["lr"]})
    _, resumed = make_selecting_search(tmp_path, tpe)
    again = list(drain(resumed, prefix="new").values())
    follower_lrs = [s["lr"] for s in again if s["point_key"] == follower.key]
    leader_lrs = [first["lr"]] + [
        s["lr"] for s in again if s["point_key"] == leader.key and s["trial_id"] != first["trial_id"]
    ]
    assert follower_lrs == leader_lrs[:2] and len(follower_lrs) == 2
    waiting = resumed.study(follower.key).get_trials(deepcopy=False, states=(TrialState.WAITING,))
    assert waiting == []


def test_the_progress_line_never_shows_a_trial_that_ended_without_a_result_as_the_best(tmp_path):
    """A diverged trial reports good errors before its loss turns NaN, then ``ended_as``: from then on it is out of
    "best so far" (it was shown as the best when every trial of the sweep diverged)."""
    from types import SimpleNamespace

    from analog_sweep.orchestrator._progress import ProgressLine
    from analog_sweep.orchestrator._search import ENDED_AS

    _, search = make_search(tmp_path)
    lines: list[str] = []
    line = ProgressLine(search, slots=2, echo=lines.append, interval=0.0)
    metric = search.metric_name
    point = search.points[0].key
    good = SimpleNamespace(trial_id="a", config={"point_key": point, "lr": 0.05})
    wild = SimpleNamespace(trial_id="b", config={"point_key": point, "lr": 50.0})
    line.on_trial_result(0, [], wild, {metric: 12.5, "epoch": 1})
    assert "12.50 %" in line.line() and "lr=50" in line.line()
    line.on_trial_result(0, [], wild, {ENDED_AS: "diverged", "error": "loss is nan"})
    assert "best so far -" in line.line()
    line.on_trial_result(0, [], good, {metric: 30.0, "epoch": 1})
    assert "30.00 %" in line.line() and "lr=0.05" in line.line()


def test_a_trial_the_driver_stopped_before_its_end_is_handed_out_again_in_the_same_run(tmp_path):
    _, search = make_search(tmp_path)
    suggestions = drain(search)
    stopped_ray_id, stopped = next(iter(suggestions.items()))
    search.on_trial_complete(stopped_ray_id, {"test_error": 5.0, "epoch": 1})  # stopped after 1 of 3 epochs
    again = search.suggest("again")
    assert again["trial_id"] == stopped["trial_id"] and again["lr"] == stopped["lr"]
    assert search.suggest("more") is None  # nothing else is open: the others are still running


def test_suggestions_and_progress_read_the_journal_per_change_not_per_point(tmp_path, monkeypatch):
    """With many points, a suggestion and a progress count must not read every study's journal records: reads grow
    with the changes made (one ask, one tell), not with the number of points."""
    _, search = make_search(tmp_path, ["axes.transfer_noise=[0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19]"])
    points = len(search.points)
    assert points > 20
    reads = []
    original = optuna.storages.JournalStorage.get_all_trials

    def counted(self, *args, **kwargs):
        reads.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(optuna.storages.JournalStorage, "get_all_trials", counted)
    first = search.suggest("ray0")  # the first suggestion reads every study once
    search.counts()
    reads.clear()
    for number in range(1, 11):
        suggestion = search.suggest(f"ray{number}")
        search.on_trial_complete(f"ray{number}", {"test_error": 5.0, "epoch": 3})
        search.counts()
        assert suggestion["trial_id"] != first["trial_id"]
    assert len(reads) <= 10 * 8, f"{len(reads)} journal reads for 10 suggestions over {points} points"
    # And the counts are right: ten completed, one running.
    counts = search.counts()
    assert (counts["complete"], counts["running"]) == (10, 1)
