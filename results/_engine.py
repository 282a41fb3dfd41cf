"""Turning a store URL into a SQLAlchemy engine, and database failures into one-line store errors."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
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
    """The URL given, else ``$ANALOG_SWEEP_STORE``, else a SQLite file under ``./sweep-store/`` (created)."""
    text = url or os.environ.get(STORE_ENV)
    if not text:
        folder = Path.cwd() / DEFAULT_FOLDER
        folder.mkdir(parents=True, exist_ok=True)
        return sa.URL.create("sqlite", database=str(folder / DEFAULT_FILE))
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
    mount, without creating any file there (see ``sqlite_read_target``).
    """
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, must_exist=must_exist or read_only, read_only=read_only)
    connect_args = {} if "connect_timeout" in url.query else {"connect_timeout": POSTGRES_CONNECT_SECONDS}
    try:
        return sa.create_engine(url, connect_args=connect_args, pool_pre_ping=True)
    except (sa.exc.NoSuchModuleError, ImportError) as exc:
        raise BadStoreURL(f"cannot use {label(url)}: {exc}") from None


def _sqlite_engine(url: sa.URL, *, must_exist: bool, read_only: bool = False) -> sa.Engine:
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

    @sa.event.listens_for(engine, "connect")
    def _set_pragmas(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        cursor = dbapi_connection.cursor()
        if not read_only and not is_memory_sqlite(url):
            cursor.execute("PRAGMA journal_mode=WAL")  # readers never block the single writer
            # Safe from corruption in WAL mode; a power cut may lose the last commits, which a replay restores.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    return engine


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
    """Re-raise driver errors as store errors with one line: unreachable or locked means ``StoreUnavailable``."""
    try:
        yield
    except StoreError:
        raise
    except sa.exc.DatabaseError as exc:
        if getattr(exc.orig, "sqlite_errorcode", None) == sqlite3.SQLITE_NOTADB:  # the URL names some other file
            raise BadStoreURL(f"{label(url)} is not a store: {first_line(exc.orig)}") from None
        if isinstance(exc, sa.exc.OperationalError):
            raise StoreUnavailable(f"cannot use store {label(url)}: {first_line(exc.orig)}") from exc
        raise StoreError(f"store {label(url)} failed: {first_line(exc.orig)}") from exc
    except sa.exc.InterfaceError as exc:
        raise StoreUnavailable(f"cannot use store {label(url)}: {first_line(exc.orig)}") from exc
    except sa.exc.DBAPIError as exc:
        raise StoreError(f"store {label(url)} failed: {first_line(exc.orig)}") from exc


def first_line(exc: BaseException | None) -> str:
    text = str(exc).strip() if exc is not None else ""
    return text.splitlines()[0].strip() if text else type(exc).__name__


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
