"""The results store: what the sweep driver writes (idempotent upserts) and what the CLI reads.

Each sweep's rows are written by one process, its driver; workers report to it and never open the database.
Several drivers may share one store (two sweeps at once): each write transaction takes the store's write lock when
it begins (``BEGIN IMMEDIATE`` on SQLite), so a check and the write that follows it see the same rows, and readers
take no lock. Every write is an upsert on a natural key, so replaying a sweep's reports after a crash or a resume
leaves exactly the rows a single run would have left.
"""

from __future__ import annotations

import contextlib
import math
import shutil
import weakref
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from analog_sweep.results import _best, _labels, _provenance, _queries, _readonly, _timings

# _elbows (numpy, piecewise-regression) and _export (pyarrow) are imported by the methods that use them, so that a
# command reading a table does not load them.
from analog_sweep.results._engine import (
    READ_TRANSACTION,
    create_engine,
    database_errors,
    label,
    lock_store_setup,
    resolve_url,
    sqlite_private_copy,
)
from analog_sweep.results._errors import NotFound, SpecConflict, StoreInputError, StoreOutdated, TrialConflict
from analog_sweep.results._profile import run_profile
from analog_sweep.results._schema import (
    ACTIVITY_FIELDS,
    AXES,
    POINT_STATUSES,
    SELECTION_SPLITS,
    SWEEP_ENDED,
    SWEEP_STATUSES,
    TRIAL_ENDED,
    TRIAL_STATUSES,
    epochs,
    points,
    sweeps,
    trials,
    utc_row,
)
from analog_sweep.results._summaries import refresh_trial_summary
from analog_sweep.results._versions import ensure_schema


def open_store(url: str | None = None, *, must_exist: bool = False, read_only: bool = False) -> Store:
    """Open (creating or upgrading the schema as needed) the store at ``url``.

    ``url`` is any SQLAlchemy URL for SQLite or PostgreSQL; None means ``$ANALOG_SWEEP_STORE``, else
    ``sqlite:///<cwd>/sweep-store/results.db``. ``must_exist`` (for readers) refuses to create a new store.
    ``read_only`` (for commands that only read; implies ``must_exist``) never writes and takes no write lock: its
    connections cannot write, and it opens a SQLite store in a place this process cannot write (a read-only folder
    or mount) without leaving any file behind. A reader finding a store of an older schema version does not upgrade
    it: it reads a SQLite store from a private copy, upgraded (``_upgraded_copy``), and refuses a PostgreSQL one with
    ``StoreOutdated``, saying which writers upgrade it.
    Raises ``BadStoreURL`` for a bad or empty URL, ``StoreUnavailable`` when the server cannot be reached,
    ``SchemaVersionError`` for a store newer than this code.
    """
    resolved = resolve_url(url)
    try:
        return Store(_open_engine(resolved, must_exist=must_exist, read_only=read_only)[0])
    except StoreOutdated as outdated:
        if not (read_only and resolved.get_backend_name() == "sqlite"):
            raise
        version = outdated.version
    return _CopiedStore(_upgraded_copy(resolved), resolved, version)


def upgrade_store(url: str | None = None) -> tuple[str, int]:
    """Upgrade the store at ``url`` (it must exist) to ``SCHEMA_VERSION`` as a writer's ``open_store`` does, under the
    same lock; return its label and the version it had (``SCHEMA_VERSION``: nothing was to do). Raises as
    ``open_store``."""
    resolved = resolve_url(url)
    engine, found = _open_engine(resolved, must_exist=True, read_only=False)
    engine.dispose()
    return label(resolved), found


def _open_engine(url: sa.URL, *, must_exist: bool, read_only: bool) -> tuple[sa.Engine, int]:
    """An engine on the store at ``url`` whose schema ``ensure_schema`` has checked, and the version the store had: a
    writer's in a transaction that creates or upgrades it, a reader's in one that only reads."""
    engine = create_engine(url, must_exist=must_exist, read_only=read_only)
    try:
        with database_errors(url), engine.connect() as connection:
            if read_only:
                connection.execution_options(**{READ_TRANSACTION: True})
            with connection.begin():
                if not read_only:
                    lock_store_setup(connection)
                found = ensure_schema(
                    connection, where=label(url), must_exist=must_exist or read_only, read_only=read_only
                )
    except BaseException:
        engine.dispose()
        raise
    return engine, found


def _upgraded_copy(url: sa.URL) -> sa.Engine:
    """A reader's engine on a private copy of the older SQLite store at ``url`` (``sqlite_private_copy``), upgraded
    as a writer would upgrade the store itself: the reader sees the store as this code reads it, and the store keeps
    its bytes. The copy's folder is removed when the engine is garbage-collected or the process exits. The copy costs
    the store's size on the temporary folder's disk, once per command."""
    with database_errors(url):
        copy = sqlite_private_copy(Path(str(url.database)).expanduser())
    try:
        copy_url = url.set(database=str(copy))
        _open_engine(copy_url, must_exist=True, read_only=False)[0].dispose()
        engine = _open_engine(copy_url, must_exist=True, read_only=True)[0]
    except BaseException:
        shutil.rmtree(copy.parent, ignore_errors=True)
        raise
    weakref.finalize(engine, shutil.rmtree, copy.parent, True)
    return engine


def _now() -> datetime:
    return datetime.now(UTC)


def _check(value: str, allowed: tuple[str, ...], what: str) -> None:
    if value not in allowed:
        raise StoreInputError(f"unknown {what} status {value!r}: expected one of {', '.join(allowed)}")


def _axis_values(axes: Mapping[str, float]) -> dict[str, float]:
    missing = [a for a in AXES if a not in axes]
    extra = sorted(set(axes) - set(AXES))
    if missing or extra:
        raise StoreInputError(f"a point needs exactly the axes {', '.join(AXES)} (missing {missing}, extra {extra})")
    values = {a: float(axes[a]) for a in AXES}
    bad = [a for a, v in values.items() if not math.isfinite(v)]
    if bad:
        raise StoreInputError(f"axis values must be finite numbers: {', '.join(bad)}")
    return values


# Marks an upsert column that takes the value being inserted.
_NEW = object()


def _upsert(connection: sa.Connection, table: sa.Table, values: dict[str, Any], update: dict[str, Any]) -> None:
    """INSERT, or UPDATE the ``update`` columns when the primary key exists (ON CONFLICT on both dialects)."""
    dialect = postgresql if connection.dialect.name == "postgresql" else sqlite
    statement = dialect.insert(table).values(**values)
    keys = [c.name for c in table.primary_key.columns]
    set_ = {name: (statement.excluded[name] if value is _NEW else value) for name, value in update.items()}
    connection.execute(statement.on_conflict_do_update(index_elements=keys, set_=set_))


class Store:
    """A results store on one SQLAlchemy engine. Use ``open_store`` to get one; close it when done."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    @property
    def url(self) -> str:
        """The store's full URL, password included, so another process can ``open_store`` the same store."""
        return self.engine.url.render_as_string(hide_password=False)

    @property
    def label(self) -> str:
        """The store's URL for messages and logs, password hidden."""
        return label(self.engine.url)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @contextlib.contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[sa.Connection]:
        """One transaction, with database failures turned into store errors.

        On SQLite a transaction that may write (``write``, the default) takes the write lock when it begins, waiting
        for another process's write, so its reads and writes are one atomic step; ``write=False`` (a method that
        only reads) takes no lock and sees one snapshot (``_engine._sqlite_engine``). On PostgreSQL, whose row locks
        serialize writers by themselves, a transaction that may write is a plain one and one that only reads runs at
        REPEATABLE READ: one snapshot too (``_engine._snapshot_for_readers``).
        """
        with database_errors(self.engine.url), self.engine.connect() as connection:
            if not write:
                connection.execution_options(**{READ_TRANSACTION: True})
            with connection.begin():
                yield connection

    # ---- writes (the sweep driver) ----

    def record_sweep(
        self,
        name: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        status: str = "pending",
        experiment_path: str | None = None,
        selection: _best.Selection | None = None,
    ) -> None:
        """Record a sweep, or update the status (and experiment path, if given) of one already recorded.

        ``selection`` is how its points' trials are chosen (``Selection``: on the validation split or on test,
        seeds sharing or not); a sweep first recorded without one is chosen by the paper's rule (on test, each seed
        alone: ``PAPER_RULE``), as every sweep was before selection existed; None later keeps what is recorded.
        Raises ``SpecConflict`` when ``name`` exists with a different ``spec_hash``: one name, one spec.
        """
        _check(status, SWEEP_STATUSES, "sweep")
        rule = selection or _best.PAPER_RULE
        now = _now()
        with self.transaction() as connection:
            known = connection.scalar(sa.select(sweeps.c.spec_hash).where(sweeps.c.name == name))
            if known is not None and known != spec_hash:
                raise SpecConflict(f"sweep {name!r} exists with spec hash {known}, not {spec_hash}")
            if known is not None and selection is not None and _queries.sweep_selection(connection, name) != selection:
                # Choices stored under the old rule no longer hold: readers choose those points afresh until
                # ``choose_best`` stores them again.
                connection.execute(
                    sa.update(points).where(points.c.sweep == name).values(selected_on=None, chosen_trial_id=None)
                )
            values = dict(
                name=name,
                spec=dict(spec),
                spec_hash=spec_hash,
                status=status,
                experiment_path=experiment_path,
                created_at=now,
                selected_on=rule.split,
                selection_per_seed=rule.per_seed,
                **_sweep_times(status, now),
            )
            update = {
                "status": _NEW,
                **({"selected_on": _NEW, "selection_per_seed": _NEW} if selection is not None else {}),
                "experiment_path": sa.func.coalesce(sa.literal(experiment_path, sa.Text), sweeps.c.experiment_path),
                **_sweep_time_updates(status, now),
            }
            _upsert(connection, sweeps, values, update)
            _refresh_statistics(connection)

    def set_sweep_status(self, name: str, status: str) -> None:
        """Move a sweep to ``status``; running sets the start time once, an end status sets the end time."""
        _check(status, SWEEP_STATUSES, "sweep")
        with self.transaction() as connection:
            done = connection.execute(
                sa.update(sweeps)
                .where(sweeps.c.name == name)
                .values(status=status, **_sweep_time_updates(status, _now()))
            )
            if done.rowcount == 0:
                raise NotFound(f"unknown sweep {name!r}")
            _refresh_statistics(connection)

    def record_point(
        self,
        sweep: str,
        point_key: str,
        *,
        mode: str,
        task: str,
        classes: list[str],
        seed: int,
        axes: Mapping[str, float],
        status: str | None = None,
        label: str | None = None,
        algorithm: str | None = None,
    ) -> None:
        """Record one point of a sweep: the five device axes, mode, task and classes, seed, and its readable
        ``label`` (``sweeps.Point.label``, e.g. ``analog_tl/5-8/transfer_noise=10/seed0``; None keeps the one
        recorded, and readers make one from the point's columns when there is none). ``algorithm`` is an analog
        point's training algorithm (``c-ttv2``, ``ttv2``, ``agad``, ``sgd``), None for a digital point.

        ``status`` None means pending for a new point and unchanged for a known one, so re-recording the
        points on a resume does not reset their progress.
        """
        if status is not None:
            _check(status, POINT_STATUSES, "point")
        values = dict(
            sweep=sweep,
            point_key=point_key,
            mode=mode,
            task=task,
            classes=list(classes),
            seed=int(seed),
            status=status or "pending",
            label=label,
            algorithm=algorithm,
            **_axis_values(axes),
        )
        update = {name: _NEW for name in ("mode", "task", "classes", "seed", "algorithm", *AXES)}
        if label is not None:
            update["label"] = _NEW
        if status is not None:
            update["status"] = _NEW
        with self.transaction() as connection:
            self._require_sweep(connection, sweep)
            _upsert(connection, points, values, update)

    def set_point_status(self, sweep: str, point_key: str, status: str) -> None:
        """Move a point to ``status`` (``choose_best`` does this itself when a point's trials are over)."""
        _check(status, POINT_STATUSES, "point")
        with self.transaction() as connection:
            done = connection.execute(
                sa.update(points).where(points.c.sweep == sweep, points.c.point_key == point_key).values(status=status)
            )
            if done.rowcount == 0:
                raise NotFound(f"unknown point {point_key!r} of sweep {sweep!r}")

    def record_trial(
        self,
        trial_id: str,
        sweep: str,
        point_key: str,
        *,
        lr: float,
        status: str,
        ray_trial_id: str | None = None,
        error: str | None = None,
    ) -> None:
        """Record a trial (one learning rate at one point) or update its status.

        The start time is set once, and so is the end time, when the trial first reaches an end status
        (completed, pruned, failed): a replay of its reports after a crash moves neither.
        A missing ``ray_trial_id`` keeps the one recorded before; ``error`` is replaced (None clears it).
        Epoch counts and test errors are kept up to date by ``record_epoch``, not here.
        """
        _check(status, TRIAL_STATUSES, "trial")
        now = _now()
        ended = now if status in TRIAL_ENDED else None
        values = dict(
            trial_id=trial_id,
            sweep=sweep,
            point_key=point_key,
            lr=float(lr),
            status=status,
            ray_trial_id=ray_trial_id,
            started_at=now,
            ended_at=ended,
            error=error,
        )
        update = {
            "lr": _NEW,
            "status": _NEW,
            "error": _NEW,
            "ray_trial_id": sa.func.coalesce(sa.literal(ray_trial_id, sa.String), trials.c.ray_trial_id),
        }
        if ended:
            update["ended_at"] = sa.func.coalesce(trials.c.ended_at, sa.literal(ended, sa.DateTime(timezone=True)))
        with self.transaction() as connection:
            self._require_point(connection, sweep, point_key)
            owner = connection.execute(
                sa.select(trials.c.sweep, trials.c.point_key).where(trials.c.trial_id == trial_id)
            ).first()
            if owner is not None and tuple(owner) != (sweep, point_key):
                raise TrialConflict(
                    f"trial {trial_id!r} belongs to point {owner.point_key!r} of sweep {owner.sweep!r}, "
                    f"not to point {point_key!r} of sweep {sweep!r}"
                )
            _upsert(connection, trials, values, update)

    def record_epoch(
        self,
        trial_id: str,
        epoch: int,
        *,
        train_loss: float | None,
        test_error: float | None,
        test_accuracy: float | None,
        seconds: float | None,
        validation_error: float | None = None,
        **activity: float | int | None,
    ) -> None:
        """Record (or overwrite) one epoch of a trial and refresh the trial's epochs done, final and best error,
        best validation error and its epoch, and last activity.

        Errors are percent; ``validation_error`` is measured on the held-out validation split (None without one).

        ``activity`` takes the analog learning activity fields (``ACTIVITY_FIELDS``: ``head_moved`` percent,
        ``head_rel`` ratio, ``head_transfers`` count, and the same for ``embed`` and ``blocks``); missing ones are
        stored as NULL (digital trials). An unknown field raises ``StoreInputError``.
        """
        unknown = sorted(set(activity) - set(ACTIVITY_FIELDS))
        if unknown:
            raise StoreInputError(f"unknown epoch field(s) {', '.join(unknown)}: expected {', '.join(ACTIVITY_FIELDS)}")
        values = dict(
            trial_id=trial_id,
            epoch=int(epoch),
            train_loss=_real(train_loss),
            test_error=_real(test_error),
            test_accuracy=_real(test_accuracy),
            seconds=_real(seconds),
            validation_error=_real(validation_error),
            **{
                name: (None if activity.get(name) is None else int(activity[name]))
                if name.endswith("_transfers")
                else _real(activity.get(name))
                for name in ACTIVITY_FIELDS
            },
        )
        update = {
            name: _NEW
            for name in ("train_loss", "test_error", "test_accuracy", "seconds", "validation_error", *ACTIVITY_FIELDS)
        }
        with self.transaction() as connection:
            if connection.scalar(sa.select(trials.c.trial_id).where(trials.c.trial_id == trial_id)) is None:
                raise NotFound(f"unknown trial {trial_id!r}")
            _upsert(connection, epochs, values, update)
            refresh_trial_summary(connection, trial_id)

    def choose_best(self, sweep: str, point_key: str) -> _best.BestTrial:
        """Write the point's chosen trial onto it and close it: done with a chosen trial, failed without one.

        The choice follows the sweep's selection rule (``record_sweep``). When seeds share a choice, the other seeds
        of the point that are already closed are chosen again too (the shared choice may move as seeds finish), so
        the stored choices always agree. Written: ``chosen_trial_id``, ``selected_on``, ``chosen_epoch``,
        ``chosen_test_error`` and ``chosen_validation_error``. Call it once the point's trials are over;
        ``best_trial`` says the same without writing.
        """
        with self.transaction() as connection:
            self._require_point(connection, sweep, point_key)
            chosen, _ = _queries.choices(connection, sweep, _queries.sweep_selection(connection, sweep), [point_key])
            closed = set(
                connection.scalars(
                    sa.select(points.c.point_key).where(
                        points.c.sweep == sweep,
                        points.c.point_key.in_(list(chosen)),
                        points.c.status.in_(("done", "failed")),
                    )
                )
            )
            for key, best in chosen.items():
                if key != point_key and key not in closed:
                    continue
                connection.execute(
                    sa.update(points)
                    .where(points.c.sweep == sweep, points.c.point_key == key)
                    .values(
                        chosen_trial_id=best.chosen.trial_id if best.chosen else None,
                        selected_on=best.selected_on,
                        chosen_epoch=best.epoch,
                        chosen_test_error=best.test_error,
                        chosen_validation_error=best.validation_error,
                        status="done" if best.chosen else "failed",
                    )
                )
        return chosen[point_key]

    # ---- provenance (the sweep driver) ----

    def record_run(self, sweep: str, run: Mapping[str, Any]) -> None:
        """Record one run or resume of a sweep and the environment it ran in.

        The same ``run_id`` again overwrites the row, so a retried write adds none. Any URL password in the command
        or the options is stored as ``***``.

        Args:
            sweep: The sweep's name.
            run: ``run_id`` (text, unique), ``kind`` (``run`` or ``resume``), and optionally ``started_at`` (UTC;
                default now), ``command`` (the command line, text or argument list), ``options`` (what changed how
                the sweep ran, e.g. ``{"overrides": [...], "cpu_fallback": true}``), ``packages`` (name -> version
                text), ``aihwkit_cuda`` (bool), ``project`` (``version``, ``commit``, ``dirty``), ``host``,
                ``platform``, ``cpu`` and ``gpus`` (``{"model", "count"}``), ``cluster`` (what Ray offered).

        Raises:
            NotFound: For an unknown sweep.
            StoreInputError: For an unknown field, a bad kind or values that are not JSON.
        """
        with self.transaction() as connection:
            self._require_sweep(connection, sweep)
            _provenance.record_run(connection, sweep, run)

    def record_pretrained(self, sweep: str, model: Mapping[str, Any]) -> None:
        """Record a pretrained model the sweep used: ``cache_key`` and ``file_hash`` (SHA-256 of the cache file,
        both required), ``source_error`` and ``source_train_error`` (percent), ``train_seconds`` (pretraining time
        when the file was made), ``trained_now`` (trained by this sweep, else taken from the cache), ``path`` and
        ``run_id`` (the run that used it). The same key and hash again changes nothing; a new hash under a known key
        (the cache file was made again) is a second row."""
        with self.transaction() as connection:
            self._require_sweep(connection, sweep)
            _provenance.record_pretrained(connection, sweep, model)

    def set_trial_rpu_config(self, trial_id: str, rpu_config: Mapping[str, Any] | None) -> None:
        """Record the resolved aihwkit rpu config a trial ran with, as JSON (``workers._rpu_json.rpu_config_json``;
        None for digital trials). Raises ``NotFound`` for an unknown trial, ``StoreInputError`` for non-JSON."""
        with self.transaction() as connection:
            if _provenance.set_trial_rpu_config(connection, trial_id, rpu_config) == 0:
                raise NotFound(f"unknown trial {trial_id!r}")

    def record_node_environment(self, environment: Mapping[str, Any]) -> str:
        """Record a Ray node's environment once (``node_id``, ``host``, ``ip``, ``packages``: name -> version, None
        for one not installed) and return its ``environment_hash``, which a run's ``cluster`` may list
        (``node_environments``) as the nodes it checked. ``StoreInputError`` for an unknown field or bad values."""
        with self.transaction() as connection:
            return _provenance.record_node_environment(connection, environment)

    def set_trial_node_environment(self, trial_id: str, environment: Mapping[str, Any] | None) -> None:
        """Record the Ray node a trial ran on, with its package versions (as ``record_node_environment``; stored
        once per distinct environment). Raises ``NotFound`` for an unknown trial, ``StoreInputError`` for bad
        values."""
        with self.transaction() as connection:
            if _provenance.set_trial_node_environment(connection, trial_id, environment) == 0:
                raise NotFound(f"unknown trial {trial_id!r}")

    def provenance(self, sweep: str) -> dict[str, Any]:
        """How a sweep was made, as plain data.

        Args:
            sweep: The sweep's name.

        Returns:
            A dict with six keys. Runs recorded before schema version 4 have no rows: ``runs`` is then empty.

        - ``runs``: one dict per run and resume, oldest first: ``run`` (1, 2, ...), ``run_id``, ``kind`` (``run`` or
          ``resume``), ``started_at`` (UTC datetime), ``command`` (text, passwords as ``***``), ``options`` (dict),
          ``packages`` (name -> version), ``aihwkit_cuda``, ``project`` (``version``, ``commit``, ``dirty``; commit and
          dirty None outside a git checkout), ``host``, ``platform``, ``cpu`` and ``gpus`` (``{"model", "count"}``),
          ``cluster`` (``nodes``, ``cpus``, ``gpus``, ``accelerator_types`` as Ray offered them);
        - ``pretrained``: one dict per pretrained model file used, oldest first: ``cache_key``, ``file_hash``
          (SHA-256 hex), ``source_error`` and ``source_train_error`` (percent), ``train_seconds``, ``trained_now``,
          ``path``, ``run`` (number of the run that first used it), ``recorded_at``;
        - ``rpu_configs``: one dict per distinct resolved rpu config, by the first point using it: ``config_hash``
          (16 hex digits of the canonical JSON), ``rpu_config`` (the JSON as a dict), ``trial_ids`` and
          ``point_keys`` (every trial and point that ran with it), ``point_labels`` (the points by label, in the
          order of ``point_keys``);
        - ``trials_without_rpu_config``: trials with none (digital trials, and trials recorded before provenance);
        - ``nodes``: one dict per Ray node the trials ran on or a run checked before it started, most trials first:
          ``environment_hash``, ``node_id``, ``host``, ``ip``, ``packages`` (name -> version there), ``trials`` (how
          many ran there) and ``differences`` (``{name: {"node": v, "driver": v}}`` against the driver of the last
          run; empty when the node has the driver's versions);
        - ``trials_without_node``: trials with no node recorded (recorded before schema version 8, or no report of
          theirs reached the driver).

        Raises:
            NotFound: For an unknown sweep.
        """
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            return _provenance.read_provenance(connection, sweep)

    # ---- reads ----

    def selection(self, sweep: str) -> _best.Selection:
        """The rule the sweep's points are chosen by; ``NotFound`` for an unknown sweep."""
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            return _queries.sweep_selection(connection, sweep)

    def best_trial(self, sweep: str, point_key: str, selection: _best.Selection | None = None) -> _best.BestTrial:
        """The point's chosen trial under ``selection`` (the sweep's rule when None), the epoch, errors and all
        candidates with their learning rate, status and errors, the chosen one first, to say why (``why()``)."""
        with self.transaction(write=False) as connection:
            self._require_point(connection, sweep, point_key)
            rule = self._selection(connection, sweep, selection)
            return _queries.choices(connection, sweep, rule, [point_key])[0][point_key]

    def get_sweep(self, name: str) -> dict[str, Any]:
        """A sweep's row (name, spec, spec_hash, status, experiment_path, times); ``NotFound`` if unknown."""
        with self.transaction(write=False) as connection:
            row = connection.execute(sa.select(sweeps).where(sweeps.c.name == name)).mappings().first()
        if row is None:
            raise NotFound(f"unknown sweep {name!r}")
        return utc_row(row)

    def list_points(self, sweep: str) -> list[dict[str, Any]]:
        """The points of a sweep, by mode, algorithm, task, device axes and seed (``point_sort_key``)."""
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            rows = connection.execute(sa.select(points).where(points.c.sweep == sweep))
            return sorted((dict(r) for r in rows.mappings()), key=_labels.point_sort_key)

    def list_trials(self, sweep: str, point_key: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """The trials of a sweep (or of one point, or of several), by point (``point_sort_key``), learning rate
        and id; each with its point's ``label``."""
        keys = [point_key] if isinstance(point_key, str) else point_key
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            query = (
                sa.select(trials, points.c.label.label("point_label"))
                .join(points, sa.and_(points.c.sweep == trials.c.sweep, points.c.point_key == trials.c.point_key))
                .where(trials.c.sweep == sweep)
            )
            if keys is not None:
                for key in keys:
                    self._require_point(connection, sweep, key)
                query = query.where(trials.c.point_key.in_(list(keys)))
            point_rows = [
                dict(r) for r in connection.execute(sa.select(points).where(points.c.sweep == sweep)).mappings()
            ]
            varied = _labels.varied_axes(point_rows) if point_rows else []
            order = {p["point_key"]: i for i, p in enumerate(sorted(point_rows, key=_labels.point_sort_key))}
            labels = {p["point_key"]: _labels.point_label(p, varied) for p in point_rows}
            rows = []
            for row in connection.execute(query).mappings():
                trial = utc_row(row)
                trial.pop("point_label")
                rows.append({**trial, "label": labels[trial["point_key"]]})
            return sorted(rows, key=lambda r: (order[r["point_key"]], r["lr"], r["trial_id"]))

    def resolve_point(self, sweep: str, label: str) -> str:
        """The key of the one point of ``sweep`` that ``label`` names (a key, a stored label, or terms such as
        ``transfer_noise=10,seed=0``: ``_labels``); ``StoreInputError`` (one line, listing candidates) for none or
        several, ``NotFound`` for an unknown sweep."""
        return _labels.resolve_point(self._points_for_labels(sweep), label)

    def resolve_replicates(self, sweep: str, label: str) -> list[str]:
        """The keys of the points (seeds of one device point) of ``sweep`` that ``label`` names, in seed order;
        ``StoreInputError`` for none, or for points of several device points."""
        return _labels.resolve_replicates(self._points_for_labels(sweep), label)

    def _points_for_labels(self, sweep: str) -> list[dict[str, Any]]:
        rows = self.list_points(sweep)
        varied = _labels.varied_axes(rows) if rows else []
        return [{**row, "label": _labels.point_label(row, varied)} for row in rows]

    def sweep_progress(self) -> list[dict[str, Any]]:
        """Every sweep with its status, times, points done/total, trials by status, storage folder
        (``experiment_path``) and ``profile`` (``smoke`` for a smoke run, None for a full one)."""
        with self.transaction(write=False) as connection:
            return _queries.sweep_progress(connection)

    def best_points(self, sweep: str, selection: _best.Selection | None = None) -> list[dict[str, Any]]:
        """One row per point (by mode, algorithm, task, device axes, seed): its columns and ``label``, ``selected_on``,
        and the chosen trial's id, lr, ``epoch``, ``test_error`` and ``validation_error`` at that epoch (the number to
        report, percent), its final and best test error and activity. ``selection`` None: the sweep's own rule.
        Choosing on validation a sweep that measured none raises ``StoreInputError``."""
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            return _queries.best_points(connection, sweep, self._selection(connection, sweep, selection))

    def axis_curve(self, sweep: str, axis: str, selection: _best.Selection | None = None) -> list[dict[str, Any]]:
        """Test error of the chosen trials against one device axis (the paper's Figures 3-5); ``StoreInputError``
        for an axis the sweep did not vary."""
        return _queries.axis_curve(self.best_points(sweep, selection), axis, f"sweep {sweep!r}")

    def epoch_curves(
        self,
        sweep: str,
        point_key: str | Sequence[str] | None = None,
        selection: _best.Selection | None = None,
    ) -> list[dict[str, Any]]:
        """Per-epoch rows of each point's chosen trial (the paper's Figure 2); only the given point(s) if
        ``point_key`` (one key or several)."""
        keys = [point_key] if isinstance(point_key, str) else point_key
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            for key in keys or ():
                self._require_point(connection, sweep, key)
            return _queries.epoch_curves(connection, sweep, keys, self._selection(connection, sweep, selection))

    def epoch_seconds(self) -> list[dict[str, Any]]:
        """Every recorded epoch's seconds with its sweep's spec, across all sweeps (for dry-run cost estimates)."""
        with self.transaction(write=False) as connection:
            return _timings.epoch_seconds(connection)

    def export_trials(self, sweep: str, path: str | Path, selection: _best.Selection | None = None) -> int:
        """Write one Parquet row per trial and epoch, with every point column, the validation and test errors, and
        which trial and epoch were chosen (``chosen``, ``selected_on``, ``chosen_epoch``); return the row count."""
        from analog_sweep.results import _export

        profile = run_profile(self.get_sweep(sweep)["spec"])
        with self.transaction(write=False) as connection:
            self._require_sweep(connection, sweep)
            rows = _queries.trial_epoch_rows(connection, sweep, self._selection(connection, sweep, selection))
            return _export.write_trials(rows, Path(path), profile=profile)

    def export_points(self, sweep: str, path: str | Path, selection: _best.Selection | None = None) -> int:
        """Write one Parquet row per point, with its chosen trial (``best_points``); return the row count."""
        from analog_sweep.results import _export

        rows = self.best_points(sweep, selection)
        return _export.write_points(rows, Path(path), profile=run_profile(self.get_sweep(sweep)["spec"]))

    def elbows(self, sweep: str, axis: str | None = None) -> list[dict[str, Any]]:
        """The critical point of every axis the sweep varies, per mode, algorithm and task (``results.sweep_elbows``),
        as rows: ``sweep`` and the ``Elbow`` fields. The base value of each axis comes from the spec's ``device``
        section where it has one. Raises ``NotFound`` for an unknown sweep, ``StoreInputError`` for an axis it did not
        vary."""
        spec = self.get_sweep(sweep)["spec"] or {}
        device = spec.get("device") if isinstance(spec, Mapping) else None
        from analog_sweep.results import _elbows

        found = _elbows.sweep_elbows(
            self.best_points(sweep), axis=axis, base=device if isinstance(device, Mapping) else None
        )
        return [{"sweep": sweep, **elbow.as_row()} for elbow in found]

    def algorithm_differences(
        self, sweep: str, axis: str | None = None, selection: _best.Selection | None = None
    ) -> list[dict[str, Any]]:
        """Each pair of the sweep's algorithms at every value of each axis, per task and analog mode, with Welch 95 %
        intervals (``results.algorithm_differences``; empty for a sweep of one algorithm). Raises ``NotFound`` for
        an unknown sweep, ``StoreInputError`` for an unknown axis."""
        if axis is not None and axis not in AXES:
            raise StoreInputError(f"unknown axis {axis!r}: expected one of {', '.join(AXES)}")
        from analog_sweep.results import _algorithms

        best = self.best_points(sweep, selection)
        selected_on = ",".join(sorted({row["selected_on"] for row in best}))
        return [
            {"sweep": sweep, **row, "selected_on": selected_on}
            for row in _algorithms.algorithm_differences(best, axis=axis)
        ]

    def export_elbows(self, sweep: str, path: str | Path, axis: str | None = None) -> int:
        """Write one Parquet row per elbow (``elbows``); return the row count."""
        from analog_sweep.results import _export

        rows = self.elbows(sweep, axis)
        return _export.write_elbows(rows, Path(path), profile=run_profile(self.get_sweep(sweep)["spec"]))

    def run_readonly_query(self, sql: str, max_rows: int | None = None) -> _readonly.QueryResult:
        """Run one read-only SQL statement; writes, schema changes and multiple statements raise ``QueryRefused``."""
        return _readonly.run_readonly_query(self.engine, sql, max_rows=max_rows)

    # ---- helpers ----

    @staticmethod
    def _selection(connection: sa.Connection, sweep: str, selection: _best.Selection | None) -> _best.Selection:
        """``selection``, or the sweep's own rule; choosing on validation where no validation error was recorded
        (a sweep from before validation splits, or without one) is refused in one line."""
        if selection is None:
            return _queries.sweep_selection(connection, sweep)
        if selection.split == "validation":
            measured = connection.scalar(
                sa.select(epochs.c.trial_id)
                .join(trials, trials.c.trial_id == epochs.c.trial_id)
                .where(trials.c.sweep == sweep, epochs.c.validation_error.is_not(None))
                .limit(1)
            )
            recorded = connection.scalar(sa.select(sa.func.count()).select_from(trials).where(trials.c.sweep == sweep))
            if measured is None and recorded:
                raise StoreInputError(
                    f"sweep {sweep!r} recorded no validation error (it ran without a validation split): "
                    f"choose on {', '.join(s for s in SELECTION_SPLITS if s != 'validation')} instead"
                )
        return selection

    @staticmethod
    def _require_sweep(connection: sa.Connection, sweep: str) -> None:
        if connection.scalar(sa.select(sweeps.c.name).where(sweeps.c.name == sweep)) is None:
            raise NotFound(f"unknown sweep {sweep!r}")

    @classmethod
    def _require_point(cls, connection: sa.Connection, sweep: str, point_key: str) -> None:
        found = connection.scalar(
            sa.select(points.c.point_key).where(points.c.sweep == sweep, points.c.point_key == point_key)
        )
        if found is None:
            cls._require_sweep(connection, sweep)
            raise NotFound(f"unknown point {point_key!r} of sweep {sweep!r}")


class _CopiedStore(Store):
    """A reader's store on an upgraded private copy of an older SQLite store (``_upgraded_copy``), named after the
    store it copies: its ``url`` opens that store, its ``label`` (in reports and messages) names it and says so."""

    def __init__(self, engine: sa.Engine, original: sa.URL, version: int) -> None:
        super().__init__(engine)
        self._original = original
        self._version = version

    @property
    def url(self) -> str:
        return self._original.render_as_string(hide_password=False)

    @property
    def label(self) -> str:
        return f"{label(self._original)} (schema version {self._version}, read from an upgraded copy)"


def _refresh_statistics(connection: sa.Connection) -> None:
    """On PostgreSQL, refresh the planner's statistics of the tables a study fills (a sample, about a second on
    millions of epoch rows). Done whenever a sweep starts or changes status: without them, as on a server with
    autovacuum off, the planner takes the tables for empty and joins a study's epochs by scanning all of them once
    per point. SQLite's planner needs none."""
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"ANALYZE {points.name}, {trials.name}, {epochs.name}"))


def _sweep_times(status: str, now: datetime) -> dict[str, datetime | None]:
    return {
        "started_at": now if status == "running" else None,
        "ended_at": now if status in SWEEP_ENDED else None,
    }


def _sweep_time_updates(status: str, now: datetime) -> dict[str, Any]:
    """Start time set the first time a sweep runs; end time set when it stops, cleared when it runs again."""
    stamp = sa.DateTime(timezone=True)
    updates: dict[str, Any] = {}
    if status == "running":
        updates["started_at"] = sa.func.coalesce(sweeps.c.started_at, sa.literal(now, stamp))
    updates["ended_at"] = sa.func.coalesce(sweeps.c.ended_at, sa.literal(now, stamp)) if status in SWEEP_ENDED else None
    return updates


def _real(value: float | None) -> float | None:
    """A float, or None for missing and NaN (SQLite cannot store NaN; PostgreSQL could, but both must agree)."""
    if value is None:
        return None
    value = float(value)
    return None if math.isnan(value) else value
