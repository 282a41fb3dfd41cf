"""workers._devices: the paper's axes measured on real aihwkit tiles, Table I on real compound fields.

The device axes are checked by driving devices and measuring, not by reading the config back:
- symmetry point: random up/down pulses settle each device; the time-averaged read-out ``get_weights`` (what the
  algorithm sees) gives the skew (mean) and the variability (spread across devices);
- pulse statistics: single up and down pulses on every device of a tile, read on the noise-free persistent
  weights (the hidden ``persistent_weights`` plane, which the preset's write noise does not touch).
aihwkit's simulator RNG cannot be seeded, so tolerances are set at four or more standard errors of each estimate.
"""

from __future__ import annotations

import copy
import dataclasses
import math

import pytest
import torch
from aihwkit.nn.modules.base import AnalogLayerBase
from aihwkit.simulator.configs import (
    ChoppedTransferCompound,
    DynamicTransferCompound,
    SingleRPUConfig,
    UpdateParameters,
)
from aihwkit.simulator.parameters.enums import PulseType
from aihwkit.simulator.presets.devices import ReRamSBPresetDevice
from aihwkit.simulator.presets.utils import PresetIOParameters
from aihwkit.simulator.rpu_base import cuda as rpu_cuda
from aihwkit.simulator.tiles import AnalogTile

from analog_sweep.workers import (
    TABLE_I,
    AlgorithmConfig,
    ConfigError,
    DevicePoint,
    MappingConfig,
    TileBackendError,
    build_rpu_config,
    place_on_device,
)
from analog_sweep.workers._devices import (
    analog_layers,
    analog_optimizer,
    analog_tiles,
    apply_transfer_noise,
    count_analog_layers,
    learning_device,
    to_analog,
)

WEIGHT_RANGE = 2.0  # w_max - w_min of the ReRAM soft-bounds preset (1.25 - (-0.75))

# One pulse per device and update call: probability saturates at 1 with lr 1 and a pulse train of length 1.
ONE_PULSE = UpdateParameters(
    desired_bl=1, update_management=False, update_bl_management=False, pulse_type=PulseType.STOCHASTIC_COMPRESSED
)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pulse_tile(device: ReRamSBPresetDevice, rows: int, cols: int) -> AnalogTile:
    """A tile of ``device`` whose every update call gives each device exactly one pulse of sign(-d x)."""
    tile = AnalogTile(rows, cols, SingleRPUConfig(device=copy.deepcopy(device), update=ONE_PULSE))
    tile.set_learning_rate(1.0)
    return tile


def settled_readout(device: ReRamSBPresetDevice, rows: int = 40, cols: int = 50) -> torch.Tensor:
    """Each device's read-out weight averaged over its settled state under random up/down pulses.

    The relaxation time of the soft-bounds device is about 1 / (dw_min (1/w_max + 1/|w_min|)), some 250 pulses:
    5,000 pulses settle it, then 80 snapshots 250 pulses apart average out the fluctuations and the write noise
    (0.112 per snapshot, so about 0.013 remains).
    """
    tile = pulse_tile(device, rows, cols)
    generator = torch.Generator().manual_seed(0)
    batch = 50

    def random_pulses(count: int) -> None:
        for _ in range(count // batch):
            x = torch.randint(0, 2, (batch, cols), generator=generator).float() * 2 - 1
            d = torch.randint(0, 2, (batch, rows), generator=generator).float() * 2 - 1
            tile.update(x, d)

    random_pulses(5000)
    total = torch.zeros(rows, cols)
    snapshots = 80
    for _ in range(snapshots):
        random_pulses(250)
        total += tile.get_weights()[0]
    return total / snapshots


def pulse_steps(device: ReRamSBPresetDevice, repeats: int, rows: int = 40, cols: int = 50):
    """Single-pulse weight changes: (up steps, down step sizes) as [repeats, devices], and each device's dw_min.

    Up and down pulses alternate, which keeps each device near its start (0), where the soft-bounds factor is
    1 and a step is the device's own pulse size. Devices with a bound within 0.4 of 0 (a few percent, from the
    preset's bound variation) are left out: their steps get clipped as the pulse noise walks them about.
    """
    tile = pulse_tile(device, rows, cols)
    tile.set_weights(torch.zeros(rows, cols))
    hidden = tile.get_hidden_parameters()
    far_from_bounds = (hidden["max_bound"] > 0.4) & (hidden["min_bound"] < -0.4)
    dw_min = ((hidden["dwmin_up"] + hidden["dwmin_down"]) / 2)[far_from_bounds]
    up_x, up_d = torch.ones(1, cols), -torch.ones(1, rows)
    ups, downs = [], []
    before = hidden["persistent_weights"]
    for _ in range(repeats):
        tile.update(up_x, up_d)
        middle = tile.get_hidden_parameters()["persistent_weights"]
        tile.update(up_x, -up_d)
        after = tile.get_hidden_parameters()["persistent_weights"]
        ups.append((middle - before)[far_from_bounds])
        downs.append((middle - after)[far_from_bounds])
        before = after
    return torch.stack(ups), torch.stack(downs), dw_min


# ---- configs: compounds and Table I ----


def test_each_algorithm_builds_its_compound_on_the_mapped_devices():
    point = DevicePoint(sp_skew=5, sp_variability=5, pulse_noise=1.0, dtod=0.2)
    c_ttv2 = build_rpu_config(AlgorithmConfig("c-ttv2"), point)
    assert type(c_ttv2.device) is ChoppedTransferCompound
    assert c_ttv2.device.in_chop_prob == 0.10
    ttv2 = build_rpu_config(AlgorithmConfig("ttv2"), point)
    assert type(ttv2.device) is ChoppedTransferCompound
    assert ttv2.device.in_chop_prob == 0.0 and ttv2.device.out_chop_prob == 0.0
    agad = build_rpu_config(AlgorithmConfig("agad"), point)
    assert type(agad.device) is DynamicTransferCompound
    for config in (c_ttv2, ttv2, agad):
        assert config.device.unit_cell_devices == [learning_device(point), learning_device(point)]
        assert isinstance(config.forward, PresetIOParameters) and isinstance(config.backward, PresetIOParameters)
    sgd = build_rpu_config(AlgorithmConfig("sgd"), point)
    assert isinstance(sgd, SingleRPUConfig) and sgd.device == learning_device(point)
    assert sgd.update.desired_bl == 31


# A value for each Table I key that differs from both Table I and aihwkit's preset defaults.
NON_DEFAULT = {
    "transfer_every": 3.0,
    "auto_granularity": 777.0,
    "momentum": 0.25,
    "auto_scale": False,
    "in_chop_prob": 0.33,
    "units_in_mbatch": True,
    "forget_buffer": False,
    "auto_momentum": 0.5,
}


def test_non_default_values_cover_table_i():
    assert set(NON_DEFAULT) == set(TABLE_I)
    assert all(NON_DEFAULT[key] != TABLE_I[key] for key in TABLE_I)


@pytest.mark.parametrize(
    ("name", "key"),
    # ttv2 has no choppers: see test_ttv2_refuses_choppers.
    [(n, k) for n in ("c-ttv2", "agad", "ttv2") for k in sorted(TABLE_I) if (n, k) != ("ttv2", "in_chop_prob")],
)
def test_table_i_setting_lands_on_a_compound_field(name, key):
    default = build_rpu_config(AlgorithmConfig(name), DevicePoint()).device
    assert getattr(default, key) == TABLE_I[key]
    changed = build_rpu_config(AlgorithmConfig(name, ((key, NON_DEFAULT[key]),)), DevicePoint()).device
    assert getattr(changed, key) == NON_DEFAULT[key]
    assert key in {f.name for f in dataclasses.fields(changed)}


def test_table_i_values_reach_the_simulator_bindings():
    """A field the C++ side does not know would be dropped silently; the bindings carry each Table I value."""
    from aihwkit.simulator.parameters.enums import RPUDataType

    compound = build_rpu_config(AlgorithmConfig("c-ttv2", tuple(NON_DEFAULT.items())), DevicePoint()).device
    bindings = compound.as_bindings(RPUDataType.FLOAT)
    for key, value in NON_DEFAULT.items():
        assert getattr(bindings, key) == pytest.approx(value), key


def test_ttv2_refuses_choppers():
    with pytest.raises(ConfigError, match="in_chop_prob"):
        build_rpu_config(AlgorithmConfig("ttv2", (("in_chop_prob", 0.1),)), DevicePoint())


@pytest.mark.parametrize("name", ["c-ttv2", "ttv2", "agad", "sgd"])
def test_every_algorithm_config_trains_a_real_layer(name):
    rpu_config = build_rpu_config(AlgorithmConfig(name), DevicePoint(pulse_noise=1.0, dtod=0.3))
    model = to_analog(torch.nn.Sequential(torch.nn.Linear(8, 4)), rpu_config)
    optimizer = analog_optimizer(model, lr=0.1)
    (tile,) = analog_tiles(model)
    before = {k: v.clone() for k, v in tile.get_hidden_parameters().items()}
    generator = torch.Generator().manual_seed(0)
    for _ in range(5):
        optimizer.zero_grad()
        model(torch.randn(16, 8, generator=generator)).pow(2).sum().backward()
        optimizer.step()
    after = tile.get_hidden_parameters()
    moved = [k for k in before if "weights" in k and not torch.equal(before[k], after[k])]
    assert moved, f"{name}: no weight plane changed after 5 AnalogSGD steps"


# ---- symmetry point: skew and variability, measured on settled devices ----


def assert_settled(device: ReRamSBPresetDevice, sp_skew: float, sp_variability: float) -> None:
    readout = settled_readout(device)
    requested_mean = sp_skew / 100 * WEIGHT_RANGE
    requested_spread = sp_variability / 100 * WEIGHT_RANGE
    # The averaged write noise leaves about 0.013 of spread even at zero variability; it adds in quadrature.
    expected_spread = math.hypot(requested_spread, 0.013)
    # Mean: standard error spread / sqrt(2000) <= 0.005, plus about 1 % of the offset from the soft bounds.
    assert abs(readout.mean().item() - requested_mean) <= 0.02 + 0.02 * requested_mean, readout.mean()
    # Spread: relative standard error 1 / sqrt(2 * 2000) = 1.6 %; 6 % plus the uncertain residual.
    assert abs(readout.std().item() - expected_spread) <= 0.06 * expected_spread + 0.004, readout.std()


@pytest.mark.parametrize(("sp_skew", "sp_variability"), [(0.0, 0.0), (5.0, 10.0), (10.0, 5.0)])
def test_settled_readout_follows_symmetry_point_axes(sp_skew, sp_variability):
    """The c-TTv2 gradient device (fast, index 0); the weight device is the same config (asserted above)."""
    rpu_config = build_rpu_config(
        AlgorithmConfig("c-ttv2"), DevicePoint(sp_skew=sp_skew, sp_variability=sp_variability)
    )
    assert_settled(rpu_config.device.unit_cell_devices[0], sp_skew, sp_variability)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["c-ttv2", "agad", "sgd"])
def test_settled_readout_with_preset_pulse_noise_on_every_learning_device(name):
    """With the preset's pulse noise (3.75) and pulse-size variation (0.3) on each device that learns."""
    point = DevicePoint(sp_skew=10, sp_variability=10, pulse_noise=3.75, dtod=0.3)
    rpu_config = build_rpu_config(AlgorithmConfig(name), point)
    for device in getattr(rpu_config.device, "unit_cell_devices", [rpu_config.device]):
        assert_settled(device, point.sp_skew, point.sp_variability)


# ---- pulse size: cycle-to-cycle noise and device-to-device variation ----


def measured_pulse_statistics(device: ReRamSBPresetDevice, repeats: int) -> tuple[float, float, float]:
    """Measured (cycle-to-cycle std, device-to-device std, median |mean step / dw_min - 1|) of single pulses.

    The cycle-to-cycle std of each device's steps is taken relative to that device's dw_min; the
    device-to-device std of the per-device mean step relative to the configured mean ``dw_min`` (the unit of
    ``dw_min_dtod``), corrected for the sampling noise of those means. (The mean of all steps is not a good
    unit under pulse noise: it scatters by a few percent between runs, more than independent noise would.)
    """
    ups, downs, dw_min = pulse_steps(device, repeats)
    cycle = (torch.cat([ups, downs]).std(dim=0) / dw_min).mean()
    per_device = (ups.mean(dim=0) + downs.mean(dim=0)) / 2
    sampling_var = ((ups.var(dim=0) + downs.var(dim=0)) / (4 * repeats)).mean()
    device_to_device = (per_device.var() - sampling_var).clamp(min=0).sqrt() / device.dw_min
    step_error = (per_device / dw_min - 1).abs().median()
    return cycle.item(), device_to_device.item(), step_error.item()


@pytest.mark.parametrize(("pulse_noise", "dtod"), [(0.0, 0.0), (0.0, 0.3), (1.0, 0.1), (3.75, 0.3)])
def test_pulse_statistics_follow_pulse_noise_and_dtod(pulse_noise, dtod):
    rpu_config = build_rpu_config(AlgorithmConfig("c-ttv2"), DevicePoint(pulse_noise=pulse_noise, dtod=dtod))
    cycle, device_to_device, step_error = measured_pulse_statistics(rpu_config.device.unit_cell_devices[1], 100)
    # Cycle-to-cycle: about 1900 devices x 200 pulses; the estimate scatters by under 1 %.
    assert cycle == pytest.approx(pulse_noise, rel=0.03, abs=0.005)
    # Device-to-device: a std over about 1900 devices has 1.6 % relative standard error; the sampling
    # correction leaves about 0.01 at pulse noise 3.75 (100 pulses each way).
    assert device_to_device == pytest.approx(dtod, rel=0.08, abs=0.03 * pulse_noise / 3.75 + 0.005)
    if pulse_noise == 0:
        # Without pulse noise a typical step is the device's own pulse size: one pulse per update, times the
        # soft-bounds factor 1 - w / bound at w = the symmetry point (a few 0.01; more for the rare devices
        # whose tiny dw_min makes the preset's up/down asymmetry large, hence the median).
        assert step_error < 0.02


# ---- transfer noise ----


def two_layer_model() -> torch.nn.Module:
    """A Linear (max|W| 0.05) and a Conv2d (max|W| 0.2): the noise must scale with each layer's own max."""
    generator = torch.Generator().manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.Flatten(), torch.nn.Linear(256, 40))
    with torch.no_grad():
        model[0].weight.copy_((torch.rand(model[0].weight.shape, generator=generator) * 2 - 1) * 0.2)
        model[2].weight.copy_((torch.rand(model[2].weight.shape, generator=generator) * 2 - 1) * 0.05)
    return model


# These tests check the mechanics of conversion and transfer noise with the weights programmed as they are; the
# default mapping's scaling is checked on its own below (test_default_mapping_...).
UNSCALED = AlgorithmConfig("c-ttv2", mapping=MappingConfig(weight_scaling_omega=0.0, weight_scaling_columnwise=False))


def inside_bounds(layer: AnalogLayerBase, weight: torch.Tensor) -> torch.Tensor:
    """Where ``weight`` (in device units) lies strictly inside the visible device's bounds, i.e. ``set_weights``
    did not clip it.

    ``set_weights`` clips the read-out weight at the hidden ``min_bound`` / ``max_bound`` planes as they are.
    """
    (tile,) = layer.analog_tiles()
    hidden = tile.get_hidden_parameters()
    visible = max(int(k.rsplit("_", 1)[1]) for k in hidden if k.startswith("max_bound_"))
    upper, lower = hidden[f"max_bound_{visible}"], hidden[f"min_bound_{visible}"]
    return (weight < upper - 1e-6) & (weight > lower + 1e-6)


def device_weights(layer: AnalogLayerBase) -> torch.Tensor:
    """The tile's programmed weights in device units (the mapping's digital scales not applied)."""
    (tile,) = layer.analog_tiles()
    return tile.tile.get_weights().detach()


@pytest.mark.parametrize("tau", [10.0, 20.0])
def test_transfer_noise_spread_is_tau_percent_of_each_layers_max(tau):
    model = to_analog(two_layer_model(), build_rpu_config(UNSCALED, DevicePoint()))
    before = [layer.get_weights()[0] for layer in analog_layers(model)]
    apply_transfer_noise(model, tau, seed=3)
    for layer, old in zip(analog_layers(model), before):
        new, _ = layer.get_weights()
        kept = inside_bounds(layer, old) & inside_bounds(layer, new)
        assert kept.float().mean() > 0.9
        delta = (new - old)[kept]
        requested = tau / 100 * old.abs().max()
        # Relative standard error of a std over >= 1728 entries (the conv): <= 1.7 %; mean: requested / sqrt(n).
        assert delta.std().item() == pytest.approx(requested.item(), rel=0.08)
        assert abs(delta.mean().item()) <= 4 * requested.item() / math.sqrt(delta.numel())


def test_transfer_noise_scale_is_the_whole_layers_max_when_the_layer_spans_tiles():
    """Linear(8, 1024) is two tiles of 512 outputs; the first holds weights of 0.01, the second of up to 0.2."""
    digital = torch.nn.Linear(8, 1024)
    with torch.no_grad():
        digital.weight.uniform_(-0.01, 0.01)
        digital.weight[512:].uniform_(-0.2, 0.2)
    model = to_analog(digital, build_rpu_config(AlgorithmConfig("sgd"), DevicePoint()))
    (layer,) = analog_layers(model)
    assert len(list(analog_tiles(model))) == 2
    before, _ = layer.get_weights()
    apply_transfer_noise(model, 10.0, seed=0)
    after, _ = layer.get_weights()
    requested = 0.1 * before.abs().max().item()
    for half in (slice(0, 512), slice(512, 1024)):
        # 4096 entries per half: 1.1 % standard error, plus a few clipped entries at the device bounds.
        assert (after - before)[half].std().item() == pytest.approx(requested, rel=0.1)


def test_transfer_noise_is_reproducible_per_seed_and_zero_leaves_weights_unchanged():
    """Each conversion draws new device bounds, so the noise is compared where no copy clipped it, and in
    units of each copy's layer max (a clipped largest weight changes that scale)."""
    rpu_config = build_rpu_config(UNSCALED, DevicePoint())
    digital = two_layer_model()
    models = [to_analog(digital, rpu_config) for _ in range(3)]
    before = [[layer.get_weights()[0] for layer in analog_layers(m)] for m in models]
    for model, seed in zip(models, (7, 7, 8)):
        apply_transfer_noise(model, 15.0, seed=seed)
    for index, layers in enumerate(zip(*(analog_layers(m) for m in models))):
        old = [weights[index] for weights in before]
        new = [layer.get_weights()[0] for layer in layers]
        kept = torch.ones_like(new[0], dtype=torch.bool)
        for layer, o, n in zip(layers, old, new):
            kept &= inside_bounds(layer, o) & inside_bounds(layer, n)
        assert kept.float().mean() > 0.9
        noise = [((n - o) / o.abs().max())[kept] for o, n in zip(old, new)]
        assert torch.allclose(noise[0], noise[1], rtol=1e-4, atol=1e-6)
        assert not torch.allclose(noise[0], noise[2], rtol=0.5)

    untouched = to_analog(digital, rpu_config)
    converted = [layer.get_weights()[0] for layer in analog_layers(untouched)]
    apply_transfer_noise(untouched, 0.0, seed=7)
    for layer, weight in zip(analog_layers(untouched), converted):
        assert torch.equal(layer.get_weights()[0], weight)


def test_conversion_programs_weights_without_write_noise():
    """The preset's write noise (0.112) would swamp weights of 0.05; inside the device bounds they are exact."""
    digital = two_layer_model()
    model = to_analog(digital, build_rpu_config(UNSCALED, DevicePoint()))
    for layer, source in zip(analog_layers(model), (digital[0], digital[2])):
        weight, _ = layer.get_weights()
        source_weight = source.weight.detach().reshape(weight.shape)
        kept = inside_bounds(layer, source_weight)
        assert torch.allclose(weight[kept], source_weight[kept], atol=1e-6)


def test_default_mapping_programs_each_outputs_largest_weight_at_omega_and_reads_back_digital_weights():
    """Column-wise weight scaling (the default): device weights = W / (max|W of the output| / 0.6); ``get_weights``
    undoes it, so inside the device bounds the digital weights come back exactly, and no write noise is added."""
    digital = two_layer_model()
    model = to_analog(digital, build_rpu_config(AlgorithmConfig("c-ttv2"), DevicePoint()))
    for layer, source in zip(analog_layers(model), (digital[0], digital[2])):
        weight, _ = layer.get_weights()
        source_weight = source.weight.detach().reshape(weight.shape)
        scales = source_weight.abs().amax(dim=1, keepdim=True) / MappingConfig().weight_scaling_omega
        programmed = source_weight / scales
        kept = inside_bounds(layer, programmed)
        assert kept.float().mean() > 0.9
        assert torch.allclose(device_weights(layer)[kept], programmed[kept], atol=1e-6)
        assert torch.allclose(weight[kept], source_weight[kept], atol=1e-6)
        assert device_weights(layer).abs().max() <= 0.6 + 1e-6


@pytest.mark.parametrize("tau", [10.0, 20.0])
def test_transfer_noise_keeps_the_papers_unit_under_the_default_mapping(tau):
    """With weight scaling the noise is still tau percent of the layer's max|W| in digital units (paper eq. 1)."""
    model = to_analog(two_layer_model(), build_rpu_config(AlgorithmConfig("c-ttv2"), DevicePoint()))
    before = [(layer.get_weights()[0], inside_bounds(layer, device_weights(layer))) for layer in analog_layers(model)]
    apply_transfer_noise(model, tau, seed=3)
    for layer, (old, old_inside) in zip(analog_layers(model), before):
        new, _ = layer.get_weights()
        kept = old_inside & inside_bounds(layer, device_weights(layer))
        assert kept.float().mean() > 0.8
        delta = (new - old)[kept]
        requested = tau / 100 * old.abs().max()
        assert delta.std().item() == pytest.approx(requested.item(), rel=0.1)


# ---- conversion, optimizer, torch device ----


def test_to_analog_converts_every_linear_and_conv2d():
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3),
        torch.nn.LayerNorm([4, 2, 2]),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 600),
        torch.nn.Linear(600, 3),
    )
    analog = to_analog(model, build_rpu_config(AlgorithmConfig("sgd"), DevicePoint()))
    assert not [m for m in analog.modules() if type(m) in (torch.nn.Linear, torch.nn.Conv2d)]
    assert [type(m).__name__ for m in analog_layers(analog)] == ["AnalogConv2d", "AnalogLinear", "AnalogLinear"]
    assert count_analog_layers(analog) == 3
    # Both 600-wide layers exceed the 512-row/column tile and are split into two tiles each.
    assert len(list(analog_tiles(analog))) == 5
    assert analog(torch.randn(2, 3, 4, 4)).shape == (2, 3)


def test_analog_optimizer_gives_each_analog_layer_its_own_group_at_lr():
    model = to_analog(
        torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 2)),
        build_rpu_config(AlgorithmConfig("sgd"), DevicePoint()),
    )
    optimizer = analog_optimizer(model, lr=0.05)
    tiles = list(analog_tiles(model))
    analog_groups = [g for g in optimizer.param_groups if any(p is t.analog_ctx for t in tiles for p in g["params"])]
    assert len(analog_groups) == len(tiles) == 2
    assert all(len(g["params"]) == 1 for g in analog_groups)
    assert all(t.get_learning_rate() == pytest.approx(0.05) for t in tiles)


def test_place_on_device_cpu_is_a_no_op():
    model = to_analog(
        torch.nn.Sequential(torch.nn.Linear(4, 2)), build_rpu_config(AlgorithmConfig("sgd"), DevicePoint())
    )
    assert place_on_device(model, "cpu") is model
    with pytest.raises(ValueError, match="cpu"):
        place_on_device(model, "mps")


@pytest.mark.skipif(rpu_cuda.is_compiled(), reason="this aihwkit build has CUDA")
@pytest.mark.parametrize("device", ["cuda", "cuda:1"])
def test_place_on_device_cuda_on_a_cpu_only_build_says_why(device):
    model = to_analog(
        torch.nn.Sequential(torch.nn.Linear(4, 2)), build_rpu_config(AlgorithmConfig("sgd"), DevicePoint())
    )
    with pytest.raises(TileBackendError, match="CPU-only build.*RPU_USE_CUDA"):
        place_on_device(model, device)
