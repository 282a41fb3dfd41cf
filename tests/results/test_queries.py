"""Read queries: best trial per point, curves along an axis (Figs. 3-5) and per epoch (Fig. 2)."""

from __future__ import annotations

import pytest

from analog_sweep import results


def test_best_points_choose_the_lowest_final_error(filled_store, sample):
    rows = filled_store.best_points("noise")
    assert [r["point_key"] for r in rows] == sorted(sample.point_key(m, n) for m in sample.modes for n in sample.noises)
    for row in rows:
        assert row["lr"] == 0.05 and row["trials"] == len(sample.lrs) and row["epochs_done"] == sample.epochs
        assert row["final_test_error"] == pytest.approx(sample.final_error(row["mode"], row["transfer_noise"], 0.05))
        assert row["trial_id"] == sample.trial_id(row["mode"], row["transfer_noise"], 0.05)


def test_axis_curve_has_one_row_per_mode_and_axis_value(filled_store, sample):
    curve = filled_store.axis_curve("noise", "transfer_noise")
    assert [(r["mode"], r["transfer_noise"]) for r in curve] == [(m, n) for m in sample.modes for n in sample.noises]
    for row in curve:
        assert row["test_error"] == pytest.approx(sample.final_error(row["mode"], row["transfer_noise"], 0.05))
        assert row["points"] == 1
    assert set(curve[0]) == {
        "mode",
        "algorithm",
        "task",
        "transfer_noise",
        "selected_on",
        "test_error",
        "test_error_sd",
        "test_error_ci95",
        "test_error_min",
        "test_error_max",
        "points",
    }
    assert curve[0]["test_error_sd"] is None and curve[0]["test_error_ci95"] is None  # one seed: no spread claimed
    assert curve[0]["selected_on"] == "test"


def test_axis_curve_averages_seeds_and_separates_other_varying_axes(store):
    store.record_sweep("grid", {}, "h")
    errors = {}  # (dtod, noise, seed) -> final error
    for dtod in (0.0, 0.2):
        for noise in (1.0, 3.0):
            for seed in (0, 1):
                key = f"d{dtod}-n{noise}-s{seed}"
                axes = {"transfer_noise": noise, "sp_skew": 0, "sp_variability": 0, "pulse_noise": 0, "dtod": dtod}
                store.record_point(
                    "grid", key, mode="analog_tl", task="5-class", classes=list("abcde"), seed=seed, axes=axes
                )
                errors[dtod, noise, seed] = 10 * dtod + noise + seed
                store.record_trial(key, "grid", key, lr=0.01, status="running")
                store.record_epoch(
                    key, 1, train_loss=1, test_error=errors[dtod, noise, seed], test_accuracy=0, seconds=1
                )
                store.record_trial(key, "grid", key, lr=0.01, status="completed")
    curve = store.axis_curve("grid", "transfer_noise")
    assert [(r["dtod"], r["transfer_noise"]) for r in curve] == [(0.0, 1.0), (0.0, 3.0), (0.2, 1.0), (0.2, 3.0)]
    for row in curve:
        seeds = [errors[row["dtod"], row["transfer_noise"], s] for s in (0, 1)]
        assert (row["points"], row["test_error_min"], row["test_error_max"]) == (2, min(seeds), max(seeds))
        assert row["test_error"] == pytest.approx(sum(seeds) / 2)
        # Seeds as replicates: the two seeds differ by 1, so sd = 1/sqrt(2) and the t interval's half-width is
        # t(0.975, 1) x sd / sqrt(2) = 12.706 x 0.5.
        assert row["test_error_sd"] == pytest.approx(2**-0.5)
        assert row["test_error_ci95"] == pytest.approx(12.7062 * 0.5, rel=1e-4)
    assert "sp_skew" not in curve[0]  # constant axes are not curve keys


def test_axis_curve_rejects_unknown_axis(filled_store):
    with pytest.raises(results.StoreInputError, match="unknown axis 'noise'"):
        filled_store.axis_curve("noise", "noise")


def test_epoch_curves_follow_the_chosen_trials(filled_store, sample):
    rows = filled_store.epoch_curves("noise")
    assert len(rows) == len(sample.modes) * len(sample.noises) * sample.epochs
    assert {r["lr"] for r in rows} == {0.05}
    key = sample.point_key("digital_tl", 10.0)
    one_point = filled_store.epoch_curves("noise", key)
    assert [r["epoch"] for r in one_point] == list(range(1, sample.epochs + 1))
    assert [r["test_error"] for r in one_point] == [
        pytest.approx(sample.epoch_error("digital_tl", 10.0, 0.05, e)) for e in range(1, sample.epochs + 1)
    ]
    with pytest.raises(results.NotFound, match="unknown point"):
        filled_store.epoch_curves("noise", "nope")
