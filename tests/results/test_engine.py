"""Store URLs: the default SQLite file, the environment variable, bad URLs and unreachable servers."""

from __future__ import annotations

import socket
import sqlite3

import pytest
import sqlalchemy as sa

from analog_sweep import results
from analog_sweep.results._engine import create_engine


def test_default_store_is_sqlite_in_wal_mode_under_sweep_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(results.STORE_ENV, raising=False)
    with results.open_store() as store:
        store.record_sweep("s", {}, "h")
    database = tmp_path / "sweep-store" / "results.db"
    connection = sqlite3.connect(database)
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("SELECT name FROM sweeps").fetchall() == [("s",)]
    connection.close()


@pytest.mark.parametrize("command", [["results", "sweeps"], ["status"], ["store", "backup"], ["store", "check"]])
def test_a_command_that_finds_no_default_store_leaves_no_folder_behind(tmp_path, monkeypatch, command):
    from click.testing import CliRunner

    from analog_sweep.cli import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(results.STORE_ENV, raising=False)
    outcome = CliRunner().invoke(cli, command)
    assert outcome.exit_code != 0 and f"no store at {tmp_path / 'sweep-store' / 'results.db'}" in outcome.output
    assert list(tmp_path.iterdir()) == []


def test_environment_variable_names_the_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(results.STORE_ENV, f"sqlite:///{tmp_path / 'elsewhere.db'}")
    results.open_store().close()
    assert (tmp_path / "elsewhere.db").is_file()
    assert not (tmp_path / "sweep-store").exists()


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_plain_postgresql_url_uses_psycopg_3(store_url):
    with results.open_store(store_url.replace("postgresql+psycopg://", "postgresql://")) as store:
        assert store.engine.url.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("not a url", "not a database URL"),
        ("mysql://user@host/db", "unsupported store database 'mysql'"),
        ("postgresql+nosuchdriver://user@host/db", "cannot use"),
    ],
)
def test_bad_urls_are_input_errors(url, message):
    with pytest.raises(results.BadStoreURL, match=message):
        results.open_store(url)


def test_unreachable_server_is_unavailable_not_bad_input():
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(results.StoreUnavailable, match=f"port {port} failed") as raised:
        results.open_store(f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert "\n" not in str(raised.value)
    assert not isinstance(raised.value, results.StoreInputError)


def test_missing_sqlite_file_for_readers(tmp_path):
    with pytest.raises(results.BadStoreURL, match="no store at"):
        results.open_store(f"sqlite:///{tmp_path / 'typo.db'}", must_exist=True)
    assert not (tmp_path / "typo.db").exists()


def test_sqlite_readers_do_not_block_the_writer(tmp_path):
    database = tmp_path / "results.db"
    with results.open_store(f"sqlite:///{database}") as store:
        store.record_sweep("first", {}, "h")
        reader = sqlite3.connect(database, isolation_level=None)
        reader.execute("BEGIN")
        assert reader.execute("SELECT count(*) FROM sweeps").fetchone() == (1,)  # holds a read snapshot
        store.record_sweep("second", {}, "h")  # commits while the read is open (WAL)
        assert reader.execute("SELECT count(*) FROM sweeps").fetchone() == (1,)
        reader.execute("COMMIT")
        assert reader.execute("SELECT count(*) FROM sweeps").fetchone() == (2,)
        reader.close()


@pytest.mark.parametrize("store_url", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("reader", ["read-only store", "writer's read"])
def test_a_transaction_that_only_reads_sees_one_snapshot(store_url, reader):
    """Every statement of a read transaction sees the store as it was at its first: a sweep committed meanwhile by
    another writer appears only in the next transaction (PostgreSQL's default level would show it at once)."""
    count = sa.text("SELECT count(*) FROM sweeps")
    with results.open_store(store_url) as writer:
        writer.record_sweep("first", {}, "h")
        with results.open_store(store_url, read_only=reader == "read-only store") as opened:
            with opened.transaction(write=False) as connection:
                before = connection.scalar(count)
                writer.record_sweep("second", {}, "h")
                during = connection.scalar(count)
            with opened.transaction(write=False) as connection:
                after = connection.scalar(count)
    assert (before, during, after) == (1, 1, 2)


@pytest.mark.parametrize("store_url", ["postgresql"], indirect=True)
def test_a_postgresql_reader_that_began_before_a_store_was_created_sees_none_of_it(store_url):
    """A reader's transaction that began before a writer created the store in its schema sees no table of it, not
    some: the schema check, one catalog query a table, then says "no store" rather than taking a store being created
    for a foreign one ("a sweeps table but no schema_version"). A SQLite reader needs the file, made with its tables
    in one transaction."""
    engine = create_engine(sa.make_url(store_url), must_exist=False, read_only=True)
    try:
        with engine.connect() as connection, connection.begin():
            connection.scalar(sa.text("SELECT 1"))
            results.open_store(store_url).close()  # a writer creates the whole schema and commits
            inspector = sa.inspect(connection)
            seen = (inspector.has_table("schema_version"), inspector.has_table("sweeps"))
    finally:
        engine.dispose()
    assert seen == (False, False)


def test_url_reopens_the_store_and_label_hides_the_password(tmp_path):
    with results.open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        store.record_sweep("s", {}, "h")
        with results.open_store(store.url, must_exist=True) as again:
            assert again.get_sweep("s")["name"] == "s"
    server = results.Store(sa.create_engine("postgresql+psycopg://me:secret@db-host/sweeps"))
    assert "secret" in server.url and "secret" not in server.label
