"""Naming points readably, and the one order every table lists them in.

A point is named on the command line by its 16-digit key or by a label: terms joined by ``,`` or ``/``, each either
``field=value`` (``mode``, ``algorithm``, ``task``, ``seed``, ``key``, or a device axis: ``transfer_noise=10``) or a
bare word that is one of the point's names (a mode, an algorithm, a task, ``seed0``, a segment of its stored label
such as ``base``). So ``transfer_noise=10``, ``mode=analog_tl,task=beaver-otter``, ``algorithm=agad,sp_skew=10`` and
the progress line's own ``analog_tl/5-8/transfer_noise=10/seed0`` all work. Rows sort by mode, algorithm, task, the
device axes and seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._schema import ALGORITHM_ORDER, AXES

FIELDS = ("mode", "algorithm", "task", "seed", "key", *AXES)
_SHOWN = 4  # candidates a message lists before "and N more"


def point_sort_key(row: Mapping[str, Any]) -> tuple:
    """The order of points in every table: mode, algorithm (``ALGORITHM_ORDER``), task, device axes (in ``AXES``
    order), seed, then key."""
    return (
        str(row.get("mode", "")),
        algorithm_rank(row.get("algorithm")),
        str(row.get("task", "")),
        *(float(row.get(axis) or 0.0) for axis in AXES),
        int(row.get("seed") or 0),
        str(row.get("point_key", "")),
    )


def algorithm_rank(name: str | None) -> tuple[int, str]:
    """Sort key of an algorithm: ``ALGORITHM_ORDER``, then others by name; None (a digital point) first."""
    if not name:
        return (-1, "")
    return (ALGORITHM_ORDER.index(name) if name in ALGORITHM_ORDER else len(ALGORITHM_ORDER), str(name))


def point_label(row: Mapping[str, Any], varied: Sequence[str] = ()) -> str:
    """The point's readable label: the stored one (``analog_tl/5-8/transfer_noise=10/seed0``), or, for points
    recorded before labels were, one made of its mode, task, the ``varied`` axes' values and seed."""
    if row.get("label"):
        return str(row["label"])
    axes = ",".join(f"{axis}={_number_text(row[axis])}" for axis in varied) or "base"
    return f"{row['mode']}/{row['task']}/{axes}/seed{row['seed']}"


def varied_axes(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The device axes that take more than one value among ``rows``."""
    return [axis for axis in AXES if len({row[axis] for row in rows}) > 1]


def matching_points(points: Sequence[Mapping[str, Any]], label: str) -> list[Mapping[str, Any]]:
    """The points (rows with ``point_key``, ``mode``, ``task``, ``seed``, the axes, optionally ``label``) that
    ``label`` names, in table order; raises ``StoreInputError`` (one line) for a malformed label or no match."""
    text = label.strip()
    if not text:
        raise StoreInputError("empty point label: give a point key or terms like transfer_noise=10,seed=0")
    exact = [p for p in points if text in (p["point_key"], p.get("label"))]
    if not exact:  # a label without its seed (as listed for a device point's seeds) names those seeds
        exact = [p for p in points if p.get("label") and text == str(p["label"]).rsplit("/seed", 1)[0]]
    if exact:
        return sorted(exact, key=point_sort_key)
    terms = [term.strip() for term in text.replace("/", ",").split(",") if term.strip()]
    tests = [_term_test(term, label) for term in terms]
    found = [p for p in points if all(test(p) for test in tests)]
    if not found:
        varied = varied_axes(points) if points else []
        listed = _listing([point_label(p, varied) for p in sorted(points, key=point_sort_key)])
        raise StoreInputError(f"no point matches {label!r}; points: {listed or 'none'}")
    return sorted(found, key=point_sort_key)


def resolve_point(points: Sequence[Mapping[str, Any]], label: str) -> str:
    """The key of the one point ``label`` names; raises ``StoreInputError`` (one line, listing candidates) when it
    names none or several."""
    found = matching_points(points, label)
    if len(found) > 1:
        varied = varied_axes(points)
        listed = _listing([point_label(p, varied) for p in found])
        raise StoreInputError(
            f"{label!r} matches {len(found)} points: {listed}; "
            "add mode=, algorithm=, task=, seed= or an axis value to pick one"
        )
    return str(found[0]["point_key"])


def resolve_replicates(points: Sequence[Mapping[str, Any]], label: str) -> list[str]:
    """The keys of the points ``label`` names when they are seeds of one device point (same mode, algorithm, task and
    axes),
    in seed order; raises ``StoreInputError`` (one line, listing candidates) when it names none, or points of
    several device points."""
    found = matching_points(points, label)
    groups = {(p["mode"], p.get("algorithm"), p["task"], *(p[a] for a in AXES)) for p in found}
    if len(groups) > 1:
        varied = varied_axes(points)
        names = sorted({point_label(p, varied).rsplit("/seed", 1)[0] for p in found})
        raise StoreInputError(
            f"{label!r} matches {len(groups)} device points: {_listing(names)}; "
            "add mode=, algorithm=, task= or an axis value "
            "to pick one (seeds are shown together)"
        )
    return [str(p["point_key"]) for p in found]


def _term_test(term: str, label: str):  # noqa: ANN202 - a predicate on point rows
    if "=" in term:
        name, _, value = (part.strip() for part in term.partition("="))
        field = "key" if name.lower() == "point_key" else name.lower()
        if field not in FIELDS:
            raise StoreInputError(
                f"unknown field {name!r} in point label {label!r}: use mode, algorithm, task, seed, key or an axis "
                f"({', '.join(AXES)})"
            )
        if field in AXES or field == "seed":
            number = _parse_number(value, name, label)
            if field == "seed":
                return lambda p: int(p["seed"]) == number
            return lambda p: math.isclose(float(p[field]), number, rel_tol=1e-9, abs_tol=1e-12)
        if field == "key":
            return lambda p: str(p["point_key"]).startswith(value)
        return lambda p: str(p.get(field) or "").lower() == value.lower()
    word = term.lower()
    return lambda p: word in _names(p)


def _names(point: Mapping[str, Any]) -> set[str]:
    names = {str(point["mode"]).lower(), str(point["task"]).lower(), f"seed{point['seed']}"}
    if point.get("algorithm"):
        names.add(str(point["algorithm"]).lower())
    if point.get("label"):
        parts = str(point["label"]).split("/")
        names.update(part.lower() for part in parts)
        if len(parts) == 4:
            changed = parts[2].lower().split(",")
            names.update(changed)
            if all(term.startswith("algorithm=") for term in changed):
                names.add("base")  # an algorithm's base point: the label names its algorithm, not "base"
    return names


def _parse_number(value: str, name: str, label: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise StoreInputError(f"{name}={value!r} in point label {label!r}: not a number") from None
    if not math.isfinite(number):
        raise StoreInputError(f"{name}={value!r} in point label {label!r}: not a finite number")
    return number


def _number_text(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" (and {len(names) - _SHOWN} more)" if len(names) > _SHOWN else "")
