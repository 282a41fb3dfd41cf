"""An aihwkit rpu config as plain JSON, so each trial can record the exact analog configuration it ran with.

aihwkit's rpu configs (``SingleRPUConfig``, the c-TTv2 presets, ...) are nested dataclasses and offer no JSON form of
their own (only ``str()``, and the C++ bindings). ``rpu_config_json`` walks the dataclass fields faithfully:

- a dataclass becomes an object with ``"__class__"`` (its module and class name) and every field, in field order;
- an enum becomes ``"EnumClass.MEMBER"`` (e.g. ``"BoundManagementType.ITERATIVE"``);
- a class (``tile_class``) or function becomes its module and qualified name;
- an infinite or NaN float becomes the string ``"inf"``, ``"-inf"`` or ``"nan"`` (JSON has no such numbers);
- lists, tuples and dicts are walked; anything else (there is nothing else in aihwkit 1.1.0's training configs)
  becomes its ``repr``.

Two configs with the same JSON configure the tiles the same way: every field aihwkit reads is a dataclass field.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from typing import Any

import torch

from ._config import TrialConfig


def _name(kind: type | Any) -> str:
    return f"{kind.__module__}.{kind.__qualname__}"


def to_json_value(value: Any) -> Any:
    """One value of an rpu config as JSON-ready data (see the module docstring for each kind)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: to_json_value(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {"__class__": _name(type(value)), **fields}
    if isinstance(value, enum.Enum):
        return f"{type(value).__name__}.{value.name}"
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)  # 'inf', '-inf', 'nan'
    if isinstance(value, type) or callable(value):
        return _name(value)
    if isinstance(value, (list, tuple)):
        return [to_json_value(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_json_value(v) for k, v in value.items()}
    if isinstance(value, torch.Tensor):
        return value.tolist() if value.numel() <= 64 else repr(value)
    return repr(value)


def rpu_config_json(rpu_config: Any) -> dict[str, Any]:
    """The whole rpu config as a JSON-ready dict (``json.dumps(..., allow_nan=False)`` accepts it)."""
    if not dataclasses.is_dataclass(rpu_config) or isinstance(rpu_config, type):
        raise TypeError(f"not an rpu config: {type(rpu_config).__name__}")
    return to_json_value(rpu_config)


def trial_rpu_config_json(config: TrialConfig) -> dict[str, Any] | None:
    """The resolved rpu config of an analog trial as JSON (what ``workers._trial.build_model`` converts its model
    with); None for a digital trial. Raises ``ConfigError`` like ``build_rpu_config``."""
    if not config.is_analog:
        return None
    from ._devices import build_rpu_config  # aihwkit: only for analog trials

    return rpu_config_json(build_rpu_config(config.algorithm, config.device))
