"""Analog learning activity: measured per layer group, zero when nothing trained, kept across a resume."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from analog_sweep.workers import (
    AlgorithmConfig,
    DevicePoint,
    EpochReport,
    MappingConfig,
    TrialCheckpoint,
    TrialConfig,
    build_model,
    build_rpu_config,
    measure,
    reference_weights,
    run_trial,
)
from analog_sweep.workers._activity import ACTIVITY_FIELDS, GROUPS, layer_group, tile_weights
from analog_sweep.workers._devices import analog_optimizer, to_analog

from .test_trial import nano_config as trial_nano_config

# A short time constant, so that a few steps already transfer into the slow devices.
FAST = AlgorithmConfig(settings=(("auto_granularity", 20),))


def nano_config(**changes) -> TrialConfig:
    """test_trial's nano analog TL trial (24 images, a one-block 12-channel Swin), one epoch, the preset's device."""
    return trial_nano_config(
        **{"algorithm": FAST, "device": DevicePoint(pulse_noise=3.75, dtod=0.3), "epochs": 1, **changes}
    )


def test_every_tile_of_a_swin_falls_in_its_group(tmp_path):
    model, _ = build_model(nano_config(), 2, tmp_path)
    groups = {name: layer_group(name) for name in reference_weights(model)}
    assert {g for g in groups.values()} == set(GROUPS)
    assert [n for n, g in groups.items() if g == "embed"] == ["patch_embed.proj.analog_module"]
    assert [n for n, g in groups.items() if g == "head"] == ["head.fc.analog_module"]
    assert all(n.startswith("layers.") for n, g in groups.items() if g == "blocks")


def _train(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
    torch.manual_seed(0)
    for _ in range(steps):
        optimizer.zero_grad()
        model(torch.randn(8, 3, 16, 16)).square().sum().backward()
        optimizer.step()


def test_nothing_trained_means_nothing_moved_and_training_moves_every_group(tmp_path):
    model, _ = build_model(nano_config(), 2, tmp_path)
    reference = reference_weights(model)
    before = measure(model, reference)
    assert set(before) == set(GROUPS)
    assert all(a.moved == 0.0 and a.rel == 0.0 and a.transfers == 0 for a in before.values())
    _train(model, analog_optimizer(model, 0.05), steps=6)
    after = measure(model, reference)
    for group, activity in after.items():
        assert activity.moved > 0.0, group
        assert activity.rel > 0.0, group
        assert activity.transfers > 0, group
    # moved counts weights, rel the mean change: recompute the head's by hand.
    head_now, head_ref = (
        tile_weights(dict(model.named_modules())["head.fc.analog_module"]),
        reference["head.fc.analog_module"],
    )
    delta = (head_now - head_ref).abs()
    assert after["head"].moved == pytest.approx(100.0 * float((delta > 1e-6).float().mean()))
    assert after["head"].rel == pytest.approx(float(delta.mean() / head_ref.abs().mean()), rel=1e-5)


def test_frozen_tiles_never_change_while_digital_parameters_train(tmp_path):
    model, _ = build_model(nano_config(), 2, tmp_path)
    reference = reference_weights(model)
    digital = {n: p.detach().clone() for n, p in model.named_parameters() if not n.endswith("analog_ctx")}
    _train(model, analog_optimizer(model, 0.05, freeze_analog=True), steps=6)
    after = measure(model, reference)
    assert all(a.moved == 0.0 and a.rel == 0.0 and a.transfers == 0 for a in after.values()), after
    changed = [n for n, p in model.named_parameters() if n in digital and not torch.equal(p, digital[n])]
    assert len(changed) > 10  # norms and biases learned


def test_a_reference_of_other_tiles_is_refused(tmp_path):
    model, _ = build_model(nano_config(), 2, tmp_path)
    reference = reference_weights(model)
    with pytest.raises(ValueError, match="no reference weights"):
        measure(model, {k: v for k, v in reference.items() if not k.startswith("head")})
    with pytest.raises(ValueError, match="tiles the model lacks"):
        measure(model, {**reference, "extra.analog_module": torch.zeros(1)})


def test_the_reference_is_kept_with_the_checkpoint_and_restored(tmp_path):
    model, _ = build_model(nano_config(), 2, tmp_path)
    reference = reference_weights(model)
    optimizer = analog_optimizer(model, 0.05)
    checkpoint = TrialCheckpoint(tmp_path / "trial", "key")
    checkpoint.start_over(model, reference)
    _train(model, optimizer, steps=2)
    checkpoint.save(model, optimizer, [EpochReport(1, 0.5, 40.0, 60.0, 1.0)])

    fresh, _ = build_model(nano_config(), 2, tmp_path)
    again = TrialCheckpoint(tmp_path / "trial", "key")
    assert again.restore(fresh, analog_optimizer(fresh, 0.05))
    assert again.activity_reference.keys() == reference.keys()
    assert all(torch.equal(again.activity_reference[k], reference[k]) for k in reference)
    # Measured against the restored reference, the restored model has the trained model's activity.
    assert measure(fresh, again.activity_reference)["head"].moved == pytest.approx(
        measure(model, reference)["head"].moved
    )


def test_trial_reports_activity_for_analog_and_none_for_digital(tmp_path):
    analog = run_trial(nano_config(), cache_dir=tmp_path).reports[-1].to_dict()
    assert all(analog[f] is not None for f in ACTIVITY_FIELDS)
    assert analog["head_moved"] > 0 and analog["blocks_moved"] > 0
    digital = run_trial(nano_config(mode="digital_tl"), cache_dir=tmp_path).reports[-1].to_dict()
    assert all(digital[f] is None for f in ACTIVITY_FIELDS)
    frozen_algorithm = dataclasses.replace(FAST, freeze_analog=True)
    frozen = run_trial(nano_config(algorithm=frozen_algorithm), cache_dir=tmp_path).reports[-1].to_dict()
    assert frozen["head_moved"] == frozen["blocks_moved"] == frozen["embed_moved"] == 0.0


@pytest.mark.parametrize("columnwise", [False, True])
def test_weight_scaling_programs_the_largest_weight_to_omega(columnwise):
    """aihwkit's mapping (``rpu_config.mapping``): the largest |W| of each output (column-wise) or of the layer is
    programmed to omega in device units, the digital weights read back unchanged where the devices' bounds allow."""
    torch.manual_seed(0)
    layer = torch.nn.Linear(16, 8)
    mapping = MappingConfig(weight_scaling_omega=0.3, weight_scaling_columnwise=columnwise)
    analog = to_analog(torch.nn.Sequential(layer), build_rpu_config(AlgorithmConfig(mapping=mapping), DevicePoint()))
    tile = next(analog.analog_tiles())
    device = tile.tile.get_weights()
    expected = layer.weight.abs().amax(dim=1) if columnwise else layer.weight.abs().max().expand(8)
    scales = tile.get_mapping_scales().expand(8)
    assert torch.allclose(scales, expected / 0.3, rtol=1e-5)
    # Programming is exact except where a device's lower bound (-0.75, device-to-device std 0.3) cuts a weight.
    exact = (device - layer.weight.detach() / scales[:, None]).abs() < 1e-5
    assert exact.float().mean() > 0.9
    assert device.abs().max() <= 0.3 + 1e-6


def test_the_worker_the_epoch_report_and_the_store_name_the_same_activity_fields():
    """Data flows one way, so the store keeps its own list of activity columns; it must stay the worker's list, or
    the driver would silently drop a measured field."""
    from analog_sweep.results import ACTIVITY_FIELDS as STORED

    reported = [f.name for f in dataclasses.fields(EpochReport) if f.name.startswith(GROUPS)]
    assert list(ACTIVITY_FIELDS) == list(STORED) == reported
