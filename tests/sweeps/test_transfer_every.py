"""``transfer_every`` is refused where aihwkit 1.1.0 would not run the period written.

With ``units_in_mbatch`` false (Table I) aihwkit counts matrix-vector products between transfers and rounds the value
to the nearest whole number (``TransferRPUDevice::getTransferEvery``): 0.3 becomes 0, no transfer at all, and 2.5
becomes 3 while ``auto_granularity`` scales the buffer's threshold by 2.5. With ``units_in_mbatch`` true it counts
mini-batches, and a fraction of one is a period."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.sweeps import SpecError, expand, load_spec, shipped_specs

QUICKSTART = shipped_specs()["quickstart"]
EVERY = "algorithm.settings.transfer_every"


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (
            [f"{EVERY}=0.5"],
            f"{EVERY}: 0.5: fewer than 1 MVM between transfers (with units_in_mbatch false aihwkit counts "
            "matrix-vector products and rounds this to 1 MVM); write a whole number of at least 1, or set "
            "units_in_mbatch: true for a fraction of a mini-batch",
        ),
        (
            [f"{EVERY}=0.3"],
            f"{EVERY}: 0.3: fewer than 1 MVM between transfers (with units_in_mbatch false aihwkit "
            "counts matrix-vector products and rounds this to no transfer at all)",
        ),
        (
            [f"{EVERY}=2.5", "algorithm.settings.units_in_mbatch=false"],
            f"{EVERY}: 2.5: not a whole number of MVMs between transfers (with units_in_mbatch false aihwkit rounds "
            "it to 3); write 3, or set units_in_mbatch: true",
        ),
        ([f"{EVERY}=0"], f"{EVERY}: 0: must be positive (0 means no transfer at all, so the weights never learn"),
        ([f"{EVERY}=0", "algorithm.settings.units_in_mbatch=true"], f"{EVERY}: 0: must be positive"),
        ([f"{EVERY}=-1"], f"{EVERY}: -1: must be positive"),
        ([f"{EVERY}=true"], f"{EVERY}: must be a number, got True"),
    ],
)
def test_a_transfer_period_aihwkit_would_not_run_as_written_is_refused_in_one_line(overrides, expected):
    with pytest.raises(SpecError) as caught:
        load_spec(QUICKSTART, overrides)
    message = str(caught.value)
    assert f"quickstart.yaml: {expected}" in message and "\n" not in message, message


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ([], 1.0),  # Table I
        ([f"{EVERY}=1"], 1.0),
        ([f"{EVERY}=3"], 3.0),
        ([f"{EVERY}=3.0"], 3.0),
        ([f"{EVERY}=0.5", "algorithm.settings.units_in_mbatch=true"], 0.5),  # half a mini-batch of MVMs
        ([f"{EVERY}=2.5", "algorithm.settings.units_in_mbatch=true"], 2.5),
    ],
)
def test_a_period_aihwkit_runs_as_written_is_kept(overrides, expected):
    (point, *_) = expand(load_spec(QUICKSTART, overrides))
    assert point.algorithm.settings_dict()["transfer_every"] == expected


def test_each_entry_of_algorithms_is_checked_with_its_own_units():
    spec_file = shipped_specs()["embedded_algorithms_sp_skew"]
    entries = "algorithms=[c-ttv2, {name: agad, settings: {transfer_every: 0.5}}]"
    with pytest.raises(SpecError, match=r"algorithms\[1\]\.settings\.transfer_every: 0\.5: fewer than 1 MVM"):
        load_spec(spec_file, [entries])
    spec = load_spec(spec_file, [entries, "algorithm.settings.units_in_mbatch=true"])  # shared: mini-batch units
    assert [a.settings_dict()["transfer_every"] for a in spec.algorithms] == [1.0, 0.5]


def test_every_shipped_spec_still_validates():
    for name, path in shipped_specs().items():
        assert expand(load_spec(path)), name


def test_analog_sweep_trial_refuses_it_in_one_line(tmp_path):
    result = CliRunner().invoke(
        cli, ["trial", "--algo-set", "transfer_every=0.5", "--epochs", "1", "--cache-dir", str(tmp_path)]
    )
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{EVERY}: 0.5: fewer than 1 MVM between transfers" in result.stderr


def test_aihwkit_rounds_a_fraction_of_an_mvm_and_below_a_half_never_transfers():
    """What the rule rests on, on a real c-TTv2 tile: at 0.3 the weights never move (rounded to 0: no transfer), at
    0.5 they move as at 1 (rounded to 1). A small auto_granularity makes each transfer write within 100 steps."""
    import torch
    from aihwkit.nn import AnalogLinear
    from aihwkit.optim import AnalogSGD

    from analog_sweep.workers import DEFAULT_DEVICE, AlgorithmConfig
    from analog_sweep.workers._devices import build_rpu_config

    generator = torch.Generator().manual_seed(0)
    inputs, targets = torch.randn(64, 8, generator=generator), torch.randn(64, 4, generator=generator)
    moved = {}
    for every in (0.3, 0.5, 1.0):
        settings = (("transfer_every", every), ("auto_granularity", 1))
        layer = AnalogLinear(
            8, 4, bias=False, rpu_config=build_rpu_config(AlgorithmConfig(settings=settings), DEFAULT_DEVICE)
        )
        layer.set_weights(torch.zeros(4, 8))
        optimizer = AnalogSGD(layer.parameters(), lr=0.5)
        for _ in range(100):
            optimizer.zero_grad()
            ((layer(inputs) - targets) ** 2).mean().backward()
            optimizer.step()
        moved[every] = float(layer.get_weights()[0].abs().mean())
    assert moved[0.3] == 0.0
    assert moved[0.5] > 0.05 and moved[1.0] > 0.05, moved  # measured 0.15 and 0.13
