"""Algorithms side by side in the store: points keep their algorithm; tables, labels, elbows, exports, figures and
the report carry it; the findings compare algorithms per axis value with Welch intervals."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from scipy import stats

from analog_sweep import results
from analog_sweep.cli import cli
from analog_sweep.results import algorithm_differences, axis_figure, build_report, write_report

from .conftest import png_stats

BASE = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
SKEWS = (0.0, 5.0, 10.0, 20.0, 30.0, 40.0)
SEEDS = (0, 1, 2, 3)
# Made-up errors shaped like the claim under test: TTv2 rises with skew from 10 %, c-TTv2 stays flat; AGAD between.
ALGORITHMS = {"c-ttv2": (10.0, 0.0), "ttv2": (10.0, 1.0), "agad": (12.0, 0.4)}
SPREAD = (-1.5, 0.5, -0.5, 1.5)


def error(algorithm: str, skew: float, seed: int, mode: str = "analog_tl") -> float:
    level, slope = ALGORITHMS[algorithm]
    scratch = 15.0 if mode == "analog_scratch" else 0.0
    return level + scratch + slope * max(0.0, skew - 10.0) + SPREAD[seed] * (1 + 0.1 * skew / 10)


def write_comparison(store: results.Store, name: str = "cmp", algorithms=tuple(ALGORITHMS)) -> None:
    spec = {"name": name, "algorithms": list(algorithms), "axes": {"sp_skew": list(SKEWS)}, "device": BASE}
    store.record_sweep(name, spec, f"hash-{name}", "running")
    rows = [("analog_tl", a, skew) for a in algorithms for skew in SKEWS]
    rows += [("analog_scratch", a, 0.0) for a in algorithms] + [("digital_tl", None, 0.0)]
    for mode, algorithm, skew in rows:
        for seed in SEEDS:
            changed = ([f"algorithm={algorithm}"] if algorithm and len(algorithms) > 1 else []) + (
                [f"sp_skew={skew:g}"] if skew else []
            )
            label = f"{mode}/5-7/{','.join(changed) or 'base'}/seed{seed}"
            key = f"{name}-{mode}-{algorithm}-{skew:g}-{seed}"
            store.record_point(
                name,
                key,
                mode=mode,
                task="5-7",
                classes=["5", "7"],
                seed=seed,
                axes={**BASE, "sp_skew": skew},
                label=label,
                algorithm=algorithm,
            )
            trial = f"{key}/lr0.1"
            store.record_trial(trial, name, key, lr=0.1, status="running")
            value = 5.0 + SPREAD[seed] if algorithm is None else error(algorithm, skew, seed, mode)
            store.record_epoch(trial, 1, train_loss=0.5, test_error=value, test_accuracy=100 - value, seconds=1.0)
            store.record_trial(trial, name, key, lr=0.1, status="completed")
            store.choose_best(name, key)


@pytest.fixture
def compared(store):
    write_comparison(store)
    return store


def test_points_sort_and_are_named_by_algorithm(compared):
    best = compared.best_points("cmp")
    analog_tl = [r for r in best if r["mode"] == "analog_tl"]
    # The known algorithms in their order (c-TTv2, TTv2, AGAD), not alphabetically.
    assert [r["algorithm"] for r in analog_tl][:: len(SKEWS) * len(SEEDS)] == ["c-ttv2", "ttv2", "agad"]
    assert {r["algorithm"] for r in best if r["mode"] == "digital_tl"} == {None}
    keys = compared.resolve_replicates("cmp", "algorithm=ttv2,sp_skew=20")
    assert keys == [f"cmp-analog_tl-ttv2-20-{seed}" for seed in SEEDS]
    assert compared.resolve_point("cmp", "agad,sp_skew=5,seed=3") == "cmp-analog_tl-agad-5-3"
    # An algorithm's base point, by its label without the seed (as candidates are listed) or as "base".
    base = [f"cmp-analog_tl-ttv2-0-{seed}" for seed in SEEDS]
    assert compared.resolve_replicates("cmp", "analog_tl/5-7/algorithm=ttv2") == base
    assert compared.resolve_replicates("cmp", "algorithm=ttv2,base,mode=analog_tl") == base
    with pytest.raises(results.StoreInputError, match="matches 3 device points.*add mode=, algorithm="):
        compared.resolve_replicates("cmp", "mode=analog_tl,sp_skew=20")


def test_each_algorithm_has_its_own_curve_and_critical_point(compared):
    curve = compared.axis_curve("cmp", "sp_skew")
    for algorithm in ALGORITHMS:
        line = [r for r in curve if (r["mode"], r["algorithm"]) == ("analog_tl", algorithm)]
        assert [r["sp_skew"] for r in line] == list(SKEWS) and {r["points"] for r in line} == {len(SEEDS)}
    elbows = {(e["mode"], e["algorithm"]): e for e in compared.elbows("cmp", "sp_skew")}
    assert set(elbows) == {("analog_tl", a) for a in ALGORITHMS}
    rising = elbows[("analog_tl", "ttv2")]
    assert rising["has_elbow"] and rising["ci_low"] <= 10.0 <= rising["ci_high"], rising
    assert not elbows[("analog_tl", "c-ttv2")]["has_elbow"]


def test_differences_are_welch_intervals_of_the_seeds_per_axis_value(compared):
    rows = algorithm_differences(compared.best_points("cmp"))
    # analog TL: 6 sp_skew values x 3 pairs; analog scratch varies nothing: 3 pairs at the base device.
    assert len(rows) == len(SKEWS) * 3 + 3
    pairs = [(r["a"], r["b"]) for r in rows if r["mode"] == "analog_tl" and r["value"] == 0.0]
    assert pairs == [("c-ttv2", "ttv2"), ("c-ttv2", "agad"), ("ttv2", "agad")]
    [row] = [
        r for r in rows if r["axis"] == "sp_skew" and r["value"] == 30.0 and (r["a"], r["b"]) == ("c-ttv2", "ttv2")
    ]
    a = [error("c-ttv2", 30.0, s) for s in SEEDS]
    b = [error("ttv2", 30.0, s) for s in SEEDS]
    welch = stats.ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
    assert row["difference"] == pytest.approx(sum(a) / 4 - sum(b) / 4) == pytest.approx(-20.0)
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((welch.low, welch.high))
    assert row["resolved"] and (row["a_n"], row["b_n"]) == (4, 4)
    assert row["text"] == f"c-TTv2 - TTv2 at sp_skew 30 %: -20.0 [{welch.low:+.1f}, {welch.high:+.1f}] points"
    base = [r for r in rows if r["mode"] == "analog_scratch"]
    assert {r["axis"] for r in base} == {None} and base[0]["text"].startswith("c-TTv2 - TTv2 at the base device: ")
    # Equal algorithms at the base: the interval includes 0, so nothing is claimed.
    assert not next(r for r in rows if r["value"] == 0.0 and r["b"] == "ttv2")["resolved"]
    only = algorithm_differences(compared.best_points("cmp"), axis="sp_skew")
    assert len(only) == len(SKEWS) * 3


def test_one_algorithm_gives_no_comparison_and_no_algorithm_column_in_tables(store, tmp_path):
    write_comparison(store, "one", algorithms=("c-ttv2",))
    assert algorithm_differences(store.best_points("one")) == []
    url = store.url

    def cli_out(*args: str) -> str:
        outcome = CliRunner().invoke(cli, ["results", *args, "--store", url])
        assert outcome.exit_code == 0, outcome.output
        return outcome.stdout

    assert "algorithm" not in cli_out("best", "one").splitlines()[0].split()
    assert json.loads(cli_out("best", "one", "--format", "json").splitlines()[0])["algorithm"] == "c-ttv2"
    outcome = CliRunner().invoke(cli, ["results", "compare", "one", "--store", url])
    assert outcome.exit_code == 2 and "runs 1 analog algorithm(s) (c-ttv2): nothing to compare" in outcome.stderr
    report = build_report(store, "one")
    assert report.algorithms.absent.startswith("the sweep runs one analog algorithm (c-TTv2)")


def test_tables_exports_and_cli_carry_the_algorithm(compared, tmp_path):
    url = compared.url

    def cli_out(*args: str) -> str:
        outcome = CliRunner().invoke(cli, ["results", *args, "--store", url])
        assert outcome.exit_code == 0, outcome.output
        return outcome.stdout

    header = cli_out("best", "cmp").splitlines()[0].split()
    assert header[:3] == ["label", "mode", "algorithm"]
    rows = [json.loads(line) for line in cli_out("compare", "cmp", "--format", "json").splitlines()]
    assert len(rows) == len(SKEWS) * 3 + 3 and {r["selected_on"] for r in rows} == {"test"}
    assert (rows[0]["a"], rows[0]["b"], rows[0]["comparison"]) == ("c-ttv2", "ttv2", "c-TTv2 - TTv2")
    elbows = cli_out("elbows", "cmp", "--format", "csv").splitlines()
    assert elbows[0].startswith("mode,algorithm,task,axis")
    assert {line.split(",")[1] for line in elbows[1:]} == set(ALGORITHMS)
    compared.export_points("cmp", tmp_path / "points.parquet")
    compared.export_trials("cmp", tmp_path / "trials.parquet")
    compared.export_elbows("cmp", tmp_path / "elbows.parquet")
    for name in ("points", "trials", "elbows"):
        table = pq.read_table(tmp_path / f"{name}.parquet")
        assert set(table.column("algorithm").to_pylist()) - {None} == set(ALGORITHMS), name


def test_the_axis_figure_overlays_the_algorithms_in_fixed_colours(compared):
    figure = axis_figure(compared.best_points("cmp"), "sp_skew", elbows=compared.elbows("cmp"))
    [(_, legend)] = figure.panels
    assert legend[:3] == ("analog TL, c-TTv2", "analog TL, TTv2", "analog TL, AGAD")
    assert any(entry.startswith("analog TL, TTv2 critical point") for entry in legend)
    assert "Algorithms overlaid (c-TTv2, TTv2, AGAD)" in figure.caption
    assert "algorithms compared" in figure.title
    colours = results.ALGORITHM_COLOURS
    seen = png_stats(figure.images["png"], [colours[a] for a in ALGORITHMS]).colours
    assert all(count > 200 for count in seen.values()), seen
    # The same algorithm keeps its colour when another is left out.
    two = [r for r in compared.best_points("cmp") if r["algorithm"] != "agad"]
    again = png_stats(axis_figure(two, "sp_skew").images["png"], [colours["ttv2"], colours["agad"]]).colours
    assert again[colours["ttv2"]] > 200 and again[colours["agad"]] == 0


def test_the_report_shows_the_algorithm_findings(compared, tmp_path):
    write_report(compared, "cmp", tmp_path)
    html = (tmp_path / "report.html").read_text()
    assert '<h3 id="algorithms">Algorithms compared</h3>' in html
    assert "c-TTv2 - TTv2" in html and "resolved: the interval excludes 0" in html
    assert "analog TL, AGAD" in html  # the critical points and every point, per algorithm
    report = build_report(compared, "cmp")
    assert len(report.algorithms.rows) == len(SKEWS) * 3 + 3
    assert {row["mode"] for row in report.critical.rows} >= {"analog TL, c-TTv2", "analog TL, TTv2"}
    comparisons = {row["comparison"] for row in report.differences.rows}
    assert "analog TL, TTv2 - analog scratch, TTv2" in comparisons and "analog TL, AGAD - digital TL" in comparisons


def test_seeds_without_spread_give_no_interval_not_an_exact_one():
    rows = []
    for algorithm, value in (("c-ttv2", 10.0), ("ttv2", 12.5)):
        for seed in (0, 1, 2):
            rows.append(
                {"task": "5-7", "mode": "analog_tl", "algorithm": algorithm, "seed": seed, "test_error": value, **BASE}
            )
    [row] = algorithm_differences(rows)
    assert row["difference"] == -2.5 and row["ci_low"] is None and row["ci_high"] is None and not row["resolved"]
    assert (
        row["text"]
        == "c-TTv2 - TTv2 at the base device: -2.5 (n = 3, 3, no spread among the seeds: no interval) points"
    )


def test_a_rise_without_a_usable_breakpoint_is_not_shown_as_a_bare_p_value(compared):
    """p < 0.05 with no critical point reads as a found elbow unless the legend says why there is none."""
    elbows = [
        {**e, "has_elbow": False, "breakpoint": None, "ci_low": None, "ci_high": None}
        | ({"p_value": 0.048, "reason": "the breakpoint fit did not converge"} if e["algorithm"] == "ttv2" else {})
        for e in compared.elbows("cmp", "sp_skew")
    ]
    [(_, legend)] = axis_figure(compared.best_points("cmp"), "sp_skew", elbows=elbows).panels
    assert "analog TL, TTv2: tested, none found (p = 0.048)\n(the breakpoint fit did not converge)" in legend
    assert any(
        entry.startswith("analog TL, c-TTv2: tested, none found (p = ") and "\n" not in entry for entry in legend
    )
