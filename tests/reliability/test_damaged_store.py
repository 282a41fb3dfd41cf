"""A damaged SQLite store, damaged the way disks damage files (a page overwritten, a byte of text changed in place),
is named in one line by every command, with the next step; ``store check`` finds the damage; a backup taken while a
sweep writes is one consistent snapshot, and restoring it gives back a sound store with the same rows.

Stores are built with the ``Store`` API (no Ray); each test damages its own copy of the file.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import make_url

from analog_sweep.cli import cli
from analog_sweep.results import backup_before_run, is_automatic_backup, list_backups, open_store, store_in_use

from ..results.test_provenance import a_run
from .conftest import assert_one_line_error

SWEEP = "damaged"
AXES = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0}
# Only the sweeps table holds this text, once: damaging it damages one cell that every command reads.
EXPERIMENT_PATH = "/nowhere/damaged-sweep-folder"


def build_store(path: Path, points: int = 4, epochs: int = 40) -> str:
    """A finished sweep of ``points`` points x 2 learning rates x ``epochs`` epochs (several pages of epochs)."""
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.record_sweep(SWEEP, {"name": SWEEP}, "hash", "running", EXPERIMENT_PATH)
        for p in range(points):
            key = f"p{p}"
            axes = {**AXES, "transfer_noise": float(10 * p)}
            store.record_point(SWEEP, key, mode="analog_tl", task="5-7", classes=["5", "7"], seed=0, axes=axes)
            for lr in (0.1, 0.4):
                trial = f"{key}-lr{lr}"
                store.record_trial(trial, SWEEP, key, lr=lr, status="running", ray_trial_id=f"r-{trial}")
                for epoch in range(1, epochs + 1):
                    error = 50.0 / epoch + p + lr
                    store.record_epoch(
                        trial,
                        epoch,
                        train_loss=1.0 / epoch,
                        test_error=error,
                        test_accuracy=100.0 - error,
                        seconds=1.0,
                        validation_error=error + 1,
                    )
                store.record_trial(trial, SWEEP, key, lr=lr, status="completed")
            store.choose_best(SWEEP, key)
        store.set_sweep_status(SWEEP, "finished")
    assert not path.with_name(path.name + "-wal").exists()  # the last connection merged the log into the file
    return url


@pytest.fixture(scope="module")
def sound_store(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sound") / "results.db"
    build_store(path)
    return path


@pytest.fixture
def store_copy(sound_store, tmp_path) -> tuple[Path, str]:
    """A private copy of the sound store: (its file, its URL)."""
    path = tmp_path / "store" / "results.db"
    path.parent.mkdir()
    shutil.copyfile(sound_store, path)
    return path, f"sqlite:///{path}"


# ---- damaging a file the way a disk does -----------------------------------------------------------------------


def _page_size_and_roots(path: Path) -> tuple[int, dict[str, int]]:
    connection = sqlite3.connect(path)
    try:
        size = connection.execute("PRAGMA page_size").fetchone()[0]
        roots = dict(connection.execute("SELECT name, rootpage FROM sqlite_master WHERE type = 'table'").fetchall())
    finally:
        connection.close()
    return size, roots


def leaf_pages(path: Path, table: str) -> list[int]:
    """The leaf pages of ``table``'s b-tree, in key order, read from the file (SQLite's documented file format)."""
    size, roots = _page_size_and_roots(path)
    data = path.read_bytes()

    def walk(page: int) -> list[int]:
        start = (page - 1) * size
        header = start + (100 if page == 1 else 0)
        kind = data[header]
        if kind == 0x0D:  # table leaf
            return [page]
        assert kind == 0x05, f"page {page} of {table} is not a table b-tree page"
        cells = struct.unpack(">H", data[header + 3 : header + 5])[0]
        rightmost = struct.unpack(">I", data[header + 8 : header + 12])[0]
        children = []
        for i in range(cells):
            offset = struct.unpack(">H", data[header + 12 + 2 * i : header + 14 + 2 * i])[0]
            children.append(struct.unpack(">I", data[start + offset : start + offset + 4])[0])
        return [leaf for child in [*children, rightmost] for leaf in walk(child)]

    return walk(roots[table])


def overwrite_page(path: Path, page: int) -> None:
    """Overwrite the start of one page (its b-tree header and cell pointers) with 0xFF, in place: a torn write or a
    bad sector."""
    size, _ = _page_size_and_roots(path)
    with open(path, "r+b") as file:
        file.seek((page - 1) * size)
        file.write(b"\xff" * 32)


def damage_btree(path: Path, table: str) -> None:
    """The root page of ``table`` overwritten: every read of the table hits it."""
    _, roots = _page_size_and_roots(path)
    overwrite_page(path, roots[table])


def damage_text(path: Path, text: str) -> None:
    """One byte of ``text`` (stored once in the file) replaced in place by 0xFF, which is never valid UTF-8."""
    data = bytearray(path.read_bytes())
    at = data.find(text.encode())
    assert at >= 0 and data.find(text.encode(), at + 1) < 0, "the text must be in the file exactly once"
    data[at + len(text) // 2] = 0xFF
    path.write_bytes(bytes(data))


DAMAGES = {
    "malformed": (lambda path: damage_btree(path, "sweeps"), "database disk image is malformed"),
    "not-utf8": (
        lambda path: damage_text(path, EXPERIMENT_PATH),
        "column 'experiment_path' holds text that is not UTF-8",
    ),
}


def invoke(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(cli, list(args), env=env)


def table_rows(path: Path) -> dict[str, list[tuple]]:
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return {
            table: connection.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
            for table in ("sweeps", "points", "trials", "epochs")
        }
    finally:
        connection.close()


# ---- every command names the damaged file and the next step ----------------------------------------------------

READ_COMMANDS = [
    ["results", "sweeps"],
    ["results", "best", SWEEP],
    ["results", "trials", SWEEP],
    ["results", "query", "SELECT name, experiment_path FROM sweeps"],
    ["status"],
    ["status", SWEEP],
    ["report", SWEEP, "--out", "{tmp}/report"],
    ["dashboard", SWEEP],
    ["resume", SWEEP],
]


@pytest.mark.parametrize("damage", list(DAMAGES))
@pytest.mark.parametrize("command", READ_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_names_the_damaged_file_and_the_next_step(store_copy, tmp_path, damage, command):
    path, url = store_copy
    how, reason = DAMAGES[damage]
    how(path)
    args = [arg.replace("{tmp}", str(tmp_path)) for arg in command]
    result = invoke(*args, "--store", url)
    assert result.exit_code == 1, result.output
    line = assert_one_line_error(
        result.stderr,
        f"store {path} is damaged ({reason})",
        f"'analog-sweep store check --store {url}'",
        f"analog-sweep store salvage --store {url} --to {path.with_name('results-salvaged.db')}",
    )
    assert "\ufffd" not in line and "\\x" not in line  # the damaged bytes themselves are not printed


def test_the_damage_message_offers_the_last_backup(store_copy):
    path, url = store_copy
    assert invoke("store", "backup", "--store", url).exit_code == 0
    (newest,) = list_backups(path)
    damage_btree(path, "sweeps")
    result = invoke("results", "sweeps", "--store", url)
    assert result.exit_code == 1
    assert_one_line_error(
        result.stderr,
        f"store {path} is damaged (database disk image is malformed)",
        f"restore its last backup ({newest.name}) with 'analog-sweep store restore --store {url}'",
    )


def test_run_refuses_a_damaged_store_before_anything_runs(store_copy, tmp_path, monkeypatch):
    """``run`` backs the store up first; the copy's quick_check finds the damage (here in a table ``run`` would not
    read before the sweep writes) and nothing is written or started."""
    path, url = store_copy
    damage_btree(path, "epochs")
    before = path.read_bytes()
    monkeypatch.setenv("ANALOG_SWEEP_DATA", str(tmp_path / "no-data"))
    spec = Path(__file__).parents[2] / "sweeps" / "quickstart.yaml"
    result = invoke("run", str(spec), "--store", url, "--storage-path", str(tmp_path / "storage"))
    assert result.exit_code == 1, result.output
    assert_one_line_error(result.stderr, f"store {path} is damaged (", "analog-sweep store check")
    assert path.read_bytes() == before
    assert list_backups(path) == []
    assert not (tmp_path / "storage").exists()


# ---- store check -----------------------------------------------------------------------------------------------


def test_check_says_ok_for_a_sound_store(store_copy):
    path, url = store_copy
    result = invoke("store", "check", "--store", url)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0] == (
        f"store {path}: OK (integrity_check and UTF-8 text; schema version {schema_version(path)}; "
        "1 sweeps, 4 points, 8 trials, 320 epochs)"
    )


def schema_version(path: Path) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("SELECT max(version) FROM schema_version").fetchone()[0]
    finally:
        connection.close()


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("malformed", "database disk image is malformed"),
        ("not-utf8", "table sweeps, column experiment_path: text that is not UTF-8 in 1 row(s)"),
        ("leaf", "epochs"),  # one leaf page in the middle of the epochs table: the commands above may never read it
    ],
)
def test_check_finds_the_damage_and_says_what_to_do(store_copy, damage, problem):
    path, url = store_copy
    if damage == "leaf":
        leaves = leaf_pages(path, "epochs")
        assert len(leaves) >= 3
        overwrite_page(path, leaves[len(leaves) // 2])
    else:
        DAMAGES[damage][0](path)
    result = invoke("store", "check", "--store", url)
    assert result.exit_code == 1
    assert result.stdout.splitlines()[0] == f"store {path}: DAMAGED (integrity_check and UTF-8 text)"
    assert any(line.startswith("  problem: ") and problem in line for line in result.stdout.splitlines()), result.stdout
    assert f"analog-sweep store salvage --store {url} --to {path.with_name('results-salvaged.db')}" in result.stdout
    assert_one_line_error(result.stderr, f"store {path} is damaged (")


# ---- backup, restore, salvage ----------------------------------------------------------------------------------


def test_a_restored_backup_passes_check_and_reads_the_same_rows(store_copy):
    path, url = store_copy
    rows = table_rows(path)
    made = invoke("store", "backup", "--store", url, "--format", "json")
    assert made.exit_code == 0, made.output
    (backup,) = list_backups(path)
    assert str(backup) in made.stdout
    damage_btree(path, "trials")
    assert invoke("store", "check", "--store", url).exit_code == 1
    damaged_bytes = path.read_bytes()

    restored = invoke("store", "restore", "--store", url)
    assert restored.exit_code == 0, restored.output
    assert invoke("store", "check", "--store", url).exit_code == 0
    assert table_rows(path) == rows
    (kept,) = [p for p in path.parent.glob("results.db.damaged-*") if not p.name.endswith(("-wal", "-shm"))]
    assert kept.read_bytes() == damaged_bytes  # the damaged file is kept, not lost
    best = invoke("results", "best", SWEEP, "--store", url, "--format", "csv")
    assert best.exit_code == 0 and len(best.stdout.splitlines()) == 5


def test_backup_to_a_file_and_refusals(store_copy, tmp_path):
    path, url = store_copy
    target = tmp_path / "archive.db"
    assert invoke("store", "backup", "--store", url, "--to", str(target)).exit_code == 0
    assert table_rows(target) == table_rows(path)
    again = invoke("store", "backup", "--store", url, "--to", str(target))
    assert again.exit_code == 2
    assert_one_line_error(again.stderr, f"{target} exists")
    postgres = invoke("store", "backup", "--store", "postgresql+psycopg://me@127.0.0.1:1/none")
    assert postgres.exit_code == 2
    assert_one_line_error(postgres.stderr, "pg_dump")


def test_automatic_backups_keep_the_newest_and_never_remove_one_taken_by_hand(store_copy, monkeypatch):
    path, url = store_copy
    monkeypatch.setenv("ANALOG_SWEEP_STORE_BACKUPS", "2")
    assert invoke("store", "backup", "--store", url).exit_code == 0
    (by_hand,) = list_backups(path)
    automatic = []
    for _ in range(3):
        with open_store(url) as store:
            automatic.append(backup_before_run(store).path)
    assert all(is_automatic_backup(made) and made.name.endswith("-auto.db") for made in automatic)
    assert list_backups(path) == [*automatic[:0:-1], by_hand]  # newest first; the oldest automatic one went
    for _ in range(3):  # and backups taken by hand are never rotated
        assert invoke("store", "backup", "--store", url).exit_code == 0
    assert len(list_backups(path)) == 6


def test_resume_of_an_unknown_sweep_takes_no_backup(store_copy):
    path, url = store_copy
    result = invoke("resume", "no-such-sweep", "--store", url)
    assert result.exit_code != 0
    assert_one_line_error(result.output, "no-such-sweep")
    assert list_backups(path) == []


def test_a_damaged_store_is_not_backed_up_over_its_good_backups(store_copy):
    path, url = store_copy
    assert invoke("store", "backup", "--store", url).exit_code == 0
    good = list_backups(path)
    leaves = leaf_pages(path, "epochs")
    overwrite_page(path, leaves[len(leaves) // 2])
    result = invoke("store", "backup", "--store", url)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"store {path} is damaged (", "restore its last backup")
    assert list_backups(path) == good
    assert not [p for p in good[0].parent.iterdir() if ".partial" in p.name]


def test_salvage_keeps_every_row_off_the_damaged_page(store_copy, tmp_path):
    path, url = store_copy
    rows = table_rows(path)
    leaves = leaf_pages(path, "epochs")
    overwrite_page(path, leaves[1])
    target = tmp_path / "salvaged.db"
    result = invoke("store", "salvage", "--store", url, "--to", str(target), "--format", "json")
    assert result.exit_code == 0, result.output
    assert invoke("store", "check", "--store", f"sqlite:///{target}").exit_code == 0
    salvaged = table_rows(target)
    for table in ("sweeps", "points", "trials"):
        assert salvaged[table] == rows[table]
    lost = set(rows["epochs"]) - set(salvaged["epochs"])
    assert set(salvaged["epochs"]) <= set(rows["epochs"])
    assert 0 < len(lost) < len(rows["epochs"]) / 2  # one leaf page's rows, no more
    # The salvaged store goes in place of the damaged one like a backup does.
    assert invoke("store", "restore", "--store", url, "--from", str(target)).exit_code == 0
    assert table_rows(path) == salvaged


def test_salvage_keeps_a_row_whose_text_is_not_utf8(store_copy, tmp_path):
    path, url = store_copy
    damage_text(path, EXPERIMENT_PATH)
    target = tmp_path / "salvaged.db"
    result = invoke("store", "salvage", "--store", url, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert "sweeps.experiment_path: 1 text cell(s) were not UTF-8" in result.stderr
    assert invoke("store", "check", "--store", f"sqlite:///{target}").exit_code == 0
    assert invoke("results", "sweeps", "--store", f"sqlite:///{target}").exit_code == 0


def test_text_that_is_not_utf8_is_never_backed_up_over_good_backups_nor_restored(store_copy, monkeypatch):
    # quick_check does not read inside text: a backup is also read as UTF-8 before it is kept, and restore skips one
    # that is not, so a store damaged this way cannot push its good backups out.
    path, url = store_copy
    monkeypatch.setenv("ANALOG_SWEEP_STORE_BACKUPS", "1")
    assert invoke("store", "backup", "--store", url).exit_code == 0
    good = list_backups(path)
    damage_text(path, EXPERIMENT_PATH)
    result = invoke("store", "backup", "--store", url)
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, f"store {path} is damaged (", "experiment_path", "restore its last backup")
    assert list_backups(path) == good
    # A damaged backup beside the good one (copied in by hand, newer): restore takes the good one.
    newer = good[0].with_name(good[0].name.replace("results-20", "results-29"))
    shutil.copyfile(path, newer)
    assert list_backups(path)[0] == newer
    result = invoke("store", "restore", "--store", url)
    assert result.exit_code == 0, result.output
    assert invoke("store", "check", "--store", url).exit_code == 0


def test_a_sweep_that_lost_its_trials_is_reopened_by_salvage_and_reads_without_them(store_copy, tmp_path):
    path, url = store_copy
    damage_btree(path, "trials")
    target = tmp_path / "salvaged.db"
    result = invoke("store", "salvage", "--store", url, "--to", str(target))
    assert result.exit_code == 0, result.output
    assert f"sweep {SWEEP} lost rows: marked interrupted; 'analog-sweep resume {SWEEP}'" in result.stderr
    salvaged = table_rows(target)
    assert salvaged["trials"] == [] and salvaged["epochs"] == []  # no epoch row left without its trial
    assert [row for row in salvaged["sweeps"] if "interrupted" in row]
    connection = sqlite3.connect(target)
    try:
        assert connection.execute("SELECT DISTINCT status, chosen_trial_id FROM points").fetchall() == [
            ("running", None)
        ]
    finally:
        connection.close()
    salvaged_url = f"sqlite:///{target}"
    assert invoke("store", "check", "--store", salvaged_url).exit_code == 0
    for command in (["results", "best", SWEEP], ["status", SWEEP], ["report", SWEEP, "--out", str(tmp_path / "r")]):
        result = invoke(*command, "--store", salvaged_url)
        assert "Traceback" not in result.output and not isinstance(result.exception, TypeError), command


# ---- a backup while a sweep writes ---------------------------------------------------------------------------

WRITER = """
import sys
from analog_sweep.results import open_store
AXES = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0}
with open_store(sys.argv[1]) as store:
    store.record_sweep("live", {"name": "live"}, "hash", "running", "/nowhere/live")
    store.record_point("live", "q", mode="digital_tl", task="5-7", classes=["5", "7"], seed=0, axes=AXES)
    print("ready", flush=True)
    trial = 0
    while True:
        trial += 1
        store.record_trial(f"t{trial}", "live", "q", lr=0.1, status="running", ray_trial_id="r")
        for epoch in range(1, 21):
            store.record_epoch(f"t{trial}", epoch, train_loss=1.0, test_error=1.0, test_accuracy=99.0, seconds=1.0)
"""


def test_a_backup_taken_while_a_sweep_writes_is_consistent(store_copy, tmp_path):
    """A real writer in another process commits an epoch row and its trial's summary (epochs_done) in one
    transaction, many times a second; each backup taken meanwhile must hold whole transactions only: every trial's
    epochs_done equals its epoch rows, and the file passes integrity_check."""
    path, url = store_copy
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, url], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        ready = any(line.strip() == "ready" for line in writer.stdout)  # stops at "ready", or at the end if it died
        assert ready, f"the writer ended (exit {writer.wait()}): {writer.stderr.read()}"
        counts = []
        for i in range(4):
            time.sleep(0.3)
            target = tmp_path / f"during-{i}.db"
            result = invoke("store", "backup", "--store", url, "--to", str(target))
            assert result.exit_code == 0, result.output
            connection = sqlite3.connect(target)
            try:
                assert connection.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
                mismatched = connection.execute(
                    "SELECT t.trial_id, t.epochs_done, (SELECT count(*) FROM epochs e WHERE e.trial_id = t.trial_id) "
                    "FROM trials t WHERE t.sweep = 'live' AND t.epochs_done != "
                    "(SELECT count(*) FROM epochs e WHERE e.trial_id = t.trial_id)"
                ).fetchall()
                assert mismatched == []
                counts.append(connection.execute("SELECT count(*) FROM epochs").fetchone()[0])
                assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one file, no log
            finally:
                connection.close()
            assert not target.with_name(target.name + "-wal").exists()
        assert writer.poll() is None, writer.stderr.read()  # it was writing the whole time
    finally:
        writer.kill()
        writer.wait()
    assert counts == sorted(counts) and counts[-1] > counts[0]  # the writer's rows grew between the backups
    assert counts[0] > 320  # the first backup already held some of the writer's rows


def test_resume_backs_the_store_up_first(store_copy):
    """Before a resume writes, the store is copied into backups/ (this sweep had finished: nothing more runs)."""
    path, url = store_copy
    result = invoke("resume", SWEEP, "--store", url)
    assert result.exit_code == 0, result.output
    (backup,) = list_backups(path)
    assert f"store backed up to {backup}" in result.stderr
    assert table_rows(backup) == table_rows(path)


def test_no_automatic_backup_when_turned_off(store_copy):
    path, url = store_copy
    result = invoke("resume", SWEEP, "--store", url, env={**os.environ, "ANALOG_SWEEP_STORE_BACKUPS": "0"})
    assert result.exit_code == 0, result.output
    assert list_backups(path) == []


def test_check_on_postgresql_reads_the_schema_version_and_counts_the_tables(postgres_store):
    url = postgres_store.url
    with open_store(url) as store:
        store.record_sweep(SWEEP, {"name": SWEEP}, "hash", "running", EXPERIMENT_PATH)
        store.record_point(SWEEP, "p0", mode="analog_tl", task="5-7", classes=["5", "7"], seed=0, axes=AXES)
    result = invoke("store", "check", "--store", url)
    assert result.exit_code == 0, result.output
    line = result.stdout.splitlines()[0]
    assert "OK (schema version and row counts (PostgreSQL checks its own pages)" in line
    assert line.endswith("1 sweeps, 1 points, 0 trials, 0 epochs)")
    for command in (["backup"], ["restore"], ["salvage", "--to", "x.db"]):
        refused = invoke("store", *command, "--store", url)
        assert refused.exit_code == 2, refused.output
        assert_one_line_error(refused.stderr, "PostgreSQL", "pg_dump")


def test_restore_is_refused_while_a_driver_runs_a_sweep_of_the_store(tmp_path):
    """A restore under a running driver would lose what it writes next: refused, the store untouched, while the
    sweep's driver lock is held (the lock ``run`` takes); allowed once it is released."""
    from analog_sweep.orchestrator._paths import SweepPaths, driver_lock

    folder = tmp_path / "storage" / "live"
    folder.mkdir(parents=True)
    path = tmp_path / "store" / "results.db"
    path.parent.mkdir()
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.record_sweep("live", {"name": "live"}, "hash", "running", str(folder))
    assert invoke("store", "backup", "--store", url).exit_code == 0
    with open_store(url) as store:
        store.record_sweep("later", {"name": "later"}, "hash", "finished", str(tmp_path / "later"))
        command = ["analog-sweep", "run", "sweeps/quickstart.yaml", "--profile", "smoke"]
        store.record_run("later", a_run("r1", command=command))
    before = path.read_bytes()
    with driver_lock(SweepPaths(folder), "live"):
        refused = invoke("store", "restore", "--store", url)
    assert refused.exit_code != 0
    assert_one_line_error(refused.output, f"sweep live is running on store {path}: stop it before restoring the store")
    assert path.read_bytes() == before and not list(path.parent.glob("*.damaged-*"))
    restored = invoke("store", "restore", "--store", url)
    assert restored.exit_code == 0, restored.output
    assert "sweep later is not in the backup: its rows are only in " in restored.stderr
    assert "run it again as it was run, analog-sweep run sweeps/quickstart.yaml --profile smoke, to record" in (
        restored.stderr
    )


def test_restore_of_a_store_too_damaged_to_list_its_sweeps_is_refused_while_a_driver_writes_it(tmp_path):
    """A store whose header is gone lists no sweep, so no sweep's lock can be found from it: the drivers' lock beside
    the store (held by every driver while it runs) refuses the restore all the same; a sweep the backup does not
    list is named after a restore."""
    path = tmp_path / "results.db"
    url = f"sqlite:///{path}"
    with open_store(url) as store:
        store.record_sweep("old", {"name": "old"}, "hash", "finished", str(tmp_path / "old"))
    assert invoke("store", "backup", "--store", url).exit_code == 0
    with open_store(url) as store:
        store.record_sweep("new", {"name": "new"}, "hash", "running", str(tmp_path / "new"))
    with open(path, "r+b") as damaged:
        damaged.write(b"\0" * 16)  # SQLite's header string: the file reads as no database at all
    before = path.read_bytes()
    # A file with backups of it beside it was a store: damaged, not "not a store" (bad input).
    read = invoke("results", "sweeps", "--store", url)
    assert read.exit_code == 1
    assert_one_line_error(read.output, f"store {path} is damaged (file is not a database)", "store restore")
    with store_in_use(make_url(url)):  # as a running driver holds it
        refused = invoke("store", "restore", "--store", url)
    assert refused.exit_code != 0
    assert_one_line_error(refused.output, f"a sweep's driver is writing store {path}: stop it")
    assert path.read_bytes() == before and not list(tmp_path.glob("*.damaged-*"))
    restored = invoke("store", "restore", "--store", url)
    assert restored.exit_code == 0, restored.output
    assert "sweep new is not in the backup" not in restored.stderr  # the damaged file could not say it had one
    assert [row[0] for row in table_rows(path)["sweeps"]] == ["old"]
