"""Parquet exports with fixed, plain Arrow types, so pandas, pyarrow and DuckDB read them as they are.

Every row that shows a chosen trial says what it was chosen on (``selected_on``: validation, or test by the paper's
rule); ``test_error`` of a points export is the number to report: the chosen trial's test error at the chosen
``epoch``. Every row carries the sweep's ``profile`` (``smoke`` for a smoke run, whose numbers are not results; null
for a full run), a points row how many seeds of its device point have a result (``replicates``) and whether that is
fewer than ``MIN_REPLICATES`` (``few_seeds``: their sd and interval are unreliable), an elbows row whether the test
for an elbow ran (``tested``). The schema is written out rather than inferred, so an empty sweep or an all-null column
still gets the right types, and the file is written next to its target and renamed, so a crash never leaves half a
file.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._replicates import MIN_REPLICATES
from analog_sweep.results._schema import ACTIVITY_FIELDS, AXES, TRIAL_ACTIVITY_FIELDS

_TIME = pa.timestamp("us", tz="UTC")


def _activity_fields(names: tuple[str, ...]) -> list[pa.Field]:
    return [pa.field(n, pa.int64() if n.endswith("_transfers") else pa.float64()) for n in names]


_POINT_FIELDS = [
    pa.field("sweep", pa.string()),
    pa.field("point_key", pa.string()),
    pa.field("mode", pa.string()),
    pa.field("algorithm", pa.string()),
    pa.field("task", pa.string()),
    pa.field("classes", pa.list_(pa.string())),
    pa.field("seed", pa.int64()),
    *(pa.field(axis, pa.float64()) for axis in AXES),
    pa.field("label", pa.string()),
    pa.field("profile", pa.string()),
]

TRIALS_SCHEMA = pa.schema(
    [
        *_POINT_FIELDS,
        pa.field("point_status", pa.string()),
        pa.field("trial_id", pa.string()),
        pa.field("lr", pa.float64()),
        pa.field("trial_status", pa.string()),
        pa.field("chosen", pa.bool_()),
        pa.field("selected_on", pa.string()),
        pa.field("chosen_epoch", pa.int64()),
        pa.field("ray_trial_id", pa.string()),
        pa.field("started_at", _TIME),
        pa.field("ended_at", _TIME),
        pa.field("epochs_done", pa.int64()),
        pa.field("final_test_error", pa.float64()),
        pa.field("best_test_error", pa.float64()),
        pa.field("best_epoch", pa.int64()),
        pa.field("best_validation_error", pa.float64()),
        pa.field("best_validation_epoch", pa.int64()),
        pa.field("error", pa.string()),
        pa.field("epoch", pa.int64()),
        pa.field("train_loss", pa.float64()),
        pa.field("validation_error", pa.float64()),
        pa.field("test_error", pa.float64()),
        pa.field("test_accuracy", pa.float64()),
        pa.field("seconds", pa.float64()),
        *_activity_fields(ACTIVITY_FIELDS),
    ]
)

POINTS_SCHEMA = pa.schema(
    [
        *_POINT_FIELDS,
        pa.field("status", pa.string()),
        pa.field("trials", pa.int64()),
        pa.field("selected_on", pa.string()),
        pa.field("trial_id", pa.string()),
        pa.field("lr", pa.float64()),
        pa.field("epoch", pa.int64()),
        pa.field("test_error", pa.float64()),
        pa.field("validation_error", pa.float64()),
        pa.field("final_test_error", pa.float64()),
        pa.field("best_test_error", pa.float64()),
        pa.field("epochs_done", pa.int64()),
        pa.field("replicates", pa.int64()),
        pa.field("few_seeds", pa.bool_()),
        *_activity_fields(TRIAL_ACTIVITY_FIELDS),
    ]
)

ELBOWS_SCHEMA = pa.schema(
    [
        pa.field("sweep", pa.string()),
        pa.field("mode", pa.string()),
        pa.field("algorithm", pa.string()),
        pa.field("task", pa.string()),
        pa.field("axis", pa.string()),
        pa.field("n_values", pa.int64()),
        pa.field("n_obs", pa.int64()),
        pa.field("tested", pa.bool_()),
        pa.field("has_elbow", pa.bool_()),
        pa.field("breakpoint", pa.float64()),
        pa.field("ci_low", pa.float64()),
        pa.field("ci_high", pa.float64()),
        pa.field("p_value", pa.float64()),
        pa.field("flat_level", pa.float64()),
        pa.field("slope_after", pa.float64()),
        pa.field("log_x", pa.bool_()),
        pa.field("method", pa.string()),
        pa.field("reason", pa.string()),
        pa.field("profile", pa.string()),
    ]
)


def write_trials(rows: Iterable[dict[str, Any]], path: Path, *, profile: str | None = None) -> int:
    """Write the rows in batches of ``_BATCH``, so memory stays bounded whatever the table's size; ``profile`` (the
    sweep's, ``_profile.run_profile``) on every row."""
    return _write(({**row, "profile": profile} for row in rows), TRIALS_SCHEMA, path)


def write_points(rows: list[dict[str, Any]], path: Path, *, profile: str | None = None) -> int:
    """Write ``Store.best_points`` rows (one per point and seed) with ``profile`` and, per row, how many seeds of its
    device point (mode, algorithm, task, device axes) have a result (``replicates``) and ``few_seeds``."""
    counts: dict[tuple, int] = {}
    for row in rows:
        if row.get("test_error") is not None:
            counts[_device_key(row)] = counts.get(_device_key(row), 0) + 1
    out = []
    for row in rows:
        replicates = counts.get(_device_key(row), 0)
        out.append({**row, "profile": profile, "replicates": replicates, "few_seeds": replicates < MIN_REPLICATES})
    return _write(out, POINTS_SCHEMA, path)


def write_elbows(rows: list[dict[str, Any]], path: Path, *, profile: str | None = None) -> int:
    """Write ``Store.elbows`` rows with ``profile``."""
    return _write([{**row, "profile": profile} for row in rows], ELBOWS_SCHEMA, path)


def _device_key(row: dict[str, Any]) -> tuple:
    return (row.get("mode"), row.get("algorithm"), row.get("task"), *(row.get(a) for a in AXES))


# Rows a Parquet row group is written from: a study's epoch rows stream through in batches this size.
_BATCH = 10_000


def _write(rows: Iterable[dict[str, Any]], schema: pa.Schema, path: Path) -> int:
    if not path.parent.is_dir():
        raise StoreInputError(f"cannot write {path}: no folder {path.parent}")
    partial = path.with_name(f".{path.name}.partial")
    count = 0
    try:
        with pq.ParquetWriter(partial, schema) as writer:
            rows = iter(rows)
            while batch := list(itertools.islice(rows, _BATCH)):
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count += len(batch)
            if count == 0:
                writer.write_table(schema.empty_table())
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count
