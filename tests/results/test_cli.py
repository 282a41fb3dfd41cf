"""``analog-sweep results ...`` through click's CliRunner, and once through a real process."""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analog_sweep import results
from analog_sweep.cli import cli

REPO = Path(__file__).resolve().parents[2]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def run(store_url):
    """Run ``analog-sweep results ARGS --store URL``; return (exit code, stdout, stderr)."""

    def invoke(*args: str, store: str | None = store_url, env: dict[str, str] | None = None):
        store_args = ["--store", store] if store else []
        outcome = CliRunner().invoke(cli, ["results", *args, *store_args], env=env)
        return outcome.exit_code, outcome.stdout, outcome.stderr

    return invoke


@pytest.fixture
def filled_url(filled_store, store_url) -> str:
    return store_url


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


def test_sweeps_lists_progress(filled_url, run, sample):
    code, out, _ = run("sweeps", "--format", "json")
    points = len(sample.modes) * len(sample.noises)
    assert code == 0
    [row] = _json_lines(out)
    assert (row["sweep"], row["status"], row["points_done"], row["points_total"]) == (
        "noise",
        "finished",
        points,
        points,
    )
    assert row["trials_failed"] == len(sample.noises)
    code, out, _ = run("sweeps", "--format", "csv")
    assert next(csv.reader(io.StringIO(out)))[:4] == ["sweep", "status", "points_done", "points_total"]


def test_sweep_lists_mark_smoke_runs(tmp_path):
    """``results sweeps`` and ``status`` name smoke runs on stderr and show their profile; a list of full runs
    shows no profile column in a table (CSV and JSON always carry it); ``status`` of a smoke run says it once."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with results.open_store(url) as store:
        store.record_sweep("full", {"name": "full"}, "h1")

    def table(*args: str):
        outcome = CliRunner().invoke(cli, [*args, "--store", url])
        assert outcome.exit_code == 0, outcome.output
        header = outcome.stdout.splitlines()[0].split()
        rows = {line.split()[0]: line.split() for line in outcome.stdout.splitlines()[2:]}
        return header, rows, outcome.stderr

    for command in (["results", "sweeps"], ["status"]):
        header, _, stderr = table(*command)
        assert "profile" not in header and "smoke" not in stderr
    outcome = CliRunner().invoke(cli, ["results", "sweeps", "--store", url, "--format", "json"])
    assert [row["profile"] for row in _json_lines(outcome.stdout)] == [None]

    with results.open_store(url) as store:
        store.record_sweep("full-smoke", {"name": "full-smoke", "profile": "smoke"}, "h2")
    for command in (["results", "sweeps"], ["status"]):
        header, rows, stderr = table(*command)
        column = header.index("profile")
        assert (rows["full"][column], rows["full-smoke"][column]) == ("-", "smoke")
        assert "smoke runs (--profile smoke), whose numbers are not results: full-smoke" in stderr
    outcome = CliRunner().invoke(cli, ["status", "full-smoke", "--store", url])
    assert outcome.exit_code == 0, outcome.output
    assert outcome.stderr.splitlines().count(results.SMOKE_NOTE) == 1  # before the table


def test_store_comes_from_the_environment(filled_url, run):
    code, out, _ = run("sweeps", "--format", "json", store=None, env={results.STORE_ENV: filled_url})
    assert code == 0 and _json_lines(out)[0]["sweep"] == "noise"


def test_best_shows_chosen_lr_per_point(filled_url, run, sample):
    code, out, _ = run("best", "noise", "--format", "json")
    assert code == 0
    rows = _json_lines(out)
    assert len(rows) == len(sample.modes) * len(sample.noises)
    assert {r["lr"] for r in rows} == {0.05}
    assert set(rows[0]) >= {"point_key", "label", "mode", "task", *results.AXES, "lr", "epoch", "test_error"}
    assert {r["selected_on"] for r in rows} == {"test"}  # recorded without a selection rule: the paper's
    code, out, _ = run("best", "noise")
    assert code == 0 and out.splitlines()[0].split()[:3] == ["label", "mode", "task"]


def test_best_axis_curve_and_plot(filled_url, run, sample, tmp_path):
    plot = tmp_path / "fig3.png"
    code, out, err = run("best", "noise", "--axis", "transfer_noise", "--plot", str(plot), "--format", "json")
    assert code == 0, err
    rows = _json_lines(out)
    assert [(r["mode"], r["transfer_noise"]) for r in rows] == [(m, n) for m in sample.modes for n in sample.noises]
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_curves_and_plot(filled_url, run, sample, tmp_path):
    plot = tmp_path / "fig2.png"
    code, out, err = run("curves", "noise", "--plot", str(plot), "--format", "csv")
    assert code == 0, err
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == len(sample.modes) * len(sample.noises) * sample.epochs
    assert plot.read_bytes().startswith(PNG_MAGIC)


def test_trials_of_a_point_say_why(filled_url, run, sample):
    key = sample.point_key("analog_tl", 1.0)
    code, out, err = run("trials", "noise", "--point", key, "--format", "json")
    assert code == 0
    rows = _json_lines(out)
    assert [(r["lr"], r["status"], r["chosen"]) for r in rows] == [
        (0.01, "completed", False),
        (0.05, "completed", True),
        (0.1, "pruned", False),
    ]
    assert "lr=0.05 has the lowest final test error" in err


@pytest.mark.parametrize("per", ["epoch", "point", "elbow"])
def test_export(filled_url, run, tmp_path, per):
    out_file = tmp_path / f"{per}.parquet"
    code, out, _ = run("export", "noise", "--out", str(out_file), "--per", per, "--format", "json")
    assert code == 0
    [summary] = _json_lines(out)
    assert summary["rows"] == pq.read_table(out_file).num_rows > 0


def test_query_reads_and_refuses_writes(filled_url, filled_store, run, count_rows):
    code, out, _ = run("query", "SELECT count(*) AS n FROM points", "--format", "json")
    assert (code, _json_lines(out)) == (0, [{"n": 6}])
    before = count_rows(filled_store)
    for sql in ("DELETE FROM epochs", "SELECT 1; DROP TABLE epochs", "WITH x AS (SELECT 1) UPDATE trials SET lr = 0"):
        code, out, err = run("query", sql)
        assert code == 2 and out == ""
        assert err.startswith("Error: refused") and err.count("\n") == 1
    assert count_rows(filled_store) == before


BAD_INPUTS = [
    ("best", "nope"),
    ("curves", "nope"),
    ("export", "nope", "--out", "x.parquet"),
    ("trials", "noise", "--point", "nope"),
    ("best", "noise", "--plot", "x.png"),
    ("best", "noise", "--axis", "volume"),
    ("elbows", "nope"),
    ("elbows", "noise", "--axis", "sp_skew"),
    ("query", "SELECT * FROM nowhere"),
]


def test_bad_input_exits_2_with_one_line(filled_url, run):
    for args in BAD_INPUTS:
        code, out, err = run(*args)
        assert code == 2, args
        assert err.startswith("Error: ") and err.count("\n") == 1 and "Traceback" not in err, err


def test_missing_store_and_bad_urls_exit_2(run, tmp_path):
    for url in (f"sqlite:///{tmp_path / 'typo.db'}", "nonsense", "mysql://u@h/db"):
        code, _, err = run("sweeps", store=url)
        assert code == 2 and err.count("\n") == 1, err
    assert not (tmp_path / "typo.db").exists()


def test_unreachable_server_exits_1(run):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run("sweeps", store=f"postgresql+psycopg://postgres@127.0.0.1:{port}/test")
    assert code == 1 and "Connection refused" in err and err.count("\n") == 1


@pytest.mark.parametrize("command", ["sweeps", "best", "trials", "curves", "elbows", "export", "query", "provenance"])
def test_help_shows_an_example(command):
    outcome = CliRunner().invoke(cli, ["results", command, "--help"])
    assert outcome.exit_code == 0
    assert "Example" in outcome.stdout and "--store" in outcome.stdout and "--format" in outcome.stdout


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_real_process_refuses_a_write_with_exit_2_and_one_line(filled_url, filled_store, count_rows):
    before = count_rows(filled_store)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "analog_sweep",
            "results",
            "query",
            "SELECT 1; DELETE FROM epochs",
            "--store",
            filled_url,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 2, done.stderr
    assert done.stdout == "" and done.stderr.startswith("Error: refused") and done.stderr.count("\n") == 1
    assert count_rows(filled_store) == before


def test_trials_best_and_curves_show_the_analog_activity(filled_url, run, sample):
    code, out, _ = run("trials", "noise", "--format", "json")
    assert code == 0
    rows = {r["trial_id"]: r for r in _json_lines(out)}
    analog = rows[sample.trial_id("analog_tl", 10.0, 0.05)]
    # The trial keeps its last epoch's activity (epoch 3 of the made-up sample).
    assert (analog["head_moved"], analog["blocks_moved"], analog["blocks_rel"]) == pytest.approx((30.0, 60.0, 0.6))
    assert rows[sample.trial_id("digital_tl", 10.0, 0.05)]["head_moved"] is None
    code, out, _ = run("best", "noise", "--format", "json")
    best = {(r["mode"], r["transfer_noise"]): r for r in _json_lines(out)}
    assert best["analog_tl", 100.0]["head_moved"] == 0.0 and best["analog_tl", 1.0]["head_moved"] == 30.0
    code, out, _ = run("curves", "noise", "--format", "json")
    epochs = [r for r in _json_lines(out) if r["point_key"] == sample.point_key("analog_tl", 1.0)]
    assert [r["head_moved"] for r in epochs] == [10.0, 20.0, 30.0]


def test_status_notes_a_head_that_did_not_move_only_along_the_swept_axis(filled_url, sample):
    outcome = CliRunner().invoke(cli, ["status", "noise", "--store", filled_url])
    assert outcome.exit_code == 0
    notes = [line for line in outcome.stderr.splitlines() if line.startswith(("warning:", "note:"))]
    # Only the analog point at transfer noise 100 has a head that never moved; digital points have no tiles. The base
    # point's head moved, so this is what the swept noise does: a note naming the curve and the value, no advice.
    assert notes == [
        "note: analog_tl/2-class: head barely moved (0 % of the weights) at transfer_noise 100 % (1 of 1 chosen "
        "trials), not at the base point: the swept transfer_noise stops the analog tiles learning there, which is "
        "what the study measures"
    ], outcome.stderr


def test_provenance_in_every_format(filled_url, filled_store, run, sample):
    from .test_provenance import RPU_A, a_run

    filled_store.record_run(
        "noise", a_run("r1", command=["analog-sweep", "run", "noise.yaml", "--store", "postgresql://me:Hidden1@db/s"])
    )
    filled_store.record_run("noise", a_run("r2", "resume", minutes=5, packages={"torch": "2.10.1"}))
    filled_store.record_pretrained(
        "noise",
        {
            "cache_key": "k1",
            "file_hash": "f" * 64,
            "source_error": 3.7,
            "train_seconds": 21.0,
            "trained_now": True,
            "run_id": "r1",
        },
    )
    trial_id = sample.trial_id("analog_tl", 10.0, 0.05)
    filled_store.set_trial_rpu_config(trial_id, RPU_A)

    code, out, err = run("provenance", "noise", "--format", "json")
    assert code == 0, err
    document = json.loads(out)  # the whole output is one JSON document
    assert [r["kind"] for r in document["runs"]] == ["run", "resume"]
    assert document["runs"][0]["started_at"] == "2025-03-01T12:00:00+00:00"
    assert document["runs"][1]["packages"] == {"torch": "2.10.1"}
    assert document["pretrained"][0]["file_hash"] == "f" * 64 and document["pretrained"][0]["run"] == 1
    assert document["rpu_configs"][0]["trial_ids"] == [trial_id] and document["rpu_configs"][0]["rpu_config"] == RPU_A
    assert "Hidden1" not in out

    code, out, _ = run("provenance", "noise", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    facts = {(r["section"], r["item"], r["field"]): r["value"] for r in rows}
    assert facts["run", "1", "command"] == "analog-sweep run noise.yaml --store 'postgresql://me:***@db/s'"
    assert facts["run", "2", "kind"] == "resume" and facts["run", "2", "packages.torch"] == "2.10.1"
    assert facts["run", "1", "options.overrides"] == '["epochs=2"]'
    assert facts["run", "1", "cpu"] == "AMD EPYC 7B13 x 2" and facts["run", "1", "gpus"] == "none"
    assert facts["run", "1", "project.commit"] == "0123abcd" * 5
    assert facts["pretrained", "k1", "source_error"] == "3.7"
    config = results.config_hash(RPU_A)
    assert facts["rpu_config", config, "trials"] == "1"
    assert facts["rpu_config", "none", "trials"] == str(len(sample.modes) * len(sample.noises) * len(sample.lrs) - 1)
    assert not any(field.startswith("config.") for _, _, field in facts)
    code, out, _ = run("provenance", "noise", "--format", "csv", "--full")
    facts = {(r["section"], r["item"], r["field"]): r["value"] for r in csv.DictReader(io.StringIO(out))}
    assert facts["rpu_config", config, "config.device.unit_cell_devices[1].dw_min_dtod"] == "0.3"
    assert facts["rpu_config", config, "config.forward.bound_management"] == "BoundManagementType.ITERATIVE"

    code, out, _ = run("provenance", "noise")
    assert code == 0 and "packages.torch" in out and "***" in out

    code, out, err = run("provenance", "nope")
    assert code == 2 and "unknown sweep 'nope'" in err and err.count("\n") == 1
