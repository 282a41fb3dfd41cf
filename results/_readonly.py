"""Read-only SQL for users: refused at the database, not just by looking at the text.

Three layers, each enough alone against the common cases:

1. The statement must start with a reading keyword (SELECT, WITH, VALUES, TABLE, EXPLAIN, SHOW, PRAGMA);
   this only gives a clear message early.
2. Exactly one statement runs: SQLite's driver refuses a second one, and PostgreSQL prepares the text as a
   server-side statement, which cannot hold two. So ``SELECT 1; DROP TABLE x`` (or ``; COMMIT; ...``) fails.
3. The database itself cannot write. SQLite: a separate connection opened ``mode=ro``, with
   ``PRAGMA query_only`` and an authorizer that allows only reads (no ATTACH, no PRAGMA but schema lookups).
   PostgreSQL: a ``READ ONLY`` transaction, always rolled back, on a connection thrown away afterwards
   (so a ``set_config`` cannot outlive it). A writing CTE (``WITH d AS (DELETE ...) SELECT``) fails there.

On PostgreSQL, a login that may run superuser functions can still do harm that is not a write to the
database (e.g. ``pg_terminate_backend``); point ``--store`` at a read-only role for shared servers.
"""

from __future__ import annotations

import itertools
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import sqlalchemy as sa

from analog_sweep.results._engine import first_line, is_memory_sqlite, label, sqlite_read_target
from analog_sweep.results._errors import QueryFailed, QueryRefused, StoreInputError, StoreUnavailable

READING_KEYWORDS = ("select", "with", "values", "table", "explain", "show", "pragma")

# SQLite pragmas that only describe the schema (whatever table they are given); all others are refused.
SCHEMA_PRAGMAS = frozenset(
    {"table_info", "table_xinfo", "table_list", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
)

_ALLOWED_SQLITE_ACTIONS = frozenset(
    {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, getattr(sqlite3, "SQLITE_RECURSIVE", 33)}
)

_LEADING_NOISE = re.compile(r"\A(?:\s+|--[^\n]*(?:\n|\Z)|/\*.*?\*/|\()*", re.DOTALL)

# PostgreSQL SQLSTATE prefixes that mean "this would write or leave read-only mode":
# class 25 (invalid transaction state: read-only transaction, read-write mode after a query), 42501 (privilege).
_PG_REFUSED_STATES = ("25", "42501")


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of a read-only query; ``truncated`` when more rows than asked for existed."""

    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    truncated: bool = False

    def as_dicts(self) -> list[dict[str, Any]]:
        return [dict(zip(self.columns, row)) for row in self.rows]


def run_readonly_query(engine: sa.Engine, sql: str, *, max_rows: int | None = None) -> QueryResult:
    """Run one statement that cannot change the store; ``QueryRefused`` if it would, ``QueryFailed`` if invalid."""
    _check_first_keyword(sql)
    if engine.dialect.name == "sqlite":
        return _run_sqlite(engine.url, sql, max_rows)
    return _run_postgresql(engine, sql, max_rows)


def _check_first_keyword(sql: str) -> None:
    body = _LEADING_NOISE.sub("", sql, count=1)
    word = "".join(itertools.takewhile(str.isalpha, body)).lower()
    if not word:
        raise QueryRefused("empty query" if not body.strip() else f"refused: not a query: {body[:40]!r}")
    if word not in READING_KEYWORDS:
        allowed = ", ".join(k.upper() for k in READING_KEYWORDS)
        raise QueryRefused(f"refused: {word.upper()} is not a read (allowed: {allowed})")


def _fetch(cursor: Any, max_rows: int | None) -> tuple[list[tuple[Any, ...]], bool]:
    if max_rows is None:
        return [tuple(r) for r in cursor.fetchall()], False
    rows = [tuple(r) for r in cursor.fetchmany(max_rows + 1)]
    return rows[:max_rows], len(rows) > max_rows


def _sqlite_authorizer(action: int, arg1: str | None, _arg2: str | None, _db: str | None, _trigger: str | None) -> int:
    if action in _ALLOWED_SQLITE_ACTIONS:
        return sqlite3.SQLITE_OK
    if action == sqlite3.SQLITE_PRAGMA and (arg1 or "").lower() in SCHEMA_PRAGMAS:  # arg2: the table named
        return sqlite3.SQLITE_OK
    return sqlite3.SQLITE_DENY


def _run_sqlite(url: sa.URL, sql: str, max_rows: int | None) -> QueryResult:
    if is_memory_sqlite(url):
        raise StoreInputError("read-only queries need a store in a file or on a server, not in memory")
    path = Path(str(url.database)).expanduser().resolve()
    database, elsewhere = sqlite_read_target(path)
    janitor = None
    try:
        if not elsewhere:
            # The store's place is writable: a plain connection, open across the query and closed last, merges
            # and removes the -wal and -shm files that the read-only one would otherwise leave behind.
            janitor = sqlite3.connect(str(path), timeout=30)
            janitor.execute("SELECT count(*) FROM sqlite_master").fetchall()
            database = f"file:{quote(str(path))}?mode=ro"
        connection = sqlite3.connect(database, uri=True, timeout=30)
    except sqlite3.Error as exc:
        if janitor is not None:
            janitor.close()
        raise StoreUnavailable(f"cannot open {path} read-only: {first_line(exc)}") from None
    try:
        connection.execute("PRAGMA query_only=ON")
        connection.set_authorizer(_sqlite_authorizer)
        cursor = connection.execute(sql)
        columns = tuple(d[0] for d in cursor.description or ())
        rows, truncated = _fetch(cursor, max_rows)
        return QueryResult(columns, rows, truncated)
    except (sqlite3.ProgrammingError, sqlite3.Warning) as exc:  # "You can only execute one statement at a time."
        raise QueryRefused(f"refused: {first_line(exc)}") from None
    except sqlite3.Error as exc:
        from analog_sweep.results._integrity import damage_reason, damaged

        if (reason := damage_reason(exc)) is not None:
            raise damaged(url, reason) from None
        message = first_line(exc)
        if "not authorized" in message or "readonly" in message or "read-only" in message:
            raise QueryRefused(f"refused: {message}") from None
        raise QueryFailed(f"query failed: {message}") from None
    finally:
        connection.close()
        if janitor is not None:
            janitor.close()


def _run_postgresql(engine: sa.Engine, sql: str, max_rows: int | None) -> QueryResult:
    import psycopg

    try:
        connection = engine.connect()
    except sa.exc.DBAPIError as exc:
        raise StoreUnavailable(f"cannot use store {label(engine.url)}: {first_line(exc.orig)}") from None
    try:
        connection.exec_driver_sql("SET TRANSACTION READ ONLY")
        with connection.connection.driver_connection.cursor() as cursor:
            cursor.execute(sql, prepare=True)  # a prepared statement holds exactly one statement
            columns = tuple(d.name for d in cursor.description or ())
            rows, truncated = _fetch(cursor, max_rows) if cursor.description else ([], False)
        return QueryResult(columns, rows, truncated)
    except (psycopg.Error, sa.exc.DBAPIError) as raised:
        error = raised.orig if isinstance(raised, sa.exc.DBAPIError) else raised
        message = first_line(error)
        sqlstate = getattr(error, "sqlstate", None)
        if sqlstate is None:  # the connection, not the query, failed
            raise StoreUnavailable(f"cannot use store {label(engine.url)}: {message}") from None
        if sqlstate.startswith(_PG_REFUSED_STATES) or "multiple commands" in message:
            raise QueryRefused(f"refused: {message}") from None
        raise QueryFailed(f"query failed: {message}") from None
    finally:
        connection.invalidate()  # roll back and never reuse: nothing the query set can outlive it
        connection.close()
