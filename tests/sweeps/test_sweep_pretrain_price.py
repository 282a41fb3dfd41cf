"""Pretraining in the dry run: a model in the cache costs nothing, one the store has trained before costs what it took
(the median over its trainings), any other the time model's estimate; the report says which for each model."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    Environment,
    dry_run_report,
    estimate_cost,
    expand,
    load_spec,
    measured_pretraining,
    pretrain_keys,
    shipped_specs,
)
from analog_sweep.sweeps._cost import modelled_pretrain_seconds

ENVIRONMENT = Environment(cpus=2, gpus=0, aihwkit_cuda=False)


@pytest.fixture(scope="module")
def quickstart():
    spec = load_spec(shipped_specs()["quickstart"])
    return spec, expand(spec), next(iter(pretrain_keys(spec)))


def _model(key: str, seconds: float, sweep: str, trained_now: bool = True) -> dict:
    return {"cache_key": key, "train_seconds": seconds, "trained_now": trained_now, "sweep": sweep}


def test_measured_pretraining_is_the_median_of_the_trainings_sweeps_did_themselves():
    measured = measured_pretraining(
        [
            _model("k1", 20.0, "a"),
            _model("k1", 30.0, "b"),
            _model("k1", 100.0, "c"),
            _model("k1", 5.0, "d", trained_now=False),  # taken from the cache: its time is the training's, counted
            _model("k1", None, "e"),
            _model("k2", 0.0, "f"),  # no time recorded
        ]
    )
    assert set(measured) == {"k1"}
    assert measured["k1"].seconds == 30.0 and measured["k1"].trainings == 3 and measured["k1"].sweeps == ("a", "b", "c")


def test_a_model_is_priced_cached_then_measured_then_estimated(quickstart):
    spec, points, key = quickstart
    modelled = estimate_cost(spec, points)
    ((price,),) = [modelled.pretraining]
    assert price.how == "estimated" and price.seconds == modelled_pretrain_seconds(spec, on_gpu=False) > 0
    assert modelled.pretrain_seconds == price.seconds

    measured = estimate_cost(spec, points, pretraining=measured_pretraining([_model(key, 24.0, "quickstart")]))
    assert measured.pretraining[0].how == "measured" and measured.pretrain_seconds == 24.0
    # The stage runs before any trial: its time adds to the wall time whole.
    assert measured.wall_seconds(2) - modelled.wall_seconds(2) == pytest.approx(24.0 - price.seconds)

    cached = estimate_cost(spec, points, pretraining=measured_pretraining([_model(key, 24.0, "q")]), cached={key})
    assert cached.pretraining[0].how == "cached" and cached.pretrain_seconds == 0.0
    assert cached.pretrain_jobs == 1 and cached.pretrain_to_train == 0
    assert cached.wall_seconds(2) == pytest.approx(modelled.wall_seconds(2) - price.seconds)


def test_the_dry_run_says_how_each_model_is_priced(quickstart):
    spec, points, key = quickstart
    estimated = dry_run_report(spec, points, environment=ENVIRONMENT)
    line = next(line for line in estimated.splitlines() if line.startswith("Pretraining:"))
    assert line.startswith("Pretraining: 1 model(s), ") and f"{key} estimated " in line and "rough model" in line

    stored = measured_pretraining([_model(key, 24.0, "quickstart"), _model(key, 26.0, "quickstart-frozen")])
    report = dry_run_report(spec, points, environment=ENVIRONMENT, pretraining=stored)
    assert (
        f"Pretraining: 1 model(s), 25 s: {key} measured 25 s (median of 2 training(s) in the store, from sweep(s) "
        "quickstart, quickstart-frozen)" in report.splitlines()
    )
    assert "+ 25 s of pretraining" in report

    report = dry_run_report(spec, points, environment=ENVIRONMENT, pretraining=stored, cached=[key])
    assert f"Pretraining: 1 model(s), 0 s: {key} in the cache (loaded, not trained)" in report.splitlines()
    assert "+ 0 s of pretraining" in report


def test_a_sweep_without_transfer_learning_has_no_pretraining_line():
    spec = load_spec(shipped_specs()["quickstart"], ["modes=[analog_scratch,digital_scratch]"])
    report = dry_run_report(spec, expand(spec), environment=ENVIRONMENT)
    assert not any(line.startswith("Pretraining:") for line in report.splitlines())
