"""A loss that explodes is diverged training even while it stays finite (``workers._divergence``).

The trials here are real: the nano Swin on 16 embedded digits (5 vs 8), plain SGD or c-TTv2, at rates that explode
(each curve below was measured on this data and is deterministic for the digital model) and at rates that do not.
"""

from __future__ import annotations

import math

import pytest

from analog_sweep.workers import DataConfig, ModelConfig, TrainingDiverged, TrialConfig, run_trial
from analog_sweep.workers._divergence import CHANCE_FACTOR, GROWTH_FACTOR, GROWTH_FLOOR, loss_divergence

LN2 = math.log(2)


def nano(mode: str, lr: float, epochs: int) -> TrialConfig:
    return TrialConfig(
        mode=mode,
        data=DataConfig(classes=("5", "8"), train_limit=16, test_limit=16),
        model=ModelConfig(overrides=(("depths", (1, 1)), ("embed_dim", 12))),
        lr=lr,
        epochs=epochs,
        seed=0,
        lr_schedule="constant",
    )


def test_growth_far_past_the_lowest_and_far_worse_than_guessing_is_diverged():
    reason = loss_divergence(1.2e16, [0.9, 0.41, 3.0], 2)
    assert reason == (
        "the training loss grew to 1.2e+16, 2.9e+16x its lowest 0.41 at epoch 2 "
        "(growth rule: over 1000x the lowest and over 30 x ln(2) = 20.8)"
    )
    lowest = 0.05
    assert loss_divergence(GROWTH_FACTOR * lowest * 1.01, [lowest], 2) is not None  # 50.5: over both
    assert loss_divergence(GROWTH_FACTOR * lowest * 0.99, [lowest], 2) is None  # 49.5 < 1000 x 0.05 (and the bound)
    # A noisy tail near 0 is no divergence however large the ratio: it stays below 30 x ln(C).
    assert loss_divergence(GROWTH_FLOOR * LN2 * 0.99, [1e-6], 2) is None
    assert loss_divergence(GROWTH_FLOOR * LN2 * 1.01, [1e-6], 2).startswith("the training loss grew to 21, 2.1e+07x")


def test_a_loss_far_above_a_uniform_guess_is_diverged_from_the_first_epoch():
    assert loss_divergence(2840.0, [], 2) == (
        "the training loss is 2.84e+03, 4.1e+03x a uniform guess's ln(2) = 0.693 (bound rule: over 100x)"
    )
    assert loss_divergence(CHANCE_FACTOR * math.log(5) * 1.01, [], 5).endswith("ln(5) = 1.61 (bound rule: over 100x)")
    assert loss_divergence(CHANCE_FACTOR * math.log(5) * 0.99, [], 5) is None
    # Above the bound, from a lowest that makes the growth small, the bound still fires.
    assert "bound rule" in loss_divergence(120.0, [1.49], 2)


@pytest.mark.parametrize(
    "curve",
    [
        # Measured curves that are training, not divergence (embedded digits, see workers._divergence):
        [0.944, 0.769, 0.246, 0.302, 0.0341, 0.0218, 0.0119, 0.0292, 0.00764, 0.00259, 0.0299, 0.00519],  # digital TL
        [4.73, 3.0, 1.41, 0.669, 0.541, 0.552, 0.528, 0.364, 0.593, 0.309, 0.26, 0.147, 0.145, 0.0772],  # at lr 0.4
        [8.81, 4.18, 1.14, 0.876, 0.779, 0.807, 0.702, 0.709, 0.719, 0.708, 0.692, 0.695],  # lr 0.4, the highest seen
        [2.74, 5.72, 0.725, 0.712, 0.692, 0.735, 0.746, 0.707, 0.689],  # lr 0.4, the highest after the first epoch
        [0.986, 0.62, 0.537, 0.492, 0.452, 0.284, 0.414, 0.5, 0.252, 0.221, 0.147, 0.198, 0.101],  # analog TL
        [0.786, 0.763, 0.707, 0.697, 0.675, 0.695, 0.687, 0.71, 0.667, 0.655],  # analog scratch, near ln(2)
        [0.733, 1.85, 4.15, 3.68, 1.17, 0.868, 0.741],  # digital scratch at lr 1: a transient rise that recovers
        [12.5, 19.1, 9.44, 19.5, 13.7, 6.92],  # c-TTv2 at lr 50: bounded tiles, a high but level loss
    ],
)
def test_measured_curves_that_recover_or_settle_are_never_diverged(curve):
    for epoch in range(len(curve)):
        assert loss_divergence(curve[epoch], curve[:epoch], 2) is None, (epoch + 1, curve[epoch])


def test_a_non_finite_earlier_loss_is_ignored_and_one_class_has_no_bound():
    assert loss_divergence(5.0, [math.nan, 4.0], 2) is None
    assert loss_divergence(1e9, [], 1) is None  # ln(1) = 0: no uniform-guess scale (and no growth without history)


def test_a_real_trial_whose_loss_explodes_but_stays_finite_diverges_by_growth(tmp_path):
    # lr 20: 7.05, 7.7e5, 8.4e10, 1.8e15, 1.5e20 (all finite, 50 % test error), NaN only in epoch 6.
    seen = []
    with pytest.raises(TrainingDiverged) as caught:
        run_trial(nano("digital_scratch", 20.0, 5), cache_dir=tmp_path, on_epoch=seen.append)
    assert [report.epoch for report in seen] == [1]
    message = str(caught.value)
    assert message.startswith("training diverged at epoch 2 (lr=20): the training loss grew to 7.7")
    assert f"its lowest {seen[0].train_loss:.3g} at epoch 1 (growth rule: over 1000x" in message


def test_a_real_trial_far_above_a_uniform_guess_diverges_by_the_bound(tmp_path):
    # lr 5: 1.49, 120 (173 x ln 2, but only 80 x its lowest), 3.9e5, 6.5e8 (finite, 50 % test error).
    with pytest.raises(TrainingDiverged, match=r"^training diverged at epoch 2 \(lr=5\): the training loss is 120, "):
        run_trial(nano("digital_scratch", 5.0, 4), cache_dir=tmp_path)


def test_a_real_trial_that_rises_then_recovers_completes(tmp_path):
    # lr 1: up to 4.15 (6 x ln 2, 5.7 x its lowest) in epoch 3, back to 0.7 by epoch 7.
    result = run_trial(nano("digital_scratch", 1.0, 8), cache_dir=tmp_path)
    losses = [report.train_loss for report in result.reports]
    assert len(losses) == 8 and max(losses) > 3 * LN2 and losses[-1] < 1.5 * LN2, losses


def test_a_real_analog_trial_at_a_huge_rate_stays_level_and_completes(tmp_path):
    # c-TTv2 at lr 50: the devices bound the tiles' weights, so the loss is high (7-20) but does not explode.
    result = run_trial(nano("analog_scratch", 50.0, 4), cache_dir=tmp_path)
    losses = [report.train_loss for report in result.reports]
    assert len(losses) == 4 and all(LN2 < loss < CHANCE_FACTOR * LN2 for loss in losses), losses
