"""The torch / aihwkit pair works: aihwkit's compiled simulator only runs with the torch it was built against.

aihwkit 1.1.0's cp311 wheel works with torch 2.10.0; torch 2.9.1 fails at import and torch 2.13+ fails at the
first ``set_weights``. This test exercises the whole path once and names the fix.
"""

from __future__ import annotations

import importlib.metadata

import pytest
import torch

PINNED = "aihwkit==1.1.0 needs torch==2.10.0 (torchvision==0.25.0)"


def broken_stack(step: str, error: BaseException) -> str:
    versions = {name: _version(name) for name in ("torch", "torchvision", "aihwkit")}
    found = ", ".join(f"{name} {version}" for name, version in versions.items())
    return (
        f"the torch/aihwkit pair is broken at {step}: {type(error).__name__}: {error}. "
        f"{PINNED}; found {found}: reinstall the pinned stack with `rm -rf .venv && make install`"
    )


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def test_analog_layer_trains_one_step():
    step = "import aihwkit.simulator.rpu_base"
    try:
        import aihwkit.simulator.rpu_base  # noqa: F401  (the compiled simulator)
        from aihwkit.nn import AnalogLinear
        from aihwkit.optim import AnalogSGD
        from aihwkit.simulator.configs import ConstantStepDevice, SingleRPUConfig

        step = "AnalogLinear(4, 2) and set_weights"
        layer = AnalogLinear(4, 2, bias=False, rpu_config=SingleRPUConfig(device=ConstantStepDevice()))
        start = torch.tensor([[0.1, -0.2, 0.3, -0.4], [0.5, -0.1, 0.2, 0.0]])
        layer.set_weights(start)
        step = "forward and backward"
        optimizer = AnalogSGD(layer.parameters(), lr=0.5)
        optimizer.regroup_param_groups(layer)
        loss = layer(torch.ones(3, 4)).pow(2).sum()
        loss.backward()
        step = "AnalogSGD step"
        optimizer.step()
        after, _ = layer.get_weights()
    except Exception as error:  # noqa: BLE001  (any failure here means the same fix)
        pytest.fail(broken_stack(step, error), pytrace=True)
    assert not torch.allclose(after, start), broken_stack(
        "AnalogSGD step", AssertionError("the step left the analog weights unchanged")
    )
