"""How long a sweep's trials take on a number of trial slots: the order in which ``run`` hands trials out, replayed.

Dividing the trials' summed seconds by the slots assumes every slot is always busy. ``run`` cannot keep them busy
when the learning-rate search makes trials wait for each other (``sweeps._scheduling`` holds the rules, which the
searcher ``orchestrator._search.LearningRateSearch`` follows too):

- under ``lr_search.patience`` (TPE with ``warm_start: neighbours``), a point runs its start-up trials at once, then
  each sampler trial only once every earlier trial of its own has ended. Its start-up trials are its warm-start trial
  where an inward neighbour has completed a trial by the time the point starts, else its S spread start-up trials
  (the base point always);
- when seeds share one choice (``selection.per_seed: false``) with TPE, a device point's later seeds follow its first
  seed: each may have trial k once the first seed has had trial k (it runs the same learning rate);
- with warm starts, a point that has not started waits until its inward neighbours have finished, unless no other
  point has a trial that may run, so the chains of trials along an axis tend to run end to end.

This module replays those rules with known trial durations: whenever a slot is free it gets the trial ``run`` would
hand out, and the wall time is when the last trial ends. The outcome of the trials decides how many a point runs
under patience, so a replay takes one of two extreme outcomes: every trial beats the ones before it (no point stops
before its budget: the dry run's upper end) or none does (every point stops as early as it may: the lower end, with
its ``settle_after``). Those ends are not strict bounds: whether a point starts warm (one start-up trial, then the
rest one at a time) or cold (its spread start-up trials side by side) depends on when its neighbours complete trials,
so a sweep in which some points stop early can take longer than the all-improving replay, and one in between can take
less than the none-improving one (``sweeps/README.md``, "Cost and dry run"). Not replayed: trial start-up gaps beyond
the seconds given, trials slowing each other down, failures and retries.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass

from analog_sweep.sweeps._scheduling import BreadthFirst, has_finished, is_ready, may_ask


@dataclass(frozen=True)
class Search:
    """One point's trials, as ``run`` hands them out.

    Attributes:
        seconds: Each trial's wall-clock seconds on one slot, in trial order (trial 0 first), for every trial the
            point may run.
        complete: How many of the first trials run to their end (the pruner stops the rest), which decides whether a
            neighbour starting later finds a completed trial to warm-start from. None: all of them.
        start_up: Under ``lr_search.patience``, how many first trials may run at once when the point starts warm;
            every later trial waits until all its earlier trials have ended. None: no patience, all may run at once.
        cold_start_up: The same when none of its ``inward`` searches has completed a trial by then (spread start-up
            trials). None: it always starts warm (a refinement point, whose neighbours ran in an earlier phase).
        settle_after: The lower end's outcome: the point stops after its start-up trials and this many more
            (``lr_search.patience``). None: it runs all its ``seconds``.
        bracketed: A refinement point whose neighbours agree on a rate: it stops after its start-up trial alone if all
            its ``inward`` searches had finished when it started.
        leader: The index, in the same sequence, of the search this one follows (a later seed of a device point whose
            seeds share their search): its trial k may start once the leader's trial k has started, it runs as many
            trials as the leader, and it waits for nothing else.
        inward: The indices of the searches that must have finished before this one is *ready* to start (its inward
            neighbours' seeds, and with a choice per seed its earlier seeds: ``sweeps._neighbours``).
    """

    seconds: tuple[float, ...]
    complete: int | None = None
    start_up: int | None = None
    cold_start_up: int | None = None
    settle_after: int | None = None
    bracketed: bool = False
    leader: int | None = None
    inward: tuple[int, ...] = ()


def makespan(searches: Sequence[Search], slots: int) -> float:
    """Seconds from the first trial's start to the last one's end, trials handed out as ``run`` does.

    Args:
        searches: Every point's trials, in run order.
        slots: How many trials run at a time.

    Returns:
        The wall-clock seconds until the last trial ends.

    Raises:
        ValueError: If ``slots`` < 1, a leader or inward index is out of range, a leader is not earlier in the
            sequence than its follower, or a follower has more trials than its leader.
    """
    return _Replay(searches, slots).run()[0]


def most_parallel(searches: Sequence[Search]) -> int:
    """The most trials ``searches`` ever run at once given a slot for every trial.

    With at least this many slots the trials start and end exactly as with unlimited slots, so more slots cannot
    shorten the ``makespan``.

    Raises:
        ValueError: As ``makespan`` does.
    """
    return _Replay(searches, max(1, sum(len(search.seconds) for search in searches))).run()[1]


class _Replay:
    """One replay: the state of every search while slots hand out trials (``run`` returns (makespan, peak))."""

    def __init__(self, searches: Sequence[Search], slots: int) -> None:
        if slots < 1:
            raise ValueError(f"slots: at least 1 trial at a time, got {slots}")
        count = len(searches)
        for index, search in enumerate(searches):
            if search.leader is not None:
                if not 0 <= search.leader < index:
                    raise ValueError(f"search {index}: its leader must come before it, got {search.leader}")
                if len(search.seconds) > len(searches[search.leader].seconds):
                    raise ValueError(f"search {index}: more trials than its leader {search.leader}")
            if any(not 0 <= other < count or other == index for other in search.inward):
                raise ValueError(f"search {index}: an inward index out of range or itself: {search.inward}")
        self.searches, self.slots = searches, slots
        self.asked = [0] * count
        self.running = [0] * count
        self.ended = [0] * count
        self.completed = [0] * count  # ended trials that ran to their end
        self.target = [len(search.seconds) for search in searches]  # trials the search runs (fixed at its start)
        self.start_up: list[int | None] = [search.start_up for search in searches]
        self.followers: list[list[int]] = [[] for _ in searches]
        self.dependents: list[list[int]] = [[] for _ in searches]
        for index, search in enumerate(searches):
            if search.leader is not None:
                self.followers[search.leader].append(index)
            for other in search.inward:
                self.dependents[other].append(index)
        # Every change that can let a search run offers it again (_offer).
        self.queue = BreadthFirst(self.asked)

    def run(self) -> tuple[float, int]:
        now, free, peak = 0.0, self.slots, 0
        ends: list[tuple[float, int, int]] = []  # (end time, search, trial number) of the running trials
        while True:
            while free:
                index = self._next()
                if index is None:
                    break
                number = self._ask(index)
                heapq.heappush(ends, (now + self.searches[index].seconds[number], index, number))
                free -= 1
            peak = max(peak, self.slots - free)
            if not ends:
                break
            # One trial's end at a time, its slot handed out again before the next end is seen, as Ray Tune does.
            now, index, number = heapq.heappop(ends)
            free += 1
            self._end(index, number)
        left = sum(self.target) - sum(self.ended)
        if left:  # never: some search may always ask while trials are left, and a leader asks before its followers
            raise AssertionError(f"{left} trial(s) never ran")
        return now, peak

    def _next(self) -> int | None:
        """The search whose trial ``run`` hands out next (``sweeps._scheduling.BreadthFirst``)."""
        return self.queue.pick(self.asked, self._may_ask, self._ready)

    def _may_ask(self, index: int) -> bool:
        leader = self.searches[index].leader
        return may_ask(
            self.asked[index],
            self.target[index],
            leader_asked=None if leader is None else self.asked[leader],
            start_up=self.start_up[index],
            running=self.running[index],
        )

    def _ready(self, index: int) -> bool:
        search = self.searches[index]
        return is_ready(
            self.asked[index],
            leader_asked=None if search.leader is None else self.asked[search.leader],
            inward_finished=lambda: all(self._finished(other) for other in search.inward),
        )

    def _finished(self, index: int) -> bool:
        return has_finished(self.asked[index], self.ended[index], self.target[index])

    def _ask(self, index: int) -> int:
        number = self.asked[index]
        if number == 0:
            self._start(index)
        self.asked[index] += 1
        self.running[index] += 1
        self._offer(index)
        for follower in self.followers[index]:
            self._offer(follower)
        return number

    def _start(self, index: int) -> None:
        """Fix the search's start-up trials (warm or cold) and, for the lower bound, how many trials it runs."""
        search = self.searches[index]
        if search.leader is not None:
            self.target[index] = min(len(search.seconds), self.target[search.leader])
            return
        if search.start_up is not None and search.cold_start_up is not None:
            warm = any(self.completed[other] for other in search.inward)
            self.start_up[index] = search.start_up if warm else search.cold_start_up
        if search.settle_after is not None:
            start_up = self.start_up[index] if self.start_up[index] is not None else 0
            bracketed = search.bracketed and all(self._finished(other) for other in search.inward)
            self.target[index] = min(len(search.seconds), start_up + (0 if bracketed else search.settle_after))

    def _end(self, index: int, number: int) -> None:
        search = self.searches[index]
        self.running[index] -= 1
        self.ended[index] += 1
        if search.complete is None or number < search.complete:
            self.completed[index] += 1
        self._offer(index)
        if self._finished(index):
            for dependent in self.dependents[index]:
                self._offer(dependent)

    def _offer(self, index: int) -> None:
        self.queue.offer(index, self.asked[index])
