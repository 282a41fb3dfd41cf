"""Where the paper's algorithm settings and device axes become aihwkit 1.1.0 rpu configs.

Every analog algorithm runs on ReRAM soft-bounds devices (aihwkit's ``ReRamSBPresetDevice``, bounds
``w_min=-0.75``, ``w_max=1.25`` around a symmetry point at 0, so the weight range is ``w_max - w_min = 2``, the
paper's [-1, 1] range) with the presets' peripheral IO (``PresetIOParameters``) and pulsed update
(``PresetUpdateParameters``, 31 pulses at most).

Device axes (``DevicePoint``), applied identically to every device that learns: the gradient-accumulating
("fast", ``unit_cell_devices[0]``) and the weight-holding ("slow", ``unit_cell_devices[1]``) device of a
transfer compound, and the single device of plain SGD. Both arrays of a compound are built from the same
material, and the paper simulates one ReRAM device model, so a device property cannot differ between them.

=================  ==============================  ===============================================================
axis               unit                            aihwkit field(s) on each learning device
=================  ==============================  ===============================================================
``sp_skew``        percent of the weight range     ``reference_mean = -sp_skew / 100 * (w_max - w_min)`` with
                   (range 2: 5 % = 0.10)           ``subtract_symmetry_point=True``. The read-out is ``w - r``
                                                   and random pulses settle ``w`` at its symmetry point, so the
                                                   settled read-out is ``-reference_mean``: sp_skew = +5 makes the
                                                   settled read-out mean +0.10 (positive sign = offset upwards).
``sp_variability`` percent of the weight range     ``reference_std = sp_variability / 100 * (w_max - w_min)``:
                   (5 % = 0.10, as in the paper)   device-to-device std of the settled read-out.
``pulse_noise``    fraction of the device's pulse  ``dw_min_std = pulse_noise``: cycle-to-cycle std of one pulse
                   size (1.0 = std equal to the    (additive: ``dw_i (1 - w / bound + pulse_noise * N(0, 1))``),
                   mean step)                      relative to that device's ``dw_i``. aihwkit's preset has 3.75.
``dtod``           fraction of ``dw_min``          ``dw_min_dtod = dtod``: device-to-device std of the mean pulse
                   (0.3 = 30 %)                    size (normal, not log-normal; keep it below about 0.5, since
                                                   steps drawn negative are flipped). aihwkit's preset has 0.3.
``transfer_noise`` percent of the layer's max|W|   not an rpu config field: :func:`apply_transfer_noise`, once,
                                                   after conversion and before fine-tuning.
=================  ==============================  ===============================================================

A ``DevicePoint`` of zeros therefore means no pulse noise and no pulse-size variation (an ideal pulse
response), not the preset's 3.75 and 0.3: a sweep that wants the preset as its baseline passes those values.

Weight mapping (``AlgorithmConfig.mapping``, a ``MappingConfig``; aihwkit's ``rpu_config.mapping``, a
``MappingParameter``), applied to every analog algorithm:

=============================  ===================================================================================
field                          what it does
=============================  ===================================================================================
``weight_scaling_omega``       0: the digital weights are programmed as they are (pretrained weights are a few
                               hundredths, far below the device's write noise std 0.112 and step 0.002). > 0:
                               each weight block is divided by ``max|W| / omega`` before programming, so its
                               largest weight sits at ``omega`` in device units; the factor is applied digitally
                               at the tile's output (aihwkit's ``mapping_scales``), and the gradient reaching the
                               tile is divided by it, so pulses act in device units.
``weight_scaling_columnwise``  one factor per output (row of W, aihwkit's "column") instead of one per layer: every
                               output uses the device range, not only the one with the largest weight.
``learn_out_scaling``          the output factors become digital parameters trained with the network (per layer,
``out_scaling_columnwise``     or per output); off, they stay as programmed.
=============================  ===================================================================================

The trade-off is measured, not assumed (``bench/calibrate_mapping.py``; the table is in ``sweeps/README.md``,
"Weight mapping and time constants"): a larger ``omega`` lifts the weights above write noise and pulse
granularity, but the preset's lower bound (-0.75 with device-to-device std 0.3) clips more of them when they are
programmed (a 64x32 layer, preset device: 1.2 % of weights clipped at omega 0.3, 5.6 % at 0.6, 10 % at 0.8).

Transfer noise keeps the paper's unit whatever the mapping: :func:`apply_transfer_noise` reads each layer's
weights in digital units (``get_weights`` undoes the mapping), adds ``tau`` percent of the layer's digital max|W|
and programs them again (the mapping recomputes its factors from the noisy weights).

Each learning device also sets ``apply_write_noise_on_set=False``: the preset's write noise (56 ``dw_min``, a
std of 0.112) would otherwise land on every weight written by ``set_weights`` (the digital-to-analog conversion
too), so the transferred weights would carry about 11 % of a unit weight of noise even at ``transfer_noise`` 0.
Write noise still applies whenever training touches a device, in device units, which is why the weight mapping
above matters. Programming is exact up to each device's own
bounds: the preset's bound variation (``w_min_dtod`` 0.4, ``w_max_dtod`` 0.24) clips weights beyond them.

tests/workers/test_devices.py measures each mapping on driven tiles (settled read-out, single pulses, the
programmed noise); the numbers are in its test tolerances.

Table I (``AlgorithmConfig.settings_dict()``) lands on the transfer compound's fields of the same names:
``transfer_every``, ``auto_granularity``, ``momentum`` (the buffer's "device momentum"), ``auto_scale``,
``in_chop_prob``, ``units_in_mbatch``, ``forget_buffer`` and ``auto_momentum``.

=========  ===================================  ===============================================================
algorithm  aihwkit compound                     Table I
=========  ===================================  ===============================================================
c-ttv2     ``ChoppedTransferCompound``          all keys, on ``ChoppedTTv2ReRamSBPreset``
ttv2       ``ChoppedTransferCompound``,         all keys except ``in_chop_prob``, forced to 0: aihwkit's own
           choppers off                         ``TTv2ReRamSBPreset``, which aihwkit documents as identical to
                                                ``BufferedTransferCompound`` without choppers
agad       ``DynamicTransferCompound``          all keys, on ``AGADReRamSBPreset``
sgd        ``SingleRPUConfig``, one device      none (no transfer), the presets' IO and update
=========  ===================================  ===============================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import TypeAlias

import torch
from aihwkit.nn import AnalogConv2d, AnalogLinear
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.nn.modules.base import AnalogLayerBase
from aihwkit.optim import AnalogSGD
from aihwkit.optim.context import AnalogContext
from aihwkit.simulator.configs import SingleRPUConfig, UnitCellRPUConfig
from aihwkit.simulator.parameters import MappingParameter
from aihwkit.simulator.presets import (
    AGADReRamSBPreset,
    ChoppedTTv2ReRamSBPreset,
    TTv2ReRamSBPreset,
)
from aihwkit.simulator.presets.devices import ReRamSBPresetDevice
from aihwkit.simulator.presets.utils import PresetIOParameters, PresetUpdateParameters
from aihwkit.simulator.rpu_base import cuda as rpu_cuda
from aihwkit.simulator.tiles.module import TileModule

from ._config import AlgorithmConfig, ConfigError, DevicePoint, MappingConfig
from ._errors import TileBackendError

TRANSFER_PRESETS = {
    "c-ttv2": ChoppedTTv2ReRamSBPreset,
    "ttv2": TTv2ReRamSBPreset,
    "agad": AGADReRamSBPreset,
}
ANALOG_CONVERSION = {torch.nn.Linear: AnalogLinear, torch.nn.Conv2d: AnalogConv2d}

RpuConfig: TypeAlias = SingleRPUConfig | UnitCellRPUConfig


def learning_device(device: DevicePoint) -> ReRamSBPresetDevice:
    """The ReRAM soft-bounds device with the device axes applied (see the module table)."""
    base = ReRamSBPresetDevice(subtract_symmetry_point=True, apply_write_noise_on_set=False)
    weight_range = base.w_max - base.w_min
    return dataclasses.replace(
        base,
        reference_mean=-device.sp_skew / 100.0 * weight_range,
        reference_std=device.sp_variability / 100.0 * weight_range,
        dw_min_std=device.pulse_noise,
        dw_min_dtod=device.dtod,
    )


def mapping_parameter(mapping: MappingConfig) -> MappingParameter:
    """aihwkit's ``MappingParameter`` for the trial's weight mapping (see the module's mapping table)."""
    return MappingParameter(
        weight_scaling_omega=mapping.weight_scaling_omega,
        weight_scaling_columnwise=mapping.weight_scaling_columnwise,
        learn_out_scaling=mapping.learn_out_scaling,
        out_scaling_columnwise=mapping.out_scaling_columnwise,
    )


def build_rpu_config(algorithm: AlgorithmConfig, device: DevicePoint) -> RpuConfig:
    """The rpu config of one trial: the algorithm's compound (Table I applied) on the mapped devices, with the
    algorithm's weight mapping."""
    if algorithm.name == "sgd":
        return SingleRPUConfig(
            device=learning_device(device),
            forward=PresetIOParameters(),
            backward=PresetIOParameters(),
            update=PresetUpdateParameters(),
            mapping=mapping_parameter(algorithm.mapping),
        )
    if algorithm.name not in TRANSFER_PRESETS:
        raise ConfigError(f"algorithm.name: no rpu config for {algorithm.name!r}")
    rpu_config = TRANSFER_PRESETS[algorithm.name]()
    compound = rpu_config.device
    compound.unit_cell_devices = [learning_device(device), learning_device(device)]
    settings = algorithm.settings_dict()
    if algorithm.name == "ttv2":
        if dict(algorithm.settings).get("in_chop_prob", 0.0) != 0.0:
            raise ConfigError("algorithm.settings: in_chop_prob must be 0 for ttv2 (choppers make it c-ttv2)")
        settings["in_chop_prob"] = 0.0
    field_names = {f.name for f in dataclasses.fields(compound)}
    for key, value in settings.items():
        if key not in field_names:
            raise ConfigError(f"algorithm.settings: {type(compound).__name__} has no field {key!r}")
        setattr(compound, key, value)
    rpu_config.mapping = mapping_parameter(algorithm.mapping)
    return rpu_config


def to_analog(model: torch.nn.Module, rpu_config: RpuConfig) -> torch.nn.Module:
    """A copy of ``model`` with every ``nn.Linear`` and ``nn.Conv2d`` as an analog layer on ``rpu_config``."""
    return convert_to_analog(model, rpu_config, conversion_map=ANALOG_CONVERSION)


def analog_tiles(model: torch.nn.Module) -> Iterator[TileModule]:
    """Every analog tile of ``model`` (a large layer split into a tile array yields each of its tiles)."""
    for module in model.modules():
        if isinstance(module, TileModule):
            yield module


def analog_layers(model: torch.nn.Module) -> Iterator[AnalogLayerBase]:
    """Every analog layer (``AnalogLinear``, ``AnalogConv2d``) of ``model``; containers excluded."""
    for module in model.modules():
        if isinstance(module, AnalogLayerBase) and hasattr(module, "analog_module"):
            yield module


def count_analog_layers(model: torch.nn.Module) -> int:
    return sum(1 for _ in analog_layers(model))


def parameter_count(model: torch.nn.Module) -> int:
    """Trainable numbers of a digital or analog model: torch parameters plus the analog layers' weights and biases,
    which aihwkit keeps in its tiles rather than as parameters (its one-element ``analog_ctx`` handles are not
    counted; a digital bias is a parameter already)."""
    analog = 0
    for layer in analog_layers(model):
        weight, bias = layer.get_weights()
        in_tile_bias = bias is not None and getattr(layer.analog_module, "bias", None) is None
        analog += weight.numel() + (bias.numel() if in_tile_bias else 0)
    digital = sum(p.numel() for name, p in model.named_parameters() if not name.endswith("analog_ctx"))
    return analog + digital


def apply_transfer_noise(model: torch.nn.Module, tau_percent: float, seed: int) -> None:
    """Weight transfer noise (paper eq. 1): each analog weight W += tau/100 * max|W of its layer| * N(0, 1).

    Applied once, after conversion and before fine-tuning; the same seed gives the same noise. The noise is
    drawn per layer in module order, and the weights are written exactly (the learning devices do not add
    write noise on set), except where a device's own bounds clip them.
    """
    if tau_percent < 0:
        raise ValueError(f"tau_percent must be non-negative, got {tau_percent!r}")
    if tau_percent == 0:
        return
    generator = torch.Generator().manual_seed(seed)
    for layer in analog_layers(model):
        weight, bias = layer.get_weights()
        noise = torch.randn(weight.shape, generator=generator, dtype=weight.dtype)
        layer.set_weights(weight + tau_percent / 100.0 * weight.abs().max() * noise, bias)


def analog_optimizer(model: torch.nn.Module, lr: float, *, freeze_analog: bool = False) -> AnalogSGD:
    """AnalogSGD with each analog tile in its own parameter group (aihwkit's regrouping), tiles' lr = ``lr``.

    ``freeze_analog`` (a diagnostic ablation) gives every tile's group learning rate 0, which aihwkit's
    ``AnalogSGD.step`` treats as "no update": the tiles receive no pulses and no transfers, while the digital
    parameters (biases, norms, learned output scales) still train at ``lr``.
    """
    optimizer = AnalogSGD(model.parameters(), lr=lr)
    optimizer.regroup_param_groups(model)
    if freeze_analog:
        for group in optimizer.param_groups:
            if any(isinstance(p, AnalogContext) for p in group["params"]):
                group["lr"] = 0.0
    return optimizer


def place_on_device(model: torch.nn.Module, device: str) -> torch.nn.Module:
    """Move an analog model to ``"cpu"`` (no-op) or ``"cuda"``/``"cuda:N"`` (needs a CUDA build of aihwkit)."""
    target = torch.device(device)
    if target.type == "cpu":
        return model
    if target.type != "cuda":
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if not rpu_cuda.is_compiled():
        raise TileBackendError(
            f"device {device!r}: the installed aihwkit is a CPU-only build (PyPI wheels are); "
            "run GPU trials in the CUDA worker image (docker/), where aihwkit is compiled with RPU_USE_CUDA=ON"
        )
    if not torch.cuda.is_available():
        raise TileBackendError(f"device {device!r}: aihwkit has CUDA support but torch sees no CUDA device")
    return model.to(target)
