"""The sweep driver end to end on a local Ray instance: points, trials and epochs land in the store once."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analog_sweep.orchestrator import ClusterError, SweepStateError, resume_sweep, run_sweep
from analog_sweep.results import Selection, StoreInputError, backup_store, open_store, restore_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP


def row_counts(store):
    with store.engine.connect() as connection:
        return {
            table: connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            for table in ("sweeps", "points", "trials", "epochs")
        }


@pytest.fixture
def store(tmp_path):
    with open_store(f"sqlite:///{tmp_path}/results.db") as opened:
        yield opened


def test_quickstart_runs_every_point_and_records_each_row_once(tmp_path, store, local_ray):
    spec = load_spec(shipped_specs()["quickstart"], NANO_SWEEP)
    lines = []
    outcome = run_sweep(spec, store, storage_root=tmp_path / "storage", echo=lines.append)
    points = expand(spec)
    assert outcome.status == "finished" and outcome.points_done == len(points)
    trials = len(points) * spec.lr_search.trials_per_point
    assert row_counts(store) == {"sweeps": 1, "points": len(points), "trials": trials, "epochs": trials * spec.epochs}
    best = store.best_points(spec.name)
    assert all(row["status"] == "done" and row["trial_id"] for row in best)
    assert all(row["lr"] in spec.lr_search.values for row in best)
    # Chosen on the validation split (the quickstart's rule), every epoch measured on it, each point labelled.
    assert store.selection(spec.name) == Selection("validation", per_seed=False)
    assert {row["selected_on"] for row in best} == {"validation"}
    assert {row["label"] for row in best} == {point.label for point in points}
    with store.engine.connect() as connection:
        assert connection.scalar(sa.text("SELECT count(*) FROM epochs WHERE validation_error IS NULL")) == 0
    for row in best:
        epochs = {r["epoch"]: r for r in store.epoch_curves(spec.name, row["point_key"])}
        assert row["validation_error"] == min(r["validation_error"] for r in epochs.values())
        assert row["test_error"] == epochs[row["epoch"]]["test_error"]
    assert store.get_sweep(spec.name)["status"] == "finished"
    assert any("pretraining" in line for line in lines) and any("points 6/6 done" in line for line in lines)
    # Running the finished sweep again does nothing new and says so.
    again = run_sweep(spec, store, storage_root=tmp_path / "storage", echo=lines.append)
    assert again.status == "finished" and "nothing new" in again.message
    assert row_counts(store)["epochs"] == trials * spec.epochs
    # Resume of a finished sweep: nothing to do either.
    assert "nothing to resume" in resume_sweep(spec.name, store, echo=lines.append).message
    # The same name with another spec is refused, and nothing is written.
    other = load_spec(shipped_specs()["quickstart"], [*NANO_SWEEP, "epochs=1"])
    with pytest.raises(SweepStateError, match="different sweep named 'quickstart'"):
        run_sweep(other, store, storage_root=tmp_path / "storage", echo=lines.append)
    assert row_counts(store)["epochs"] == trials * spec.epochs


def test_gpu_request_on_a_cluster_without_gpus_fails_at_once_unless_cpu_fallback(tmp_path, store, local_ray):
    spec = load_spec(
        shipped_specs()["quickstart"], [*NANO_SWEEP, "resources.gpu=0.5", "modes=[digital_scratch]", "epochs=1"]
    )
    with pytest.raises(ClusterError, match=r"asks for 0.5 GPU per trial but the cluster has 2 CPU, 0 GPU"):
        run_sweep(spec, store, storage_root=tmp_path / "storage", echo=print)
    assert row_counts(store) == {"sweeps": 0, "points": 0, "trials": 0, "epochs": 0}
    outcome = run_sweep(spec, store, storage_root=tmp_path / "storage", cpu_fallback=True, echo=print)
    assert outcome.status == "finished"


def test_the_retrying_store_waits_out_an_unavailable_store_and_passes_other_errors_at_once(store, monkeypatch):
    import time

    from analog_sweep.orchestrator import RetryingStore, StoreGaveUp
    from analog_sweep.orchestrator._retrying_store import RetryPolicy
    from analog_sweep.results import NotFound, StoreUnavailable

    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    calls = []
    real = store.set_sweep_status

    def away_twice(name, status):
        calls.append(status)
        if len(calls) <= 2:
            raise StoreUnavailable("database is locked")
        return real(name, status)

    store.record_sweep("s", {"name": "s"}, "hash", "running", "/nowhere")
    monkeypatch.setattr(store, "set_sweep_status", away_twice)
    notices = []
    retrying = RetryingStore(store, policy=RetryPolicy(5, 0.25), notice=notices.append)
    retrying.set_sweep_status("s", "interrupted")
    assert calls == ["interrupted"] * 3 and len(notices) == 2 and "retry 1 of 5 in 0.25 s" in notices[0]
    assert retrying.get_sweep("s")["status"] == "interrupted"
    with pytest.raises(NotFound):  # not a store that is away: asking again would not change the answer
        retrying.get_sweep("missing")
    assert len(notices) == 2
    calls.clear()
    with pytest.raises(StoreGaveUp, match="results store unavailable after 2 tries: database is locked"):
        RetryingStore(store, policy=RetryPolicy(1, 0.25), notice=None).set_sweep_status("s", "failed")
    assert RetryingStore(retrying).wrapped is store  # never retried twice over


def test_a_running_sweep_holds_its_store_against_a_restore(tmp_path, store, local_ray):
    """While the driver runs a sweep, a restore of its SQLite store is refused (the driver holds the store's drivers
    lock, which does not depend on reading the store); once the sweep is over, the restore goes ahead."""
    spec = load_spec(shipped_specs()["quickstart"], [*NANO_SWEEP, "modes=[digital_tl]", "axes=null", "epochs=1"])
    url = store.url  # the echo is pickled with the sweep's callbacks: it holds the URL, not the store
    backup_store(url)
    answers = []

    def echo(line: str) -> None:
        if not answers and "points" in line:
            try:
                restore_store(url)
                answers.append("restored")
            except StoreInputError as refused:
                answers.append(str(refused))

    assert run_sweep(spec, store, storage_root=tmp_path / "storage", echo=echo).status == "finished"
    assert answers and answers[0].startswith(f"a sweep's driver is writing store {tmp_path / 'results.db'}")
    assert restore_store(url).not_in_backup == (spec.name,)
