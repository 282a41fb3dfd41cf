"""Which trial of a point is chosen, and why: one rule, so a table, a curve and an export never disagree.

A ``Selection`` says where the choice is made:

- ``validation`` (honest): the learning rate and epoch with the lowest validation error (the held-out split of the
  training data); the number reported is the chosen trial's *test* error at that epoch;
- ``test`` (the paper's rule): the learning rate with the lowest final test error; reported: that final test error,
  the best of several test errors and so an optimistic estimate.

With ``per_seed`` False, the points that differ only by seed share one choice: each learning rate is scored over the
seeds whose trial at it completed; rates completed by more seeds rank first, then the lowest mean error (on
validation: at the one epoch with the lowest mean), then the smaller rate. Every seed then reports its own trial at
that rate and epoch. Only completed trials are chosen: pruned ones stopped early (not comparable), failed and
diverged ones have no result. All are listed as candidates, to say why they lost.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._schema import SELECTION_SPLITS


@dataclass(frozen=True)
class Selection:
    """How a point's trial is chosen: on ``split`` (``validation`` or ``test``), alone (``per_seed``) or shared by
    the point's seeds. Raises ``StoreInputError`` for an unknown split."""

    split: str = "validation"
    per_seed: bool = False

    def __post_init__(self) -> None:
        if self.split not in SELECTION_SPLITS:
            raise StoreInputError(
                f"unknown selection split {self.split!r}: expected one of {', '.join(SELECTION_SPLITS)}"
            )

    def __str__(self) -> str:
        rule = "validation" if self.split == "validation" else "test (the paper's rule)"
        return f"chosen on {rule}, {'each seed alone' if self.per_seed else 'seeds sharing one choice'}"


# The rule of every sweep recorded before selection existed, and of a sweep recorded without one.
PAPER_RULE = Selection(split="test", per_seed=True)


@dataclass(frozen=True)
class Candidate:
    """One trial of a point as the choice sees it; ``history`` is (epoch, validation error, test error) per recorded
    epoch, in epoch order (errors in percent, None where not measured)."""

    trial_id: str
    lr: float
    status: str
    final_test_error: float | None
    epochs_done: int
    history: tuple[tuple[int, float | None, float | None], ...] = ()

    @property
    def eligible(self) -> bool:
        """Completed with a final test error (what the paper's rule needs)."""
        return self.eligible_on("test")

    def eligible_on(self, split: str) -> bool:
        if self.status != "completed":
            return False
        if split == "test":
            return _number(self.final_test_error)
        return any(_number(validation) for _, validation, _ in self.history)

    def validation_at(self, epoch: int | None) -> float | None:
        return next((v for e, v, _ in self.history if e == epoch and _number(v)), None)

    def test_at(self, epoch: int | None) -> float | None:
        return next((t for e, _, t in self.history if e == epoch and _number(t)), None)

    @property
    def last_epoch(self) -> int | None:
        return self.history[-1][0] if self.history else (self.epochs_done or None)

    def best_validation(self) -> tuple[float, int] | None:
        """(lowest validation error, its epoch; earliest on ties), or None without any."""
        measured = [(v, e) for e, v, _ in self.history if _number(v)]
        return min(measured) if measured else None

    def score(self, split: str) -> float:
        """This trial alone: its final test error (``test``) or its lowest validation error (``validation``)."""
        if split == "test":
            return float(self.final_test_error)  # type: ignore[arg-type]
        return self.best_validation()[0]  # type: ignore[index]


@dataclass(frozen=True)
class BestTrial:
    """The chosen trial of a point (None when none can be chosen), the epoch it is reported at, its test and
    validation error there, and every candidate of the point, the chosen one first.

    ``shared_by`` is how many seeds' trials the choice was scored on (1 when each seed chooses alone);
    ``score`` the error the choice was made on (their mean when shared).
    """

    sweep: str
    point_key: str
    chosen: Candidate | None
    candidates: tuple[Candidate, ...]
    selection: Selection = PAPER_RULE
    epoch: int | None = None
    test_error: float | None = None
    validation_error: float | None = None
    shared_by: int = 1
    score: float | None = None
    shared_lr: float | None = None

    @property
    def selected_on(self) -> str:
        return self.selection.split

    def why(self) -> str:
        """One line saying what was chosen against what."""
        split = self.selection.split
        listed = ", ".join(_describe(c) for c in self.candidates)
        over = f" (mean of {self.shared_by} seeds)" if self.shared_by > 1 else ""
        if self.chosen is None:
            if self.shared_lr is not None:
                return (
                    f"no completed trial at the seeds' shared choice lr={self.shared_lr:g} (chosen on {split}{over}); "
                    f"candidates: {listed or 'none'}"
                )
            what = "final test error" if split == "test" else "validation error"
            return f"no completed trial with a {what} among {len(self.candidates)}: {listed or 'none'}"
        if split == "test":
            return (
                f"lr={self.chosen.lr:g} has the lowest final test error ({_error_text(self.score)}{over}) of the "
                f"completed trials, chosen on the test set (the paper's rule: optimistic); candidates: {listed}"
            )
        return (
            f"lr={self.chosen.lr:g} at epoch {self.epoch} has the lowest validation error "
            f"({_error_text(self.score)}{over}); its test error there: {_error_text(self.test_error)}; "
            f"candidates: {listed}"
        )


def choose(
    sweep: str,
    candidates_by_point: Mapping[str, Sequence[Candidate]],
    groups: Iterable[Sequence[str]],
    selection: Selection,
) -> dict[str, BestTrial]:
    """The choice for every point of ``candidates_by_point``; ``groups`` lists the point keys that differ only by
    seed (ignored when ``selection.per_seed``: every point is then its own group)."""
    chosen: dict[str, BestTrial] = {}
    for group in groups:
        units = [[key] for key in group] if selection.per_seed else [list(group)]
        for unit in units:
            chosen.update(_choose_group(sweep, {key: candidates_by_point.get(key, ()) for key in unit}, selection))
    return chosen


def pick(sweep: str, point_key: str, candidates: Iterable[Candidate], selection: Selection = PAPER_RULE) -> BestTrial:
    """The choice for one point on its own."""
    return _choose_group(sweep, {point_key: tuple(candidates)}, selection)[point_key]


def _choose_group(
    sweep: str, candidates_by_point: Mapping[str, Sequence[Candidate]], selection: Selection
) -> dict[str, BestTrial]:
    split = selection.split
    by_lr: dict[float, dict[str, Candidate]] = defaultdict(dict)
    for key, candidates in candidates_by_point.items():
        for candidate in sorted(
            (c for c in candidates if c.eligible_on(split)), key=lambda c: (c.score(split), c.trial_id)
        ):
            by_lr[candidate.lr].setdefault(key, candidate)  # a rate tried twice: its better trial
    options = []
    for lr, trials in by_lr.items():
        if split == "test":
            epoch, score = None, statistics.fmean(t.score("test") for t in trials.values())
        else:
            epochs = set.intersection(*({e for e, v, _ in t.history if _number(v)} for t in trials.values()))
            if not epochs:
                continue
            means = {e: statistics.fmean(t.validation_at(e) for t in trials.values()) for e in epochs}
            epoch = min(epochs, key=lambda e: (means[e], e))
            score = means[epoch]
        options.append((-len(trials), score, lr, epoch, trials))
    best = min(options, key=lambda option: option[:3], default=None)
    results = {}
    for key, candidates in candidates_by_point.items():
        ranked = _rank(candidates, split)
        if best is None:
            results[key] = BestTrial(sweep, key, None, ranked, selection)
            continue
        _, score, lr, shared_epoch, trials = best
        trial = trials.get(key)
        if trial is None:
            results[key] = BestTrial(
                sweep, key, None, ranked, selection, shared_by=len(trials), score=score, shared_lr=lr
            )
            continue
        epoch = shared_epoch if split == "validation" else trial.last_epoch
        test_error = trial.final_test_error if split == "test" else trial.test_at(epoch)
        results[key] = BestTrial(
            sweep,
            key,
            trial,
            (trial, *(c for c in ranked if c is not trial)),
            selection,
            epoch=epoch,
            test_error=test_error,
            validation_error=trial.validation_at(epoch),
            shared_by=len(trials),
            score=score,
            shared_lr=lr,
        )
    return results


def rank(candidates: Iterable[Candidate], split: str = "test") -> tuple[Candidate, ...]:
    """Candidates best first by their own score on ``split`` (then lr), then those that cannot be chosen, by lr."""
    return _rank(candidates, split)


def _rank(candidates: Iterable[Candidate], split: str) -> tuple[Candidate, ...]:
    def key(c: Candidate) -> tuple:
        if c.eligible_on(split):
            return (0, c.score(split), c.lr, c.trial_id)
        return (1, 0.0, c.lr, c.trial_id)

    return tuple(sorted(candidates, key=key))


def _describe(c: Candidate) -> str:
    best = c.best_validation()
    validation = f" val={_error_text(best[0])}@{best[1]}" if best else ""
    return f"lr={c.lr:g} {c.status}{validation} final={_error_text(c.final_test_error)}"


def _number(value: float | None) -> bool:
    return value is not None and not math.isnan(value)


def _error_text(error: float | None) -> str:
    return "-" if error is None else f"{error:.4g}"
