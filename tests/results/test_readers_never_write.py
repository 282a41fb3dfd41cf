"""Readers never write the store: every command that only reads (``results *``, ``status``, ``report``,
``dashboard``) opens it read-only, takes no write lock and changes nothing, on a current store or an older one.

An older SQLite store is read from a private copy, upgraded, made with SQLite's online backup API: the file itself
keeps its bytes and its modification time, and no ``-wal`` or ``-shm`` file is left beside it. An older PostgreSQL
store is refused in one line that names its version and the writers that upgrade it. A role that may only SELECT
reads a current PostgreSQL store (a reader locking ``schema_version`` FOR UPDATE needs the UPDATE privilege).
Writers still upgrade an older store, and concurrent writers serialize the upgrade on a lock: the second waits for
the first and finds the store upgraded.
"""

from __future__ import annotations

import hashlib
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analog_sweep import results
from analog_sweep.cli import cli

from ..conftest import fresh_schema, require_postgres, schema_url
from .conftest import SampleSweep
from .test_versions import _drop_point_algorithm as make_older

# Every read command, on the sample sweep ``noise``; ``{out}`` is a folder for the files a command writes.
COMMANDS = [
    ["results", "sweeps"],
    ["results", "best", "noise"],
    ["results", "best", "noise", "--axis", "transfer_noise", "--plot", "{out}/noise.png"],
    ["results", "trials", "noise", "--format", "csv"],
    ["results", "curves", "noise"],
    ["results", "elbows", "noise"],
    ["results", "compare", "noise"],
    ["results", "export", "noise", "--out", "{out}/noise.parquet"],
    ["results", "provenance", "noise"],
    ["results", "query", "SELECT mode, algorithm, count(*) AS n FROM points GROUP BY mode, algorithm"],
    ["status"],
    ["status", "noise"],
    ["report", "noise", "--out", "{out}/report"],
    ["dashboard", "noise"],
    ["store", "check"],
]
IDS = [" ".join(c[:3]) for c in COMMANDS]


def _invoke(command: list[str], url: str, out: Path):
    return CliRunner().invoke(cli, [*(arg.format(out=out) for arg in command), "--store", url])


# Read commands that end in one line of their own after reading the sample sweep: it has no Optuna journal, and runs
# one algorithm. Their line, not one about the store, shows that they read it.
AFTER_READING = {"dashboard": "no Optuna journal", "compare": "nothing to compare"}


def _read_worked(command: list[str], result) -> bool:
    """Whether a read command read the store: exit 0, or the line it ends in after reading (``AFTER_READING``)."""
    expected = next((line for name, line in AFTER_READING.items() if name in command[:2]), None)
    if expected:
        return result.exit_code == 2 and expected in result.stderr and len(result.stderr.splitlines()) == 1
    return result.exit_code == 0 and "Error" not in result.stderr


def _version(url: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            return connection.scalar(sa.text("SELECT max(version) FROM schema_version"))
    finally:
        engine.dispose()


# ---- SQLite ----


def _state(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file in ``folder``: its content's hash and modification time (ns)."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns) for p in folder.iterdir()}


@pytest.fixture(scope="module")
def sqlite_stores(tmp_path_factory) -> dict[str, Path]:
    """A closed SQLite store of the sample sweep at the current schema version, and one at an older version."""
    made = {}
    for kind in ("current", "older"):
        folder = tmp_path_factory.mktemp(kind)
        db = folder / "results.db"
        with results.open_store(f"sqlite:///{db}") as store:
            SampleSweep().write(store)
        if kind == "older":
            make_older(f"sqlite:///{db}")
        assert {p.name for p in folder.iterdir()} == {"results.db"}
        made[kind] = db
    return made


@pytest.mark.parametrize("kind", ["current", "older"])
@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_read_commands_leave_a_sqlite_store_as_it_was(sqlite_stores, kind, command, tmp_path):
    db = sqlite_stores[kind]
    version = _version(f"sqlite:///{db}")
    assert (version == results.SCHEMA_VERSION) == (kind == "current")
    before = _state(db.parent)
    time.sleep(0.01)  # a write now would move the modification time, even on a file system with coarse stamps
    result = _invoke(command, f"sqlite:///{db}", tmp_path)
    assert _read_worked(command, result), (result.output, result.exception)
    assert _state(db.parent) == before  # same bytes, same mtime, no -wal or -shm left behind
    assert _version(f"sqlite:///{db}") == version


def test_an_older_sqlite_store_reads_as_upgraded(sqlite_stores, tmp_path):
    """The reader sees what a writer's upgrade would give (the points' algorithm, filled in for an analog sweep)."""
    result = _invoke(
        ["results", "query", "SELECT DISTINCT mode, algorithm FROM points ORDER BY mode", "--format", "csv"],
        f"sqlite:///{sqlite_stores['older']}",
        tmp_path,
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["mode,algorithm", "analog_tl,c-ttv2", "digital_tl,"]


def test_a_reader_of_an_older_sqlite_store_names_the_store_not_its_copy(sqlite_stores):
    """Reports and messages name the store read (and say it was read from a copy), and its URL opens that store."""
    url = f"sqlite:///{sqlite_stores['older']}"
    with results.open_store(url, read_only=True) as store:
        assert store.url == url
        assert store.label == f"{url} (schema version {_version(url)}, read from an upgraded copy)"
        copy = Path(str(store.engine.url.database))
        assert copy != sqlite_stores["older"] and copy.is_file()


def test_an_older_sqlite_store_in_a_read_only_folder_is_read(tmp_path):
    import subprocess

    from .test_readonly_place import _listing, _lock, _unlock

    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    make_older(f"sqlite:///{db}")
    before = _listing(folder)
    try:
        _lock(folder)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make {folder} read-only here: {exc}")
    try:
        result = _invoke(["results", "best", "noise", "--format", "csv"], f"sqlite:///{db}", tmp_path)
    finally:
        _unlock(folder)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 1 + len(SampleSweep.modes) * len(SampleSweep.noises)
    assert _listing(folder) == before


@pytest.mark.parametrize("kind", ["current", "older"])
def test_a_sqlite_reader_refuses_to_write(sqlite_stores, kind, tmp_path):
    """A reader's connection cannot write even in a place it may write: a write that slipped into a read path fails
    instead of changing the store."""
    before = _state(sqlite_stores[kind].parent)
    with results.open_store(f"sqlite:///{sqlite_stores[kind]}", read_only=True) as store:
        assert store.get_sweep("noise")["status"] == "finished"
        with pytest.raises(results.StoreError, match="readonly|read-only"):
            store.set_sweep_status("noise", "running")
    assert _state(sqlite_stores[kind].parent) == before


def test_a_sqlite_writer_upgrades_an_older_store(tmp_path):
    db = tmp_path / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    make_older(f"sqlite:///{db}")
    results.open_store(f"sqlite:///{db}").close()
    assert _version(f"sqlite:///{db}") == results.SCHEMA_VERSION


def test_store_upgrade_upgrades_an_older_sqlite_store_once(tmp_path):
    db = tmp_path / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    make_older(f"sqlite:///{db}")
    version = _version(f"sqlite:///{db}")
    upgraded = _invoke(["store", "upgrade"], f"sqlite:///{db}", tmp_path)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from schema version {version} to {results.SCHEMA_VERSION}" in upgraded.stderr
    assert _version(f"sqlite:///{db}") == results.SCHEMA_VERSION
    again = _invoke(["store", "upgrade"], f"sqlite:///{db}", tmp_path)
    assert again.exit_code == 0 and "nothing to upgrade" in again.stderr
    missing = _invoke(["store", "upgrade"], f"sqlite:///{tmp_path / 'none.db'}", tmp_path)
    assert missing.exit_code == 2 and "no store at" in missing.stderr


def _concurrent_writers(url: str, hold_lock, release_lock, both_waiting, count: int = 2) -> list[BaseException | None]:
    """Open ``count`` writers on the older store at ``url`` at once while another connection holds the lock an
    upgrade takes (``hold_lock``); once ``both_waiting()`` says they wait for it (each has read the old version),
    release it (``release_lock``). Returns what each opener raised (None for none)."""
    outcomes: list[BaseException | None] = [None] * count
    started = threading.Barrier(count + 1)

    def open_writer(index: int) -> None:
        started.wait()
        try:
            results.open_store(url).close()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcomes[index] = exc

    holder = hold_lock()
    threads = [threading.Thread(target=open_writer, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    started.wait()
    try:
        both_waiting()
        assert all(thread.is_alive() for thread in threads), outcomes  # neither upgraded past the lock
    finally:
        release_lock(holder)
    for thread in threads:
        thread.join(60)
    return outcomes


def test_concurrent_sqlite_writers_serialize_the_upgrade(tmp_path, monkeypatch):
    import sqlite3

    monkeypatch.setenv(results.SQLITE_BUSY_ENV, "30")
    db = tmp_path / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    make_older(f"sqlite:///{db}")

    def hold() -> sqlite3.Connection:
        holder = sqlite3.connect(db, isolation_level=None)
        holder.execute("BEGIN IMMEDIATE")
        return holder

    def release(holder: sqlite3.Connection) -> None:
        holder.execute("COMMIT")
        holder.close()

    def both_waiting() -> None:
        time.sleep(1.0)  # SQLite shows no waiters; the openers take milliseconds to reach the lock

    assert _concurrent_writers(f"sqlite:///{db}", hold, release, both_waiting) == [None, None]
    assert _version(f"sqlite:///{db}") == results.SCHEMA_VERSION
    with results.open_store(f"sqlite:///{db}", read_only=True) as store:
        assert {p["algorithm"] for p in store.list_points("noise")} == {"c-ttv2", None}


# ---- PostgreSQL ----


class Postgres:
    """A store in its own schema on the test server, written by the admin role, and a role that may only read it."""

    def __init__(self, admin, schema: str, reader: str) -> None:
        self.admin = admin
        self.schema = schema
        self.reader = reader
        self.url = schema_url(schema)  # as the admin (the owner, who may write)
        self.reader_url = sa.make_url(self.url).set(username=reader, password=None).render_as_string(False)

    def grant_reading(self) -> None:
        """The reader may SELECT every table of the schema as it is now (run again after tables change)."""
        self.admin.execute(f"GRANT USAGE ON SCHEMA {self.schema} TO {self.reader}")
        self.admin.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA {self.schema} TO {self.reader}")


@pytest.fixture
def postgres(postgres_admin) -> Iterator[Postgres]:
    admin = require_postgres(postgres_admin)
    schema = fresh_schema(admin, "readers_test")
    reader = f"reader_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE ROLE {reader} LOGIN")
    try:
        yield Postgres(admin, schema, reader)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")
        admin.execute(f"DROP OWNED BY {reader}")
        admin.execute(f"DROP ROLE {reader}")


@pytest.fixture
def pg_store(postgres) -> Postgres:
    """The sample sweep in a current store, readable by the SELECT-only role."""
    with results.open_store(postgres.url) as store:
        SampleSweep().write(store)
    postgres.grant_reading()
    return postgres


def _snapshot_pg(url: str) -> dict[str, object]:
    """What a reader could have changed: every table's rows, and the schema's columns."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            inspector = sa.inspect(connection)
            tables = sorted(inspector.get_table_names())
            found: dict[str, object] = {"columns": {t: [c["name"] for c in inspector.get_columns(t)] for t in tables}}
            for table in tables:
                rows = connection.execute(sa.text(f"SELECT * FROM {table}")).all()
                found[table] = sorted(map(repr, rows))
            return found
    finally:
        engine.dispose()


def test_a_select_only_role_cannot_write_the_store(pg_store):
    """The role the next tests read as may not write: so their reads prove that no reader needs to."""
    engine = sa.create_engine(pg_store.reader_url)
    try:
        with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), engine.begin() as connection:
            connection.execute(sa.text("UPDATE schema_version SET version = version"))
    finally:
        engine.dispose()


@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_read_commands_work_as_a_select_only_role(pg_store, command, tmp_path):
    before = _snapshot_pg(pg_store.url)
    result = _invoke(command, pg_store.reader_url, tmp_path)
    assert _read_worked(command, result), (result.output, result.exception)
    assert _snapshot_pg(pg_store.url) == before


@pytest.mark.parametrize("as_reader", [True, False], ids=["select_only_role", "owner"])
@pytest.mark.parametrize("command", COMMANDS, ids=IDS)
def test_read_commands_on_an_older_postgresql_store_say_so_in_one_line(pg_store, command, as_reader, tmp_path):
    """Whoever reads, the owner included, nothing changes; the line names the store's version and the writers."""
    make_older(pg_store.url)
    pg_store.grant_reading()
    version = _version(pg_store.url)
    assert version < results.SCHEMA_VERSION
    before = _snapshot_pg(pg_store.url)
    result = _invoke(command, pg_store.reader_url if as_reader else pg_store.url, tmp_path)
    assert result.exit_code == 2, (result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert f"schema version {version}" in lines[0] and "store upgrade" in lines[0], lines[0]
    assert _snapshot_pg(pg_store.url) == before


def test_store_upgrade_needs_a_role_that_may_change_the_tables_then_readers_read(pg_store, tmp_path):
    make_older(pg_store.url)
    pg_store.grant_reading()
    version = _version(pg_store.url)
    refused = _invoke(["store", "upgrade"], pg_store.reader_url, tmp_path)
    assert refused.exit_code == 1 and len(refused.stderr.splitlines()) == 1, refused.output
    assert "must be owner" in refused.stderr or "permission denied" in refused.stderr, refused.stderr
    assert _version(pg_store.url) == version
    upgraded = _invoke(["store", "upgrade"], pg_store.url, tmp_path)
    assert upgraded.exit_code == 0, upgraded.output
    assert f"upgraded from schema version {version} to {results.SCHEMA_VERSION}" in upgraded.stderr
    pg_store.grant_reading()  # the tables the upgrade added
    for command in COMMANDS:
        result = _invoke(command, pg_store.reader_url, tmp_path)
        assert _read_worked(command, result), (command, result.output, result.exception)


def test_a_postgresql_reader_refuses_to_write(pg_store):
    """The owner's read-only connection cannot write either: its transactions are read-only."""
    before = _snapshot_pg(pg_store.url)
    with results.open_store(pg_store.url, read_only=True) as store:
        assert store.get_sweep("noise")["status"] == "finished"
        with pytest.raises(results.StoreError, match="read-only transaction"):
            store.set_sweep_status("noise", "running")
    assert _snapshot_pg(pg_store.url) == before


def test_a_postgresql_reader_takes_no_lock(pg_store):
    """A reader opens and reads the store while another transaction holds ``schema_version`` FOR UPDATE (as a writer
    upgrading it does), without waiting for it."""
    engine = sa.create_engine(pg_store.url)
    read: list[str] = []

    def reader() -> None:
        with results.open_store(pg_store.url, read_only=True) as store:
            read.append(store.get_sweep("noise")["status"])

    try:
        with engine.begin() as holder:
            holder.execute(sa.text("SELECT version FROM schema_version FOR UPDATE")).all()
            thread = threading.Thread(target=reader)
            thread.start()
            thread.join(20)  # opening takes well under a second; one that waits for the lock waits until the end
            waited = thread.is_alive()
        thread.join(60)
    finally:
        engine.dispose()
    assert not waited and read == ["finished"]


def test_concurrent_postgresql_writers_serialize_the_upgrade(pg_store):
    make_older(pg_store.url)
    name = f"writer_{uuid.uuid4().hex[:12]}"  # the openers' application name, to find them waiting
    url = schema_url(pg_store.schema, application_name=name)
    engine = sa.create_engine(pg_store.url)

    def hold() -> sa.Connection:
        holder = engine.connect()
        holder.execute(sa.text("SELECT version FROM schema_version FOR UPDATE")).all()
        return holder

    def release(holder: sa.Connection) -> None:
        holder.commit()
        holder.close()

    def both_waiting() -> None:
        query = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s AND wait_event_type = 'Lock'"
        deadline = time.monotonic() + 30
        while pg_store.admin.execute(query, (name,)).fetchone()[0] < 2:
            assert time.monotonic() < deadline, "the writers never waited for the lock"
            time.sleep(0.05)

    try:
        assert _concurrent_writers(url, hold, release, both_waiting) == [None, None]
    finally:
        engine.dispose()
    assert _version(pg_store.url) == results.SCHEMA_VERSION
    with results.open_store(pg_store.url, read_only=True) as store:
        assert {p["algorithm"] for p in store.list_points("noise")} == {"c-ttv2", None}
