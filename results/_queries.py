"""Read queries behind the ``results`` commands: progress, best trial per point, axis curves, epoch curves.

All of them pick a point's best trial with the one rule in ``_best``, so a table, a curve and an export never
disagree about which learning rate won.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from typing import Any

import sqlalchemy as sa

from results import _best
from results._errors import StoreInputError
from results._schema import (
    ACTIVITY_FIELDS,
    AXES,
    TRIAL_ACTIVITY_FIELDS,
    TRIAL_STATUSES,
    epochs,
    points,
    sweeps,
    trials,
    utc_row,
)

POINT_COLUMNS = ("sweep", "point_key", "mode", "task", "classes", "seed", *AXES)


def sweep_progress(connection: sa.Connection) -> list[dict[str, Any]]:
    point_counts = _counts(connection, points, ("done", "failed"))
    trial_counts = _counts(connection, trials, TRIAL_STATUSES)
    rows = []
    query = sa.select(
        sweeps.c.name, sweeps.c.status, sweeps.c.started_at, sweeps.c.ended_at, sweeps.c.experiment_path
    ).order_by(
        sweeps.c.created_at, sweeps.c.name
    )
    for sweep in connection.execute(query).mappings():
        name = sweep["name"]
        row = {"sweep": name, "status": sweep["status"]}
        row["points_done"] = point_counts[name]["done"]
        row["points_failed"] = point_counts[name]["failed"]
        row["points_total"] = point_counts[name]["total"]
        row.update({f"trials_{status}": trial_counts[name][status] for status in TRIAL_STATUSES})
        row.update(utc_row({"started_at": sweep["started_at"], "ended_at": sweep["ended_at"]}))
        row["experiment_path"] = sweep["experiment_path"]
        rows.append(row)
    return rows


def _counts(connection: sa.Connection, table: sa.Table, statuses: tuple[str, ...]) -> dict[str, dict[str, int]]:
    """Rows per sweep and status (the listed statuses, plus ``total``), zero when absent."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: dict.fromkeys((*statuses, "total"), 0))
    query = sa.select(table.c.sweep, table.c.status, sa.func.count()).group_by(table.c.sweep, table.c.status)
    for sweep, status, count in connection.execute(query):
        if status in statuses:
            counts[sweep][status] = count
        counts[sweep]["total"] += count
    return counts


def candidates(connection: sa.Connection, sweep: str, point_key: str) -> list[_best.Candidate]:
    query = sa.select(
        trials.c.trial_id, trials.c.lr, trials.c.status, trials.c.final_test_error, trials.c.epochs_done
    ).where(trials.c.sweep == sweep, trials.c.point_key == point_key)
    return [_best.Candidate(**row) for row in connection.execute(query).mappings()]


def best_points(connection: sa.Connection, sweep: str) -> list[dict[str, Any]]:
    """Every point with its status, trial count and best trial (id, lr, final/best test error, epochs done)."""
    by_point: dict[str, list[_best.Candidate]] = defaultdict(list)
    trial_rows = connection.execute(sa.select(trials).where(trials.c.sweep == sweep)).mappings()
    trial_by_id = {}
    for trial in trial_rows:
        trial_by_id[trial["trial_id"]] = trial
        by_point[trial["point_key"]].append(
            _best.Candidate(
                trial_id=trial["trial_id"], lr=trial["lr"], status=trial["status"],
                final_test_error=trial["final_test_error"], epochs_done=trial["epochs_done"],
            )
        )
    rows = []
    point_rows = connection.execute(
        sa.select(*(points.c[c] for c in POINT_COLUMNS), points.c.status)
        .where(points.c.sweep == sweep)
        .order_by(points.c.point_key)
    )
    for point in point_rows.mappings():
        best = _best.pick(sweep, point["point_key"], by_point[point["point_key"]])
        chosen = trial_by_id[best.chosen.trial_id] if best.chosen else {}
        rows.append(
            {
                **point,
                "trials": len(best.candidates),
                "trial_id": chosen.get("trial_id"),
                "lr": chosen.get("lr"),
                "final_test_error": chosen.get("final_test_error"),
                "best_test_error": chosen.get("best_test_error"),
                "epochs_done": chosen.get("epochs_done"),
                **{name: chosen.get(name) for name in TRIAL_ACTIVITY_FIELDS},
            }
        )
    return rows


def axis_curve(best_rows: list[dict[str, Any]], axis: str) -> list[dict[str, Any]]:
    """Best final test error against ``axis``, one curve per mode, task and setting of any other varying axis.

    Points that share all of those (different seeds) are averaged; min and max show the spread.
    Points without a completed trial have no error to plot and are left out.
    """
    if axis not in AXES:
        raise StoreInputError(f"unknown axis {axis!r}: expected one of {', '.join(AXES)}")
    varying = [a for a in AXES if a != axis and len({r[a] for r in best_rows}) > 1]
    key_columns = ("mode", "task", *varying, axis)
    groups: dict[tuple, list[float]] = defaultdict(list)
    for row in best_rows:
        if row["final_test_error"] is not None:
            groups[tuple(row[c] for c in key_columns)].append(row["final_test_error"])
    return [
        {
            **dict(zip(key_columns, key)),
            "test_error": statistics.fmean(errors),
            "test_error_min": min(errors),
            "test_error_max": max(errors),
            "points": len(errors),
        }
        for key, errors in sorted(groups.items())
    ]


def epoch_curves(connection: sa.Connection, sweep: str, point_key: str | None) -> list[dict[str, Any]]:
    """Each epoch of each point's best trial, with the point's columns."""
    chosen = {
        row["trial_id"]: row
        for row in best_points(connection, sweep)
        if row["trial_id"] is not None and (point_key is None or row["point_key"] == point_key)
    }
    if not chosen:
        return []
    query = (
        sa.select(epochs)
        .where(epochs.c.trial_id.in_(list(chosen)))
        .order_by(epochs.c.trial_id, epochs.c.epoch)
    )
    rows = []
    for epoch in connection.execute(query).mappings():
        point = chosen[epoch["trial_id"]]
        rows.append(
            {
                **{c: point[c] for c in (*POINT_COLUMNS, "trial_id", "lr")},
                **{c: epoch[c] for c in ("epoch", "train_loss", "test_error", "test_accuracy", "seconds",
                                         *ACTIVITY_FIELDS)},
            }
        )
    rows.sort(key=lambda r: (r["point_key"], r["epoch"]))
    return rows


def trial_epoch_rows(connection: sa.Connection, sweep: str) -> list[dict[str, Any]]:
    """One row per trial and epoch (a trial without epochs gives one row with empty epoch columns)."""
    chosen_ids = {row["trial_id"] for row in best_points(connection, sweep) if row["trial_id"] is not None}
    query = (
        sa.select(
            *(points.c[c] for c in POINT_COLUMNS),
            points.c.status.label("point_status"),
            trials.c.trial_id,
            trials.c.lr,
            trials.c.status.label("trial_status"),
            trials.c.ray_trial_id,
            trials.c.started_at,
            trials.c.ended_at,
            trials.c.epochs_done,
            trials.c.final_test_error,
            trials.c.best_test_error,
            trials.c.best_epoch,
            trials.c.error,
            epochs.c.epoch,
            epochs.c.train_loss,
            epochs.c.test_error,
            epochs.c.test_accuracy,
            epochs.c.seconds,
            *(epochs.c[name] for name in ACTIVITY_FIELDS),
        )
        .select_from(
            points.join(trials, sa.and_(trials.c.sweep == points.c.sweep, trials.c.point_key == points.c.point_key))
            .outerjoin(epochs, epochs.c.trial_id == trials.c.trial_id)
        )
        .where(points.c.sweep == sweep)
        .order_by(points.c.point_key, trials.c.lr, trials.c.trial_id, epochs.c.epoch)
    )
    return [
        {**utc_row(row), "chosen": row["trial_id"] in chosen_ids} for row in connection.execute(query).mappings()
    ]

