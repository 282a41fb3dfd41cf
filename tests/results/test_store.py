"""Store writes: idempotent upserts, summaries kept from epochs, statuses and times, the best-trial rule."""

from __future__ import annotations

import math

import pytest
import sqlalchemy as sa

from analog_sweep import results


def _rows(store: results.Store, table: str, order: str) -> list[tuple]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}"))]


def _axes(**overrides: float) -> dict[str, float]:
    return {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0, **overrides}


def test_replaying_a_sweep_finds_each_row_once(store, sample, count_rows):
    sample.write(store)
    first = count_rows(store)
    snapshot = {t: _rows(store, t, k) for t, k in [("points", "point_key"), ("epochs", "trial_id, epoch")]}
    trials_before = _rows(store, "trials", "trial_id")

    sample.write(store)  # the driver replays every report after a crash

    expected_trials = len(sample.modes) * len(sample.noises) * len(sample.lrs)
    completed = len(sample.modes) * len(sample.noises) * 2
    pruned_epochs = len(sample.noises)  # analog_tl lr 0.1: one epoch each
    assert first == {
        "schema_version": 1,
        "sweeps": 1,
        "points": len(sample.modes) * len(sample.noises),
        "trials": expected_trials,
        "epochs": completed * sample.epochs + pruned_epochs,
    }
    assert count_rows(store) == first
    assert {t: _rows(store, t, k) for t, k in [("points", "point_key"), ("epochs", "trial_id, epoch")]} == snapshot
    # Same trials, same summaries and start/end times (set once, not moved by the replay).
    assert _rows(store, "trials", "trial_id") == trials_before


def test_a_trial_id_never_moves_to_another_sweep_or_point(store, count_rows):
    store.record_sweep("first", {}, "h1")
    store.record_sweep("second", {}, "h2")
    for sweep in ("first", "second"):
        store.record_point(sweep, "p", mode="analog_tl", task="5-8", classes=["5", "8"], seed=0, axes=_axes())
    store.record_point("first", "q", mode="analog_tl", task="5-8", classes=["5", "8"], seed=0, axes=_axes(dtod=0.3))
    store.record_trial("t", "first", "p", lr=0.01, status="completed")
    before = count_rows(store), _rows(store, "trials", "trial_id")
    with pytest.raises(results.TrialConflict, match="belongs to point 'p' of sweep 'first'"):
        store.record_trial("t", "second", "p", lr=0.3, status="running")
    with pytest.raises(results.TrialConflict):
        store.record_trial("t", "first", "q", lr=0.01, status="completed")
    assert (count_rows(store), _rows(store, "trials", "trial_id")) == before


def test_epoch_upsert_overwrites_and_refreshes_summaries(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="analog_tl", task="2-class", classes=["a", "b"], seed=1, axes=_axes())
    store.record_trial("t", "s", "p", lr=0.01, status="running")
    store.record_epoch("t", 1, train_loss=1.0, test_error=40.0, test_accuracy=60.0, seconds=1.0)
    store.record_epoch("t", 2, train_loss=0.5, test_error=20.0, test_accuracy=80.0, seconds=1.0)
    store.record_epoch("t", 3, train_loss=0.4, test_error=30.0, test_accuracy=70.0, seconds=1.0)
    trial = store.list_trials("s")[0]
    assert (trial["epochs_done"], trial["final_test_error"], trial["best_test_error"], trial["best_epoch"]) == (
        3,
        30.0,
        20.0,
        2,
    )
    # A corrected report for epoch 3 replaces the row, and the summary follows.
    store.record_epoch("t", 3, train_loss=0.3, test_error=10.0, test_accuracy=90.0, seconds=1.0)
    trial = store.list_trials("s")[0]
    assert (trial["epochs_done"], trial["final_test_error"], trial["best_test_error"], trial["best_epoch"]) == (
        3,
        10.0,
        10.0,
        3,
    )


def test_nan_test_error_is_stored_as_missing(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=[], seed=0, axes=_axes())
    store.record_trial("t", "s", "p", lr=0.1, status="running")
    store.record_epoch("t", 1, train_loss=math.nan, test_error=math.nan, test_accuracy=None, seconds=1.0)
    trial = store.list_trials("s")[0]
    assert trial["epochs_done"] == 1
    assert trial["final_test_error"] is None and trial["best_epoch"] is None


def test_trial_times_and_ray_id_survive_status_updates(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=[], seed=0, axes=_axes())
    store.record_trial("t", "s", "p", lr=0.1, status="running", ray_trial_id="ray-1")
    running = store.list_trials("s")[0]
    assert running["ended_at"] is None and running["started_at"].tzinfo is not None
    store.record_trial("t", "s", "p", lr=0.1, status="failed", error="out of memory")
    failed = store.list_trials("s")[0]
    assert failed["ray_trial_id"] == "ray-1"
    assert failed["error"] == "out of memory"
    assert failed["started_at"] == running["started_at"]
    assert failed["ended_at"] >= failed["started_at"]
    store.record_trial("t", "s", "p", lr=0.1, status="failed", error="out of memory")
    assert store.list_trials("s")[0]["ended_at"] == failed["ended_at"]


def test_sweep_status_times(store):
    store.record_sweep("s", {"a": [1, 2]}, "h", "pending")
    assert store.get_sweep("s")["started_at"] is None
    store.set_sweep_status("s", "running")
    started = store.get_sweep("s")["started_at"]
    store.set_sweep_status("s", "interrupted")
    interrupted = store.get_sweep("s")
    assert interrupted["ended_at"] is not None and interrupted["started_at"] == started
    store.record_sweep("s", {"a": [1, 2]}, "h", "running")  # a resume
    resumed = store.get_sweep("s")
    assert (resumed["status"], resumed["started_at"], resumed["ended_at"]) == ("running", started, None)
    assert resumed["spec"] == {"a": [1, 2]} and resumed["experiment_path"] is None


def test_resume_keeps_point_status_unless_given(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=["x"], seed=0, axes=_axes(dtod=0.3))
    store.set_point_status("s", "p", "done")
    store.record_point("s", "p", mode="m", task="t", classes=["x"], seed=0, axes=_axes(dtod=0.3))
    assert store.list_points("s")[0]["status"] == "done"
    store.record_point("s", "p", mode="m", task="t", classes=["x"], seed=0, axes=_axes(dtod=0.3), status="pending")
    point = store.list_points("s")[0]
    assert (point["status"], point["dtod"], point["classes"]) == ("pending", 0.3, ["x"])


def test_same_name_with_another_spec_is_refused(store):
    store.record_sweep("s", {"a": 1}, "h1")
    with pytest.raises(results.SpecConflict, match="h1"):
        store.record_sweep("s", {"a": 2}, "h2")
    assert store.get_sweep("s")["spec"] == {"a": 1}


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (lambda s: s.record_point("nope", "p", mode="m", task="t", classes=[], seed=0, axes=_axes()), "unknown sweep"),
        (lambda s: s.record_trial("t", "s", "nope", lr=0.1, status="running"), "unknown point 'nope'"),
        (lambda s: s.record_trial("t", "nope", "p", lr=0.1, status="running"), "unknown sweep 'nope'"),
        (lambda s: s.record_epoch("nope", 1, train_loss=1, test_error=1, test_accuracy=1, seconds=1), "unknown trial"),
        (lambda s: s.set_sweep_status("nope", "running"), "unknown sweep"),
        (lambda s: s.set_sweep_status("s", "exploded"), "unknown sweep status"),
        (lambda s: s.record_trial("t", "s", "p", lr=0.1, status="done"), "unknown trial status"),
        (lambda s: s.record_point("s", "q", mode="m", task="t", classes=[], seed=0, axes={"dtod": 1}), "axes"),
        (
            lambda s: s.record_point("s", "q", mode="m", task="t", classes=[], seed=0, axes=_axes(dtod=math.inf)),
            "finite",
        ),
        (lambda s: s.best_trial("s", "nope"), "unknown point"),
    ],
)
def test_bad_writes_raise_input_errors_and_write_nothing(store, count_rows, write, message):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=[], seed=0, axes=_axes())
    before = count_rows(store)
    with pytest.raises(results.StoreInputError, match=message):
        write(store)
    assert count_rows(store) == before


def test_best_trial_is_lowest_final_error_of_completed_ties_to_smaller_lr(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=[], seed=0, axes=_axes())
    reports = [  # (trial, lr, status, epoch errors)
        ("a", 0.2, "completed", [30.0, 12.0]),
        ("b", 0.1, "completed", [25.0, 12.0]),  # ties with a on final error, smaller lr wins
        ("c", 0.3, "completed", [5.0, 14.0]),  # best epoch lower, but final error counts
        ("d", 0.4, "pruned", [1.0]),  # stopped early: not comparable
        ("e", 0.5, "failed", []),
        ("f", 0.6, "running", [2.0]),
    ]
    for tid, lr, status, errors in reports:
        store.record_trial(tid, "s", "p", lr=lr, status="running")
        for epoch, error in enumerate(errors, start=1):
            store.record_epoch(tid, epoch, train_loss=None, test_error=error, test_accuracy=None, seconds=None)
        store.record_trial(tid, "s", "p", lr=lr, status=status)

    best = store.best_trial("s", "p")
    assert best.chosen.trial_id == "b"
    assert [c.trial_id for c in best.candidates] == ["b", "a", "c", "d", "e", "f"]
    assert [(c.lr, c.status, c.final_test_error) for c in best.candidates[:3]] == [
        (0.1, "completed", 12.0),
        (0.2, "completed", 12.0),
        (0.3, "completed", 14.0),
    ]
    assert "lr=0.1" in best.why() and "pruned" in best.why()
    assert store.list_points("s")[0]["chosen_trial_id"] is None  # best_trial only reads

    assert store.choose_best("s", "p") == best
    point = store.list_points("s")[0]
    assert (point["chosen_trial_id"], point["status"]) == ("b", "done")


def test_point_without_completed_trial_has_no_best_and_fails(store):
    store.record_sweep("s", {}, "h")
    store.record_point("s", "p", mode="m", task="t", classes=[], seed=0, axes=_axes())
    store.record_trial("t", "s", "p", lr=0.1, status="pruned")
    best = store.choose_best("s", "p")
    assert best.chosen is None and "no completed trial" in best.why()
    assert store.list_points("s")[0]["status"] == "failed"


def test_progress_counts_points_and_trials(filled_store, sample):
    filled_store.record_sweep("other", {}, "h")
    progress = {row["sweep"]: row for row in filled_store.sweep_progress()}
    noise = progress["noise"]
    points = len(sample.modes) * len(sample.noises)
    assert (noise["status"], noise["points_done"], noise["points_total"], noise["points_failed"]) == (
        "finished",
        points,
        points,
        0,
    )
    assert (noise["trials_completed"], noise["trials_pruned"], noise["trials_failed"], noise["trials_running"]) == (
        2 * points,
        len(sample.noises),
        len(sample.noises),
        0,
    )
    assert noise["ended_at"] >= noise["started_at"]
    assert progress["other"]["points_total"] == 0 and progress["other"]["status"] == "pending"
