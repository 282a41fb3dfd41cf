"""``analog-sweep store ...``: keep the results store safe: check it, back it up, restore a backup; upgrade it.

A thin layer over ``results.check_store``, ``backup_store`` and ``restore_store``. ``run`` and ``resume`` back a
SQLite store up on their own before a sweep writes (``back_up_before_sweep``). Exit codes: 0 ok, 1 the store is
damaged or could not be used, 2 bad input (a PostgreSQL store for a backup, a backup file that exists).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from analog_sweep.cli.output import (
    SafePath,
    emit_rows,
    json_line,
    one_line_errors,
    output_options,
    progress,
    store_option,
)
from analog_sweep.results import (
    BACKUPS_ENV,
    SCHEMA_VERSION,
    Backup,
    StoreError,
    StoreInputError,
    backup_before_run,
    backup_folder,
    backup_store,
    check_store,
    list_backups,
    restore_store,
    salvage_store,
    sqlite_store_path,
    sweeps_a_restore_touches,
    upgrade_store,
)

_store_errors = one_line_errors(StoreInputError, failure=(StoreError, OSError))


@click.group()
def store() -> None:
    """Keep the results store safe: check it for damage, back it up, restore a backup.

    A SQLite store is backed up on its own before every run and resume (into backups/ beside it as NAME-TIME-auto.db,
    the newest $ANALOG_SWEEP_STORE_BACKUPS kept, default 3; 0 turns it off); a backup taken with 'store backup'
    stays until you remove it.

    \b
    Example:
        analog-sweep store check
    """


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def back_up_before_sweep(opened: Any) -> None:
    """The automatic backup before ``run`` or ``resume`` writes to a SQLite store, with one line saying where it went.
    Raises ``StoreDamaged`` for a damaged store: no sweep writes into it."""
    made = backup_before_run(opened)
    if made is not None:
        progress(f"store backed up to {made.path} ({_mb(made.bytes)} in {made.seconds:.1f} s)")


@store.command()
@store_option
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text", show_default=True)
@_store_errors
def check(store_url: str | None, output_format: str) -> None:
    """Check the store for damage; say OK, or what is wrong and how to restore or salvage it (exit code 1).

    SQLite: PRAGMA integrity_check (every page and index) and every text cell read as UTF-8; then the schema
    version and the rows of each table. PostgreSQL checks its own pages as it reads them: here the schema version
    is read and every table counted. Nothing is written.

    \b
    Example:
        analog-sweep store check
        analog-sweep store check --format json
    """
    found = check_store(store_url)
    if output_format == "json":
        click.echo(
            json_line(
                {
                    "store": found.store,
                    "ok": found.ok,
                    "checked": found.how,
                    "schema_version": found.schema_version,
                    **{f"{table}_rows": n for table, n in found.counts.items()},
                    "problems": " | ".join(found.problems),
                    "backups": len(found.backups),
                    "newest_backup": str(found.backups[0]) if found.backups else None,
                    "next_steps": " | ".join(found.next_steps),
                }
            )
        )
    else:
        if found.ok:
            counts = ", ".join(f"{n} {table}" for table, n in found.counts.items())
            click.echo(f"store {found.store}: OK ({found.how}; schema version {found.schema_version}; {counts})")
        else:
            click.echo(f"store {found.store}: DAMAGED ({found.how})")
            for problem in found.problems:
                click.echo(f"  problem: {problem}")
            for step in found.next_steps:
                click.echo(f"  next: {step}")
        if found.backups:
            click.echo(f"backups: {len(found.backups)} in {found.backups[0].parent}, newest {found.backups[0].name}")
    if not found.ok:
        raise click.ClickException(
            f"store {found.store} is damaged ({len(found.problems)} problem(s)): "
            + ("restore its last backup, " if found.backups else "")
            + "see the steps above"
        )


def _backup_rows(made: Backup) -> list[dict[str, Any]]:
    return [
        {"backup": str(made.path), "store": str(made.store), "bytes": made.bytes, "seconds": round(made.seconds, 3)}
    ]


@store.command()
@store_option
@click.option(
    "--to",
    "to",
    type=SafePath(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="Write the backup to this new file instead of backups/ beside the store (where it stays until you remove "
    f"it; of the automatic backups before each run and resume, the newest ${BACKUPS_ENV}, default 3, are kept).",
)
@output_options
@_store_errors
def backup(store_url: str | None, to: Path | None, output_format: str) -> None:
    """Back up a SQLite store: one consistent copy, taken with SQLite's online backup API while sweeps may write.

    The copy is checked (PRAGMA quick_check) before it is kept; a damaged store is not copied (exit code 1). Restore
    it with 'analog-sweep store restore'. A PostgreSQL store is backed up with the server's tools (pg_dump).

    \b
    Example:
        analog-sweep store backup
        analog-sweep store backup --to results-before-fig4.db
    """
    made = backup_store(store_url, to)
    for old in made.removed:
        progress(f"removed the older backup {old}")
    emit_rows(_backup_rows(made), output_format)


@store.command()
@store_option
@output_options
@_store_errors
def backups(store_url: str | None, output_format: str) -> None:
    """List a SQLite store's backups in backups/ beside it, newest first.

    \b
    Example:
        analog-sweep store backups
    """
    path = sqlite_store_path(store_url)
    if path is None:
        raise StoreInputError("backups/ is for a SQLite store: back a PostgreSQL store up with pg_dump")
    rows = [{"backup": str(found), "bytes": found.stat().st_size} for found in list_backups(path)]
    if not rows:
        progress(f"no backups of {path} in {backup_folder(path)}")
    emit_rows(rows, output_format, columns=("backup", "bytes"))


@store.command()
@store_option
@click.option(
    "--from",
    "source",
    type=SafePath(dir_okay=False, path_type=Path),
    metavar="BACKUP",
    help="The backup to restore [default: the newest sound one in backups/ beside the store].",
)
@output_options
@_store_errors
def restore(store_url: str | None, source: Path | None, output_format: str) -> None:
    """Put a backup in place of a SQLite store; the file it replaces is kept beside it as NAME.damaged-TIME.

    The backup is checked first (PRAGMA quick_check, and its text as UTF-8). Refused while a driver runs a sweep of
    the store, even one the damaged file no longer lists. Sweeps that ran after the backup was taken lose their later
    rows: 'analog-sweep resume SWEEP' records them again from the sweep's checkpoints; a sweep the backup does not
    list at all is named, to be run again.

    \b
    Example:
        analog-sweep store restore
        analog-sweep store restore --from results-before-fig4.db
    """
    from analog_sweep.orchestrator import driver_alive

    for name, folder in sweeps_a_restore_touches(store_url, source):
        if driver_alive(folder):
            path = sqlite_store_path(store_url)
            raise StoreInputError(f"sweep {name} is running on store {path}: stop it before restoring the store")
    restored = restore_store(store_url, source)
    for kept in restored.kept:
        progress(f"kept the replaced file as {kept}")
    progress(f"restored {restored.store} from {restored.source}")
    for name in restored.not_in_backup:
        replaced = restored.kept[0] if restored.kept else "the replaced file"
        command = restored.run_commands.get(name)
        again = f"run it again as it was run, {command}," if command else "run its spec again"
        progress(f"sweep {name} is not in the backup: its rows are only in {replaced}; {again} to record it")
    emit_rows(
        [{"store": str(restored.store), "restored_from": str(restored.source), "seconds": round(restored.seconds, 3)}],
        output_format,
    )


@store.command()
@store_option
@click.option(
    "--to",
    "to",
    required=True,
    type=SafePath(dir_okay=False, path_type=Path),
    metavar="FILE",
    help="The new store file to copy the readable rows into (must not exist).",
)
@output_options
@_store_errors
def salvage(store_url: str | None, to: Path, output_format: str) -> None:
    """Copy every row a damaged SQLite store still holds into a new store, for when there is no backup.

    Each table is read in order; rows on damaged pages are skipped and counted, and text that is not UTF-8 is kept
    with U+FFFD in place of the bad bytes. Check the new store, then put it in place with 'analog-sweep store
    restore --from FILE'; 'analog-sweep resume SWEEP' records a sweep's lost trials again from its checkpoints.

    \b
    Example:
        analog-sweep store salvage --to sweep-store/results-salvaged.db
    """
    found = salvage_store(store_url, to)
    for key, count in found.repaired.items():
        progress(f"{key}: {count} text cell(s) were not UTF-8, kept with U+FFFD in place of the bad bytes")
    lost = sum(found.unreadable.values())
    said = [f"about {lost} rows were on damaged pages"] if lost else []
    said += [f"table {table}: the rows after a damaged page could not be read" for table in sorted(found.cut)]
    progress(
        f"salvaged {sum(found.copied.values())} rows of {found.source} into {found.target}"
        + (f"; {'; '.join(said)}" if said else "")
    )
    for name in found.reopened:
        progress(
            f"sweep {name} lost rows: marked interrupted; 'analog-sweep resume {name}' (on the restored store) records "
            "them again from its journal and checkpoints"
        )
    rows = [
        {
            "table": table,
            "rows_copied": copied,
            "rows_lost": "unknown" if table in found.cut else found.unreadable.get(table, 0),
        }
        for table, copied in found.copied.items()
    ]
    emit_rows(rows, output_format)


@store.command()
@store_option
@_store_errors
def upgrade(store_url: str | None) -> None:
    """Upgrade a store of an older schema version to this analog-sweep's, as run and resume do when they open it.

    Commands that only read (results, status, report, dashboard, store check) never change a store: they read an
    older SQLite store from an upgraded private copy, and refuse an older PostgreSQL one, naming this command. Run it
    as a role that may change the store's tables; upgrades started at once wait for each other. A PostgreSQL role
    that may only read needs SELECT on any table an upgrade adds (GRANT SELECT ON ALL TABLES IN SCHEMA ..., or
    ALTER DEFAULT PRIVILEGES beforehand).

    \b
    Example:
        analog-sweep store upgrade
    """
    where, found = upgrade_store(store_url)
    if found == SCHEMA_VERSION:
        progress(f"store {where}: already at schema version {SCHEMA_VERSION}, nothing to upgrade")
    else:
        progress(f"store {where}: upgraded from schema version {found} to {SCHEMA_VERSION}")
