"""One default device: a spec without ``device`` and ``analog-sweep trial`` without device options
mean the same device, ``workers._config.DEFAULT_DEVICE``."""

from __future__ import annotations

import dataclasses

from analog_sweep.cli.trial import trial
from analog_sweep.sweeps import expand, spec_from_mapping
from analog_sweep.workers import DEFAULT_DEVICE, DEVICE_AXES

BARE = {
    "name": "bare",
    "data": {"dataset": "digits", "classes": [["5", "8"]]},
    "modes": ["analog_tl"],
    "lr_search": {"method": "grid", "values": [0.01]},
}


def trial_cli_defaults() -> dict[str, float]:
    return {p.name: p.default for p in trial.params if p.name in DEVICE_AXES}


def test_a_spec_without_a_device_section_and_the_trial_command_mean_the_same_device():
    spec = spec_from_mapping(BARE, source="test")
    assert spec.device == DEFAULT_DEVICE
    assert [point.device for point in expand(spec)] == [DEFAULT_DEVICE]
    assert trial_cli_defaults() == dataclasses.asdict(DEFAULT_DEVICE)


def test_an_axis_the_spec_leaves_out_takes_the_default_value():
    spec = spec_from_mapping({**BARE, "device": {"transfer_noise": 10}}, source="test")
    assert spec.device == dataclasses.replace(DEFAULT_DEVICE, transfer_noise=10.0)


def test_the_default_device_is_the_shipped_base_device():
    # Every shipped spec writes its base device out; the default is the same (the paper's ReRAM preset).
    from analog_sweep.sweeps import load_spec, shipped_specs

    for path in shipped_specs().values():
        assert load_spec(path).device == DEFAULT_DEVICE, path
