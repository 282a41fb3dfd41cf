"""Which trial of a point is best, and why: the lowest final test error among completed trials, ties -> smaller lr.

Pruned trials stopped early, so their final error is not comparable; failed trials have none. Both are listed
as candidates (to say why they lost) but never chosen.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """One trial of a point as the choice sees it."""

    trial_id: str
    lr: float
    status: str
    final_test_error: float | None
    epochs_done: int

    @property
    def eligible(self) -> bool:
        error = self.final_test_error
        return self.status == "completed" and error is not None and not math.isnan(error)

    def rank_key(self) -> tuple:
        if self.eligible:
            return (0, self.final_test_error, self.lr, self.trial_id)
        return (1, 0.0, self.lr, self.trial_id)


@dataclass(frozen=True)
class BestTrial:
    """The chosen trial of a point (None when no trial completed) and every candidate, best first."""

    sweep: str
    point_key: str
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]

    def why(self) -> str:
        """One line saying what was chosen against what."""
        listed = ", ".join(
            f"lr={c.lr:g} {c.status} final={_error_text(c.final_test_error)}" for c in self.candidates
        )
        if self.chosen is None:
            return f"no completed trial with a final test error among {len(self.candidates)}: {listed or 'none'}"
        return (
            f"lr={self.chosen.lr:g} has the lowest final test error ({_error_text(self.chosen.final_test_error)}) "
            f"of the completed trials; candidates: {listed}"
        )


def rank(candidates: Iterable[Candidate]) -> tuple[Candidate, ...]:
    """Candidates best first: eligible ones by (final error, lr), then the rest by lr."""
    return tuple(sorted(candidates, key=Candidate.rank_key))


def pick(sweep: str, point_key: str, candidates: Iterable[Candidate]) -> BestTrial:
    ranked = rank(candidates)
    chosen = ranked[0] if ranked and ranked[0].eligible else None
    return BestTrial(sweep=sweep, point_key=point_key, chosen=chosen, candidates=ranked)


def _error_text(error: float | None) -> str:
    return "-" if error is None else f"{error:.4g}"
