"""Read queries behind the ``results`` commands: progress, best trial per point, axis curves, epoch curves.

All of them pick a point's trial with the one rule in ``_best`` (the sweep's selection, or one given), so a table, a
curve and an export never disagree about which learning rate and epoch won; all list points in one order
(``_labels.point_sort_key``: mode, algorithm, task, device axes, seed).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import sqlalchemy as sa

from analog_sweep.results import _best, _replicates
from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._labels import point_label, point_sort_key, varied_axes
from analog_sweep.results._profile import run_profile
from analog_sweep.results._schema import (
    ACTIVITY_FIELDS,
    ALGORITHM_ORDER,
    AXES,
    TRIAL_ACTIVITY_FIELDS,
    TRIAL_STATUSES,
    epochs,
    points,
    sweeps,
    trials,
    utc_row,
)

POINT_COLUMNS = ("sweep", "point_key", "mode", "algorithm", "task", "classes", "seed", *AXES)


def sweep_progress(connection: sa.Connection) -> list[dict[str, Any]]:
    point_counts = _counts(connection, points, ("done", "failed"))
    trial_counts = _counts(connection, trials, TRIAL_STATUSES)
    rows = []
    query = sa.select(
        sweeps.c.name, sweeps.c.status, sweeps.c.started_at, sweeps.c.ended_at, sweeps.c.experiment_path, sweeps.c.spec
    ).order_by(sweeps.c.created_at, sweeps.c.name)
    for sweep in connection.execute(query).mappings():
        name = sweep["name"]
        row = {"sweep": name, "status": sweep["status"]}
        row["points_done"] = point_counts[name]["done"]
        row["points_failed"] = point_counts[name]["failed"]
        row["points_total"] = point_counts[name]["total"]
        row.update({f"trials_{status}": trial_counts[name][status] for status in TRIAL_STATUSES})
        row.update(utc_row({"started_at": sweep["started_at"], "ended_at": sweep["ended_at"]}))
        row["experiment_path"] = sweep["experiment_path"]
        row["profile"] = run_profile(sweep["spec"])
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


def sweep_selection(connection: sa.Connection, sweep: str) -> _best.Selection:
    """The selection rule the sweep was recorded with."""
    row = connection.execute(
        sa.select(sweeps.c.selected_on, sweeps.c.selection_per_seed).where(sweeps.c.name == sweep)
    ).first()
    if row is None:
        return _best.PAPER_RULE
    return _best.Selection(split=row.selected_on, per_seed=bool(row.selection_per_seed))


def _group_key(point: Mapping[str, Any]) -> tuple:
    """Points with the same key differ only by seed: replicates of one device point."""
    return (point["mode"], point["algorithm"], point["task"], *(point[a] for a in AXES))


# Above this many points, a query for some of a sweep's trials reads the whole sweep's and keeps those in Python,
# rather than binding every key (SQLite allows 32,766 bound values a statement).
_MANY_KEYS = 500


def _chunks(values: list[str], size: int = _MANY_KEYS) -> Iterator[list[str]]:
    """``values`` in lists of at most ``size``: keys to bind in one statement."""
    for start in range(0, len(values), size):
        yield values[start : start + size]


def _of_points(column: sa.Column, keys: list[str] | None) -> sa.ColumnElement[bool]:
    return sa.true() if keys is None or len(keys) > _MANY_KEYS else column.in_(keys)


def _histories(connection: sa.Connection, sweep: str, keys: list[str] | None) -> dict[str, list[tuple[int, Any, Any]]]:
    """(epoch, validation error, test error) per epoch of each trial of the points ``keys`` (all when None)."""
    histories: dict[str, list[tuple[int, Any, Any]]] = defaultdict(list)
    if keys == []:
        return histories
    query = (
        sa.select(epochs.c.trial_id, epochs.c.epoch, epochs.c.validation_error, epochs.c.test_error)
        .join(trials, trials.c.trial_id == epochs.c.trial_id)
        .where(trials.c.sweep == sweep, _of_points(trials.c.point_key, keys))
        .order_by(epochs.c.trial_id, epochs.c.epoch)
    )
    for trial_id, epoch, validation, test in connection.execute(query):
        histories[trial_id].append((epoch, validation, test))
    return histories


def _point_rows(connection: sa.Connection, sweep: str, *where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    query = sa.select(*(points.c[c] for c in POINT_COLUMNS)).where(points.c.sweep == sweep, *where)
    return [dict(row) for row in connection.execute(query).mappings()]


def _seed_group_rows(connection: sa.Connection, sweep: str, point_keys: Iterable[str]) -> list[dict[str, Any]]:
    """The points of ``sweep`` that share a device point (mode, algorithm, task, axes) with one of ``point_keys``: the
    seeds whose choice is made together. Selected in SQL, so closing one point does not read every point of a study."""
    rows: dict[str, dict[str, Any]] = {}
    for point in _point_rows(connection, sweep, points.c.point_key.in_(list(point_keys))):
        if point["point_key"] in rows:
            continue
        same = [points.c.mode == point["mode"], points.c.task == point["task"]]
        same.append(
            points.c.algorithm.is_(None) if point["algorithm"] is None else points.c.algorithm == point["algorithm"]
        )
        same += [points.c[axis] == point[axis] for axis in AXES]
        rows.update((row["point_key"], row) for row in _point_rows(connection, sweep, *same))
    return list(rows.values())


def choices(
    connection: sa.Connection, sweep: str, selection: _best.Selection, point_keys: Iterable[str] | None = None
) -> tuple[dict[str, _best.BestTrial], list[Mapping[str, Any]]]:
    """The choice for the points of ``sweep`` (only those in ``point_keys``' seed groups, when given), and the
    rows of the trials considered."""
    if point_keys is None:
        return _choose(connection, sweep, selection, _point_rows(connection, sweep), every_point=True)
    return _choose(connection, sweep, selection, _seed_group_rows(connection, sweep, point_keys))


def _choose(
    connection: sa.Connection,
    sweep: str,
    selection: _best.Selection,
    point_rows: list[dict[str, Any]],
    every_point: bool = False,
) -> tuple[dict[str, _best.BestTrial], list[Mapping[str, Any]]]:
    """The choice for the points ``point_rows`` (whole seed groups), computed from their trials' epochs."""
    keys = None if every_point else [p["point_key"] for p in point_rows]
    wanted = None if keys is None else set(keys)
    trial_rows = []
    if keys != []:
        query = sa.select(trials).where(trials.c.sweep == sweep, _of_points(trials.c.point_key, keys))
        trial_rows = [t for t in connection.execute(query).mappings() if wanted is None or t["point_key"] in wanted]
    histories = _histories(connection, sweep, keys)
    by_point: dict[str, list[_best.Candidate]] = defaultdict(list)
    for trial in trial_rows:
        by_point[trial["point_key"]].append(
            _best.Candidate(
                trial_id=trial["trial_id"],
                lr=trial["lr"],
                status=trial["status"],
                final_test_error=trial["final_test_error"],
                epochs_done=trial["epochs_done"],
                history=tuple(histories.get(trial["trial_id"], ())),
            )
        )
    groups: dict[tuple, list[str]] = defaultdict(list)
    for point in point_rows:
        groups[_group_key(point)].append(point["point_key"])
    return _best.choose(sweep, by_point, groups.values(), selection), trial_rows


def candidates(connection: sa.Connection, sweep: str, point_key: str) -> list[_best.Candidate]:
    query = sa.select(
        trials.c.trial_id, trials.c.lr, trials.c.status, trials.c.final_test_error, trials.c.epochs_done
    ).where(trials.c.sweep == sweep, trials.c.point_key == point_key)
    rows = list(connection.execute(query).mappings())
    histories = _histories(connection, sweep, [point_key])
    return [_best.Candidate(**row, history=tuple(histories.get(row["trial_id"], ()))) for row in rows]


# What ``best_points`` shows of the chosen trial.
_CHOSEN_TRIAL_COLUMNS = ("trial_id", "lr", "final_test_error", "best_test_error", "epochs_done", *TRIAL_ACTIVITY_FIELDS)


def best_points(
    connection: sa.Connection, sweep: str, selection: _best.Selection | None = None, *, stored_choices: bool = True
) -> list[dict[str, Any]]:
    """Every point with its label, status, trial count and chosen trial under ``selection`` (the sweep's own rule
    when None): ``selected_on``, the trial's id and lr, the chosen ``epoch``, the ``test_error`` and
    ``validation_error`` there (percent; the number to report), and the trial's final and best test error, epochs
    done and last activity. Sorted by mode, algorithm, task, device axes and seed.

    Under the sweep's own rule, a device point whose seeds are all closed (done or failed) reads the choice the
    driver stored on its points when they closed (``Store.choose_best``, the same rule on the same trials), so a
    study of millions of epoch rows is answered without reading them; every other point, and every point under
    another rule, is chosen from its trials' epochs here. ``stored_choices`` False chooses every point here.
    """
    own = sweep_selection(connection, sweep)
    selection = selection or own
    stored_columns = ("chosen_trial_id", "chosen_epoch", "chosen_test_error", "chosen_validation_error")
    point_rows = [
        dict(row)
        for row in connection.execute(
            sa.select(
                *(points.c[c] for c in POINT_COLUMNS),
                points.c.label,
                points.c.status,
                points.c.selected_on.label("stored_selected_on"),
                *(points.c[c] for c in stored_columns),
            ).where(points.c.sweep == sweep)
        ).mappings()
    ]
    groups: dict[tuple, list[dict[str, Any]]] = defaultdict(list)
    for point in point_rows:
        groups[_group_key(point)].append(point)
    stored = set()
    if stored_choices and selection == own:
        for members in groups.values():
            if all(p["status"] in ("done", "failed") and p["stored_selected_on"] == selection.split for p in members):
                stored.update(p["point_key"] for p in members)
    live = [p for p in point_rows if p["point_key"] not in stored]
    chosen_by_point, trial_rows = (
        _choose(connection, sweep, selection, live, every_point=not stored) if live else ({}, [])
    )
    trial_by_id = {trial["trial_id"]: trial for trial in trial_rows}
    if stored:
        chosen_query = (
            sa.select(*(trials.c[c] for c in _CHOSEN_TRIAL_COLUMNS))
            .join(points, points.c.chosen_trial_id == trials.c.trial_id)
            .where(points.c.sweep == sweep, trials.c.sweep == sweep)
        )
        trial_by_id.update((row["trial_id"], row) for row in connection.execute(chosen_query).mappings())
    counts = dict(
        connection.execute(
            sa.select(trials.c.point_key, sa.func.count()).where(trials.c.sweep == sweep).group_by(trials.c.point_key)
        ).all()
    )
    varied = varied_axes(point_rows)
    rows = []
    for point in sorted(point_rows, key=point_sort_key):
        key = point["point_key"]
        if key in stored:
            trial_id = point["chosen_trial_id"]
            chosen = trial_by_id.get(trial_id, {}) if trial_id else {}
            choice = {
                "epoch": point["chosen_epoch"],
                "test_error": point["chosen_test_error"],
                "validation_error": point["chosen_validation_error"],
            }
        else:
            best = chosen_by_point[key]
            chosen = trial_by_id[best.chosen.trial_id] if best.chosen else {}
            choice = {"epoch": best.epoch, "test_error": best.test_error, "validation_error": best.validation_error}
        rows.append(
            {
                **{c: point[c] for c in POINT_COLUMNS},
                "label": point_label(point, varied),
                "status": point["status"],
                "trials": counts.get(key, 0),
                "selected_on": selection.split,
                "trial_id": chosen.get("trial_id"),
                "lr": chosen.get("lr"),
                **choice,
                "final_test_error": chosen.get("final_test_error"),
                "best_test_error": chosen.get("best_test_error"),
                "epochs_done": chosen.get("epochs_done"),
                **{name: chosen.get(name) for name in TRIAL_ACTIVITY_FIELDS},
            }
        )
    return rows


def axis_curve(best_rows: list[dict[str, Any]], axis: str, sweep: str = "the sweep") -> list[dict[str, Any]]:
    """The chosen trials' test error (``test_error`` of ``best_points``) against ``axis``, one curve per mode,
    algorithm (None for a digital mode), task and setting of any other varying axis; each row says what the trials
    were ``selected_on``.

    Points that share all of those (different seeds) are replicates: their mean, standard deviation and the
    half-width of the mean's 95 % t interval (None for one seed; ``results._replicates.Summary``), min and max.
    Points without a chosen trial have no error to plot and are left out. An axis the sweep did not vary (one
    value at every point) raises ``StoreInputError``.
    """
    if axis not in AXES:
        raise StoreInputError(f"unknown axis {axis!r}: expected one of {', '.join(AXES)}")
    varied = varied_axes(best_rows) if best_rows else []
    if axis not in varied:
        raise StoreInputError(
            f"{sweep} did not vary {axis}: "
            + (f"it varied {', '.join(varied)}" if varied else "it varied no device axis")
        )
    varying = [a for a in varied if a != axis]
    key_columns = ("mode", "algorithm", "task", *varying, axis)
    groups: dict[tuple, list[float]] = defaultdict(list)
    selected_on = {row["selected_on"] for row in best_rows}
    for row in best_rows:
        if row["test_error"] is not None:
            groups[tuple(row[c] for c in key_columns)].append(row["test_error"])
    rows = []
    for key, errors in sorted(groups.items(), key=lambda item: tuple("" if v is None else v for v in item[0])):
        summary = _replicates.Summary.of(errors)
        rows.append(
            {
                **dict(zip(key_columns, key)),
                "selected_on": ",".join(sorted(selected_on)),
                "test_error": summary.mean,
                "test_error_sd": summary.sd,
                "test_error_ci95": summary.ci95,
                "test_error_min": min(errors),
                "test_error_max": max(errors),
                "points": len(errors),
            }
        )
    return rows


def epoch_curves(
    connection: sa.Connection,
    sweep: str,
    point_keys: Iterable[str] | None,
    selection: _best.Selection | None = None,
) -> list[dict[str, Any]]:
    """Each epoch of each point's chosen trial (of the points ``point_keys``, or all), with the point's columns,
    ``selected_on`` and ``chosen_epoch``, the epoch the point's number is reported at. Sorted like the points."""
    wanted = None if point_keys is None else set(point_keys)
    best = best_points(connection, sweep, selection)
    order = {row["point_key"]: index for index, row in enumerate(best)}
    chosen = {
        row["trial_id"]: row
        for row in best
        if row["trial_id"] is not None and (wanted is None or row["point_key"] in wanted)
    }
    if not chosen:
        return []
    rows = []
    for ids in _chunks(list(chosen)):
        query = sa.select(epochs).where(epochs.c.trial_id.in_(ids))
        for epoch in connection.execute(query).mappings():
            point = chosen[epoch["trial_id"]]
            rows.append(
                {
                    **{c: point[c] for c in (*POINT_COLUMNS, "label", "selected_on", "trial_id", "lr")},
                    "chosen_epoch": point["epoch"],
                    **{
                        c: epoch[c]
                        for c in (
                            "epoch",
                            "train_loss",
                            "validation_error",
                            "test_error",
                            "test_accuracy",
                            "seconds",
                            *ACTIVITY_FIELDS,
                        )
                    },
                }
            )
    rows.sort(key=lambda r: (order[r["point_key"]], r["epoch"]))
    return rows


def trial_epoch_rows(
    connection: sa.Connection, sweep: str, selection: _best.Selection | None = None
) -> Iterator[dict[str, Any]]:
    """One row per trial and epoch (a trial without epochs gives one row with empty epoch columns), with the
    point's label, whether the trial is its point's ``chosen`` one, ``selected_on`` and the ``chosen_epoch``; in
    point order (``point_sort_key``), then learning rate, trial and epoch.

    The rows stream from the database in that order (server-side on PostgreSQL), a hundred points at a time, so a
    study's millions of epoch rows are never held at once; ``connection`` must stay open while they are read.
    """
    best = best_points(connection, sweep, selection)
    by_point = {row["point_key"]: row for row in best}
    chosen_ids = {row["trial_id"] for row in best if row["trial_id"] is not None}
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
            trials.c.best_validation_error,
            trials.c.best_validation_epoch,
            trials.c.error,
            epochs.c.epoch,
            epochs.c.train_loss,
            epochs.c.validation_error,
            epochs.c.test_error,
            epochs.c.test_accuracy,
            epochs.c.seconds,
            *(epochs.c[name] for name in ACTIVITY_FIELDS),
        )
        .select_from(
            points.join(
                trials, sa.and_(trials.c.sweep == points.c.sweep, trials.c.point_key == points.c.point_key)
            ).outerjoin(epochs, epochs.c.trial_id == trials.c.trial_id)
        )
        .where(points.c.sweep == sweep, points.c.point_key.in_(sa.bindparam("keys", expanding=True)))
        # point_sort_key's order (axes compared as numbers), then rate, trial and epoch.
        .order_by(
            *_bytewise(connection, points.c.mode),
            _algorithm_rank(),
            *_bytewise(connection, sa.func.coalesce(points.c.algorithm, ""), points.c.task),
            *(points.c[axis] for axis in AXES),
            points.c.seed,
            *_bytewise(connection, points.c.point_key),
            trials.c.lr,
            *_bytewise(connection, trials.c.trial_id),
            epochs.c.epoch,
        )
    )
    # A hundred points a statement, in point order: each statement joins a bounded part of the epochs whatever plan
    # the database picks (a PostgreSQL planner without statistics would scan every epoch row once per point).
    streaming = connection.execution_options(stream_results=True, yield_per=5000)
    for keys in _chunks([row["point_key"] for row in best], 100):
        for row in streaming.execute(query, {"keys": keys}).mappings():
            point = by_point[row["point_key"]]
            chosen = row["trial_id"] in chosen_ids
            yield {
                **utc_row(row),
                "label": point["label"],
                "chosen": chosen,
                "selected_on": point["selected_on"],
                "chosen_epoch": point["epoch"] if chosen else None,
            }


def _algorithm_rank() -> sa.ColumnElement[int]:
    """``_labels.algorithm_rank`` in SQL: no algorithm first, then ``ALGORITHM_ORDER``, then the others."""
    known = sa.case(
        {name: index for index, name in enumerate(ALGORITHM_ORDER)},
        value=points.c.algorithm,
        else_=len(ALGORITHM_ORDER),
    )
    return sa.case((points.c.algorithm.is_(None), -1), else_=known)


def _bytewise(connection: sa.Connection, *columns: sa.ColumnElement) -> list[sa.ColumnElement]:
    """Text columns ordered by code point, as Python orders them (PostgreSQL's database collation may not)."""
    if connection.dialect.name == "postgresql":
        return [sa.collate(column, "C") for column in columns]
    return list(columns)
