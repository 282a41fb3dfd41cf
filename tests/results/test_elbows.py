"""Critical points (``results.estimate_elbow``, ``sweep_elbows``, ``Store.elbows``, ``results elbows``, the export).

Statistical claims are checked over many seeded draws of synthetic curves with known shape and noise; each test
states its statistic and why its margin is what it is. The draws are seeded and the fit is deterministic, so each
test gives the same numbers every run; the margins are there so that a change of library version or of a rule that
keeps the method sound still passes, and one that breaks it does not.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from analog_sweep import results
from analog_sweep.cli import cli

DRAWS = 100
# A linear axis of 11 values with 3 seeds each: the elbow at 43 lies between grid values, as a real one would.
GRID = np.arange(0.0, 101.0, 10.0)
SEEDS = 3
# The paper's Fig. 3 transfer-noise levels (percent; sweeps/paper_fig3_transfer_noise.yaml), fitted on log10.
PAPER_NOISE = np.array([0, 1, 2, 5, 10, 15, 20, 30, 50, 100], dtype=float)


def hinge(x: np.ndarray, *, level: float, bp: float, slope: float) -> np.ndarray:
    """Flat at ``level`` until ``bp``, then rising by ``slope`` per unit of ``x``."""
    return level + slope * np.maximum(x - bp, 0.0)


def draw(mean: np.ndarray, sd: float, seed: int) -> np.ndarray:
    return mean + np.random.default_rng(seed).normal(0.0, sd, mean.size)


def paper_curve(x: np.ndarray, *, flat: float, elbow: float, top: float) -> np.ndarray:
    """The paper's Fig. 3 shape: test error flat until ``elbow`` percent transfer noise, then rising linearly in
    log10(noise) to ``top`` at 100 %. Zero noise sits a decade below 1 %, where the fit puts it."""
    lx = np.log10(np.where(x > 0, x, 0.1))
    return flat + (top - flat) * np.maximum(lx - math.log10(elbow), 0.0) / (2 - math.log10(elbow))


def hit_rate(bp: float, sd: float, *, slope: float = 0.3, draws: int = DRAWS) -> tuple[float, float]:
    """(fraction of draws whose interval contains ``bp``, fraction with an elbow) on GRID x SEEDS."""
    x = np.repeat(GRID, SEEDS)
    hits = found = 0
    for seed in range(draws):
        elbow = results.estimate_elbow(x, draw(hinge(x, level=10.0, bp=bp, slope=slope), sd, seed))
        found += elbow.has_elbow
        hits += elbow.has_elbow and elbow.ci_low <= bp <= elbow.ci_high
    return hits / draws, found / draws


def test_known_breakpoint_is_inside_the_interval_in_most_draws():
    # Flat at 10 % until 43, then +0.3 % per unit (3 points per grid step) with noise sd 1 %: a clear elbow, as in
    # the paper's curves. Nominal coverage is 95 %; the interval is Muggeo's delta-method (Wald) interval, which
    # measured 93 % here (bench/elbow_coverage.py). The bound 80 % leaves 5 binomial standard deviations
    # (sqrt(0.93 x 0.07 / 100) = 2.6 points) below the measured rate; a method whose interval missed the truth
    # every fifth time would fail it. A draw without an elbow counts as a miss.
    rate, found = hit_rate(43.0, 1.0)
    print(f"hit rate of the 95 % interval over {DRAWS} draws (bp 43, slope 0.3, sd 1, 3 seeds): {rate:.2f}")
    assert found == 1.0
    assert rate >= 0.80


def test_flat_curve_has_no_elbow_in_most_draws():
    # The Davies test at alpha 0.05 is conservative (its p-value is an upper bound), so at most about 5 % of flat
    # curves should show an elbow; the bound 10 % leaves 2.3 binomial standard deviations (sqrt(0.05 x 0.95 / 100))
    # for the draws' spread. A method forcing a breakpoint onto every curve finds one in all 100.
    x = np.repeat(GRID, SEEDS)
    found = [results.estimate_elbow(x, draw(np.full(x.size, 20.0), 1.0, seed)) for seed in range(DRAWS)]
    assert sum(e.has_elbow for e in found) <= 10
    for elbow in found:
        if not elbow.has_elbow:
            assert elbow.breakpoint is None and elbow.ci_low is None and elbow.reason


def test_flat_curve_with_one_seed_has_no_elbow_in_most_draws():
    # Same statistic and margin as above, with one seed: the test must not invent an elbow from lack of fit.
    found = sum(results.estimate_elbow(GRID, draw(np.full(GRID.size, 20.0), 1.0, s)).has_elbow for s in range(DRAWS))
    assert found <= 10


def test_straight_rising_line_has_no_elbow_in_most_draws():
    # A monotone linear rise has no change of slope: same statistic and margin as the flat curve.
    x = np.repeat(GRID, SEEDS)
    found = [results.estimate_elbow(x, draw(10.0 + 0.3 * x, 1.0, seed)) for seed in range(DRAWS)]
    assert sum(e.has_elbow for e in found) <= 10
    assert any("Davies" in e.reason for e in found)


@pytest.mark.parametrize(
    ("task", "elbow", "flat", "top"), [("2-class", 15.0, 10.0, 45.0), ("5-class", 10.0, 20.0, 50.0)]
)
def test_the_papers_shape_gives_its_elbow(task, elbow, flat, top):
    # Fig. 3: flat until 15 % (2 classes) or 10 % (5 classes), then rising to about 45-50 % at 100 % noise; the paper's
    # ten noise levels, three seeds, noise sd 2 %. Statistic: how many of 50 draws have an interval containing the
    # paper's elbow; measured 47 (2-class) and 43 (5-class, whose elbow sits on a grid value with fewer values
    # below it). Bound 75 % (38): most draws, nominal 95 %, with room for a few more misses of the Wald interval.
    # And the flat level comes back within 2 % (its mean over 12-18 observations has sd 0.5-0.6 %).
    x = np.repeat(PAPER_NOISE, SEEDS)
    draws = 50
    hits = 0
    for seed in range(draws):
        found = results.estimate_elbow(x, draw(paper_curve(x, flat=flat, elbow=elbow, top=top), 2.0, seed), log_x=True)
        assert found.has_elbow and found.log_x, found
        hits += found.ci_low <= elbow <= found.ci_high
        assert abs(found.flat_level - flat) < 2.0
        assert found.slope_after > 0
    print(f"{task}: the interval contained the paper's elbow ({elbow:g} %) in {hits} of {draws} draws")
    assert hits >= 0.75 * draws


def test_the_papers_two_tasks_are_told_apart():
    # One draw each: the 5-class elbow (10 %) lies below the 2-class one (15 %), as the paper reads its Fig. 3.
    x = np.repeat(PAPER_NOISE, SEEDS)
    two = results.estimate_elbow(x, draw(paper_curve(x, flat=10, elbow=15, top=45), 2.0, 1), log_x=True)
    five = results.estimate_elbow(x, draw(paper_curve(x, flat=20, elbow=10, top=50), 2.0, 1), log_x=True)
    assert five.breakpoint < two.breakpoint


def test_seeds_are_replicates_not_means():
    # Averaging the seeds first would leave 11 observations and 7 residual degrees of freedom; replicates keep 33.
    x = np.repeat(GRID, SEEDS)
    elbow = results.estimate_elbow(x, draw(hinge(x, level=10, bp=43, slope=0.3), 1.0, 0))
    assert (elbow.n_values, elbow.n_obs) == (len(GRID), len(GRID) * SEEDS)


@pytest.mark.filterwarnings("ignore")  # the library's own Fit runs its Davies test on replicates: NaN and warnings
def test_interval_is_the_librarys_and_the_fit_deterministic_and_order_free():
    import piecewise_regression

    x = np.repeat(GRID, SEEDS)
    y = draw(hinge(x, level=10, bp=43, slope=0.3), 1.0, 3)
    elbow = results.estimate_elbow(x, y)
    # The library's own fit, started at the elbow found, gives the same breakpoint and 95 % interval.
    reference = piecewise_regression.Fit(x, y, start_values=[elbow.breakpoint], n_boot=0).get_results()["estimates"]
    assert elbow.breakpoint == pytest.approx(reference["breakpoint1"]["estimate"], rel=1e-6)
    assert (elbow.ci_low, elbow.ci_high) == pytest.approx(reference["breakpoint1"]["confidence_interval"], rel=1e-6)
    assert elbow.slope_after == pytest.approx(reference["alpha2"]["estimate"], rel=1e-6)
    # The same data in another order give the same answer, and so does a second call.
    shuffled = np.random.default_rng(0).permutation(x.size)
    again = results.estimate_elbow(x[shuffled], y[shuffled])
    assert again.breakpoint == pytest.approx(elbow.breakpoint, rel=1e-9)
    assert again.p_value == pytest.approx(elbow.p_value, rel=1e-9)
    assert results.estimate_elbow(x, y) == elbow
    # A wider level gives a wider interval around the same breakpoint.
    wide = results.estimate_elbow(x, y, alpha=0.01)
    assert wide.ci_low < elbow.ci_low < elbow.ci_high < wide.ci_high


def test_too_few_values_or_observations_say_so():
    few = results.estimate_elbow([0, 10, 30, 0, 10, 30], [1, 2, 9, 1, 2, 9])
    assert not few.has_elbow and few.reason == "not tested: fewer than 5 axis values (3)" and few.p_value is None
    assert few.tested is False and results.elbow_outcome(few.as_row()) == "not tested: fewer than 5 axis values (3)"
    single = results.estimate_elbow([0, 1, 2, 3, 4], [1, 1, 1, 5, 9])
    assert not single.has_elbow and single.reason == "not tested: fewer than 6 observations (5)" and not single.tested
    row = single.as_row()
    assert list(row)[:5] == ["mode", "algorithm", "task", "axis", "n_values"] and row["has_elbow"] is False
    assert row["tested"] is False


def test_tested_and_none_found_is_not_not_tested():
    """A flat curve over enough values is tested and has no elbow; the words keep it apart from "not tested"."""
    x = np.repeat(GRID, SEEDS)
    flat = results.estimate_elbow(x, draw(np.full(x.size, 10.0), 1.0, 3))
    assert flat.tested and not flat.has_elbow and flat.p_value is not None and flat.p_value >= 0.05
    assert flat.reason.startswith("no significant rise in slope (Davies p = ")
    assert results.elbow_outcome(flat.as_row()) == f"tested, none found (p = {flat.p_value:.2g})"
    found = results.estimate_elbow(x, draw(hinge(x, level=10.0, bp=43, slope=0.3), 1.0, 0))
    assert (
        found.tested
        and found.has_elbow
        and results.elbow_outcome(found.as_row(), " %").startswith(f"{found.breakpoint:.3g} % [")
    )
    assert results.MIN_AXIS_VALUES == 5


def test_one_seed_can_still_have_an_elbow():
    x = np.array([0, 5, 10, 15, 20, 25, 30, 40, 50, 60], dtype=float)
    elbow = results.estimate_elbow(x, draw(hinge(x, level=5, bp=22, slope=1.0), 0.5, 0))
    assert elbow.has_elbow and elbow.ci_low <= 22 <= elbow.ci_high


def test_log_axis_places_zero_a_decade_below_and_refuses_negatives():
    x = np.repeat(PAPER_NOISE, SEEDS)
    y = draw(paper_curve(x, flat=10, elbow=15, top=45), 1.0, 0)
    elbow = results.estimate_elbow(x, y, log_x=True)
    assert elbow.has_elbow and 1 < elbow.breakpoint < 100
    # Zero noise behaves as 0.1 %: moving it there changes nothing.
    moved = results.estimate_elbow(np.where(x > 0, x, 0.1), y, log_x=True)
    assert moved.breakpoint == pytest.approx(elbow.breakpoint, rel=1e-9)
    with pytest.raises(results.StoreInputError, match="negative"):
        results.estimate_elbow([-1, 0, 1, 2, 3, 4], [1] * 6, log_x=True)


def test_bad_input_raises_store_input_errors():
    for x, y, alpha in (([1, 2], [1], 0.05), ([1, math.nan], [1, 2], 0.05), ([1, 2], [1, 2], 1.5)):
        with pytest.raises(results.StoreInputError):
            results.estimate_elbow(x, y, alpha=alpha)


def test_an_elbow_at_the_edge_of_the_range_is_no_elbow():
    # The rise starts between the two last values: one value after it cannot make a line.
    x = np.repeat(GRID, SEEDS)
    elbow = results.estimate_elbow(x, draw(hinge(x, level=10, bp=95, slope=3.0), 0.3, 0))
    assert not elbow.has_elbow and elbow.breakpoint is None


def test_a_falling_then_flat_curve_is_no_elbow():
    # Error that falls and then levels off changes slope upward, but never rises: not a critical point.
    x = np.repeat(GRID, SEEDS)
    y = draw(30 - 0.5 * np.minimum(x, 40), 0.5, 0)
    elbow = results.estimate_elbow(x, y)
    assert not elbow.has_elbow and elbow.reason.startswith("test error does not rise after the breakpoint")


# ---- sweep_elbows on best_points rows ----


def _row(mode, task, seed, error, **axes):
    values = {a: 0.0 for a in results.AXES}
    values.update(pulse_noise=3.75, dtod=0.3)
    values.update(axes)
    return {"mode": mode, "task": task, "seed": seed, "final_test_error": error, "status": "done", **values}


def _one_at_a_time_rows(seed_errors=lambda seed, noise, skew: 10.0 + seed):
    """analog_tl swept along transfer_noise (8 values) and sp_skew (3 values) one at a time, digital_tl at base."""
    rows = []
    for seed in range(3):
        for noise in (0, 1, 2, 5, 10, 20, 50, 100):
            rows.append(_row("analog_tl", "5-8", seed, seed_errors(seed, noise, 0), transfer_noise=noise))
        for skew in (5, 10):
            rows.append(_row("analog_tl", "5-8", seed, seed_errors(seed, 0, skew), sp_skew=skew))
        rows.append(_row("digital_tl", "5-8", seed, 3.0))
    return rows


def test_sweep_elbows_takes_each_axis_at_the_base_of_the_others():
    rows = _one_at_a_time_rows()
    elbows = results.sweep_elbows(rows)
    assert [(e.mode, e.axis, e.n_values, e.n_obs, e.log_x) for e in elbows] == [
        ("analog_tl", "transfer_noise", 8, 24, True),
        ("analog_tl", "sp_skew", 3, 9, False),
    ]
    assert elbows[1].reason == "not tested: fewer than 5 axis values (3)" and not elbows[1].tested
    # The spec's base decides where the modal guess would be wrong.
    skewed = [r for r in rows if not (r["sp_skew"] == 0 and r["transfer_noise"] != 0)]
    assert [e.axis for e in results.sweep_elbows(skewed, base={"sp_skew": 0.0})] == ["sp_skew"]


def test_sweep_elbows_skips_points_without_a_chosen_trial():
    rows = _one_at_a_time_rows()
    rows[0]["final_test_error"] = None  # seed 0, transfer noise 0: every trial failed or diverged
    [noise] = results.sweep_elbows(rows, axis="transfer_noise")
    assert noise.n_obs == 23


def test_sweep_elbows_refuses_an_axis_not_varied():
    with pytest.raises(results.StoreInputError, match=r"did not vary dtod \(axes it varied: transfer_noise, sp_skew\)"):
        results.sweep_elbows(_one_at_a_time_rows(), axis="dtod")
    with pytest.raises(results.StoreInputError, match="unknown axis"):
        results.sweep_elbows(_one_at_a_time_rows(), axis="volume")


# ---- the store, the CLI and the export, on SQLite and PostgreSQL ----


TASKS = {"2-class": dict(flat=10.0, elbow=15.0, top=45.0), "5-class": dict(flat=20.0, elbow=10.0, top=50.0)}


def write_paper_sweep(store: results.Store, name: str = "fig3") -> None:
    """Fig. 3 in miniature: analog TL at the paper's ten noise levels, two tasks, three seeds, one trial a point;
    digital TL at the base point. Test errors follow the paper's shape with noise sd 2 %."""
    base = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
    store.record_sweep(name, {"name": name, "device": base}, "hash", "running")
    rng = np.random.default_rng(7)
    for task, shape in TASKS.items():
        for seed in range(SEEDS):
            levels = [("analog_tl", noise) for noise in PAPER_NOISE] + [("digital_tl", 0.0)]
            for mode, noise in levels:
                key = f"{mode}-{task}-{noise:g}-{seed}"
                mean = paper_curve(np.array([noise]), **shape)[0] if mode == "analog_tl" else 5.0
                store.record_point(
                    name,
                    key,
                    mode=mode,
                    task=task,
                    classes=["a", "b"],
                    seed=seed,
                    axes={**base, "transfer_noise": noise},
                )
                store.record_trial(f"{key}-t", name, key, lr=0.05, status="running")
                error = float(mean + rng.normal(0, 2.0))
                store.record_epoch(
                    f"{key}-t", 1, train_loss=1.0, test_error=error, test_accuracy=100 - error, seconds=1.0
                )
                store.record_trial(f"{key}-t", name, key, lr=0.05, status="completed")
                store.choose_best(name, key)
    store.set_sweep_status(name, "finished")


@pytest.fixture
def paper_url(store, store_url) -> str:
    write_paper_sweep(store)
    return store_url


def _cli(*args: str):
    outcome = CliRunner().invoke(cli, ["results", *args])
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_store_elbows_and_the_cli_in_every_format(paper_url, store):
    rows = store.elbows("fig3")
    assert [(r["sweep"], r["mode"], r["task"], r["axis"]) for r in rows] == [
        ("fig3", "analog_tl", "2-class", "transfer_noise"),
        ("fig3", "analog_tl", "5-class", "transfer_noise"),
    ]
    for row in rows:
        assert row["has_elbow"] and row["ci_low"] <= TASKS[row["task"]]["elbow"] <= row["ci_high"], row

    code, out, err = _cli("elbows", "fig3", "--store", paper_url, "--format", "json")
    assert code == 0, err
    printed = [json.loads(line) for line in out.splitlines()]
    extra = ("profile", "few_seeds")
    assert [{k: r[k] for k in printed[0] if k not in extra} for r in rows] == [
        {k: v for k, v in r.items() if k not in extra} for r in printed
    ]
    assert set(printed[0]) == {*results.Elbow.__dataclass_fields__, *extra}
    assert {r["profile"] for r in printed} == {None} and {r["tested"] for r in printed} == {True}
    assert [r["few_seeds"] for r in printed] == [results.elbow_few_seeds(r) for r in rows]

    code, out, _ = _cli("elbows", "fig3", "--axis", "transfer_noise", "--store", paper_url, "--format", "csv")
    header, *lines = out.splitlines()
    assert code == 0 and header.startswith(
        "mode,algorithm,task,axis,n_values,n_obs,tested,few_seeds,has_elbow,breakpoint"
    )
    assert len(lines) == 2

    code, out, _ = _cli("elbows", "fig3", "--store", paper_url)
    # One algorithm: the table leaves its column out (CSV and JSON keep it).
    assert code == 0 and out.splitlines()[0].split()[:3] == ["mode", "task", "axis"]
    assert "analog_tl" in out.splitlines()[2] and "True" in out.splitlines()[2]


def test_cli_refuses_an_axis_the_sweep_did_not_vary_in_one_line(paper_url):
    for args, message in (
        (("--axis", "sp_skew"), "Error: the sweep did not vary sp_skew (axes it varied: transfer_noise)\n"),
        (("--axis", "volume"), None),
    ):
        code, out, err = _cli("elbows", "fig3", *args, "--store", paper_url)
        assert code == 2 and out == "" and err.count("\n") == 1 and "Traceback" not in err, err
        if message:
            assert err == message
    code, _, err = _cli("elbows", "nope", "--store", paper_url)
    assert code == 2 and err == "Error: unknown sweep 'nope'\n"


def test_export_per_elbow_reads_back(paper_url, store, tmp_path):
    path = tmp_path / "elbows.parquet"
    code, out, err = _cli(
        "export", "fig3", "--per", "elbow", "--out", str(path), "--store", paper_url, "--format", "json"
    )
    assert code == 0, err
    assert json.loads(out)["rows"] == 2
    table = pq.read_table(path)
    assert table.schema.names == ["sweep", *results.Elbow.__dataclass_fields__, "profile"]
    assert table.to_pylist() == [{**row, "profile": None} for row in store.elbows("fig3")]


def test_a_critical_point_from_fewer_than_three_seeds_a_value_is_flagged_wherever_it_is_shown():
    from analog_sweep.results import elbow_few_seeds, elbow_outcome, few_seeds_elbows_note

    found = {"tested": True, "has_elbow": True, "breakpoint": 32.68, "ci_low": 20.8, "ci_high": 51.34, "n_values": 7}
    two_seeds, three_seeds = {**found, "n_obs": 14}, {**found, "n_obs": 21}
    assert elbow_few_seeds(two_seeds) and not elbow_few_seeds(three_seeds)
    assert elbow_outcome(two_seeds, " %") == "32.7 % [20.8, 51.3] (fewer than 3 seeds: unreliable)"
    assert elbow_outcome(three_seeds, " %") == "32.7 % [20.8, 51.3]"
    assert few_seeds_elbows_note([two_seeds, three_seeds]).startswith(
        "Critical points from fewer than 3 seeds a value for 1 curve(s)"
    )
    assert few_seeds_elbows_note([three_seeds]) is None
    # a curve the test never ran on is "not tested", whatever its seeds
    assert not elbow_few_seeds({"tested": False, "has_elbow": False, "n_values": 3, "n_obs": 3})
