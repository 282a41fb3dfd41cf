"""Which trial of a sweep runs next: the rules ``run``'s learning-rate search follows and the dry run replays.

The searcher (``orchestrator._search.LearningRateSearch``) applies these rules to its Optuna studies, the dry run's
replay (``sweeps._schedule``) to trials of known durations; each holds the state of every point's search as plain
counts and trial records and asks this module what may run. Pure Python: no Optuna, Ray or torch.

- Breadth-first (``BreadthFirst``): the next trial is the lowest trial number over the points in run order, first
  among the points that are ready (``ready``), then among all of them, so no slot idles while a point may run.
- Seeds that share one search (``seed_leaders``): a device point's first seed runs the search and each later seed
  follows it, having trial k once its leader has had trial k (it runs the same learning rate).
- Patience (``may_ask``, ``has_settled``): a point runs its start-up trials at once (``start_up_count``), then each
  sampler trial only once every earlier trial of its own has ended and its search has not settled.
- Warm starts (``is_ready``): a point that has not started is ready once its inward neighbours have finished.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from analog_sweep.sweeps._expand import Point
    from analog_sweep.sweeps._schema import LrSearchSpec, SelectionSpec, SweepSpec

# The states of a trial handed out to a point's search, as ``TrialRecord.state``.
RUNNING = "running"
COMPLETE = "complete"
PRUNED = "pruned"
FAILED = "failed"


@dataclass(frozen=True)
class TrialRecord:
    """One trial handed out to a point's search.

    Attributes:
        number: The trial's number within its point (0 for the first trial handed out).
        state: ``RUNNING`` until it ends, then ``COMPLETE``, ``PRUNED`` or ``FAILED`` (diverged or crashed).
        value: The objective of a completed trial (validation or test error, %), lower is better; else None.
    """

    number: int
    state: str = RUNNING
    value: float | None = None

    @property
    def ended(self) -> bool:
        return self.state != RUNNING

    @property
    def completed(self) -> bool:
        return self.state == COMPLETE


def warm_starts(lr_search: LrSearchSpec) -> bool:
    """Whether points start from their neighbours' best learning rate (``warm_start: neighbours`` with TPE).

    With ``pruner: median`` such a search also gives each point its own median pruner
    (``orchestrator._point_pruner``).
    """
    return lr_search.method == "tpe" and lr_search.warm_start == "neighbours"


def stops_by_patience(lr_search: LrSearchSpec) -> bool:
    """Whether a point's search may end before ``trials_per_point``: a search that ``warm_starts``, with a patience."""
    return warm_starts(lr_search) and lr_search.patience is not None


def seeds_share_search(lr_search: LrSearchSpec, selection: SelectionSpec | None) -> bool:
    """Whether a device point's later seeds follow its first seed's TPE search (``selection.per_seed: false``)."""
    return selection is not None and not selection.per_seed and lr_search.method == "tpe"


def seed_leaders(points: Sequence[Point], lr_search: LrSearchSpec, selection: SelectionSpec | None) -> dict[int, int]:
    """Which seed each later seed follows, where seeds share one search (``seeds_share_search``).

    Args:
        points: The points, each device point's seeds in seed order.
        lr_search: The spec's learning-rate search.
        selection: The spec's selection rule (None: every seed searches on its own).

    Returns:
        Index in ``points`` of each later seed -> index of its device point's first seed (same mode,
        algorithm, task and device); empty where seeds do not share a search.
    """
    if not seeds_share_search(lr_search, selection):
        return {}
    first: dict[tuple, int] = {}
    leaders = {}
    for index, point in enumerate(points):
        group = (point.series, point.task, point.device)
        if group in first:
            leaders[index] = first[group]
        else:
            first[group] = index
    return leaders


def may_warm_start(spec: SweepSpec, point: Point) -> bool:
    """Whether ``point`` may start from its neighbours' best learning rate.

    True for a search that ``warm_starts``, at a point off the base device (``spec.device``) on some axis (such a
    point has an inward neighbour when the base value is among the axis's), or, with ``selection.per_seed: true``, at
    any seed but the first (its earlier seeds are its neighbours).
    """
    later_seed = spec.selection.per_seed and point.seed != spec.seeds[0]
    off_base = any(value != getattr(spec.device, axis) for axis, value in point.axes)
    return warm_starts(spec.lr_search) and (later_seed or off_base)


def start_up_count(warm_rates: Sequence[float] | None, startup_trials: int) -> int:
    """How many of a point's first trials come before the sampler trials that ``lr_search.patience`` counts.

    Args:
        warm_rates: The point's recorded warm-start rates; empty where it got none (the base point, a point started
            before any neighbour completed a trial); None for a search begun before warm starts were recorded.
        startup_trials: The sampler's start-up count (``LrSearchSpec.startup_trials``).

    Returns:
        Its warm-start trials, or where it got no warm-start rate its spread start-up trials; 0 where nothing was
        recorded (such a search runs its whole budget, its trials side by side).
    """
    if warm_rates is None:
        return 0
    return len(warm_rates) or startup_trials


def may_ask(
    asked: int,
    budget: int,
    *,
    leader_asked: int | None = None,
    start_up: int | None = None,
    running: int = 0,
    stopped: Callable[[], bool] | None = None,
) -> bool:
    """Whether a point may have another trial now.

    Args:
        asked: Trials the point has been handed so far.
        budget: The most trials it runs.
        leader_asked: For a follower seed, the trials its leader has been handed: it may have trial k once the
            leader has had trial k, whatever else holds. None for a point that leads or searches alone.
        start_up: Under patience, how many first trials may run at once; each later trial waits until every earlier
            one has ended. None: every trial may run at once.
        running: The point's trials handed out that have not ended.
        stopped: Whether the point's search ended before its budget (settled, or waiting for a bracket's seeds);
            called only once the answer depends on it, since it may read every trial.
    """
    if asked >= budget:
        return False
    if leader_asked is not None:
        return leader_asked > asked
    if asked == 0 or start_up is None or asked < start_up:
        return True
    return running == 0 and not (stopped is not None and stopped())


def is_ready(asked: int, *, leader_asked: int | None = None, inward_finished: Callable[[], bool]) -> bool:
    """Whether a point may have its next trial without waiting for other points.

    Args:
        asked: Trials the point has been handed so far.
        leader_asked: For a follower seed, the trials its leader has been handed (it is ready once the leader has had
            this trial); None otherwise.
        inward_finished: Whether every inward neighbour of the point has finished; called only for a point that has
            not started.
    """
    if leader_asked is not None:
        return leader_asked > asked
    return asked > 0 or inward_finished()


def has_finished(asked: int, ended: int, target: int) -> bool:
    """Whether a point has been handed its ``target`` trials (at least one) and every one of them has ended."""
    return asked > 0 and ended == asked and ended >= target


def bracket_pending(seed_trials: Sequence[Sequence[TrialRecord]], start_up: int) -> bool:
    """Whether a bracketed point still waits for the start-up trial of one of its seeds.

    Until every seed's start-up trials have been handed out and have ended, the point neither settles nor asks for a
    sampler trial.

    Args:
        seed_trials: The trials of each seed of the point, its first seed's first (one sequence where seeds do not
            share a search).
        start_up: The point's ``start_up_count``.
    """
    warm = [trial for trials in seed_trials for trial in trials if trial.number < start_up]
    return len(warm) < len(seed_trials) * start_up or any(not trial.ended for trial in warm)


def has_settled(
    seed_trials: Sequence[Sequence[TrialRecord]], *, start_up: int, patience: int | None, bracketed: bool = False
) -> bool:
    """Whether a point's search ended before its budget.

    A point settles once every trial it was given has ended, at least one completed, and its last ``patience``
    sampler trials (those numbered from ``start_up`` on) all ended without beating the best objective before them
    (pruned and failed trials never do). A bracketed point (its neighbours on both sides had finished and agreed on
    its warm-start rate) settles once its start-up trial completed at every seed; where it did not complete at some
    seed, the rule above applies and the point searches on.

    Args:
        seed_trials: The trials of each seed of the point, its first seed's first; the first seed's decide.
        start_up: The point's ``start_up_count``; 0 (nothing recorded) never settles.
        patience: ``lr_search.patience``; None never settles.
        bracketed: Whether the point was recorded as bracketed.
    """
    if patience is None or start_up == 0:
        return False
    trials = sorted(seed_trials[0], key=lambda trial: trial.number)
    if any(not trial.ended for trial in trials):
        return False
    if bracketed:
        if bracket_pending(seed_trials, start_up):
            return False
        if all(trial.completed for seed in seed_trials for trial in seed if trial.number < start_up):
            return True
    sampler = [trial for trial in trials if trial.number >= start_up]
    if len(sampler) < patience:
        return False
    window = sampler[-patience:]
    before = [trial.value for trial in trials if trial.number < window[0].number and trial.completed]
    if not before:
        return False
    best = min(before)
    return not any(trial.completed and trial.value < best for trial in window)


class BreadthFirst:
    """Picks the point whose trial runs next: the lowest trial number, then the earliest point in run order.

    Points are indices in run order. A pick looks first among the points that are ready, then among all; a point
    must also be allowed to ask (``may_ask``). An entry that cannot run when it comes up is dropped, so a caller that
    keeps one ``BreadthFirst`` across picks must ``offer`` a point again whenever something that lets it run changed
    (one of its trials was handed out or ended, its leader was handed a trial, an inward neighbour finished).

    Args:
        asked: Trials each point has been handed so far.
    """

    def __init__(self, asked: Sequence[int]) -> None:
        self._ready = [(count, index) for index, count in enumerate(asked)]
        heapq.heapify(self._ready)
        self._any = list(self._ready)

    def offer(self, index: int, asked: int) -> None:
        """Enter point ``index``, which has been handed ``asked`` trials, for the next picks."""
        heapq.heappush(self._ready, (asked, index))
        heapq.heappush(self._any, (asked, index))

    def pick(self, asked: Sequence[int], may_ask: Callable[[int], bool], ready: Callable[[int], bool]) -> int | None:
        """The point that gets the next trial, or None if no point may have one now.

        Args:
            asked: Trials each point has been handed so far.
            may_ask: Whether a point may have another trial now (``may_ask``).
            ready: Whether a point may have it without waiting for other points (``is_ready``).
        """
        for heap, need_ready in ((self._ready, True), (self._any, False)):
            while heap:
                number, index = heap[0]
                if number == asked[index] and may_ask(index) and (not need_ready or ready(index)):
                    return index
                heapq.heappop(heap)
        return None
