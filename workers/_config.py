"""The plain, serialisable description of one trial.

A trial config is what the orchestrator hands a worker: frozen dataclasses of plain values, so it hashes, pickles
through Ray, and round-trips through JSON (``to_dict`` / ``from_dict``) without the worker importing anything upstream.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from ._errors import ConfigError

MODES = ("analog_tl", "digital_tl", "analog_scratch", "digital_scratch")
ALGORITHMS = ("c-ttv2", "ttv2", "agad", "sgd")
DEVICE_AXES = ("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod")
# Fine-tuning learning-rate schedules (``TrialConfig.lr_schedule``; ``workers._trial.epoch_lr``).
LR_SCHEDULES = ("constant", "cosine")
# Optimizers of the digital pretraining (``PretrainConfig.optimizer``; ``workers._pretrain``).
PRETRAIN_OPTIMIZERS = ("adamw", "sgd")

# The paper's Table I for c-TTv2; every key can be overridden through ``AlgorithmConfig.settings``.
TABLE_I = {
    "transfer_every": 1.0,
    "auto_granularity": 10000,
    "momentum": 0.0,
    "auto_scale": True,
    "in_chop_prob": 0.10,
    "units_in_mbatch": False,
    "forget_buffer": True,
    "auto_momentum": 0.99,
}
# c-TTv2 settings beyond Table I that may be overridden too (aihwkit ``ChoppedTransferCompound`` fields). Unset, they
# keep aihwkit's ``ChoppedTTv2ReRamSBPreset`` value (``fast_lr`` 0.5).
EXTRA_SETTINGS = ("fast_lr",)
ALGORITHM_SETTINGS = (*TABLE_I, *EXTRA_SETTINGS)


@dataclass(frozen=True)
class DataConfig:
    """Which data: ``digits`` (embedded, sklearn) or ``cifar`` (CIFAR-10 source, CIFAR-100 target).

    ``validation_fraction`` (0 <= f < 1) of the target task's training set is held out, seeded by ``split_seed`` and
    stratified by class, as a validation set measured after every epoch (``workers._data.load_target_splits``); 0
    holds out nothing (a bare trial's default; sweep specs default to 0.1).
    """

    dataset: str = "digits"
    classes: tuple[str, ...] = ("5", "8")
    data_root: str | None = None
    image_size: int = 16
    train_limit: int | None = None
    test_limit: int | None = None
    source_limit: int | None = None
    split_seed: int = 0
    validation_fraction: float = 0.0


@dataclass(frozen=True)
class ModelConfig:
    """A model preset by name (see ``workers._models``) and keyword overrides for it."""

    preset: str = "swin_micro"
    overrides: tuple[tuple[str, Any], ...] = ()

    def override_dict(self) -> dict[str, Any]:
        return dict(self.overrides)


@dataclass(frozen=True)
class PretrainConfig:
    """Digital pretraining on the source task. The defaults pretrain the micro Swin on digits 0-4 to 2.1 % source
    training error (1.5 % test) in 60 epochs; batch 64 left 7.5 %."""

    optimizer: str = "adamw"
    lr: float = 2e-3
    weight_decay: float = 0.05
    momentum: float = 0.9
    epochs: int = 60
    batch_size: int = 32
    augment: bool = True
    seed: int = 0


@dataclass(frozen=True)
class MappingConfig:
    """How digital weights are mapped onto the analog devices (aihwkit ``rpu_config.mapping``; see
    ``workers._devices`` for what each choice does and the measurements behind the default).

    ``weight_scaling_omega``: the device value (device units, the ReRAM preset's bounds are about -1..1) that a
    weight block's largest |W| is programmed to; 0 programs the weights as they are (no scaling).
    ``weight_scaling_columnwise``: one scale per output (row of W) rather than one per layer.
    ``learn_out_scaling`` / ``out_scaling_columnwise``: the digital output scales are trained (per layer or per
    output) instead of fixed at their programmed values.
    """

    weight_scaling_omega: float = 0.6
    weight_scaling_columnwise: bool = True
    learn_out_scaling: bool = False
    out_scaling_columnwise: bool = False


@dataclass(frozen=True)
class AlgorithmConfig:
    """The analog training algorithm, its settings (Table I defaults for c-TTv2) and the weight mapping.

    ``freeze_analog`` is a diagnostic ablation: the analog tiles are never updated (their weights stay as converted),
    while digital parameters (biases, norms, learned output scales) still train. Its gap to the same trial with
    learning tiles measures what the tiles themselves learned.
    """

    name: str = "c-ttv2"
    settings: tuple[tuple[str, Any], ...] = ()
    mapping: MappingConfig = field(default_factory=MappingConfig)
    freeze_analog: bool = False

    def settings_dict(self) -> dict[str, Any]:
        merged = dict(TABLE_I)
        merged.update(dict(self.settings))
        return merged


@dataclass(frozen=True)
class DevicePoint:
    """One point on the paper's device axes, in the paper's units (see ``workers._devices`` for the mapping)."""

    transfer_noise: float = 0.0
    sp_skew: float = 0.0
    sp_variability: float = 0.0
    pulse_noise: float = 0.0
    dtod: float = 0.0


# The default device of the product: what a sweep spec without a ``device`` section (or without one of its axes) and
# ``analog-sweep trial`` without device options mean. It is the paper's base device, aihwkit's ReRAM soft-bounds preset
# pulse response (cycle-to-cycle pulse noise 3.75, device-to-device 0.3), with no transfer noise and an unskewed,
# uniform symmetry point. ``DevicePoint()`` itself is the ideal device (0 on every axis), for measurements.
DEFAULT_DEVICE = DevicePoint(transfer_noise=0.0, sp_skew=0.0, sp_variability=0.0, pulse_noise=3.75, dtod=0.3)


@dataclass(frozen=True)
class TrialConfig:
    """Everything one fine-tuning trial needs."""

    mode: str = "analog_tl"
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    algorithm: AlgorithmConfig = field(default_factory=AlgorithmConfig)
    device: DevicePoint = field(default_factory=DevicePoint)
    lr: float = 0.01
    batch_size: int = 8
    epochs: int = 3
    seed: int = 0
    lr_schedule: str = "constant"

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigError(f"mode: unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.algorithm.name not in ALGORITHMS:
            raise ConfigError(
                f"algorithm.name: unknown algorithm {self.algorithm.name!r}; choose one of {', '.join(ALGORITHMS)}"
            )
        unknown = set(dict(self.algorithm.settings)) - set(ALGORITHM_SETTINGS)
        if unknown:
            raise ConfigError(f"algorithm.settings: unknown setting(s) {', '.join(sorted(unknown))}")
        if self.lr_schedule not in LR_SCHEDULES:
            raise ConfigError(
                f"lr_schedule: unknown schedule {self.lr_schedule!r}; choose one of {', '.join(LR_SCHEDULES)}"
            )
        for name in ("lr",):
            value = getattr(self, name)
            if not (value > 0 and value < float("inf")):
                raise ConfigError(f"{name}: must be a positive finite number, got {value!r}")
        fraction = self.data.validation_fraction
        if not 0 <= fraction < 1:
            raise ConfigError(f"data.validation_fraction: must be a number from 0 to below 1, got {fraction!r}")
        for name in ("batch_size", "epochs"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)!r}")
        omega = self.algorithm.mapping.weight_scaling_omega
        if not (omega >= 0 and omega < float("inf")):
            raise ConfigError(
                f"algorithm.mapping.weight_scaling_omega: must be a non-negative finite number, got {omega!r}"
            )
        for axis in DEVICE_AXES:
            value = getattr(self.device, axis)
            if not (value >= 0 and value < float("inf")):
                raise ConfigError(f"device.{axis}: must be a non-negative finite number, got {value!r}")

    @property
    def is_analog(self) -> bool:
        return self.mode.startswith("analog")

    @property
    def is_transfer(self) -> bool:
        return self.mode.endswith("_tl")

    def to_dict(self) -> dict[str, Any]:
        plain = _plain(dataclasses.asdict(self))
        # Added after keys were first made: left out at its default, so configs without a validation split keep
        # their keys (and their checkpoints and point keys stay valid).
        if plain["data"]["validation_fraction"] == 0:
            del plain["data"]["validation_fraction"]
        if plain["lr_schedule"] == "constant":
            del plain["lr_schedule"]
        return plain

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrialConfig:
        raw = dict(raw)
        data = dict(raw.pop("data", {}))
        if "classes" in data:
            data["classes"] = tuple(str(c) for c in data["classes"])
        model = dict(raw.pop("model", {}))
        model["overrides"] = _pairs(model.get("overrides", ()))
        algorithm = dict(raw.pop("algorithm", {}))
        algorithm["settings"] = _pairs(algorithm.get("settings", ()))
        algorithm["mapping"] = MappingConfig(**algorithm.get("mapping", {}))
        return cls(
            data=DataConfig(**data),
            model=ModelConfig(**model),
            pretrain=PretrainConfig(**raw.pop("pretrain", {})),
            algorithm=AlgorithmConfig(**algorithm),
            device=DevicePoint(**raw.pop("device", {})),
            **raw,
        )

    def key(self) -> str:
        """A stable content hash of the whole config."""
        return content_hash(self.to_dict())

    def checkpoint_key(self) -> str:
        """The key a trial's checkpoints belong to: under a constant learning rate everything but the epoch count, so
        a trial can be continued for longer than it first ran; under a decaying schedule the epoch count too, since
        it sets every epoch's rate."""
        if self.lr_schedule != "constant":
            return self.key()
        return dataclasses.replace(self, epochs=1).key()


def _pairs(value: Any) -> tuple[tuple[str, Any], ...]:
    items = value.items() if isinstance(value, dict) else value
    return tuple(sorted((str(k), v) for k, v in items))


def _plain(value: Any) -> Any:
    """Dataclass dicts to JSON-ready values: tuples of pairs become dicts, tuples become lists."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        if value and all(isinstance(v, tuple) and len(v) == 2 and isinstance(v[0], str) for v in value):
            return {k: _plain(v) for k, v in value}
        return [_plain(v) for v in value]
    return value


def content_hash(value: Any) -> str:
    """SHA-256 of the canonical JSON of ``value``, first 16 hex digits."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def pretrain_key(data: DataConfig, model: ModelConfig, pretrain: PretrainConfig) -> str:
    """The pretrained model's cache key: a hash of what decides its weights (source data, model, pretraining)."""
    source = {
        "dataset": data.dataset,
        "image_size": data.image_size,
        "source_limit": data.source_limit,
        "split_seed": data.split_seed,
    }
    return content_hash(
        {"source": source, "model": [model.preset, list(model.overrides)], "pretrain": dataclasses.asdict(pretrain)}
    )
