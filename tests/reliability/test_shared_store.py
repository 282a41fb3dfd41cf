"""Two sweeps run at once into one results store while a third process reads it over and over.

Two researchers (or one in two terminals) start ``analog-sweep run`` on different sweeps at the same moment, into
the same default SQLite store (the same working folder) or the same PostgreSQL database, on a store that does not
exist yet, while ``results best``, ``results trials``, ``status`` and ``report`` run in a loop against it. Every
trial of both sweeps must be recorded once, no process may print "database is locked", and no reader may wait on
the writers.

Each driver starts its own local Ray instance (``ray.init(address="local")``: Ray's address resolution returns no
address for "local", so it neither reads ``RAY_ADDRESS`` nor joins a cluster a ``ray start`` recorded in /tmp/ray),
so the two never share, or join another test's, cluster.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from ..orchestrator.faults import reap_session
from .conftest import NANO, QUICKSTART, cli_process, expected, set_args

# Two sweeps with different names sharing one pretrained model (``digital_tl`` in both), so both drivers also meet
# in the pretrained-model cache: 2 points and 1 point, 2 learning rates each, 2 epochs.
SWEEPS = {
    "shared-a": [*NANO, "name=shared-a", "epochs=2", "modes=[digital_tl,digital_scratch]", "axes=null"],
    "shared-b": [*NANO, "name=shared-b", "epochs=2", "modes=[digital_tl]", "axes=null"],
}
LOCKED = "database is locked"
RETRY_NOTICE = "results store unavailable ("
# What a reader may answer before the sweeps have created the store and recorded themselves (one line, exit 1 or 2).
NOT_THERE_YET = ("no store at", "no analog-sweep store at", "unknown sweep")
# The longest the store may keep a reader's reads waiting (the in-process probe: open, progress, best points and
# trials of both sweeps): measured 33 ms (SQLite) and 364 ms (PostgreSQL) at the median, 0.6 s and 1.0 s at the
# longest, on 2 cores at a load average of 30. A reader that waited on a writer's lock would wait until the writer
# commits, or SQLite's busy timeout (30 s): 5 s leaves room for a slower machine and still shows any such wait.
PROBE_BOUND_S = 5.0
# The longest a reader command may take from start to answer: Python's start, imports and the command's work (the
# report draws its figures) on 2 cores that two drivers and their trials keep busy: 3-5 s at the median, up to 20 s
# measured; a reader that waited out SQLite's busy timeout (30 s) on top of that goes past it.
COMMAND_BOUND_S = 45.0

# The reader: runs each command in turn until STOP exists, one JSON line per call (command, exit code, seconds,
# output), into LOG.
READER = r"""
import json, subprocess, sys, time
from pathlib import Path
from analog_sweep.results import StoreError, open_store
stop, log, store = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]


def probe():
    # The same reads in this process, without starting Python: how long the store itself made a reader wait.
    started = time.monotonic()
    try:
        with open_store(store[1] if store else None, read_only=True) as opened:
            opened.sweep_progress()
            for sweep in ("shared-a", "shared-b"):
                opened.best_points(sweep)
                opened.list_trials(sweep)
        rc, stderr = 0, ""
    except StoreError as exc:
        rc, stderr = 1, str(exc)
    return {"command": "probe", "rc": rc, "seconds": time.monotonic() - started, "stdout": "", "stderr": stderr}


commands = [
    ["results", "best", "shared-a"],
    ["results", "trials", "shared-b"],
    ["status"],
    ["report", "shared-b", "--out", str(log.parent / "report-b")],
]
with log.open("w") as out:
    while not stop.exists():
        for command in commands:
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "analog_sweep", *command, *store], capture_output=True, text=True
            )
            row = {
                "command": " ".join(command[:2]),
                "rc": done.returncode,
                "seconds": time.monotonic() - started,
                "stdout": done.stdout[-2000:],
                "stderr": done.stderr[-2000:],
            }
            out.write(json.dumps(row) + "\n")
            out.write(json.dumps(probe()) + "\n")
            out.flush()
"""


# A writer: says "ready" once imported, waits for the file GO, opens the store (creating it if it is new) and records
# a sweep, a point, a trial and its epochs; prints "ok" or the one-line store error.
OPENER = r"""
import sys, time
from pathlib import Path
from analog_sweep.results import StoreError, open_store
url, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
axes = dict.fromkeys(("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod"), 0.0)
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
try:
    with open_store(url) as store:
        store.record_sweep(name, {"name": name}, "hash-" + name, "running", "/nowhere/" + name)
        store.record_point(name, "p0", mode="digital_tl", task="5-7", classes=["5", "7"], seed=0, axes=axes)
        store.record_trial(name + "-t0", name, "p0", lr=0.1, status="running")
        for epoch in (1, 2):
            store.record_epoch(name + "-t0", epoch, train_loss=0.5, test_error=10.0, test_accuracy=90.0, seconds=1.0)
    print("ok")
except StoreError as exc:
    print(exc)
"""
# A reader: once imported (says "ready"), opens the store read-only and lists its sweeps until the file DONE exists;
# prints every answer that is neither a listing nor "no store yet", one a line.
POLLER = r"""
import sys
from pathlib import Path
from analog_sweep.results import StoreError, open_store
url, done = sys.argv[1], Path(sys.argv[2])
print("ready", flush=True)
while not done.exists():
    try:
        with open_store(url, read_only=True) as store:
            store.sweep_progress()
    except StoreError as exc:
        if "no store at" not in str(exc) and "no analog-sweep store at" not in str(exc):
            print(exc, flush=True)
"""


def _python(script: str, *args: str) -> subprocess.Popen:
    """``script`` in a new Python process; returns once it has printed its first line ("ready")."""
    process = subprocess.Popen(
        [sys.executable, "-c", script, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout.readline().strip() == "ready", process.communicate()[0]
    return process


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_writers_opening_a_new_store_at_once_all_succeed_and_readers_never_see_half_a_schema(
    tmp_path, backend, postgres_admin
):
    """Six processes open the same store that does not exist yet at the same moment and write a sweep each, while
    a reader opens it in a loop; three rounds, each on a new store. Every writer succeeds (one creates the schema,
    the others find it whole) and the reader sees either no store or the whole schema."""
    from ..conftest import fresh_schema, require_postgres, schema_url

    writers, rounds = 6, 3
    failures: list[str] = []
    for round_ in range(rounds):
        folder = tmp_path / f"round{round_}"
        folder.mkdir()
        go, done, schema = folder / "go", folder / "done", None
        if backend == "sqlite":
            url = f"sqlite:///{folder / 'results.db'}"
        else:
            schema = fresh_schema(require_postgres(postgres_admin), "shared")
            url = schema_url(schema)
        try:
            poller = _python(POLLER, url, str(done))
            openers = [_python(OPENER, url, f"s{n}", str(go)) for n in range(writers)]
            go.touch()  # every writer has imported the store and starts within a few milliseconds
            answers = [opener.communicate(timeout=120)[0].strip() for opener in openers]
            done.touch()
            seen = poller.communicate(timeout=120)[0]
            failures += [f"round {round_} writer: {answer}" for answer in answers if answer != "ok"]
            failures += [f"round {round_} reader: {line}" for line in seen.splitlines() if line.strip()]
            if not failures:
                engine = sa.create_engine(url)
                try:
                    with engine.connect() as connection:
                        counts = [connection.scalar(sa.text(f"SELECT count(*) FROM {t}")) for t in ("sweeps", "epochs")]
                finally:
                    engine.dispose()
                assert counts == [writers, 2 * writers], counts
        finally:
            if schema is not None:
                postgres_admin.execute(f"DROP SCHEMA {schema} CASCADE")
    assert not failures, "\n".join(failures)


def _child_env(tmp_path: Path) -> dict[str, str]:
    """The environment of every process of the test: no store or storage path from outside (each run uses the
    working folder's defaults, or ``--store``), its own pretrained-model cache, no Ray address or fixed Ray port."""
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("ANALOG_SWEEP_STORE", "ANALOG_SWEEP_STORAGE", "RAY_ADDRESS", "RAY_GCS_SERVER_PORT")
    }
    env["ANALOG_SWEEP_CACHE"] = str(tmp_path / "cache")
    return env


def _reader_calls(log: Path) -> list[dict]:
    return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]


def _store_rows(url: str) -> dict:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            sweeps = dict(connection.execute(sa.text("SELECT name, status FROM sweeps")).all())
            trials = connection.execute(
                sa.text("SELECT trial_id, sweep, status, epochs_done FROM trials ORDER BY trial_id")
            ).all()
            epochs = connection.execute(
                sa.text(
                    "SELECT t.sweep, e.trial_id, e.epoch FROM epochs e JOIN trials t ON t.trial_id = e.trial_id "
                    "ORDER BY e.trial_id, e.epoch"
                )
            ).all()
    finally:
        engine.dispose()
    return {"sweeps": sweeps, "trials": trials, "epochs": epochs}


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_two_sweeps_at_once_into_one_store_with_a_reader_lose_nothing_and_never_lock(tmp_path, backend, request):
    env = _child_env(tmp_path)
    work = tmp_path / "work"  # the working folder of all three: the default store and storage path are here
    work.mkdir()
    if backend == "sqlite":
        store_args: list[str] = []  # the default store, ./sweep-store/results.db
        url = f"sqlite:///{work / 'sweep-store' / 'results.db'}"
    else:
        url = request.getfixturevalue("postgres_store").url
        store_args = ["--store", url]

    stop, log = tmp_path / "stop-reading", tmp_path / "reader.jsonl"
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(stop), str(log), *store_args],
        cwd=work,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    drivers = {
        name: cli_process("run", QUICKSTART, *set_args(overrides), *store_args, env=env, cwd=work)
        for name, overrides in SWEEPS.items()
    }
    outputs: dict[str, tuple[int, str, str]] = {}
    try:
        for name, driver in drivers.items():
            out, err = driver.communicate(timeout=600)
            outputs[name] = (driver.returncode, out, err)
    finally:
        stop.touch()
        for driver in drivers.values():
            if driver.poll() is None:
                driver.kill()
            reap_session(driver)
        try:
            _, reader_err = reader.communicate(timeout=180)
        finally:
            if reader.poll() is None:
                reader.kill()
    calls = _reader_calls(log)

    # Every process: no lock error, no traceback; the drivers never had to retry a write.
    for name, (code, out, err) in outputs.items():
        assert code == 0, f"{name} exit {code}:\n{err[-4000:]}"
        assert LOCKED not in out + err and "Traceback" not in err, f"{name}:\n{err[-4000:]}"
        assert RETRY_NOTICE not in err, f"{name} waited for the store past the busy timeout:\n{err[-4000:]}"
        assert f"sweep {name} finished" in err, err[-2000:]
    assert reader.returncode == 0, reader_err
    assert calls, "the reader made no call"
    for call in calls:
        assert LOCKED not in call["stdout"] + call["stderr"] and "Traceback" not in call["stderr"], call

    # Every trial of both sweeps once, with every epoch once.
    rows = _store_rows(url)
    assert rows["sweeps"] == {name: "finished" for name in SWEEPS}
    for name, overrides in SWEEPS.items():
        spec, points = expected(overrides)
        want = len(points) * spec.lr_search.trials_per_point
        trials = [row for row in rows["trials"] if row.sweep == name]
        assert len(trials) == want, (name, len(trials), want)
        assert len({row.trial_id for row in trials}) == want
        assert {(row.status, row.epochs_done) for row in trials} == {("completed", spec.epochs)}, trials
        epochs = [(row.trial_id, row.epoch) for row in rows["epochs"] if row.sweep == name]
        assert sorted(epochs) == sorted((row.trial_id, e) for row in trials for e in range(1, spec.epochs + 1))

    # The reader: each command answers, or (only before the sweeps are in the store) says in one line that the
    # store or the sweep is not there yet.
    answered: set[str] = set()
    for call in calls:
        if call["rc"] == 0:
            answered.add(call["command"])
            continue
        lines = [line for line in call["stderr"].splitlines() if line.strip()]
        assert call["command"] not in answered, f"a reader call failed after the same call had answered: {call}"
        assert len(lines) == 1 and any(text in lines[0] for text in NOT_THERE_YET), call
    assert answered == {"results best", "results trials", "status", "report shared-b", "probe"}, answered
    # A reader never waits for a lock (WAL on SQLite, MVCC on PostgreSQL).
    for kind, bound in (("probe", PROBE_BOUND_S), ("command", COMMAND_BOUND_S)):
        timed = [call for call in calls if (call["command"] == "probe") == (kind == "probe")]
        slowest = max(timed, key=lambda call: call["seconds"])
        print(
            f"{backend}: {len(timed)} reader {kind} calls, median {statistics.median(c['seconds'] for c in timed):.3f}"
            f" s, longest {slowest['seconds']:.3f} s ({slowest['command']})"
        )
        assert slowest["seconds"] < bound, slowest
