"""Parquet exports read back with pyarrow (and pandas) and checked against the database."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from analog_sweep import results

AXES = list(results.AXES)


def _query(store: results.Store, sql: str) -> list[tuple]:
    with store.engine.connect() as connection:
        return [tuple(r) for r in connection.execute(sa.text(sql))]


def _sorted(rows) -> list[tuple]:
    """By trial and epoch; a trial without epochs has epoch None."""
    return sorted(rows, key=lambda r: (r[0], r[1] if r[1] is not None else -1))


def test_trials_export_has_one_row_per_trial_and_epoch_with_point_columns(filled_store, sample, tmp_path):
    path = tmp_path / "noise.parquet"
    written = filled_store.export_trials("noise", path)
    table = pq.read_table(path)

    assert table.num_rows == written
    # Every epoch once, and each trial without epochs (failed early) once with empty epoch columns.
    database_rows = _query(
        filled_store,
        "SELECT t.trial_id, e.epoch, e.test_error, e.train_loss FROM trials t "
        "LEFT JOIN epochs e ON e.trial_id = t.trial_id WHERE t.sweep = 'noise'",
    )
    exported = table.select(["trial_id", "epoch", "test_error", "train_loss"]).to_pylist()
    assert _sorted(tuple(r.values()) for r in exported) == _sorted(database_rows)
    assert len(database_rows) == sum(1 for r in exported if r["epoch"] is not None) + len(sample.noises)

    # Every point column, with the point's values, on every row.
    points = {
        r[0]: r[1:] for r in _query(filled_store, f"SELECT point_key, mode, task, seed, {', '.join(AXES)} FROM points")
    }
    for row in table.select(["point_key", "mode", "task", "seed", *AXES, "classes", "sweep"]).to_pylist():
        assert (row["mode"], row["task"], row["seed"], *(row[a] for a in AXES)) == points[row["point_key"]]
        assert row["classes"] == ["beaver", "otter"] and row["sweep"] == "noise"

    # The chosen flag marks exactly the trials choose_best wrote onto the points.
    chosen = {r[0] for r in _query(filled_store, "SELECT chosen_trial_id FROM points")}
    flagged = {r["trial_id"] for r in table.select(["trial_id", "chosen"]).to_pylist() if r["chosen"]}
    assert flagged == chosen == {sample.trial_id(m, n, 0.05) for m in sample.modes for n in sample.noises}

    assert table.schema.field("classes").type == pa.list_(pa.string())
    assert table.schema.field("epoch").type == pa.int64()
    assert table.schema.field("started_at").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("transfer_noise").type == pa.float64()
    # The analog activity of every epoch, as the store has it (NULL for the digital trials).
    activity = _query(
        filled_store,
        "SELECT e.trial_id, e.epoch, e.head_moved, e.blocks_rel, e.blocks_transfers FROM epochs e",
    )
    exported = table.select(["trial_id", "epoch", "head_moved", "blocks_rel", "blocks_transfers"]).to_pylist()
    assert _sorted(tuple(r.values()) for r in exported if r["epoch"] is not None) == _sorted(activity)
    assert any(r["head_moved"] for r in exported) and any(r["head_moved"] is None for r in exported)
    assert table.schema.field("blocks_transfers").type == pa.int64()
    frame = pytest.importorskip("pandas").read_parquet(path)
    assert list(frame.columns) == table.column_names and len(frame) == written


def test_points_export_has_one_row_per_point_with_its_best_trial(filled_store, sample, tmp_path):
    path = tmp_path / "points.parquet"
    assert filled_store.export_points("noise", path) == len(sample.modes) * len(sample.noises)
    rows = {r["point_key"]: r for r in pq.read_table(path).to_pylist()}
    for mode in sample.modes:
        for noise in sample.noises:
            row = rows[sample.point_key(mode, noise)]
            assert (row["lr"], row["trials"], row["status"], row["transfer_noise"]) == (0.05, 3, "done", noise)
            assert row["final_test_error"] == pytest.approx(sample.final_error(mode, noise, 0.05))


def test_empty_sweep_exports_typed_empty_tables(store, tmp_path):
    store.record_sweep("empty", {}, "h")
    assert store.export_trials("empty", tmp_path / "t.parquet") == 0
    assert store.export_points("empty", tmp_path / "p.parquet") == 0
    schema = pq.read_schema(tmp_path / "t.parquet")
    assert schema.field("lr").type == pa.float64() and schema.field("classes").type == pa.list_(pa.string())


def test_export_errors(store, tmp_path):
    with pytest.raises(results.NotFound, match="unknown sweep 'nope'"):
        store.export_trials("nope", tmp_path / "t.parquet")
    store.record_sweep("s", {}, "h")
    with pytest.raises(results.StoreInputError, match="no folder"):
        store.export_points("s", tmp_path / "missing" / "p.parquet")
    assert not (tmp_path / "missing").exists()
