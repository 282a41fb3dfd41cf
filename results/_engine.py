"""Turning a store URL into a SQLAlchemy engine, and database failures into one-line store errors."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.pool import StaticPool

from analog_sweep.results._errors import BadStoreURL, StoreError, StoreMissing, StoreUnavailable

STORE_ENV = "ANALOG_SWEEP_STORE"
DEFAULT_FOLDER = "sweep-store"
DEFAULT_FILE = "results.db"
SUPPORTED_DIALECTS = ("sqlite", "postgresql")

# How long SQLite waits for the writer's lock, and PostgreSQL for a connection, before giving up.
SQLITE_BUSY_SECONDS = 30
POSTGRES_CONNECT_SECONDS = 10
SQLITE_BUSY_ENV = "ANALOG_SWEEP_SQLITE_BUSY_SECONDS"  # overrides SQLITE_BUSY_SECONDS (tests use a fraction of a second)


def resolve_url(url: str | None) -> sa.URL:
    """The URL given, else ``$ANALOG_SWEEP_STORE``, else a SQLite file under ``./sweep-store/`` (the folder is made
    by the first writer, never by a reader)."""
    text = url or os.environ.get(STORE_ENV)
    if not text:
        return sa.URL.create("sqlite", database=str(Path.cwd() / DEFAULT_FOLDER / DEFAULT_FILE))
    try:
        parsed = sa.make_url(text)
    except sa.exc.ArgumentError:
        raise BadStoreURL(f"not a database URL: {_shown(text)!r} (e.g. sqlite:///results.db)") from None
    except ValueError:  # SQLAlchemy parses the port as an integer: ':notaport'
        raise BadStoreURL(f"not a database URL: {_shown(text)!r} has a port that is not a number") from None
    if parsed.get_backend_name() not in SUPPORTED_DIALECTS:
        raise BadStoreURL(
            f"unsupported store database {parsed.get_backend_name()!r} in {label(parsed)}: "
            "use sqlite:///FILE or postgresql+psycopg://USER@HOST/DB"
        )
    if parsed.drivername == "postgresql":  # psycopg 3 is what the project installs, not psycopg2
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _shown(text: str) -> str:
    """A URL that did not parse, as it may be printed: any password between ``user:`` and ``@`` hidden."""
    return re.sub(r"(//[^/:@]*:)[^@/]*@", r"\1***@", text)


def is_memory_sqlite(url: sa.URL) -> bool:
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def create_engine(url: sa.URL, *, must_exist: bool, read_only: bool = False) -> sa.Engine:
    """An engine for ``url``; a SQLite file gets WAL mode, a busy timeout and enforced foreign keys.

    ``must_exist`` refuses a SQLite file that is not there yet instead of creating an empty one,
    so a mistyped path in a read command is an error rather than an empty store. ``read_only`` (readers; implies
    ``must_exist``) opens a SQLite store that this process may not write, in a read-only folder or on a read-only
    mount, without creating any file there (see ``sqlite_read_target``), and its connections cannot write
    (``_refuse_writes``).
    """
    if url.get_backend_name() == "sqlite":
        engine = _sqlite_engine(url, must_exist=must_exist or read_only, read_only=read_only)
    else:
        connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": POSTGRES_CONNECT_SECONDS}
        try:
            engine = sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
        except (sa.exc.NoSuchModuleError, ImportError) as exc:
            raise BadStoreURL(f"cannot use {label(url)}: {exc}") from None
        sa.event.listen(engine, "begin", _snapshot_for_readers(read_only))
    if read_only:
        sa.event.listen(engine, "connect", _refuse_writes)
    return engine


def _refuse_writes(dbapi_connection: object, _record: object) -> None:
    """Make a reader's connection unable to write, whatever its role may do: SQLite ``PRAGMA query_only`` (which
    still lets the last connection to close merge the write-ahead log), PostgreSQL read-only transactions. A write
    on a read path then fails as an error instead of changing the store."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        dbapi_connection.execute("PRAGMA query_only=ON")
        return
    with dbapi_connection.cursor() as cursor:  # type: ignore[attr-defined]
        cursor.execute("SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY")
    dbapi_connection.commit()  # type: ignore[attr-defined]


# An execution option of a connection whose transactions only read (``Store.transaction(write=False)``).
READ_TRANSACTION = "analog_sweep_read_transaction"


def _snapshot_for_readers(read_only: bool) -> Callable[[sa.Connection], None]:
    """The ``begin`` hook of a PostgreSQL engine: a transaction that only reads (every one of a ``read_only``
    engine, else one whose connection carries ``READ_TRANSACTION``) runs at REPEATABLE READ, so all its statements
    see one snapshot, as a SQLite reader's ``BEGIN`` does. At PostgreSQL's default READ COMMITTED each statement sees
    what was committed before it: a reader checking a new store table by table could see none of a writer's tables,
    then some, and take a store being created for one that is not an analog-sweep store. A transaction that only
    reads never fails to serialize at this level, and takes no lock a writer waits for."""

    def begin(connection: sa.Connection) -> None:
        if read_only or connection.get_execution_options().get(READ_TRANSACTION, False):
            connection.exec_driver_sql("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")

    return begin


def _sqlite_engine(url: sa.URL, *, must_exist: bool, read_only: bool = False) -> sa.Engine:
    """An engine for a SQLite store (file or memory) in WAL mode, whose transactions begin as they will be used.

    The sqlite3 module's own transaction control begins a transaction only before INSERT, UPDATE and DELETE: the
    reads before a write (a check that the sweep exists, that a trial is not another point's) and DDL run outside it,
    so a check and its write are not atomic, and another process opening a store sees a half-made schema. Here every
    transaction on a file begins with an explicit ``BEGIN``. One that may write (any on an engine that is not
    ``read_only``, unless the connection carries ``READ_TRANSACTION``) begins ``BEGIN IMMEDIATE``: it takes the
    single write lock at once, waiting for another process's write up to the busy timeout. A deferred transaction
    that read first and then writes could not wait: when another process has committed since its read, SQLite
    answers "database is locked" at once, whatever the timeout. A transaction that only reads begins ``BEGIN``: one
    snapshot of the store for all its statements, taking no lock a writer waits for (WAL). A store in memory is one
    connection in one process, left to the sqlite3 module.
    """
    reading_elsewhere = False  # a read-only connection to a store in a place this process cannot write
    if is_memory_sqlite(url):
        engine = sa.create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        path = Path(str(url.database)).expanduser()
        if "\0" in str(path):
            raise BadStoreURL(f"store path {str(path)!r} contains a NUL byte")
        if must_exist and not path.is_file():
            raise StoreMissing(f"no store at {path}")
        if not path.parent.is_dir():
            if must_exist:
                raise BadStoreURL(f"no folder {path.parent} for store {path}")
            path.parent.mkdir(parents=True, exist_ok=True)
        timeout = sqlite_busy_seconds()
        database, reading_elsewhere = sqlite_read_target(path) if read_only else (str(path), False)
        if reading_elsewhere:
            engine = sa.create_engine(
                url, creator=lambda: sqlite3.connect(database, uri=True, timeout=timeout, check_same_thread=False)
            )
        else:
            engine = sa.create_engine(url, connect_args={"timeout": timeout})

    memory = is_memory_sqlite(url)

    @sa.event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        if not memory:  # SQLAlchemy begins each transaction itself (``_begin``), not the sqlite3 module
            dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not read_only and not is_memory_sqlite(url):
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the single writer
            # Safe from corruption in WAL mode; a power cut may lose the last commits, which a replay restores.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    if not memory:

        @sa.event.listens_for(engine, "begin")
        def _begin(connection: sa.Connection) -> None:
            reading = read_only or connection.get_execution_options().get(READ_TRANSACTION, False)
            connection.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


# Key of the PostgreSQL advisory lock that serializes writers setting up a store (``lock_store_setup``), with the
# schema's name as the second key: "anSw".
STORE_SETUP_LOCK = 0x616E5377


def lock_store_setup(connection: sa.Connection) -> None:
    """Make a writer that creates or upgrades the store's schema wait for any other doing it, until the transaction
    ends. Two sweeps started at once on a new store would otherwise both find no tables and both create them, and
    PostgreSQL refuses the second (``duplicate key value violates unique constraint "pg_type_typname_nsp_index"``).
    On PostgreSQL: a transaction-level advisory lock keyed by the schema the tables go into (released at commit,
    taken by writers only, so readers never wait for it). On SQLite the transaction already holds the write lock
    (``BEGIN IMMEDIATE``, ``_sqlite_engine``)."""
    if connection.dialect.name == "postgresql":
        connection.execute(
            sa.text("SELECT pg_advisory_xact_lock(:key, hashtext(coalesce(current_schema(), '')))"),
            {"key": STORE_SETUP_LOCK},
        )


def sqlite_read_target(path: Path) -> tuple[str, bool]:
    """How to open the SQLite store at ``path`` only to read it: (what to connect to, whether it is a URI).

    A store in a place this process can write is opened as usual: then, like every writer's, the last connection
    to close merges the write-ahead log and removes the ``-wal`` and ``-shm`` files (a ``mode=ro`` connection would
    create them and leave them behind). A store it cannot write (a read-only folder, file or mount, or an immutable
    folder) is opened ``mode=ro``; with ``immutable=1`` as well when no write-ahead log is pending, because SQLite
    cannot create the ``-shm`` file it otherwise needs there (and nothing can be writing the store: a writer keeps a
    ``-wal`` file beside it)."""
    if os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return str(path), False
    wal = path.with_name(path.name + "-wal")
    pending = wal.exists() and wal.stat().st_size > 0
    if pending and not _shm_usable(path):
        path = _snapshot(path)  # SQLite cannot read a pending log without a -shm file it may not create here
    return f"file:{quote(str(path.resolve()))}?mode=ro{'' if pending else '&immutable=1'}", True


def _shm_usable(path: Path) -> bool:
    """Whether SQLite can read ``path``'s pending write-ahead log in place: its ``-shm`` index exists (a reader may
    use it read-only) or could be created beside it."""
    return path.with_name(path.name + "-shm").exists() or os.access(path.parent, os.W_OK)


def _snapshot(path: Path) -> Path:
    """A private copy of a store and its pending write-ahead log (what a killed writer, or a copy taken while one ran,
    leaves), in a temporary folder removed when this process exits: read commands see every committed row, and
    nothing is created in the store's own folder."""
    folder = Path(tempfile.mkdtemp(prefix="analog-sweep-read-"))
    atexit.register(shutil.rmtree, folder, True)
    for suffix in ("", "-wal"):
        shutil.copyfile(path.with_name(path.name + suffix), folder / (path.name + suffix))
    return folder / path.name


def sqlite_private_copy(path: Path) -> Path:
    """A copy of the SQLite store at ``path`` in a new temporary folder, which the caller removes, taken with SQLite's
    online backup API: one consistent state of the store, every committed row included, even while a writer runs.

    The store is read as a reader reads it (``sqlite_read_target``), on a connection that cannot write: its file
    keeps its bytes and modification time, and nothing is left beside it."""
    database, is_uri = sqlite_read_target(path)
    folder = Path(tempfile.mkdtemp(prefix="analog-sweep-copy-"))
    copy = folder / path.name
    try:
        source = sqlite3.connect(database, uri=is_uri, timeout=sqlite_busy_seconds())
        try:
            source.execute("PRAGMA query_only=ON")
            target = sqlite3.connect(copy)
            try:
                source.backup(target)
            finally:
                target.close()
        finally:
            source.close()
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return copy


def sqlite_busy_seconds() -> float:
    """How long a SQLite connection waits for another process's write lock: ``$ANALOG_SWEEP_SQLITE_BUSY_SECONDS``,
    else ``SQLITE_BUSY_SECONDS``. After that the write fails as ``StoreUnavailable`` (and the driver retries)."""
    text = os.environ.get(SQLITE_BUSY_ENV, "").strip()
    if not text:
        return SQLITE_BUSY_SECONDS
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 3600:  # NaN fails too
        raise BadStoreURL(f"{SQLITE_BUSY_ENV} must be a number of seconds from 0 to 3600, got {text!r}")
    return seconds


@contextlib.contextmanager
def database_errors(url: sa.URL) -> Iterator[None]:
    """Re-raise driver errors as store errors with one line: a damaged database (malformed pages, text that is not
    UTF-8) means ``StoreDamaged``, naming the file and the next step; unreachable or locked means ``StoreUnavailable``.
    """
    try:
        yield
    except StoreError:
        raise
    except (sa.exc.DBAPIError, sqlite3.Error) as exc:
        from analog_sweep.results._integrity import damage_reason, damaged, list_backups, store_file  # builds on this

        reason = damage_reason(exc)
        if reason is not None:
            raise damaged(url, reason) from None
        if isinstance(exc, sqlite3.Error):  # raised by the driver outside SQLAlchemy, e.g. while a result streams
            raise StoreError(f"store {label(url)} failed: {first_line(exc)}") from exc
        if isinstance(exc, sa.exc.DatabaseError):
            if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:
                # Some other file, or a store whose header is gone: a file with backups of it beside it was a store.
                path = store_file(url)
                if path is not None and list_backups(path):
                    raise damaged(url, first_line(exc.orig)) from None
                raise BadStoreURL(f"{label(url)} is not a store: {first_line(exc.orig)}") from None
            if isinstance(exc, sa.exc.OperationalError):
                raise StoreUnavailable(f"cannot use store {label(url)}: {first_line(exc.orig)}") from exc
        elif isinstance(exc, sa.exc.InterfaceError):
            raise StoreUnavailable(f"cannot use store {label(url)}: {first_line(exc.orig)}") from exc
        raise StoreError(f"store {label(url)} failed: {first_line(exc.orig)}") from exc


def first_line(exc: BaseException | None) -> str:
    """The first line of an error's text, without characters that would break a one-line message (a damaged cell's
    bytes may hold control characters); the error's type name when it has no text."""
    text = str(exc).strip() if exc is not None else ""
    line = text.splitlines()[0].strip() if text else type(exc).__name__
    return "".join(c if c.isprintable() else "?" for c in line)


# Query parameters of a store URL that hold secrets (libpq connection parameters).
SECRET_QUERY_KEYS = ("password", "sslpassword")


def label(url: sa.URL) -> str:
    """The URL as text for messages, password hidden (also one given as a query parameter)."""
    hidden = {key: "***" for key in SECRET_QUERY_KEYS if key in url.query}
    return (url.update_query_dict(hidden) if hidden else url).render_as_string(hide_password=True)


def without_secrets(url: sa.URL) -> sa.URL:
    """``url`` with no password, in the authority or the query: what may be written to a file. Reopening it takes
    the password from where libpq finds one (``PGPASSWORD``, ``~/.pgpass``, ``PGPASSFILE``)."""
    query = {key: value for key, value in url.query.items() if key not in SECRET_QUERY_KEYS}
    return sa.URL.create(
        url.drivername, username=url.username, host=url.host, port=url.port, database=url.database, query=query
    )
