"""Every read command works on a SQLite store its user may not write (a read-only or immutable
folder, a read-only file) and leaves no file behind there, nor in a writable folder (no ``-wal``/``-shm``).

A command that opened the store for writing (WAL mode needs a ``-shm`` file beside the database) would fail there
with "unable to open database file". The tests make the place read-only with ``chattr +i`` when run as root
(root writes whatever the mode bits say), else with ``chmod``.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from analog_sweep import results
from analog_sweep.cli import cli

from .conftest import SampleSweep

COMMANDS = [
    ["results", "sweeps"],
    ["results", "best", "noise"],
    ["results", "best", "noise", "--axis", "transfer_noise", "--format", "json"],
    ["results", "trials", "noise", "--format", "csv"],
    ["results", "curves", "noise"],
    ["results", "export", "noise", "--out", "{out}/noise.parquet"],
    ["results", "query", "SELECT mode, count(*) FROM points GROUP BY mode"],
    ["status"],
    ["status", "noise"],
    ["report", "noise", "--out", "{out}/report"],
]


def _lock(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "+i", str(path)], check=True, capture_output=True)
    else:
        path.chmod(0o555 if path.is_dir() else 0o444)


def _unlock(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], check=False, capture_output=True)
    else:
        path.chmod(0o755 if path.is_dir() else 0o644)


def _listing(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture(params=["read_only_folder", "read_only_file", "writable_folder"])
def finished_store(request, tmp_path) -> Iterator[tuple[Path, str]]:
    """A finished sample sweep in a closed SQLite store (no -wal or -shm), in a place of the kind asked for."""
    folder = tmp_path / "store"
    folder.mkdir()
    db = folder / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    assert _listing(folder).keys() == {"results.db"}
    locked = {"read_only_folder": folder, "read_only_file": db}.get(request.param)
    if locked is not None:
        try:
            _lock(locked)
        except (OSError, subprocess.CalledProcessError) as exc:
            pytest.skip(f"cannot make {locked} read-only here: {exc}")
        assert not os.access(locked, os.W_OK)
    try:
        yield folder, f"sqlite:///{db}"
    finally:
        if locked is not None:
            _unlock(locked)


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c[:3]) for c in COMMANDS])
def test_read_commands_work_on_a_store_they_may_not_write_and_leave_nothing_behind(finished_store, command, tmp_path):
    folder, url = finished_store
    before = _listing(folder)
    out = tmp_path / "out"
    out.mkdir()
    args = [arg.format(out=out) for arg in command]
    result = CliRunner().invoke(cli, [*args, "--store", url])
    assert result.exit_code == 0, (result.output, result.exception)
    assert "Error" not in result.stderr
    assert result.stdout.strip() or list(out.iterdir())
    assert _listing(folder) == before  # no -wal, no -shm, the database unchanged


@pytest.mark.parametrize("finished_store", ["read_only_folder", "read_only_file"], indirect=True)
def test_a_store_in_a_read_only_place_is_opened_read_only(finished_store):
    folder, url = finished_store
    with results.open_store(url, read_only=True) as store, pytest.raises(results.StoreError):
        store.set_sweep_status("noise", "running")


@pytest.mark.parametrize("finished_store", ["writable_folder"], indirect=True)
def test_a_store_its_reader_may_write_is_opened_as_usual_and_still_not_written(finished_store):
    """Opened as usual, so that its write-ahead log is merged when the last connection closes; its connections refuse
    writes all the same (``PRAGMA query_only``)."""
    folder, url = finished_store
    before = _listing(folder)
    with results.open_store(url, read_only=True) as store, pytest.raises(results.StoreError, match="readonly"):
        store.set_sweep_status("noise", "running")
    assert _listing(folder) == before


def test_a_store_with_a_pending_write_ahead_log_in_a_read_only_folder_is_read_in_full(tmp_path):
    """What a killed driver leaves (or a copy taken while one ran): committed rows still in ``results.db-wal``. SQLite
    cannot read that log without a ``-shm`` file it may not create in a read-only folder ("unable to open database
    file"); the reader works on a private copy instead, and sees every committed row."""
    import shutil
    import sqlite3

    source = tmp_path / "live"
    source.mkdir()
    db = source / "results.db"
    with results.open_store(f"sqlite:///{db}") as store:
        SampleSweep().write(store)
    writer = sqlite3.connect(db)  # a writer that has not checkpointed: the last rows live only in the log
    writer.execute("PRAGMA journal_mode=WAL")
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.execute("UPDATE sweeps SET status = 'running'")
    writer.commit()
    folder = tmp_path / "copy"
    folder.mkdir()
    for name in ("results.db", "results.db-wal"):
        shutil.copyfile(source / name, folder / name)
    writer.close()
    assert (folder / "results.db-wal").stat().st_size > 0
    before = _listing(folder)
    try:
        _lock(folder)
    except (OSError, subprocess.CalledProcessError) as exc:
        pytest.skip(f"cannot make {folder} read-only here: {exc}")
    try:
        result = CliRunner().invoke(
            cli,
            [
                "results",
                "query",
                "SELECT status FROM sweeps",
                "--format",
                "csv",
                "--store",
                f"sqlite:///{folder / 'results.db'}",
            ],
        )
    finally:
        _unlock(folder)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[1:] == ["running"]  # the row committed only to the log
    assert _listing(folder) == before
