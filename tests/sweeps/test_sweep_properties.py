"""Property: however a valid spec is mangled, loading it either gives a valid, expandable spec or a one-line
``SpecError``; never another exception."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from analog_sweep.sweeps import (
    SpecError,
    count_points,
    expand,
    shipped_specs,
    spec_from_mapping,
    trial_config,
)
from analog_sweep.sweeps._yaml import parse_yaml

VALID = {
    **parse_yaml(shipped_specs()["quickstart"].read_bytes(), source="quickstart"),
    "lr_search": {"method": "tpe", "low": 0.001, "high": 0.1, "trials_per_point": 2, "pruner": "median",
                  "pruner_options": {"n_startup_trials": 1}, "seed": 0},
    "model": {"preset": "swin_micro", "overrides": {"embed_dim": 16, "depths": [2, 2]}},
    "algorithm": {"name": "c-ttv2", "settings": {"in_chop_prob": 0.2, "auto_scale": True}},
    "max_points": 50,
}  # fmt: skip

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["analog_tl", "grid", "tpe", "median", "swin_micro", "cifar", "beaver", "5", "../x", "\n"])
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8) | st.integers(), inner, max_size=3),
    max_leaves=10,
)


def slots(value: Any, path: tuple = ()) -> list[tuple]:
    """Every (path) inside nested dicts and lists, the root excluded."""
    found = []
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in items:
        found.append((*path, key))
        found.extend(slots(child, (*path, key)))
    return found


def mutate(raw: dict, data: st.DataObject) -> dict:
    raw = copy.deepcopy(raw)
    for _ in range(data.draw(st.integers(1, 4), label="mutations")):
        paths = slots(raw)
        if not paths:
            break
        path = data.draw(st.sampled_from(paths), label="path")
        parent = raw
        for key in path[:-1]:
            parent = parent[key]
        action = data.draw(st.sampled_from(["delete", "replace", "rename"]), label="action")
        if action == "delete":
            del parent[path[-1]]
        elif action == "replace":
            parent[path[-1]] = data.draw(values, label="value")
        elif isinstance(parent, dict):
            parent[data.draw(st.text(max_size=8), label="new key")] = parent.pop(path[-1])
    return raw


def check_outcome(raw: Any, overrides: tuple[str, ...] = ()) -> None:
    try:
        spec = spec_from_mapping(raw, source="mutant.yaml", overrides=overrides)
    except SpecError as error:
        message = str(error)
        assert message.startswith("mutant.yaml") and "\n" not in message and "\r" not in message
        return
    points = expand(spec)
    assert len(points) == count_points(spec) <= spec.max_points
    lr = spec.lr_search.low if spec.lr_search.method == "tpe" else spec.lr_search.values[0]
    for point in points[:3]:
        trial_config(point, lr)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_mutated_specs_load_or_raise_a_one_line_spec_error(data):
    check_outcome(mutate(VALID, data))


override_paths = st.sampled_from(
    ["epochs", "data.limit", "data.classes", "model.preset", "axes.transfer_noise", "axes.expand", "lr_search.values",
     "resources.gpu", "seeds", "name", "data", "algorithm.settings.in_chop_prob", "model.overrides.embed_dim"]
) | st.text(max_size=15)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(override_paths, st.text(max_size=15) | values.map(repr)), max_size=3))
def test_random_overrides_only_ever_raise_spec_error(pairs):
    check_outcome(VALID, tuple(f"{path}={value}" for path, value in pairs))


QUICKSTART_TEXT = shipped_specs()["quickstart"].read_text()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(QUICKSTART_TEXT)), st.integers(0, 3), st.text(max_size=4)), max_size=4))
def test_edited_yaml_text_only_ever_raises_spec_error(edits):
    text = QUICKSTART_TEXT
    for position, removed, inserted in edits:
        text = text[:position] + inserted + text[position + removed :]
    try:
        raw = parse_yaml(text, source="mutant.yaml")
    except SpecError as error:
        assert str(error).startswith("mutant.yaml") and "\n" not in str(error)
        return
    check_outcome(raw)
