"""Hydra-style dotted overrides (``--set epochs=2 --set axes.transfer_noise=[0,10]``) on the raw spec mapping.

Values are YAML (``64`` an int, ``[0, 10]`` a list, ``null`` the field's default). They are applied to the mapping
before validation, so an override is checked exactly like the same value written in the file; a path the schema
does not know is refused here, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from analog_sweep.sweeps._schema import OPEN_MAPPINGS, REFINE_FIELDS, SECTION_FIELDS, TOP_FIELDS, SpecError, show
from analog_sweep.sweeps._yaml import parse_yaml
from analog_sweep.workers import DEVICE_AXES


def apply_overrides(raw: Any, overrides: Iterable[str], *, source: str) -> dict[str, str]:
    """Set each ``path=value`` in ``raw`` (in place), creating missing sections; returns which override set each
    dotted path, so a validation error can name the override that caused it."""
    set_by = {}
    for override in overrides:
        path, value = parse_override(override, source=source)
        if not isinstance(raw, dict):
            raise SpecError(f"{source}: --set {show(override)}: the spec is not a mapping")
        target = raw
        for depth, name in enumerate(path[:-1]):
            child = target.get(name)
            if child is None:
                child = target[name] = {}
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise SpecError(f"{source}: --set {show(override)}: {where} is {show(child)}, not a mapping")
            target = child
        target[path[-1]] = value
        set_by[".".join(path)] = override
    return set_by


def parse_override(override: str, *, source: str) -> tuple[tuple[str, ...], Any]:
    """``a.b=value`` to (("a", "b"), parsed value), checking that the schema has a field ``a.b``."""
    if not isinstance(override, str) or "=" not in override:
        raise SpecError(f"{source}: --set {show(override)}: expected path=value, e.g. epochs=2")
    text, _, value_text = override.partition("=")
    path = tuple(text.strip().split("."))
    if not all(path):
        raise SpecError(f"{source}: --set {show(override)}: {show(text)} is not a dotted field path")
    problem = _unknown_part(path)
    if problem:
        raise SpecError(f"{source}: --set {show(override)}: unknown field {show('.'.join(path))}; {problem}")
    value = parse_yaml(value_text, source=f"{source}: --set {'.'.join(path)}")
    return path, value


def _unknown_part(path: tuple[str, ...]) -> str | None:
    """Why ``path`` names no field of the schema, or None if it does."""
    top = path[0]
    if top not in TOP_FIELDS:
        return f"top-level fields are {', '.join(TOP_FIELDS)}"
    if len(path) == 1:
        return None
    if top not in SECTION_FIELDS:
        return f"{top} has no sub-fields"
    if path[1] not in SECTION_FIELDS[top]:
        return f"{top} has {', '.join(SECTION_FIELDS[top])}"
    if len(path) == 2:
        return None
    section = f"{top}.{path[1]}"
    if section == "axes.refine":  # axes.refine.AXIS.FIELD
        if path[2] not in DEVICE_AXES:
            return f"{section} has {', '.join(DEVICE_AXES)}"
        if len(path) == 4 and path[3] not in REFINE_FIELDS:
            return f"{section}.{path[2]} has {', '.join(REFINE_FIELDS)}"
        return f"{section}.{path[2]}.{path[3]} has no sub-fields" if len(path) > 4 else None
    if section not in OPEN_MAPPINGS or len(path) > 3:
        return f"{section} has no sub-fields"
    keys = OPEN_MAPPINGS[section]
    if keys is not None and path[2] not in keys:
        return f"{section} has {', '.join(keys)}"
    return None
