"""A damaged Optuna journal. A torn last record (cut short, or NUL bytes, as a crash, a power cut
or a full disk leaves it) is removed before the journal is opened, with a backup and one line saying so; damage
that cannot be repaired safely is one line naming the file and what to do, before Ray starts, with the file left
as it was and the sweep no longer called ``running``.

Left alone, a torn last line is skipped by Optuna when reading, its next record is appended onto it, and from then
on every read fails with a JSON decode traceback: every ``resume`` would fail and grow the journal.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.orchestrator import JournalDamaged, LearningRateSearch, repair_journal, sweep_paths
from analog_sweep.results import open_store
from analog_sweep.sweeps import spec_hash

from .conftest import (
    QUICKSTART,
    SMALL_SWEEP,
    SWEEP_NAME,
    assert_complete,
    assert_one_line_error,
    expected,
    set_args,
    snapshot,
)

SETTINGS = {"trials_dir": "unused", "cache_dir": "unused", "threads": 1, "gpu": 0}
TORN = {
    "cut_short": b'{"op_code":6,"worker_id":"x","trial_id":3,"sta',
    "nul_run": b"\0" * 4096,
    "cut_short_then_nuls": b'{"op_code":4,"worker_id":"x","trial_id":1,"par' + b"\0" * 700,
    "unreadable_last_line": b'{"op_code":6,"worker_id"\n',
    "nuls_with_newline": b"\0" * 64 + b"\n",
}


def started_search(journal: Path) -> tuple[LearningRateSearch, dict[str, dict]]:
    """A search part way: three trials handed out, one of them told complete."""
    spec, points = expected(SMALL_SWEEP)
    search = LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS)
    handed = {f"r{n}": search.suggest(f"r{n}") for n in range(3)}
    search.on_trial_complete("r0", {"test_error": 12.5, "epoch": spec.epochs})
    return search, handed


def reopened(journal: Path) -> LearningRateSearch:
    spec, points = expected(SMALL_SWEEP)
    return LearningRateSearch(spec.name, points, spec.lr_search, journal, SETTINGS)


def states(search: LearningRateSearch) -> list[tuple[str, str, float | None]]:
    return [(p.key, str(t.state), t.params.get("lr")) for p in search.points for t in search.study(p.key).trials]


@pytest.mark.parametrize("tail", TORN.values(), ids=TORN.keys())
def test_a_torn_last_record_is_removed_with_a_backup_and_the_search_goes_on(tmp_path, tail):
    journal = tmp_path / "optuna.journal"
    search, _ = started_search(journal)
    before, good = states(search), journal.read_bytes()
    journal.write_bytes(good + tail)
    said: list[str] = []
    repair_journal(journal, said.append)
    (line,) = said
    (backup,) = tmp_path.glob("optuna.journal.damaged-*")
    assert "\n" not in line and f"optuna journal {journal}: removed a torn last record" in line and str(backup) in line
    assert backup.read_bytes() == good + tail and journal.read_bytes() == good
    resumed = reopened(journal)
    assert states(resumed) == before
    # The search continues on the repaired file, and what it appends reads back.
    handed = resumed.suggest("new")
    resumed.on_trial_complete("new", {"test_error": 20.0, "epoch": resumed.points[0].epochs})
    complete = lambda rows: sum(state == "TrialState.COMPLETE" for _, state, _ in rows)  # noqa: E731
    assert handed is not None and complete(states(reopened(journal))) == complete(before) + 1
    said.clear()
    repair_journal(journal, said.append)  # a sound journal is left alone, silently
    assert said == [] and len(list(tmp_path.glob("optuna.journal.damaged-*"))) == 1


def test_the_old_failure_a_record_appended_onto_a_torn_one_is_refused_not_replayed(tmp_path):
    """What the old code left: Optuna's next record glued onto the torn one, and more records after it."""
    journal = tmp_path / "optuna.journal"
    started_search(journal)
    records = journal.read_bytes().splitlines(keepends=True)
    damaged = b"".join(records[:-2]) + TORN["cut_short"] + records[-2] + records[-1]
    journal.write_bytes(damaged)
    with pytest.raises(JournalDamaged) as caught:
        repair_journal(journal, print)
    message = str(caught.value)
    assert "\n" not in message and str(journal) in message and f"line {len(records) - 1} of {len(records)}" in message
    assert "restore the file from a backup" in message
    assert journal.read_bytes() == damaged and not list(tmp_path.glob("*.damaged-*"))


@pytest.mark.parametrize(
    "damage",
    ["nuls_in_the_middle", "json_that_is_not_a_record", "record_optuna_cannot_replay", "a_folder"],
)
def test_damage_that_cannot_be_repaired_safely_is_one_line_from_resume_and_changes_nothing(tmp_path, damage):
    """Through the command line, before Ray starts: exit 1, one line naming the file, the journal byte for byte as
    it was (no growth), and a sweep the store still called ``running`` marked ``interrupted``."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    spec, _ = expected(SMALL_SWEEP)
    paths = sweep_paths(tmp_path / "storage", spec.name)
    with open_store(url) as store:
        store.record_sweep(spec.name, spec.raw, spec_hash(spec), "running", str(paths.root))
    paths.root.mkdir(parents=True)
    started_search(paths.journal)
    records = paths.journal.read_bytes().splitlines(keepends=True)
    if damage == "nuls_in_the_middle":
        records[2] = b"\0" * len(records[2])
    elif damage == "json_that_is_not_a_record":
        records[2] = b'["not", "a", "record"]\n'
    elif damage == "record_optuna_cannot_replay":
        records.insert(2, b'{"op_code":99,"worker_id":"x"}\n')  # an operation Optuna does not know
    if damage == "a_folder":
        paths.journal.unlink()
        paths.journal.mkdir()
    else:
        paths.journal.write_bytes(b"".join(records))
    before = None if damage == "a_folder" else paths.journal.read_bytes()

    result = CliRunner().invoke(cli, ["resume", spec.name, "--store", url])
    assert result.exit_code == 1, (result.output, result.exception)
    assert_one_line_error(result.stderr, f"optuna journal {paths.journal}")
    if before is not None:
        assert paths.journal.read_bytes() == before
        assert "restore the file from a backup" in result.stderr
    assert not list(paths.root.glob("*.damaged-*")) and not paths.ray.exists()  # Ray never started
    assert snapshot(url)["sweeps"] == {spec.name: "interrupted"}


@pytest.mark.slow
def test_resume_repairs_a_torn_journal_left_by_a_power_cut_and_finishes(tmp_path, ray_cluster):
    """A finished nano sweep, then what a power cut during its last write leaves: the store still says
    ``running`` and the journal ends in a torn record and NULs. ``resume`` says it removed the record, keeps a
    backup, and finishes with every row once; a second ``resume`` has nothing to do."""
    url, storage = f"sqlite:///{tmp_path / 'results.db'}", tmp_path / "storage"
    runner = CliRunner()
    first = runner.invoke(
        cli, ["run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(storage)]
    )
    assert first.exit_code == 0, first.output
    journal = storage / SWEEP_NAME / "optuna.journal"
    good = journal.read_bytes()
    journal.write_bytes(good + TORN["cut_short_then_nuls"])
    with open_store(url) as store:
        store.set_sweep_status(SWEEP_NAME, "running")

    result = runner.invoke(cli, ["resume", SWEEP_NAME, "--store", url])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    (backup,) = journal.parent.glob("optuna.journal.damaged-*")
    notes = [line for line in result.stderr.splitlines() if "removed a torn last record" in line]
    assert len(notes) == 1 and str(backup) in notes[0]
    assert journal.read_bytes().startswith(good) and b"\0" not in journal.read_bytes()
    assert_complete(url, SMALL_SWEEP, storage)
    again = runner.invoke(cli, ["resume", SWEEP_NAME, "--store", url])
    assert again.exit_code == 0 and "already finished" in again.stderr
