"""The fine-tuning learning-rate schedule: what rate each epoch gets, and what it does to a trial's keys."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from analog_sweep.workers import AlgorithmConfig, ConfigError, DataConfig, TrialConfig, build_rpu_config, run_trial
from analog_sweep.workers._devices import analog_optimizer, to_analog
from analog_sweep.workers._trial import epoch_lr, set_epoch_lr

CONSTANT = TrialConfig(lr=0.4, epochs=20)
COSINE = dataclasses.replace(CONSTANT, lr_schedule="cosine")


def test_a_constant_schedule_keeps_the_searched_rate():
    assert [epoch_lr(CONSTANT, e) for e in range(1, 21)] == [0.4] * 20


def test_the_cosine_schedule_starts_at_the_rate_and_decays_towards_zero():
    rates = [epoch_lr(COSINE, e) for e in range(1, 21)]
    assert rates[0] == pytest.approx(0.4)
    assert rates[10] == pytest.approx(0.2)  # epoch 11 of 20: half way
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert rates[-1] == pytest.approx(0.4 * (1 + math.cos(math.pi * 19 / 20)) / 2)
    assert 0 < rates[-1] < 0.01


def test_an_unknown_schedule_is_a_config_error():
    with pytest.raises(ConfigError, match="lr_schedule: unknown schedule 'linear'"):
        dataclasses.replace(CONSTANT, lr_schedule="linear")


def test_the_default_schedule_leaves_the_config_keys_as_they_were():
    assert "lr_schedule" not in CONSTANT.to_dict()
    assert COSINE.to_dict()["lr_schedule"] == "cosine"
    assert TrialConfig.from_dict(COSINE.to_dict()) == COSINE
    assert COSINE.key() != CONSTANT.key()


def test_a_decaying_schedule_ties_checkpoints_to_the_epoch_count():
    # Under a constant rate a trial may be continued for more epochs; under cosine every epoch's rate depends on the
    # total, so a longer run is another trial.
    assert dataclasses.replace(CONSTANT, epochs=30).checkpoint_key() == CONSTANT.checkpoint_key()
    assert dataclasses.replace(COSINE, epochs=30).checkpoint_key() != COSINE.checkpoint_key()


def test_frozen_tiles_stay_frozen_under_the_schedule():
    config = dataclasses.replace(COSINE, mode="analog_tl", algorithm=AlgorithmConfig(freeze_analog=True))
    model = to_analog(torch.nn.Sequential(torch.nn.Linear(4, 3)), build_rpu_config(config.algorithm, config.device))
    optimizer = analog_optimizer(model, config.lr, freeze_analog=True)
    set_epoch_lr(config, optimizer, 5)
    rates = sorted(group["lr"] for group in optimizer.param_groups)
    assert rates[0] == 0.0 and rates[-1] == pytest.approx(epoch_lr(config, 5))


def test_a_trial_trains_at_each_epochs_rate(tmp_path):
    """Two digital trials of one seed, constant and cosine over 2 epochs: the first epoch runs at the same rate on
    the same batches, so its loss is the same; the second runs at half the rate under cosine, so it differs."""
    data = DataConfig(classes=("5", "8"), image_size=8, train_limit=16, test_limit=16, source_limit=60)
    base = TrialConfig(mode="digital_scratch", data=data, lr=0.3, epochs=2, seed=0)
    constant = run_trial(base, cache_dir=tmp_path).reports
    cosine = run_trial(dataclasses.replace(base, lr_schedule="cosine"), cache_dir=tmp_path).reports
    assert constant[0].train_loss == pytest.approx(cosine[0].train_loss)  # epoch 1: the same rate, the same batches
    assert constant[1].train_loss != pytest.approx(cosine[1].train_loss)  # epoch 2: half the rate
