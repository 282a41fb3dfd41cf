"""Each point's Optuna study is named by the point's key and says which point it searches and what it minimises (the
point's label, the objective, the objective's name and unit); a journal whose studies hold nothing but their key (as
the searcher wrote them before they said more) resumes onto the same studies, which then say it."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analog_sweep.orchestrator import LearningRateSearch
from analog_sweep.orchestrator._dashboard import POINT_LABEL
from analog_sweep.orchestrator._search import OBJECTIVE, OBJECTIVES
from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP
from .faults import analog_sweep, reap_session, snapshot, wait_for

QUICKSTART = str(shipped_specs()["quickstart"])
QUICK = ["data.train_limit=16", "data.test_limit=16", "epochs=3", "seeds=[0]"]
SETTINGS = {"trials_dir": "unused", "cache_dir": "unused", "threads": 1, "gpu": 0}
# The journal records that describe a study (Optuna's op codes for a study's user and system attributes).
SET_STUDY_USER_ATTR, SET_STUDY_SYSTEM_ATTR = 2, 3
DESCRIPTIONS = {POINT_LABEL, OBJECTIVE, "study:metric_names"}


def _search(journal: Path, split: str = "validation") -> LearningRateSearch:
    spec = load_spec(QUICKSTART, [*QUICK, f"selection.split={split}"])
    return LearningRateSearch(spec.name, expand(spec), spec.lr_search, journal, SETTINGS, selection=spec.selection)


def _run_to_the_end(search: LearningRateSearch, prefix: str) -> None:
    """What the driver does with the search: every trial handed out (breadth-first), then each one told."""
    handed = []
    while (suggestion := search.suggest(f"{prefix}{len(handed)}")) not in (None, LearningRateSearch.FINISHED):
        handed.append(suggestion)
    for number, _ in enumerate(handed):
        error = {"test_error": 10.0, "validation_error": 12.0, "epoch": search.points[0].epochs}
        search.on_trial_complete(f"{prefix}{number}", error)


def _without_descriptions(records: list[bytes]) -> list[bytes]:
    """A journal's records less those that describe its studies: what the searcher wrote before it described
    them (the same calls, in the same order, without these)."""
    kept = []
    for record in records:
        entry = json.loads(record)
        attrs = entry.get("user_attr") or entry.get("system_attr") or {}
        describes = entry["op_code"] in (SET_STUDY_USER_ATTR, SET_STUDY_SYSTEM_ATTR) and set(attrs) <= DESCRIPTIONS
        if not describes:
            kept.append(record)
    return kept


@pytest.mark.parametrize(
    ("split", "objective_name"), [("validation", "validation error (%)"), ("test", "test error (%)")]
)
def test_studies_are_named_by_point_key_and_say_their_point_and_objective(tmp_path, split, objective_name):
    journal = tmp_path / "optuna.journal"
    search = _search(journal, split)
    _run_to_the_end(search, "r")
    # Read back as any other Optuna tool would.
    storage = JournalStorage(JournalFileBackend(str(journal)))
    assert sorted(s.study_name for s in storage.get_all_studies()) == sorted(p.key for p in search.points)
    metric = "validation_error" if split == "validation" else "test_error"
    for point in search.points:
        study = optuna.load_study(study_name=point.key, storage=storage)
        assert study.user_attrs[POINT_LABEL] == point.label
        assert study.user_attrs[OBJECTIVE] == OBJECTIVES[metric]
        assert study.metric_names == [objective_name]
    # Reopening the studies describes none of them again: each description is written once.
    before = journal.read_bytes().splitlines(keepends=True)
    reopened = _search(journal, split)
    for point in reopened.points:
        reopened.study(point.key)
    added = journal.read_bytes().splitlines(keepends=True)[len(before) :]
    assert _without_descriptions(added) == added


def test_a_journal_of_studies_named_only_by_key_resumes_onto_them_whichever_record_it_ends_at(tmp_path):
    """The searcher once wrote its studies without describing them. Such a journal, cut after each of its records
    (where a driver killed after that write leaves it), resumes onto the same studies: every grid value of every
    point runs once, nothing else runs, and the studies then say which point they search and what they minimise."""
    reference = tmp_path / "reference.journal"
    _run_to_the_end(_search(reference), "r")
    records = _without_descriptions(reference.read_bytes().splitlines(keepends=True))
    assert len(records) < len(reference.read_bytes().splitlines())  # the reference did describe its studies
    grid = None
    for cut in range(len(records) + 1):
        journal = tmp_path / f"cut-{cut}.journal"
        journal.write_bytes(b"".join(records[:cut]))
        resumed = _search(journal)
        grid = sorted(resumed.lr_search.values)
        _run_to_the_end(resumed, f"cut{cut}-")
        storage = JournalStorage(JournalFileBackend(str(journal)))
        assert sorted(s.study_name for s in storage.get_all_studies()) == sorted(p.key for p in resumed.points)
        for point in resumed.points:
            ended = resumed.ended_trials(point.key)
            assert sorted(lr for _, lr, _ in ended) == grid, (cut, point.label, ended)
            assert len({trial_id for trial_id, _, _ in ended}) == len(ended), (cut, ended)
            study = optuna.load_study(study_name=point.key, storage=storage)
            assert study.user_attrs[POINT_LABEL] == point.label and study.metric_names == ["validation error (%)"]


# A small sweep with epochs long enough (48 images, 3 epochs, 3 seeds) that a Ctrl-C lands while trials run.
STOPPABLE = [*NANO_SWEEP, "data.train_limit=48", "epochs=3", "modes=[analog_tl,digital_tl]", "axes=null"]
STOPPABLE = [item for item in STOPPABLE if not item.startswith("seeds=")] + ["seeds=[0,1,2]"]


@pytest.mark.slow
def test_a_sweep_whose_studies_hold_only_their_key_resumes_to_the_end(tmp_path):
    """A real driver: Ctrl-C mid-sweep, the journal's study descriptions taken out (a journal written without
    them), then ``resume``: every trial of the budget completes once, on the studies named by point key, which then
    hold their labels. Neither local run prints Ray's token-authentication notice."""
    url, storage = f"sqlite:///{tmp_path / 'results.db'}", tmp_path / "storage"
    sets = [arg for item in STOPPABLE for arg in ("--set", item)]
    log = tmp_path / "run.log"
    with log.open("w") as out:
        driver = analog_sweep(
            "run", QUICKSTART, *sets, "--store", url, "--storage-path", str(storage), cwd=tmp_path, stdout=out
        )
    try:

        def one_done_one_running(state: dict) -> bool:
            statuses = list(state["trials"].values())
            return "completed" in statuses and "running" in statuses

        wait_for(one_done_one_running, url, timeout=420, process=driver, log=log, interval=0.2)
        os.killpg(driver.pid, signal.SIGINT)  # Ctrl-C in a terminal: the driver's whole process group
        driver.wait(timeout=180)
    finally:
        if driver.poll() is None:
            driver.kill()
        reap_session(driver)
    output = log.read_text()
    assert snapshot(url)["sweeps"] == {"quickstart": "interrupted"}, output
    journal = storage / "quickstart" / "optuna.journal"
    records = journal.read_bytes().splitlines(keepends=True)
    journal.write_bytes(b"".join(_without_descriptions(records)))
    assert len(journal.read_bytes().splitlines()) < len(records)

    resumed = analog_sweep("resume", "quickstart", "--store", url, cwd=tmp_path)
    resumed_output, _ = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, resumed_output
    assert "finished" in resumed_output
    for said in (output, resumed_output):
        assert "Token authentication" not in said, said

    spec = load_spec(QUICKSTART, STOPPABLE)
    points = expand(spec)
    state = snapshot(url)
    assert state["sweeps"] == {"quickstart": "finished"}
    assert len(state["trials"]) == len(points) * spec.lr_search.trials_per_point
    assert set(state["trials"].values()) == {"completed"}
    with open_store(url) as store:
        assert all(row["trial_id"] for row in store.best_points("quickstart"))
    studies = JournalStorage(JournalFileBackend(str(journal)))
    assert sorted(s.study_name for s in studies.get_all_studies()) == sorted(p.key for p in points)
    for point in points:
        assert optuna.load_study(study_name=point.key, storage=studies).user_attrs[POINT_LABEL] == point.label
