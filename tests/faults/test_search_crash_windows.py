"""The driver dies between two journal writes of the learning-rate search; a resumed search still hands out every
trial once, under its own id and with its own learning rate.

The SIGKILL tests (``test_driver_kill.py``) land in such a window only by chance; these reproduce each window
exactly, on the real Optuna journal, in a fraction of a second.
"""

from __future__ import annotations

import pytest

from analog_sweep.orchestrator import LearningRateSearch, trial_id_for
from analog_sweep.sweeps import expand

from .conftest import FAULT_SWEEP, spec_for

SETTINGS = {"trials_dir": "unused", "cache_dir": "unused", "threads": 1, "gpu": 0}
TPE = [
    "lr_search.method=tpe",
    "lr_search.values=null",
    "lr_search.low=0.001",
    "lr_search.high=0.1",
    "lr_search.trials_per_point=2",
]


def drain(search: LearningRateSearch, prefix: str) -> dict[str, dict]:
    suggestions = {}
    while (suggestion := search.suggest(f"{prefix}{len(suggestions)}")) not in (None, LearningRateSearch.FINISHED):
        suggestions[f"{prefix}{len(suggestions)}"] = suggestion
    return suggestions


@pytest.mark.parametrize("method", ["grid", "tpe"])
def test_a_trial_asked_but_not_yet_given_its_learning_rate_is_handed_out_with_one(tmp_path, method):
    spec = spec_for([*FAULT_SWEEP, *(TPE if method == "tpe" else [])])
    points = expand(spec)
    journal = tmp_path / "optuna.journal"
    search = LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS)
    first = search.suggest("r0")
    # The driver dies having asked the next point's study for a trial (one journal write) but before drawing the
    # trial's learning rate (the next write).
    search.study(points[1].key).ask()

    resumed = LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS)
    handed = drain(resumed, "new")
    by_id = {s["trial_id"]: s for s in handed.values()}
    # The half-asked trial comes first (an interrupted trial) and gets a learning rate: the grid's queued value, or
    # a TPE draw in range; the first trial (never told either) comes again with its own value; then the budget.
    half = by_id[trial_id_for(spec.name, points[1].key, 0)]
    if method == "grid":
        assert half["lr"] == spec.lr_search.values[0] and half["trial"]["lr"] == half["lr"]
    else:
        assert spec.lr_search.low <= half["lr"] <= spec.lr_search.high
    assert by_id[first["trial_id"]]["lr"] == first["lr"]
    expected = {trial_id_for(spec.name, p.key, n) for p in points for n in range(spec.lr_search.trials_per_point)}
    assert sorted(s["trial_id"] for s in handed.values()) == sorted(expected)
    for ray_id in handed:
        resumed.on_trial_complete(ray_id, {"test_error": 10.0, "epoch": spec.epochs})
    assert all(resumed.point_finished(p.key) for p in points)
    if method == "grid":
        for point in points:
            lrs = sorted(s["lr"] for s in handed.values() if s["point_key"] == point.key)
            assert lrs == sorted(spec.lr_search.values)


GRID4 = ["lr_search.values=[0.001,0.01,0.03,0.1]"]


def _run_to_the_end(search: LearningRateSearch, epochs: int, prefix: str) -> None:
    """What the driver does with the search: every trial handed out (breadth-first), then each one told."""
    for ray_id in drain(search, prefix):
        search.on_trial_complete(ray_id, {"test_error": 10.0, "epoch": epochs})


def test_every_grid_value_runs_once_whichever_journal_write_the_driver_died_after(tmp_path):
    """The grid is queued one ``enqueue_trial`` (one journal write) at a time, and asking and
    telling are journal writes too. The driver is stopped after each write in turn, of set-up and of the whole
    search (a journal cut after N records is exactly what a driver killed after its N-th write leaves), then
    resumed: every point runs its four values, each once, and nothing else."""
    spec = spec_for([*FAULT_SWEEP, *GRID4])
    points = expand(spec)
    assert spec.lr_search.trials_per_point == 4 and len(points) == 2
    reference = tmp_path / "reference.journal"
    _run_to_the_end(LearningRateSearch(spec.name, points, spec.lr_search, reference, SETTINGS), spec.epochs, "r")
    records = reference.read_bytes().splitlines(keepends=True)
    grid = sorted(spec.lr_search.values)
    for cut in range(len(records) + 1):
        journal = tmp_path / f"cut-{cut}.journal"
        journal.write_bytes(b"".join(records[:cut]))
        resumed = LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS)
        _run_to_the_end(resumed, spec.epochs, f"cut{cut}-")
        for point in points:
            assert resumed.point_finished(point.key), (cut, point.key)
            ended = resumed.ended_trials(point.key)
            assert sorted(lr for _, lr, _ in ended) == grid, (cut, point.key, ended)
            assert len({trial_id for trial_id, _, _ in ended}) == len(ended) == 4, (cut, ended)
        assert drain(LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS), "again") == {}
