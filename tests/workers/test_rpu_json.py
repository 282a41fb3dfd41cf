"""The rpu config JSON each analog trial records: strict JSON, faithful to what the tiles run with, and different
exactly where the configs differ."""

from __future__ import annotations

import dataclasses
import json

import pytest

from analog_sweep.workers import (
    DEFAULT_DEVICE,
    AlgorithmConfig,
    MappingConfig,
    build_model,
    build_rpu_config,
    trial_rpu_config_json,
)
from analog_sweep.workers._devices import analog_tiles
from analog_sweep.workers._rpu_json import rpu_config_json, to_json_value

from .test_trial import nano_config


def leaves(value, prefix=""):
    """Every leaf of the JSON as {dotted path: value}."""
    if isinstance(value, dict):
        return {k: v for key, item in value.items() for k, v in leaves(item, f"{prefix}.{key}").items()}
    if isinstance(value, list):
        return {k: v for i, item in enumerate(value) for k, v in leaves(item, f"{prefix}[{i}]").items()}
    return {prefix: value}


def test_the_json_is_strict_and_names_classes_and_enums(tmp_path):
    config = nano_config("analog_scratch", device=DEFAULT_DEVICE)
    found = trial_rpu_config_json(config)
    text = json.dumps(found, allow_nan=False)  # no NaN or inf tokens, only JSON types
    assert json.loads(text) == found
    assert found["__class__"] == "aihwkit.simulator.presets.configs.ChoppedTTv2ReRamSBPreset"
    assert found["tile_class"] == "aihwkit.simulator.tiles.analog.AnalogTile"
    assert found["forward"]["bound_management"].startswith("BoundManagementType.")
    compound = found["device"]
    assert compound["__class__"].endswith("ChoppedTransferCompound")
    # Table I as the trial applied it (workers._config.TABLE_I), and the mapping of the algorithm.
    assert (compound["in_chop_prob"], compound["auto_granularity"], compound["auto_momentum"]) == (0.1, 10000, 0.99)
    assert found["mapping"]["weight_scaling_omega"] == MappingConfig().weight_scaling_omega
    assert len(compound["unit_cell_devices"]) == 2
    assert trial_rpu_config_json(nano_config("digital_scratch")) is None


def test_every_tile_runs_with_exactly_the_recorded_config(tmp_path):
    config = nano_config("analog_scratch", device=dataclasses.replace(DEFAULT_DEVICE, sp_skew=5.0, dtod=0.6))
    model, _ = build_model(config, 2, tmp_path)
    tiles = list(analog_tiles(model))
    assert len(tiles) > 10
    recorded = trial_rpu_config_json(config)
    assert all(rpu_config_json(tile.rpu_config) == recorded for tile in tiles)


def test_configs_differ_exactly_where_the_device_differs():
    base = trial_rpu_config_json(nano_config("analog_tl", device=DEFAULT_DEVICE))
    assert trial_rpu_config_json(nano_config("analog_tl", device=DEFAULT_DEVICE)) == base  # deterministic
    # Transfer noise is applied to the weights once, not through the rpu config: the same JSON.
    noisy = dataclasses.replace(DEFAULT_DEVICE, transfer_noise=30.0)
    assert trial_rpu_config_json(nano_config("analog_tl", device=noisy)) == base
    # Device-to-device variation of the pulse size lives in both unit cells' devices, and only there.
    spread = leaves(
        trial_rpu_config_json(nano_config("analog_tl", device=dataclasses.replace(DEFAULT_DEVICE, dtod=0.6)))
    )
    changed = {path for path, value in leaves(base).items() if spread[path] != value}
    assert changed and all(".unit_cell_devices[" in path for path in changed), changed
    assert {path.split("]")[0] for path in changed} == {".device.unit_cell_devices[0", ".device.unit_cell_devices[1"}


def test_plain_sgd_and_odd_values():
    sgd = rpu_config_json(build_rpu_config(AlgorithmConfig(name="sgd"), DEFAULT_DEVICE))
    assert sgd["__class__"] == "aihwkit.simulator.configs.configs.SingleRPUConfig"
    assert to_json_value([float("inf"), float("-inf"), float("nan"), (1, 2)]) == ["inf", "-inf", "nan", [1, 2]]
    with pytest.raises(TypeError, match="not an rpu config"):
        rpu_config_json({"a": 1})
