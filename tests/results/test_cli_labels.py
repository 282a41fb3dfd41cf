"""``analog-sweep results`` and ``report`` say what their numbers are: one stderr line before a smoke run's table
(never inside CSV or JSON, whose rows carry ``profile`` instead), a line after a table of replicates with fewer than 3
seeds or of curves not tested for a critical point, and the same facts as columns in every export. Real stores
(SQLite and PostgreSQL) through click, Parquet read back with pyarrow."""

from __future__ import annotations

import csv
import io
import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.results import SMOKE_NOTE, algorithm_differences

from . import test_algorithms
from .conftest import png_stats
from .test_report_labels import SmokeStudy, TwoSeeds

FEW = "few_seeds: "
UNTESTED = "Critical points not tested for "


def invoke(*args: str):
    outcome = CliRunner().invoke(cli, list(args))
    return outcome.exit_code, outcome.stdout, outcome.stderr


@pytest.fixture
def url(store, store_url) -> str:
    SmokeStudy().write(store)
    TwoSeeds().write(store)
    return store_url


@pytest.mark.parametrize(
    "command", [["best"], ["trials"], ["curves"], ["elbows"], ["best", "--axis", "transfer_noise"]]
)
def test_a_smoke_run_s_table_is_preceded_by_one_line_and_its_rows_carry_the_profile(url, command):
    name, *rest = command
    code, out, err = invoke("results", name, "study-smoke", *rest, "--store", url)
    assert code == 0, err
    assert err.splitlines()[0] == SMOKE_NOTE
    assert "profile" not in out.splitlines()[0].split() and SMOKE_NOTE not in out  # the table shows it once, above
    code, out, err = invoke("results", name, "study-smoke", *rest, "--store", url, "--format", "json")
    assert code == 0 and SMOKE_NOTE in err and SMOKE_NOTE not in out
    assert {json.loads(line)["profile"] for line in out.splitlines()} == {"smoke"}
    code, out, _ = invoke("results", name, "study-smoke", *rest, "--store", url, "--format", "csv")
    assert {row["profile"] for row in csv.DictReader(io.StringIO(out))} == {"smoke"}
    code, out, err = invoke("results", name, "two", *rest, "--store", url, "--format", "json")
    assert code == 0 and SMOKE_NOTE not in err
    assert {json.loads(line)["profile"] for line in out.splitlines()} == {None}


def test_replicates_with_two_seeds_are_flagged_in_a_column_and_a_line_after_the_table(url):
    code, out, err = invoke("results", "best", "two", "--axis", "transfer_noise", "--store", url, "--format", "json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["few_seeds"] is True and r["points"] == 2 for r in rows)
    assert err.splitlines()[-1].startswith(f"{FEW}{len(rows)} of {len(rows)} rows have fewer than 3 seeds")
    # an sd of 0 from two seeds (digital TL on beaver-otter, both at 0 %) is flagged like the rest, never precise
    [zero] = [r for r in rows if r["test_error_sd"] == 0]
    assert zero["few_seeds"] is True and zero["mode"] == "digital_tl"
    code, _, err = invoke("results", "best", "study-smoke", "--axis", "transfer_noise", "--store", url)
    assert code == 0 and FEW not in err  # three seeds everywhere: nothing to flag
    code, out, err = invoke("results", "best", "two", "--axis", "transfer_noise", "--store", url)
    assert "few_seeds" in out.splitlines()[0].split() and FEW in err


def test_elbows_say_not_tested_in_a_column_and_a_line(url):
    code, out, err = invoke("results", "elbows", "two", "--store", url, "--format", "json")
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["task"], r["tested"], r["has_elbow"], r["reason"]) for r in rows] == [
        (task, False, False, "not tested: fewer than 5 axis values (3)") for task in ("5-8", "beaver-otter")
    ]
    assert err.splitlines()[-1].startswith(f"{UNTESTED}2 curve(s): the test needs at least 5 axis values")
    code, out, err = invoke("results", "elbows", "study-smoke", "--store", url)
    assert code == 0 and UNTESTED not in err  # six values, three seeds: tested
    assert out.splitlines()[0].split()[:6] == ["mode", "task", "axis", "n_values", "n_obs", "tested"]


def test_exports_carry_the_profile_the_replicates_and_whether_elbows_were_tested(url, tmp_path):
    for name in ("study-smoke", "two"):
        for per in ("epoch", "point", "elbow"):
            path = tmp_path / f"{name}-{per}.parquet"
            code, _, err = invoke("results", "export", name, "--per", per, "--out", str(path), "--store", url)
            assert code == 0, err
            assert (SMOKE_NOTE in err) == (name == "study-smoke")
            profiles = set(pq.read_table(path, columns=["profile"]).column("profile").to_pylist())
            assert profiles == ({"smoke"} if name == "study-smoke" else {None}), (name, per)
    points = pq.read_table(tmp_path / "two-point.parquet").to_pylist()
    assert {(r["replicates"], r["few_seeds"]) for r in points} == {(2, True)}
    smoke_points = pq.read_table(tmp_path / "study-smoke-point.parquet").to_pylist()
    assert {(r["replicates"], r["few_seeds"]) for r in smoke_points} == {(3, False)}
    elbows = pq.read_table(tmp_path / "two-elbow.parquet").to_pylist()
    assert {(r["tested"], r["has_elbow"]) for r in elbows} == {(False, False)}


def test_plots_and_the_report_of_a_smoke_run_say_so(url, tmp_path):
    fig = tmp_path / "fig2.png"
    code, _, err = invoke("results", "curves", "study-smoke", "--plot", str(fig), "--store", url)
    assert code == 0, err
    assert png_stats(fig.read_bytes(), ["#B00020"]).colours["#B00020"] > 500
    code, _, err = invoke("report", "study-smoke", "--out", str(tmp_path / "report"), "--store", url)
    assert code == 0 and err.splitlines()[-1] == SMOKE_NOTE
    code, _, err = invoke("report", "two", "--out", str(tmp_path / "two"), "--store", url)
    assert code == 0 and SMOKE_NOTE not in err


def test_algorithms_compared_with_two_seeds_a_side_are_unreliable_never_resolved(store, store_url, monkeypatch):
    base = test_algorithms.BASE
    rows = [
        {"task": "5-7", "mode": "analog_tl", "algorithm": a, "seed": s, "test_error": e, **base}
        for a, errors in (("c-ttv2", (10.0, 11.0)), ("ttv2", (30.0, 31.0)))
        for s, e in enumerate(errors)
    ]
    # Welch: sd 0.71 a side, 2 degrees of freedom: -20 +- t(0.975, 2) x 0.71 = -20 +- 3.0, excluding 0
    [row] = algorithm_differences(rows)
    assert row["ci_high"] < 0 and row["few_seeds"] and not row["resolved"]
    assert (
        row["text"]
        == "c-TTv2 - TTv2 at the base device: -20.0 [-23.0, -17.0] (n = 2, 2: fewer than 3 seeds, unreliable) points"
    )
    monkeypatch.setattr(test_algorithms, "SEEDS", (0, 1))
    test_algorithms.write_comparison(store)
    code, out, err = invoke("results", "compare", "cmp", "--store", store_url, "--format", "json")
    assert code == 0, err
    compared = [json.loads(line) for line in out.splitlines()]
    assert compared and all(r["few_seeds"] and not r["resolved"] for r in compared)
    assert err.splitlines()[-1] == (
        f"{FEW}{len(compared)} of {len(compared)} comparisons have fewer than 3 seeds on a side: unreliable, never "
        "counted as resolved"
    )
