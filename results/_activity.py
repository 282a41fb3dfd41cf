"""What a trial's analog learning activity says about its numbers: one warning per problem, naming what to change.

The activity columns (``ACTIVITY_FIELDS``, measured by the worker after every epoch; see ``workers._activity``) tell
whether c-TTv2 changed the analog weights at all (``*_moved``, percent of weights) and how far from the converted
weights training took them (``*_rel``, mean|dW| / mean|W|). Two ways an analog number can mislead:

- a group barely moved (under ``BARELY_MOVED_PERCENT`` of its weights): whatever the trial learned, the digital
  biases and norms learned it, not the analog tiles;
- in a transfer-learning trial the body's rel reached ``OVERWRITTEN_REL``: write noise and updates replaced the
  pretrained weights, so the trial no longer measures transfer.

``activity_warnings`` judges one trial. ``sweep_activity_warnings`` judges a sweep's points as a study: a problem at
the base device point is a setting to change (its advice reads the spec's own mapping and time constant); the same
problem only away from the base point, along a swept axis, is what that device property does, which the study
measures: it is reported once per curve as a note naming the axis values, not as advice to every point.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from analog_sweep.results._algorithms import algorithm_label, compares_algorithms
from analog_sweep.results._basepoint import base_points, device_point
from analog_sweep.results._labels import point_sort_key
from analog_sweep.results._schema import AXES, AXIS_UNITS

BARELY_MOVED_PERCENT = 1.0
OVERWRITTEN_REL = 1.0


def activity_warnings(row: Mapping[str, Any], *, frozen: bool = False) -> list[str]:
    """Problems with one trial's (or point's best trial's) final activity, each a phrase naming what to change; []
    when the tiles learned or the row has no activity (digital trials, stores from before schema version 3).

    ``row`` needs ``mode`` and the trial activity columns (``head_moved``, ``blocks_moved``, ``blocks_rel``, ...).
    ``frozen``: the sweep froze its tiles on purpose (``algorithm.freeze_analog``), so no movement is expected and
    only movement would be a problem.
    """
    still = [(what, row.get(f"{group}_moved")) for group, what in (("head", "head"), ("blocks", "body"))]
    still = [(what, moved) for what, moved in still if moved is not None]
    if frozen:
        moving = [what for what, moved in still if moved > 0]
        return [f"analog {' and '.join(moving)} moved although the tiles are frozen"] if moving else []
    problems = []
    rel = row.get("blocks_rel")
    overwritten = str(row.get("mode", "")).endswith("_tl") and rel is not None and rel >= OVERWRITTEN_REL
    barely = [(what, moved) for what, moved in still if moved < BARELY_MOVED_PERCENT]
    if barely:
        # With the body overwritten, a shorter time constant or a larger rate would make it worse: the mapping
        # comes first, and the overwritten phrase says so.
        # Plain SGD writes every update straight to the weights: it has no transfer and no time constant.
        constant = "" if row.get("algorithm") == "sgd" else "shorten the transfer's time constant (auto_granularity), "
        advice = "" if overwritten else f": {constant}train longer or raise the learning rate"
        problems.append(
            f"analog {' and '.join(w for w, _ in barely)} barely moved "
            f"({', '.join(f'{m:.2g} %' for _, m in barely)} of {'its' if len(barely) == 1 else 'their'} weights)"
            + advice
        )
    if overwritten:
        problems.append(
            f"analog body overwritten (mean|dW|/mean|W| = {rel:.2f}): the pretrained weights are lost; use weight "
            "scaling (algorithm.mapping) first, then a longer time constant (auto_granularity) or a lower "
            "learning rate"
        )
    return problems


def frozen_tiles(spec: Mapping[str, Any]) -> bool:
    """Whether a stored spec froze its analog tiles, a diagnostic ablation after which no activity is expected:
    ``algorithm.freeze_analog``, or with ``algorithms`` every entry's own value (the shared section's by default)."""
    shared = spec.get("algorithm") if isinstance(spec.get("algorithm"), Mapping) else {}
    default = bool(shared.get("freeze_analog"))
    entries = spec.get("algorithms")
    if not isinstance(entries, list) or not entries:
        return default

    def frozen(entry: Any) -> bool:
        own = entry.get("freeze_analog") if isinstance(entry, Mapping) else None
        return default if own is None else bool(own)

    return all(frozen(entry) for entry in entries)


DEFAULT_ALGORITHM = "c-ttv2"  # the algorithm of a spec that names none (``sweeps/README.md``, "algorithm")
_GROUPS = (("head", "head"), ("blocks", "body"))


def algorithm_fields(spec: Mapping[str, Any], name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The ``settings`` and ``mapping`` a stored spec gives algorithm ``name``: the shared ``algorithm`` section's,
    overridden key by key by the ``algorithms`` entry of that name (``sweeps/README.md``, "algorithms")."""
    shared = spec.get("algorithm") if isinstance(spec.get("algorithm"), Mapping) else {}
    settings, mapping = dict(shared.get("settings") or {}), dict(shared.get("mapping") or {})
    for entry in spec.get("algorithms") or ():
        if isinstance(entry, Mapping) and entry.get("name") == name:
            settings.update(entry.get("settings") or {})
            mapping.update(entry.get("mapping") or {})
    return settings, mapping


def sweep_activity_warnings(
    rows: Iterable[Mapping[str, Any]],
    spec: Mapping[str, Any],
    *,
    bases: Mapping[str, tuple[float, ...]] | None = None,
) -> list[str]:
    """What the analog activity of a sweep's chosen trials says, as the study reads it: lines starting ``warning:``
    (a setting to change, naming the point by its label) or ``note:`` (an effect of a swept axis); [] when the tiles
    learned everywhere.

    Args:
        rows: The sweep's point rows, one per point and seed (``Store.best_points``): ``label``, ``mode``,
            ``algorithm``, ``task``, the device axes (``AXES``) and the activity columns (``head_moved``,
            ``blocks_moved``, ``blocks_rel``).
        spec: The sweep's stored spec mapping: its ``algorithm``/``algorithms`` sections (mapping, time constant,
            ``freeze_analog``) shape the advice.
        bases: Each task's base device point (``results._basepoint.base_points``); None: read off ``rows``. Give
            the whole sweep's when ``rows`` are one curve's.

    Returns:
        At each curve's (mode, algorithm, task) base device point, one ``warning:`` per point with a problem, with
        advice that takes the spec's settings into account (weight scaling already on is not advised again). Away
        from the base point, a problem the base point does not have is one ``note:`` per curve, problem and axis,
        listing the axis values and how many seeds showed it. A curve without a base point gets a warning per
        point. Frozen tiles (``frozen_tiles``): one note, and a warning per point only where they moved.
    """
    rows = [row for row in rows if any(row.get(f"{group}_moved") is not None for group, _ in _GROUPS)]
    if not rows:
        return []
    frozen = frozen_tiles(spec)
    lines = ["note: analog tiles frozen by algorithm.freeze_analog (a diagnostic ablation): no activity expected"]
    lines = lines if frozen else []
    by_point: dict[tuple, list[Mapping[str, Any]]] = defaultdict(list)
    for row in sorted(rows, key=point_sort_key):
        by_point[(row["mode"], row.get("algorithm"), row["task"], device_point(row))].append(row)
    bases = base_points(rows) if bases is None else bases
    naming = compares_algorithms(rows)
    notes: dict[tuple, list[tuple[float, int, int, list[float], list[str]]]] = defaultdict(list)
    for (mode, algorithm, task, device), seeds in by_point.items():
        found = {kind: [row for row in seeds if _problem(row, kind, frozen)] for kind in _KINDS}
        base = (mode, algorithm, task, bases.get(task))
        at_base = device == bases.get(task) or base not in by_point
        for kind, hit in found.items():
            if not hit:
                continue
            base_has = not at_base and any(_problem(row, kind, frozen) for row in by_point[base])
            if at_base or base_has or frozen:
                # With the body overwritten, a shorter time constant or a larger rate would make it worse: the
                # overwrite's advice comes first, and the barely-moved warning gives none.
                advise = kind != "barely" or not found["overwritten"]
                lines.append(_point_warning(kind, hit, len(seeds), spec, algorithm, advise))
                continue
            moved = [axis for axis, value, start in zip(AXES, device, base[3], strict=True) if value != start]
            axis = moved[0] if len(moved) == 1 else None
            curve = f"{mode}/{task}" + (f" ({algorithm_label(algorithm)})" if naming and algorithm else "")
            value = device[AXES.index(axis)] if axis else float("nan")
            notes[(curve, kind, axis or ",".join(moved))].append(
                (value, len(hit), len(seeds), _measures(hit, kind), _still(hit))
            )
    for (curve, kind, axis), found in notes.items():
        lines.append(_axis_note(curve, kind, axis, found))
    return lines


def _problem(row: Mapping[str, Any], kind: str, frozen: bool) -> bool:
    if frozen:
        return kind == "moved" and any((row.get(f"{g}_moved") or 0) > 0 for g, _ in _GROUPS)
    if kind == "barely":
        return any(row.get(f"{g}_moved") is not None and row[f"{g}_moved"] < BARELY_MOVED_PERCENT for g, _ in _GROUPS)
    if kind == "overwritten":
        rel = row.get("blocks_rel")
        return str(row.get("mode", "")).endswith("_tl") and rel is not None and rel >= OVERWRITTEN_REL
    return False


_KINDS = ("barely", "overwritten", "moved")


def _measures(rows: list[Mapping[str, Any]], kind: str) -> list[float]:
    if kind == "overwritten":
        return [float(row["blocks_rel"]) for row in rows]
    moved = [float(row[f"{g}_moved"]) for row in rows for g, _ in _GROUPS if row.get(f"{g}_moved") is not None]
    return [value for value in moved if value < BARELY_MOVED_PERCENT] if kind == "barely" else moved


def _still(rows: list[Mapping[str, Any]]) -> list[str]:
    """The groups (``head``, ``body``) that barely moved in any of ``rows``."""
    return [
        what
        for group, what in _GROUPS
        if any(r.get(f"{group}_moved") is not None and r[f"{group}_moved"] < BARELY_MOVED_PERCENT for r in rows)
    ]


def _span(values: list[float], digits: str = ".2f") -> str:
    low, high = min(values), max(values)
    return f"{low:{digits}}" if f"{low:{digits}}" == f"{high:{digits}}" else f"{low:{digits}}-{high:{digits}}"


def _point_warning(
    kind: str, hit: list[Mapping[str, Any]], seeds: int, spec: Mapping[str, Any], algorithm: str | None, advise: bool
) -> str:
    label = str(hit[0].get("label", ""))
    point = label.rsplit("/", 1)[0] if label.rsplit("/", 1)[-1].startswith("seed") else label
    which = f" ({len(hit)} of {seeds} seeds)" if seeds > 1 else ""
    if kind == "moved":
        return f"warning: {point}{which}: analog tiles moved although they are frozen (algorithm.freeze_analog)"
    settings, mapping = algorithm_fields(spec, algorithm or DEFAULT_ALGORITHM)
    constant = settings.get("auto_granularity")
    constant_now = f", now {constant:g}" if isinstance(constant, (int, float)) else ""
    omega = mapping.get("weight_scaling_omega")
    if kind == "barely":
        still = _still(hit)
        how = (
            ""
            if not advise
            else ": train longer or raise the learning rate"
            if algorithm == "sgd"
            else f": shorten the transfer's time constant (auto_granularity{constant_now}), train longer or raise "
            "the learning rate"
        )
        return (
            f"warning: {point}{which}: analog {' and '.join(still)} barely moved ({_span(_measures(hit, kind), '.2g')} "
            f"% of the weights){how}"
        )
    scaling = (
        f"the weights are already scaled (algorithm.mapping weight_scaling_omega {omega:g}): a longer time constant "
        f"(auto_granularity{constant_now}) or a lower learning rate"
        if isinstance(omega, (int, float))
        else "use weight scaling (algorithm.mapping) first, then a longer time constant (auto_granularity) or a "
        "lower learning rate"
    )
    return (
        f"warning: {point}{which}: analog body overwritten (mean|dW|/mean|W| = {_span(_measures(hit, kind))}): the "
        f"pretrained weights are lost; {scaling}"
    )


def _axis_note(curve: str, kind: str, axis: str, found: list[tuple[float, int, int, list[float], list[str]]]) -> str:
    unit = AXIS_UNITS.get(axis, "")
    values = ", ".join(f"{value:g}" for value, *_ in sorted(found)) + unit
    hit = sum(count for _, count, *_ in found)
    seeds = sum(total for _, _, total, *_ in found)
    measures = [m for *_, ms, _ in found for m in ms]
    still = [what for _, what in _GROUPS if any(what in groups for *_, groups in found)]
    what = (
        f"body overwritten (mean|dW|/mean|W| {_span(measures)})"
        if kind == "overwritten"
        else f"{' and '.join(still)} barely moved ({_span(measures, '.2g')} % of the weights)"
    )
    effect = "erases the pretrained weights" if kind == "overwritten" else "stops the analog tiles learning"
    return (
        f"note: {curve}: {what} at {axis} {values} ({hit} of {seeds} chosen trials), not at the base point: the swept "
        f"{axis} {effect} there, which is what the study measures"
    )
