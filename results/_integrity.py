"""Keeping a results store safe: telling a damaged database from other failures, checking it, backing it up, restoring.

A SQLite store is one file; a disk or a copy that fails leaves pages that are malformed (SQLite's SQLITE_CORRUPT,
"database disk image is malformed") or text that is not UTF-8 (Python's "Could not decode to UTF-8 column ..."), and
every command that reads the damaged part fails there. ``damage_reason`` recognises both (and PostgreSQL's
data_corrupted and index_corrupted states) wherever they surface, so ``database_errors`` raises ``StoreDamaged`` with
the file and the next step.

The next step is a backup: ``backup_store`` copies a SQLite store with SQLite's online backup API
(``sqlite3.Connection.backup``, all pages in one step, so the copy is one consistent snapshot even while a sweep
writes), checks the copy (``PRAGMA quick_check``) and renames it into place, into ``backups/`` beside the store
(``<stem>-<UTC time>.db``, the newest ``$ANALOG_SWEEP_STORE_BACKUPS`` kept, default 3) or to a file named.
``run`` and ``resume`` call ``backup_before_run`` before a sweep writes, so the last good state is always there.
``check_store`` runs ``PRAGMA integrity_check`` and reads every text cell; ``restore_store`` puts a backup in
place of a damaged store, keeping the damaged file beside it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from analog_sweep.results._engine import (
    first_line,
    is_memory_sqlite,
    label,
    resolve_url,
    sqlite_busy_seconds,
    sqlite_read_target,
)
from analog_sweep.results._errors import BadStoreURL, StoreDamaged, StoreError, StoreInputError, StoreMissing

BACKUPS_ENV = "ANALOG_SWEEP_STORE_BACKUPS"  # how many automatic backups to keep; 0 turns them off
DEFAULT_BACKUPS_KEPT = 3
BACKUP_FOLDER = "backups"  # beside the store's file
AUTOMATIC_TAG = "-auto"  # in the name of a backup taken before a run or resume (``backup_before_run``)
# PostgreSQL's SQLSTATEs for damaged pages: data_corrupted, index_corrupted.
POSTGRES_DAMAGE_STATES = ("XX001", "XX002")
# The problems ``check_store`` lists at most (``PRAGMA integrity_check(N)``).
MAX_PROBLEMS = 20
_DECODE_ERROR = re.compile(r"Could not decode to UTF-8 column '([^']*)'")
_DAMAGE_TEXTS = ("database disk image is malformed", "malformed database schema")
_STAMP = "%Y%m%dT%H%M%S"


def damage_reason(exc: BaseException | None) -> str | None:
    """Why ``exc`` (a SQLAlchemy, sqlite3 or psycopg error) says the database itself is damaged, in a few words; None
    when it says something else (locked, unreachable, bad SQL)."""
    orig = getattr(exc, "orig", None) if isinstance(exc, sa.exc.DBAPIError) else exc
    if orig is None:
        return None
    text = str(orig)
    decode = _DECODE_ERROR.search(text)
    if decode:  # the text itself, which is not UTF-8, is left out: it may hold any byte, line breaks included
        return f"column {decode.group(1)!r} holds text that is not UTF-8"
    code = getattr(orig, "sqlite_errorcode", None)
    if (isinstance(code, int) and code & 0xFF == sqlite3.SQLITE_CORRUPT) or any(t in text for t in _DAMAGE_TEXTS):
        return first_line(orig)
    if getattr(orig, "sqlstate", None) in POSTGRES_DAMAGE_STATES:
        return first_line(orig)
    return None


def store_file(url: sa.URL) -> Path | None:
    """The file of a SQLite store (absolute), or None for PostgreSQL and in-memory SQLite."""
    if url.get_backend_name() != "sqlite" or is_memory_sqlite(url):
        return None
    return Path(str(url.database)).expanduser().absolute()


def sqlite_store_path(url: str | None) -> Path | None:
    """The file of the SQLite store that ``url`` names (``resolve_url``'s default included), or None for PostgreSQL
    and in-memory SQLite."""
    return store_file(resolve_url(url))


def _salvaged_path(path: Path) -> Path:
    return path.with_name(f"{path.stem}-salvaged.db")


def _salvage_command(url: sa.URL, path: Path) -> str:
    return f"analog-sweep store salvage --store {_store_arg(url)} --to {shlex.quote(str(_salvaged_path(path)))}"


def _store_arg(url: sa.URL) -> str:
    return shlex.quote(label(url))


def damaged(url: sa.URL, reason: str) -> StoreDamaged:
    """The one-line error for a damaged store: which store, why, and what to do next."""
    path = store_file(url)
    check = f"'analog-sweep store check --store {_store_arg(url)}'"
    if path is None:
        return StoreDamaged(
            f"store {label(url)} is damaged ({reason}): run {check}, and restore the database from your server's "
            "backup (pg_dump, or the server's base backup)"
        )
    backups = list_backups(path)
    if backups:
        step = (
            f"restore its last backup ({backups[0].name}) with 'analog-sweep store restore --store {_store_arg(url)}'"
        )
    else:
        step = (
            f"no backup of it in {backup_folder(path)}: salvage its readable rows with '{_salvage_command(url, path)}'"
        )
    return StoreDamaged(f"store {path} is damaged ({reason}): run {check}; {step}")


# ---- backups -----------------------------------------------------------------------------------------------------


def backup_folder(path: Path) -> Path:
    """Where the backups of the SQLite store at ``path`` go: ``backups/`` beside it."""
    return path.parent / BACKUP_FOLDER


def _backup_pattern(path: Path) -> re.Pattern[str]:
    """A backup's name: the store's stem, the UTC time, and ``-auto`` for one taken before a run or resume."""
    return re.compile(rf"{re.escape(path.stem)}-\d{{8}}T\d{{6}}\.\d{{3}}Z({re.escape(AUTOMATIC_TAG)})?\.db")


def is_automatic_backup(backup: Path) -> bool:
    """Whether ``backup`` (a name ``list_backups`` gives) was taken before a run or resume: only those are rotated."""
    return backup.name.endswith(f"{AUTOMATIC_TAG}.db")


def list_backups(path: Path) -> list[Path]:
    """The backups of the store at ``path`` in its backup folder, newest first."""
    folder = backup_folder(path)
    try:
        names = [entry.name for entry in folder.iterdir()]
    except OSError:
        return []
    pattern = _backup_pattern(path)
    return [folder / name for name in sorted((n for n in names if pattern.fullmatch(n)), reverse=True)]


def backups_kept() -> int:
    """How many automatic backups a store keeps: ``$ANALOG_SWEEP_STORE_BACKUPS``, else ``DEFAULT_BACKUPS_KEPT``."""
    text = os.environ.get(BACKUPS_ENV, "").strip()
    if not text:
        return DEFAULT_BACKUPS_KEPT
    try:
        kept = int(text)
    except ValueError:
        kept = -1
    if not 0 <= kept <= 1000:
        raise BadStoreURL(f"{BACKUPS_ENV} must be a whole number from 0 (no automatic backups) to 1000, got {text!r}")
    return kept


@dataclass(frozen=True)
class Backup:
    """A backup written: where, from which store, its size and how long it took."""

    path: Path
    store: Path
    bytes: int
    seconds: float
    removed: tuple[Path, ...] = ()  # older automatic backups removed to keep the newest ``backups_kept()``


def _new_backup_path(path: Path, automatic: bool) -> Path:
    folder = backup_folder(path)
    tag = AUTOMATIC_TAG if automatic else ""
    while True:
        now = datetime.now(UTC)
        candidate = folder / f"{path.stem}-{now.strftime(_STAMP)}.{now.microsecond // 1000:03d}Z{tag}.db"
        if not candidate.exists():
            return candidate
        time.sleep(0.001)


def _sqlite_store(url: str | sa.URL | None, what: str) -> tuple[sa.URL, Path]:
    resolved = url if isinstance(url, sa.URL) else resolve_url(url)
    path = store_file(resolved)
    if path is None:
        if is_memory_sqlite(resolved):
            raise StoreInputError(f"{what} needs a store in a file, not in memory")
        raise StoreInputError(
            f"{what} is for a SQLite store; {label(resolved)} is PostgreSQL: back it up with the server's tools, "
            "e.g. pg_dump -Fc -f store.dump DATABASE, and restore with pg_restore"
        )
    if not path.is_file():
        raise StoreMissing(f"no store at {path}")
    return resolved, path


def backup_store(
    url: str | sa.URL | None, to: str | Path | None = None, *, keep: int | None = None, automatic: bool = False
) -> Backup:
    """Copy the SQLite store at ``url`` into a new file, consistently, while sweeps may be writing it.

    The copy is SQLite's online backup of every page in one step (one read transaction: a snapshot of the last commit,
    which a writer in WAL mode does not wait for), written to a temporary name, checked (``PRAGMA quick_check`` and
    its text as UTF-8), then renamed into place: ``to``, which must not exist, or a new file in ``backups/`` beside
    the store. A backup there that someone asked for stays until they remove it; an ``automatic`` one (taken before a
    run or resume, named ``...-auto.db``) is rotated: only the newest ``keep`` automatic backups stay (default
    ``backups_kept()``; 0 keeps them all). Raises ``StoreDamaged`` (and writes nothing) when the copy is damaged: the
    store is, and its good backups stay.
    """
    resolved, path = _sqlite_store(url, "a backup")
    if to is not None:
        target = Path(to).expanduser().absolute()
        if target.exists():
            raise StoreInputError(f"{target} exists: name a new file, or remove it first")
        if not target.parent.is_dir():
            raise StoreInputError(f"no folder {target.parent} for the backup {target.name}")
    else:
        backup_folder(path).mkdir(exist_ok=True)
        target = _new_backup_path(path, automatic)
    started = time.perf_counter()
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        _copy(path, partial, resolved)
        problem = _quick_check(partial)
        if problem is not None:
            raise damaged(resolved, problem)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    removed: tuple[Path, ...] = ()
    if to is None and automatic:
        kept = backups_kept() if keep is None else keep
        if kept > 0:
            removed = tuple([backup for backup in list_backups(path) if is_automatic_backup(backup)][kept:])
            for old in removed:
                old.unlink(missing_ok=True)
    return Backup(target, path, target.stat().st_size, seconds, removed)


def _copy(source: Path, target: Path, url: sa.URL) -> None:
    """SQLite's online backup of ``source`` into the new file ``target`` (a plain rollback-journal file, synced)."""
    try:
        database, is_uri = sqlite_read_target(source)
        reader = sqlite3.connect(database, uri=is_uri, timeout=sqlite_busy_seconds())
        try:
            writer = sqlite3.connect(str(target))
            try:
                reader.backup(writer)  # pages=-1: every page in one step, one consistent snapshot
                writer.execute("PRAGMA journal_mode=DELETE")  # one self-contained file; a writer turns WAL on again
            finally:
                writer.close()
        finally:
            reader.close()
    except sqlite3.Error as exc:
        reason = damage_reason(exc)
        if reason is not None:
            raise damaged(url, reason) from None
        raise StoreError(f"cannot back up store {source}: {first_line(exc)}") from None
    with open(target, "rb+") as written:
        os.fsync(written.fileno())


def _quick_check(path: Path) -> str | None:
    """None when ``path`` is sound as far as a backup must be, else its first finding: ``PRAGMA quick_check`` (every
    page and record, not the indexes against their tables), then every cell of its text columns as UTF-8, which
    quick_check does not look inside (``_scan_tables``)."""
    try:
        connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        connection.text_factory = bytes
        try:
            rows = [row[0].decode("utf-8", "replace") for row in connection.execute("PRAGMA quick_check(2)")]
            # Its findings may start with a header line ("*** in database main ***") before the first problem.
            findings = [row for row in rows if row != "ok" and not row.startswith("***")]
            if rows != ["ok"]:
                return f"quick_check: {first_line(Exception(findings[0] if findings else rows[0]))}"
            found = _scan_tables(connection, text_only=True)
        finally:
            connection.close()
    except sqlite3.Error as exc:
        return first_line(exc)
    return found[0] if found else None


def backup_before_run(store: Any) -> Backup | None:
    """The automatic backup of a SQLite store before a sweep writes to it (``run``, ``resume``): none for PostgreSQL
    or memory, a store without sweeps (nothing to keep yet), or ``$ANALOG_SWEEP_STORE_BACKUPS=0``.
    Raises ``StoreDamaged`` for a damaged store, so no sweep writes into one and its good backups stay."""
    url = store.engine.url
    if store_file(url) is None or backups_kept() == 0:
        return None
    if not store.sweep_progress():
        return None
    return backup_store(url, automatic=True)


# ---- the drivers writing a store --------------------------------------------------------------------------------


def _drivers_file(path: Path) -> Path:
    """The file beside a SQLite store that its sweeps' drivers hold a shared lock on (``store_in_use``)."""
    return path.with_name(f".{path.name}.drivers")


@contextlib.contextmanager
def store_in_use(url: sa.URL) -> Iterator[None]:
    """Mark the SQLite store at ``url`` as written by a sweep's driver while the block runs: a shared ``flock`` on
    ``.<name>.drivers`` beside it, held by every driver at once and released when the block ends or the process dies.
    ``restore_store`` refuses while any driver holds it, whatever it can read of the store itself (a damaged store
    may not even list its sweeps). Nothing for PostgreSQL or a store in memory, or where the folder takes no lock file.

    Raises:
        StoreInputError: While the store is being restored.
    """
    path = store_file(url)
    try:
        handle = open(_drivers_file(path), "a+") if path is not None else None  # noqa: SIM115 (held for the block)
    except OSError:  # a folder that takes no lock file: nothing to mark
        handle = None
    with handle or contextlib.nullcontext():
        if handle is not None:
            _lock_drivers_file(
                handle,
                fcntl.LOCK_SH,
                f"store {path} is being restored: start the sweep again once 'analog-sweep store restore' is done",
            )
        yield


def _lock_drivers_file(handle: Any, mode: int, refusal: str) -> None:
    """``flock`` the open drivers file (``_drivers_file``) with ``mode``, shared for a driver or exclusive for a
    restore, without waiting. Raises ``StoreInputError`` with ``refusal`` when the other kind holds it."""
    try:
        fcntl.flock(handle, mode | fcntl.LOCK_NB)
    except BlockingIOError:
        raise StoreInputError(refusal) from None


# ---- checking and restoring --------------------------------------------------------------------------------------


@dataclass
class Check:
    """What ``check_store`` found: ``ok``, the problems (empty when ok), row counts, and the next steps."""

    store: str
    ok: bool
    how: str  # what was checked
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    schema_version: int | None = None
    backups: list[Path] = field(default_factory=list)
    next_steps: list[str] = field(default_factory=list)


COUNTED = ("sweeps", "points", "trials", "epochs")


def check_store(url: str | sa.URL | None) -> Check:
    """Check the store at ``url`` and say what to do if it is damaged.

    SQLite: ``PRAGMA integrity_check`` (every page, every index against its table), then every text cell of every
    table is read as UTF-8 (integrity_check does not look inside text); nothing is written. PostgreSQL checks its own
    pages as it reads them (and with data checksums, where the server has them on): here the schema version is read
    and every table counted, so a damaged page the server knows of is reported.
    """
    resolved = url if isinstance(url, sa.URL) else resolve_url(url)
    path = store_file(resolved)
    if path is None:
        return _check_postgresql(resolved)
    if not path.is_file():
        raise StoreMissing(f"no store at {path}")
    result = Check(str(path), ok=True, how="integrity_check and UTF-8 text", backups=list_backups(path))
    try:
        database, is_uri = sqlite_read_target(path)
        connection = sqlite3.connect(database, uri=is_uri, timeout=sqlite_busy_seconds())
    except sqlite3.Error as exc:
        raise StoreError(f"cannot open store {path}: {first_line(exc)}") from None
    try:
        connection.text_factory = bytes
        try:
            rows = [first_line(Exception(row[0].decode("utf-8", "replace"))) for row in _pragma_check(connection)]
        except sqlite3.DatabaseError as exc:  # a page too damaged to list what is wrong: the table scan says where
            rows = [first_line(exc)]
        if rows != ["ok"]:
            result.problems += rows
        result.problems += _scan_tables(connection)
        if not result.problems:
            result.schema_version = connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
            for table in COUNTED:
                result.counts[table] = connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    except sqlite3.Error as exc:
        result.problems.append(first_line(exc))
    finally:
        connection.close()
    result.ok = not result.problems
    if not result.ok:
        result.next_steps = _sqlite_next_steps(resolved, path, result.backups)
    return result


def _pragma_check(connection: sqlite3.Connection) -> list[tuple[bytes]]:
    return connection.execute(f"PRAGMA integrity_check({MAX_PROBLEMS})").fetchall()


# Declared types whose values SQLite stores as numbers: nothing in them to decode (``text_only``).
_NUMERIC_TYPES = ("INT", "FLOAT", "REAL", "DOUBLE", "NUMERIC", "BOOL")


def _scan_tables(connection: sqlite3.Connection, *, text_only: bool = False) -> list[str]:
    """Read every row of every table: one line per table that cannot be read to its end (naming it, which
    integrity_check may not), and per table and column holding text that is not UTF-8, with how many rows.
    ``text_only`` reads only the columns that may hold text (not the numeric ones: most of ``epochs``), the check a
    backup gets before it is kept."""
    found = []
    tables = [
        row[0].decode()
        for row in connection.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
        )
    ]
    for table in tables:
        bad: dict[str, int] = {}
        try:
            columns = [
                row[1].decode()
                for row in connection.execute(f'PRAGMA table_info("{table}")')
                if not (text_only and any(kind in row[2].decode().upper() for kind in _NUMERIC_TYPES))
            ]
            if not columns:
                continue
            selected = ", ".join(f'"{c}"' for c in columns)
            for row in connection.execute(f'SELECT {selected} FROM "{table}"'):
                for column, value in zip(columns, row):
                    if isinstance(value, bytes):
                        try:
                            value.decode("utf-8")
                        except UnicodeDecodeError:
                            bad[column] = bad.get(column, 0) + 1
        except sqlite3.DatabaseError as exc:
            found.append(f"table {table}: cannot be read to its end: {first_line(exc)}")
        found += [f"table {table}, column {column}: text that is not UTF-8 in {n} row(s)" for column, n in bad.items()]
    return found


def _sqlite_next_steps(url: sa.URL, path: Path, backups: Sequence[Path]) -> list[str]:
    store = _store_arg(url)
    steps = []
    if backups:
        steps.append(
            f"restore the last backup ({backups[0]}): analog-sweep store restore --store {store} "
            f"(the damaged file is kept beside it as {path.name}.damaged-TIME; --from FILE restores another backup)"
        )
    else:
        steps.append(f"no backup of this store in {backup_folder(path)}")
    steps.append(
        f"salvage the rows it still holds into a new store: {_salvage_command(url, path)}; then put that in place "
        f"with analog-sweep store restore --store {store} --from {shlex.quote(str(_salvaged_path(path)))}"
    )
    return steps


def _check_postgresql(url: sa.URL) -> Check:
    from analog_sweep.results._store import open_store

    result = Check(label(url), ok=True, how="schema version and row counts (PostgreSQL checks its own pages)")
    try:
        with open_store(url.render_as_string(hide_password=False), read_only=True) as store:
            with store.transaction() as connection:
                result.schema_version = connection.scalar(sa.text("SELECT max(version) FROM schema_version"))
                for table in COUNTED:
                    result.counts[table] = connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
    except StoreDamaged as exc:
        result.ok = False
        result.problems.append(str(exc))
        result.next_steps.append(
            "restore the database from your server's backup (pg_restore of a pg_dump, or the server's base backup); "
            "the server's amcheck extension (pg_amcheck) locates damaged tables and indexes"
        )
    return result


@dataclass(frozen=True)
class Restored:
    """A restore done: the store's file, the backup it now holds, and where the file it replaced was kept."""

    store: Path
    source: Path
    kept: tuple[Path, ...]
    seconds: float
    # Sweeps the replaced file lists and the backup does not: their rows are only in the kept file.
    not_in_backup: tuple[str, ...] = ()
    # The command line that ran each of those, where the replaced file records one (its last ``run``).
    run_commands: dict[str, str] = field(default_factory=dict)


def sweeps_a_restore_touches(url: str | sa.URL | None, source: str | Path | None = None) -> list[tuple[str, str]]:
    """(name, experiment path) of each sweep listed in the SQLite store at ``url`` or in the backup a restore would
    put in its place (``source``, else the newest backup), as far as each file can be read (a damaged one may not):
    the sweeps whose drivers must not be running while the store is restored. Empty for a store that is not a
    SQLite file."""
    resolved = url if isinstance(url, sa.URL) else resolve_url(url)
    path = store_file(resolved)
    if path is None:
        return []
    files = [path, *([Path(source).expanduser()] if source is not None else list_backups(path)[:1])]
    return sorted({row for database in files for row in _sweep_folders(database)})


def _sweep_folders(database: Path) -> list[tuple[str, str]]:
    """(name, experiment_path, "" for none) of the sweeps the SQLite file ``database`` lists; none when it cannot be
    read."""
    return [(str(name), str(folder)) for name, folder in _rows_if_readable(database, _SWEEP_FOLDERS)]


_SWEEP_FOLDERS = "SELECT name, coalesce(experiment_path, '') FROM sweeps"


def _run_commands(database: Path) -> dict[str, str]:
    """The command line of each sweep's last ``run`` that the SQLite file ``database`` records (passwords already
    hidden); none when it cannot be read."""
    rows = _rows_if_readable(database, _RUN_COMMANDS)
    return {str(sweep): str(command) for sweep, command in rows}  # the last run of a sweep wins


_RUN_COMMANDS = "SELECT sweep, command FROM sweep_runs WHERE kind = 'run' AND command IS NOT NULL ORDER BY started_at"


def _rows_if_readable(database: Path, query: str) -> list[tuple]:
    """``query``'s rows from the SQLite file ``database``, opened read-only; none when it cannot be read (a damaged
    or missing file)."""
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        try:
            return connection.execute(query).fetchall()
        finally:
            connection.close()
    except sqlite3.Error:
        return []


def restore_store(url: str | sa.URL | None, source: str | Path | None = None) -> Restored:
    """Put a backup in place of the SQLite store at ``url`` (``source``, else its newest backup that passes
    ``PRAGMA quick_check`` and holds only UTF-8 text); the file it replaces, with its ``-wal`` and ``-shm``, is kept
    beside it as ``<name>.damaged-<UTC time>``. Refused (``StoreInputError``) while a sweep's driver writes the store
    (``store_in_use``), or when there is no usable backup; ``Restored.not_in_backup`` names the sweeps the replaced
    file lists and the backup does not."""
    resolved = url if isinstance(url, sa.URL) else resolve_url(url)
    path = store_file(resolved)
    if path is None:
        _sqlite_store(resolved, "a restore")  # raises the PostgreSQL / memory refusal
        raise AssertionError("unreachable")
    started = time.perf_counter()
    if source is not None:
        chosen = Path(source).expanduser().absolute()
        if not chosen.is_file():
            raise StoreInputError(f"no backup at {chosen}")
        problem = _quick_check(chosen)
        if problem is not None:
            raise StoreInputError(f"backup {chosen} is damaged too ({problem}): restore another one")
    else:
        chosen = next((candidate for candidate in list_backups(path) if _quick_check(candidate) is None), None)
        if chosen is None:
            raise StoreInputError(
                f"no sound backup of {path} in {backup_folder(path)}: "
                f"salvage its readable rows with '{_salvage_command(resolved, path)}'"
            )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.restoring-{os.getpid()}")
    with open(_drivers_file(path), "a+") as drivers:  # held exclusively: no sweep starts writing the store meanwhile
        _lock_drivers_file(
            drivers,
            fcntl.LOCK_EX,
            f"a sweep's driver is writing store {path}: stop it (Ctrl-C, or 'analog-sweep status' names the running "
            "sweeps) before restoring the store",
        )
        before = {name for name, _ in _sweep_folders(path)}
        try:
            _copy(chosen, partial, resolved)
            stamp = datetime.now(UTC).strftime(_STAMP) + "Z"
            kept = []
            for suffix in ("", "-wal", "-shm"):  # a log left by the damaged file must never be applied to the backup
                old = path.with_name(path.name + suffix)
                if old.exists():
                    aside = path.with_name(f"{path.name}.damaged-{stamp}{suffix}")
                    os.replace(old, aside)
                    kept.append(aside)
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
    missing = tuple(sorted(before - {name for name, _ in _sweep_folders(path)}))
    commands = _run_commands(kept[0]) if missing and kept else {}
    return Restored(
        path,
        chosen,
        tuple(kept),
        time.perf_counter() - started,
        missing,
        {name: commands[name] for name in missing if name in commands},
    )


# ---- salvage -----------------------------------------------------------------------------------------------------


@dataclass
class Salvaged:
    """What ``salvage_store`` copied: per table, rows copied and rows it could not read; text cells it repaired."""

    source: Path
    target: Path
    copied: dict[str, int] = field(default_factory=dict)
    unreadable: dict[str, int] = field(default_factory=dict)  # rows lost on damaged pages (from the rowids skipped)
    repaired: dict[str, int] = field(default_factory=dict)  # "table.column": text cells that were not UTF-8
    cut: set[str] = field(default_factory=set)  # tables whose rows after a damaged page could not be read at all
    reopened: list[str] = field(default_factory=list)  # sweeps that lost rows: marked interrupted, for a resume


_BATCH = 5000
_LARGEST_ROWID = 2**62


def salvage_store(url: str | sa.URL | None, to: str | Path) -> Salvaged:
    """Copy every row that can still be read from the damaged SQLite store at ``url`` into a new store at ``to``.

    The new store gets this version's schema (the damaged one must have the same schema version, where that can be
    read); each table is read in rowid order, and where a damaged page stops the read, the rows it holds are skipped
    (the next readable rowid is found by bisection) and counted. Text that is not UTF-8 is kept with U+FFFD in place
    of the bad bytes, and counted. The result is then a sound store (``check_store``); the rows it lacks can come
    back from a backup, or from the sweeps' checkpoints with ``analog-sweep resume``.
    """
    from analog_sweep.results._schema import SCHEMA_VERSION
    from analog_sweep.results._store import open_store

    _, source = _sqlite_store(url, "a salvage")
    target = Path(to).expanduser().absolute()
    if target.exists():
        raise StoreInputError(f"{target} exists: name a new file for the salvaged store")
    if not target.parent.is_dir():
        raise StoreInputError(f"no folder {target.parent} for the salvaged store {target.name}")
    reader = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    reader.text_factory = bytes
    try:
        try:
            version = reader.execute("SELECT max(version) FROM schema_version").fetchone()[0]
        except sqlite3.Error:
            version = None
        if version is not None and version != SCHEMA_VERSION:
            raise StoreInputError(
                f"store {source} has schema version {version}, this analog-sweep writes {SCHEMA_VERSION}: salvage it "
                "with the analog-sweep version that wrote it"
            )
        open_store(f"sqlite:///{target}").close()  # this version's schema, and its version row
        writer = sqlite3.connect(str(target))
        try:
            writer.execute("PRAGMA foreign_keys=OFF")  # a row whose parent was on a damaged page is kept too
            found = Salvaged(source, target)
            tables = [row[0] for row in writer.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                if table == "schema_version" or table.startswith("sqlite_"):
                    continue
                columns = [row[1] for row in writer.execute(f'PRAGMA table_info("{table}")')]
                _salvage_table(reader, writer, table, columns, found)
            found.reopened = _reopen_incomplete(writer)
            writer.commit()
            writer.execute("PRAGMA journal_mode=WAL")
        finally:
            writer.close()
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    finally:
        reader.close()
    return found


def _reopen_incomplete(writer: sqlite3.Connection) -> list[str]:
    """Make the salvaged rows a store a sweep can be resumed from; return the sweeps that lost rows.

    Rows whose parent was on a damaged page (epochs of a lost trial, trials of a lost point, anything of a lost sweep)
    are removed: without it they cannot be read as results. A sweep that lost such rows or a point's chosen trial is
    marked ``interrupted`` and those points are opened again (no chosen trial), so ``analog-sweep resume`` records
    the lost trials again from the journal and the checkpoints and chooses again. Epochs lost from a trial that is
    still there are only counted (``unreadable``): its summary and its choice stand."""
    lost_by_sweep: set[str] = set()
    orphans = {
        "epochs": "trial_id NOT IN (SELECT trial_id FROM trials)",
        "trials": "NOT EXISTS (SELECT 1 FROM points p WHERE p.sweep = trials.sweep AND p.point_key = trials.point_key)",
        "points": "sweep NOT IN (SELECT name FROM sweeps)",
    }
    for table, where in orphans.items():
        if table != "epochs":
            lost_by_sweep.update(row[0] for row in writer.execute(f"SELECT DISTINCT sweep FROM {table} WHERE {where}"))
        writer.execute(f"DELETE FROM {table} WHERE {where}")
    unchosen = "SELECT sweep, point_key FROM points WHERE chosen_trial_id NOT IN (SELECT trial_id FROM trials)"
    for sweep, point_key in writer.execute(unchosen).fetchall():
        lost_by_sweep.add(sweep)
        writer.execute(
            "UPDATE points SET status = 'running', chosen_trial_id = NULL, chosen_epoch = NULL, "
            "chosen_test_error = NULL, chosen_validation_error = NULL WHERE sweep = ? AND point_key = ?",
            (sweep, point_key),
        )
    reopened = sorted(
        name if isinstance(name, str) else name.decode("utf-8", "replace")
        for (name,) in writer.execute("SELECT name FROM sweeps").fetchall()
        if (name if isinstance(name, str) else name.decode("utf-8", "replace")) in lost_by_sweep
    )
    for name in reopened:
        writer.execute("UPDATE sweeps SET status = 'interrupted' WHERE name = ? AND status != 'failed'", (name,))
    return reopened


def _salvage_table(
    reader: sqlite3.Connection, writer: sqlite3.Connection, table: str, columns: list[str], found: Salvaged
) -> None:
    try:
        have = {row[1].decode() for row in reader.execute(f'PRAGMA table_info("{table}")')}
    except sqlite3.Error:
        have = set()
    shared = [c for c in columns if c in have]
    if not shared:
        found.unreadable[table] = found.unreadable.get(table, 0)
        return
    select = f'SELECT rowid, {", ".join(f"{chr(34)}{c}{chr(34)}" for c in shared)} FROM "{table}" WHERE rowid > ? '
    insert = f'INSERT OR IGNORE INTO "{table}" ({", ".join(f"{chr(34)}{c}{chr(34)}" for c in shared)}) VALUES '
    insert += f"({', '.join('?' for _ in shared)})"
    copied = lost = 0
    last = -_LARGEST_ROWID
    while True:
        rows, failed = _read_from(reader, select, last)
        for row in rows:
            writer.execute(insert, [_text(value, table, column, found) for column, value in zip(shared, row[1:])])
        copied += len(rows)
        if rows:
            last = rows[-1][0]
        if not failed:
            if len(rows) < _BATCH:
                break
            continue
        resumed = _next_readable(reader, select, last)
        if resumed is None:  # nothing after the damaged page reads: how many rows it held is unknown
            found.cut.add(table)
            break
        lost += max(1, resumed - last - 1)
        last = resumed
    found.copied[table] = copied
    if lost:
        found.unreadable[table] = lost


def _read_from(reader: sqlite3.Connection, select: str, last: int) -> tuple[list[tuple], bool]:
    """Up to a batch of rows after rowid ``last``, and whether a damaged page stopped the read."""
    rows: list[tuple] = []
    try:
        for row in reader.execute(select + f"ORDER BY rowid LIMIT {_BATCH}", (last,)):
            rows.append(row)
    except sqlite3.DatabaseError:
        return rows, True
    return rows, False


def _readable_after(reader: sqlite3.Connection, select: str, rowid: int) -> bool:
    try:
        reader.execute(select + "ORDER BY rowid LIMIT 1", (rowid,)).fetchall()
    except sqlite3.DatabaseError:
        return False
    return True


def _next_readable(reader: sqlite3.Connection, select: str, last: int) -> int | None:
    """The smallest rowid ``k > last`` from which the table reads again (rows ``last+1 .. k`` lie on damaged pages),
    found by doubling then bisection; None when nothing after ``last`` reads."""
    step = 1
    while not _readable_after(reader, select, last + step):
        step *= 2
        if last + step > _LARGEST_ROWID:
            return None
    low, high = last + step // 2, last + step  # reading after low fails (or low == last), after high works
    while high - low > 1:
        middle = (low + high) // 2
        if _readable_after(reader, select, middle):
            high = middle
        else:
            low = middle
    return high


def _text(value: Any, table: str, column: str, found: Salvaged) -> Any:
    if not isinstance(value, bytes):
        return value
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        key = f"{table}.{column}"
        found.repaired[key] = found.repaired.get(key, 0) + 1
        return value.decode("utf-8", "replace")
