"""Profiles: named sets of ``--set`` overrides computed from a spec, such as ``smoke`` (any spec as a short CPU run).

A profile is applied exactly like ``--set`` overrides, before the user's own (so those still win), and the result
is validated like any spec. The overrides it made are kept in ``spec.overrides``, so the store records them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from analog_sweep.sweeps._schema import SpecError
from analog_sweep.sweeps._yaml import parse_yaml
from analog_sweep.workers import DEVICE_AXES, TABLE_I

# The smoke profile's sizes: enough to go through every stage (pretraining, conversion, fine-tuning, evaluation,
# the store) in seconds per trial on one CPU core.
SMOKE_TRAIN_IMAGES = 32
SMOKE_TEST_IMAGES = 32
SMOKE_SOURCE_IMAGES = 200
SMOKE_IMAGE_SIZE = 16
SMOKE_PRETRAIN_EPOCHS = 2
SMOKE_SUFFIX = "-smoke"
# c-TTv2's time constant by the rule of sweeps/README.md ("Weight mapping and time constants"): the same number of
# transfer cycles per epoch as Table I's 10000 on the paper's 1000 training images an epoch. Table I's value on 32
# images never moves the head (0 % of its weights in one epoch); 320 moves a quarter of them.
PAPER_IMAGES_PER_EPOCH = 1000
SMOKE_AUTO_GRANULARITY = TABLE_I["auto_granularity"] * SMOKE_TRAIN_IMAGES // PAPER_IMAGES_PER_EPOCH


def _value(value: Any) -> str:
    """A value as ``--set`` text: JSON is YAML (text is quoted where YAML would read it as something else)."""
    if isinstance(value, str):
        try:
            if parse_yaml(value, source="") == value:
                return value
        except SpecError:
            pass
    return json.dumps(value, separators=(",", ":"))


def _smoke(raw: dict[Any, Any]) -> list[str]:
    """``smoke``: the spec's own data, tasks, modes and algorithm, as a CPU run of minutes.

    The micro Swin at 16 px, at most 32 training, 32 test and 200 source images, 2 pretraining epochs, 1 epoch, the
    first seed, one learning rate per point (the grid's first value, or one TPE trial), no pruner, each swept axis
    cut to its first and last value, 1 CPU and no GPU per trial, c-TTv2's ``auto_granularity`` scaled to 32 images
    an epoch (``SMOKE_AUTO_GRANULARITY``, every algorithm's), ``-smoke`` added to the name (so a smoke run never
    takes the place of the real sweep in the store) and ``profile: smoke`` recorded (so every table, report and
    figure of it says it is a test of the plumbing, not a result)."""
    overrides = ["profile=smoke"]
    if isinstance(raw.get("name"), str) and not raw["name"].endswith(SMOKE_SUFFIX):
        overrides.append(f"name={_value(raw['name'] + SMOKE_SUFFIX)}")
    overrides += [
        "model.preset=swin_micro",
        "model.overrides=null",
        f"data.image_size={SMOKE_IMAGE_SIZE}",
        "data.limit=null",
        f"data.train_limit={SMOKE_TRAIN_IMAGES}",
        f"data.test_limit={SMOKE_TEST_IMAGES}",
        f"data.source_limit={SMOKE_SOURCE_IMAGES}",
        f"pretrain.epochs={SMOKE_PRETRAIN_EPOCHS}",
        "epochs=1",
    ]
    seeds = raw.get("seeds")
    if isinstance(seeds, list) and seeds:
        overrides.append(f"seeds={_value(seeds[:1])}")
    search = raw.get("lr_search") if isinstance(raw.get("lr_search"), dict) else {}
    values = search.get("values")
    if isinstance(values, list) and values:
        overrides += [f"lr_search.values={_value(values[:1])}", "lr_search.trials_per_point=null"]
    else:
        overrides.append("lr_search.trials_per_point=1")
    overrides += ["lr_search.pruner=none", "lr_search.pruner_options=null"]
    axes = raw.get("axes") if isinstance(raw.get("axes"), dict) else {}
    for axis in DEVICE_AXES:
        swept = axes.get(axis)
        if isinstance(swept, list) and len(swept) > 2:
            overrides.append(f"axes.{axis}={_value([swept[0], swept[-1]])}")
    overrides += ["resources.cpu=1", "resources.gpu=0"]
    return overrides + _smoke_time_constant(raw)


def _smoke_time_constant(raw: dict[Any, Any]) -> list[str]:
    """``auto_granularity`` at ``SMOKE_AUTO_GRANULARITY`` in the shared ``algorithm`` section and in every entry of
    an ``algorithms`` list that sets its own (an entry's own value would win over the shared one)."""
    overrides = [f"algorithm.settings.auto_granularity={SMOKE_AUTO_GRANULARITY}"]
    entries = raw.get("algorithms")
    if isinstance(entries, list) and any(_own_time_constant(entry) for entry in entries):
        scaled = [
            {**entry, "settings": {**entry["settings"], "auto_granularity": SMOKE_AUTO_GRANULARITY}}
            if _own_time_constant(entry)
            else entry
            for entry in entries
        ]
        overrides.append(f"algorithms={_value(scaled)}")
    return overrides


def _own_time_constant(entry: Any) -> bool:
    settings = entry.get("settings") if isinstance(entry, dict) else None
    return isinstance(settings, dict) and "auto_granularity" in settings


PROFILES: dict[str, Callable[[dict[Any, Any]], list[str]]] = {"smoke": _smoke}


def profile_overrides(raw: Any, profile: str, *, source: str) -> list[str]:
    """The ``--set`` overrides profile ``profile`` makes for the raw spec mapping ``raw`` (as read from its file).

    Raises ``SpecError`` (one line, listing the profiles) for an unknown profile."""
    if profile not in PROFILES:
        raise SpecError(f"{source}: unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[profile](raw if isinstance(raw, dict) else {})
