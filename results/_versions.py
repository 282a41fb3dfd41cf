"""Schema versions: create a fresh store, upgrade an older one step by step, refuse a newer or foreign one."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import sqlalchemy as sa

from analog_sweep.results._errors import SchemaVersionError, StoreMissing, StoreOutdated
from analog_sweep.results._provenance import config_hash
from analog_sweep.results._schema import (
    ACTIVITY_FIELDS,
    ANALOG_MODES,
    SCHEMA_VERSION,
    TRIAL_ACTIVITY_FIELDS,
    epochs,
    metadata,
    node_environments,
    points,
    pretrained_models,
    rpu_configs,
    schema_version,
    sweep_runs,
    sweeps,
    trials,
)
from analog_sweep.results._summaries import best_epoch_subquery


def _add_trials_best_epoch(connection: sa.Connection) -> None:
    """Version 1 -> 2: trials gain ``best_epoch``, filled in from the epochs already recorded."""
    connection.execute(sa.text("ALTER TABLE trials ADD COLUMN best_epoch INTEGER"))
    connection.execute(sa.update(trials).values(best_epoch=best_epoch_subquery()))


def _add_activity_columns(connection: sa.Connection) -> None:
    """Version 2 -> 3: epochs and trials gain the analog activity columns, NULL for what was recorded before
    (those trials were not measured)."""
    for table, names in ((epochs, ACTIVITY_FIELDS), (trials, TRIAL_ACTIVITY_FIELDS)):
        for name in names:
            _add_column(connection, table, name)


def _add_provenance(connection: sa.Connection) -> None:
    """Version 3 -> 4: provenance. New tables ``sweep_runs`` (one row per run and resume) and ``pretrained_models``,
    and ``trials.rpu_config``; all empty or NULL for what was recorded before (it was not gathered then)."""
    for table in (sweep_runs, pretrained_models):
        table.create(connection)
    kind = sa.JSON().compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE trials ADD COLUMN rpu_config {kind}"))


def _add_validation_selection(connection: sa.Connection) -> None:
    """Version 4 -> 5: honest selection and point labels.

    Epochs gain ``validation_error``, trials ``best_validation_error`` and ``best_validation_epoch`` (NULL: no
    validation split was measured before). Sweeps gain their selection rule, ``selected_on`` and
    ``selection_per_seed``, set to what every earlier sweep did: chosen on the test set, each seed alone. Points
    gain ``label`` (NULL: readers fall back to the point's columns) and the choice already made on them:
    ``selected_on`` test, ``chosen_epoch`` the chosen trial's last epoch, ``chosen_test_error`` its final test error.
    """

    _add_column(connection, epochs, "validation_error")
    _add_column(connection, trials, "best_validation_error")
    _add_column(connection, trials, "best_validation_epoch")
    _add_column(connection, sweeps, "selected_on", " NOT NULL DEFAULT 'test'")
    _add_column(connection, sweeps, "selection_per_seed", " NOT NULL DEFAULT TRUE")
    for name in ("label", "selected_on", "chosen_epoch", "chosen_test_error", "chosen_validation_error"):
        _add_column(connection, points, name)
    chosen = trials.c.trial_id == points.c.chosen_trial_id
    connection.execute(
        sa.update(points)
        .where(points.c.chosen_trial_id.is_not(None))
        .values(
            selected_on="test",
            chosen_epoch=sa.select(trials.c.epochs_done).where(chosen).scalar_subquery(),
            chosen_test_error=sa.select(trials.c.final_test_error).where(chosen).scalar_subquery(),
        )
    )


def _share_rpu_configs(connection: sa.Connection) -> None:
    """Version 5 -> 6: each distinct rpu config is stored once, in the new table ``rpu_configs``, and trials point at
    it by ``rpu_config_hash`` instead of holding the JSON (the same 7 kB in thousands of rows). A file does not
    shrink by itself: ``VACUUM`` gives the space back."""
    rpu_configs.create(connection)
    _add_column(connection, trials, "rpu_config_hash")
    old = sa.table("trials", sa.column("trial_id", sa.String), sa.column("rpu_config", sa.JSON))
    rows = connection.execute(sa.select(old.c.trial_id, old.c.rpu_config).where(old.c.rpu_config.is_not(None)))
    by_hash: dict[str, list[str]] = {}
    configs: dict[str, object] = {}
    for trial_id, config in rows:
        if config is None:  # JSON null: what the API stored for "no config"
            continue
        digest = config_hash(config)
        configs.setdefault(digest, config)
        by_hash.setdefault(digest, []).append(trial_id)
    if configs:
        connection.execute(sa.insert(rpu_configs), [{"config_hash": d, "rpu_config": c} for d, c in configs.items()])
    for digest, trial_ids in by_hash.items():
        for start in range(0, len(trial_ids), 500):
            connection.execute(
                sa.update(trials)
                .where(trials.c.trial_id.in_(trial_ids[start : start + 500]))
                .values(rpu_config_hash=digest)
            )
    if connection.dialect.name == "sqlite" and sqlite3.sqlite_version_info < (3, 35):
        # No DROP COLUMN before SQLite 3.35: the column stays, emptied; nothing reads it.
        connection.execute(sa.update(old).values(rpu_config=sa.null()))
    else:
        connection.execute(sa.text("ALTER TABLE trials DROP COLUMN rpu_config"))


def _add_point_algorithm(connection: sa.Connection) -> None:
    """Version 6 -> 7: points gain ``algorithm``. Every sweep recorded before ran one algorithm, its spec's
    ``algorithm.name`` (c-TTv2 when the spec left it out), on its analog points; digital points have none."""
    _add_column(connection, points, "algorithm")
    for name, spec in connection.execute(sa.select(sweeps.c.name, sweeps.c.spec)):
        section = spec.get("algorithm") if isinstance(spec, dict) else None
        algorithm = section.get("name") if isinstance(section, dict) else None
        connection.execute(
            sa.update(points)
            .where(points.c.sweep == name, points.c.mode.in_(ANALOG_MODES))
            .values(algorithm=algorithm if isinstance(algorithm, str) else "c-ttv2")
        )


def _add_node_environments(connection: sa.Connection) -> None:
    """Version 7 -> 8: the Ray node each trial ran on, with its package versions. New table ``node_environments``
    and ``trials.node_environment_hash``; empty and NULL for what was recorded before (it was not gathered then)."""
    node_environments.create(connection)
    _add_column(connection, trials, "node_environment_hash")


def _add_column(connection: sa.Connection, table: sa.Table, name: str, extra: str = "") -> None:
    """ALTER TABLE ``table`` ADD COLUMN ``name`` with the type ``_schema`` gives it (``extra``: a default)."""
    kind = table.c[name].type.compile(dialect=connection.dialect)
    connection.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {name} {kind}{extra}"))


# UPGRADES[v] turns a version-v store into version v + 1.
UPGRADES: dict[int, Callable[[sa.Connection], None]] = {
    1: _add_trials_best_epoch,
    2: _add_activity_columns,
    3: _add_provenance,
    4: _add_validation_selection,
    5: _share_rpu_configs,
    6: _add_point_algorithm,
    7: _add_node_environments,
}
OLDEST_UPGRADABLE = min(UPGRADES)


def ensure_schema(connection: sa.Connection, *, where: str, must_exist: bool, read_only: bool = False) -> int:
    """Bring the database at ``where`` to ``SCHEMA_VERSION``; return the version it had (0 when created).

    ``read_only`` (readers) creates, upgrades and locks nothing: it reads the version and raises ``StoreOutdated`` for
    an older store, which only a writer upgrades. A writer finding an older store takes the upgrade's lock first
    (``_lock_for_upgrade``) and reads the version again under it: a second writer opening the store meanwhile waits
    for the first's upgrade, then finds it done.
    """
    inspector = sa.inspect(connection)
    if not inspector.has_table(schema_version.name):
        if inspector.has_table("sweeps"):
            raise SchemaVersionError(f"{where} has a sweeps table but no schema_version: not an analog-sweep store")
        if must_exist or read_only:
            raise StoreMissing(f"no analog-sweep store at {where}")
        metadata.create_all(connection)
        connection.execute(sa.insert(schema_version).values(version=SCHEMA_VERSION))
        return 0
    found = _stored_version(connection, where)
    if found == SCHEMA_VERSION:
        return found
    if read_only:
        raise StoreOutdated(
            f"store at {where} has schema version {found}, older than this analog-sweep's {SCHEMA_VERSION}, and "
            f"readers do not upgrade it: upgrade it with 'analog-sweep store upgrade' (or run or resume a sweep on "
            "it) as a role that may change its tables",
            found,
        )
    _lock_for_upgrade(connection)
    found = _stored_version(connection, where, lock=True)
    for version in range(found, SCHEMA_VERSION):
        UPGRADES[version](connection)
    if found != SCHEMA_VERSION:
        # An UPDATE, not a DELETE and INSERT: a writer waiting on the row's lock (PostgreSQL) then reads the new
        # version; a deleted row it would skip, and find the table empty.
        connection.execute(sa.update(schema_version).values(version=SCHEMA_VERSION))
    return found


def _stored_version(connection: sa.Connection, where: str, *, lock: bool = False) -> int:
    """The store's schema version; ``SchemaVersionError`` for none, or one this code cannot read or upgrade.
    ``lock``: SELECT ... FOR UPDATE on PostgreSQL, which waits for another writer's upgrade to commit."""
    query = sa.select(schema_version.c.version)
    versions = connection.scalars(query.with_for_update() if lock else query).all()
    if not versions:
        raise SchemaVersionError(f"store at {where} has an empty schema_version table")
    found = max(versions)
    if found > SCHEMA_VERSION:
        raise SchemaVersionError(
            f"store at {where} has schema version {found}, newer than this analog-sweep reads "
            f"({SCHEMA_VERSION}): upgrade analog-sweep"
        )
    if found < OLDEST_UPGRADABLE:
        raise SchemaVersionError(f"store at {where} has schema version {found}, too old to upgrade")
    return found


def _lock_for_upgrade(connection: sa.Connection) -> None:
    """Take the lock that serializes upgrades, held until the caller's transaction ends.

    SQLite: the database's write lock (BEGIN IMMEDIATE), unless the connection is already in a transaction; its
    driver opens none for a SELECT, and would run the upgrade's ALTER TABLEs outside one. PostgreSQL: the row lock of
    ``_stored_version(lock=True)``, taken next.
    """
    if connection.dialect.name != "sqlite":
        return
    driver = connection.connection.driver_connection
    if driver is not None and not driver.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")
