"""What a trial's analog learning activity says about its numbers: one warning per problem, naming what to change.

The activity columns (``ACTIVITY_FIELDS``, measured by the worker after every epoch; see ``workers._activity``) tell
whether c-TTv2 changed the analog weights at all (``*_moved``, percent of weights) and how far from the converted
weights training took them (``*_rel``, mean|dW| / mean|W|). Two ways an analog number can mislead:

- a group barely moved (under ``BARELY_MOVED_PERCENT`` of its weights): whatever the trial learned, the digital
  biases and norms learned it, not the analog tiles;
- in a transfer-learning trial the body's rel reached ``OVERWRITTEN_REL``: write noise and updates replaced the
  pretrained weights, so the trial no longer measures transfer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
