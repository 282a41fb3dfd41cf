"""How long a sweep's trials take on a number of trial slots: the order in which ``run`` hands trials out, simulated.

Dividing the trials' summed seconds by the slots assumes every slot is always busy. ``run`` cannot keep them busy
when the learning-rate search makes trials wait for each other (``orchestrator._search.LearningRateSearch``):

- under ``lr_search.patience`` (TPE with ``warm_start: neighbours``), a point runs its start-up trials (its
  warm-start trial; the base point its spread start-up trials) at once, then each sampler trial only once every
  earlier trial of its own has ended, since whether the search goes on depends on it;
- when seeds share one choice (``selection.per_seed: false``) with TPE, a device point's later seeds follow its first
  seed: each may have trial k once the first seed has had trial k (it runs the same learning rate).

So a sweep of fewer points than slots, or one long point, takes longer than its compute divided by the slots. This
module replays those rules with known trial durations: whenever a slot is free, it gets the next trial that may
run, breadth-first as ``run`` hands them out (the lowest trial number over the points in run order, a point's first
seed before the seeds that follow it), and the wall time is when the last trial ends. Not replayed: that ``run``
prefers points whose inward neighbours have finished (``_ready``; it changes which trial a free slot gets, never
whether it gets one), trial start-up gaps beyond the seconds given, failures and retries.
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Search:
    """One point's trials, as ``run`` hands them out.

    ``seconds``: each trial's wall-clock seconds on one slot, in trial order (trial 0 first). ``start_up``: how many
    of its first trials may run at once; every later trial waits until all its earlier trials have ended (under
    ``lr_search.patience``). ``None``: all may run at once. ``leader``: the index, in the same sequence, of the search
    this one follows (a later seed of a device point whose seeds share their search): its trial k may start once
    the leader's trial k has started, and it waits for nothing else.
    """

    seconds: tuple[float, ...]
    start_up: int | None = None
    leader: int | None = None


def makespan(searches: Sequence[Search], slots: int) -> float:
    """Seconds from the first trial's start to the last one's end with ``slots`` trials at a time, ``searches`` in
    run order (the module docstring's rules).

    Raises ``ValueError`` if ``slots`` < 1, a leader index is out of range or not earlier in the sequence, or a
    follower has more trials than its leader.
    """
    return _simulate(searches, slots)[0]


def most_parallel(searches: Sequence[Search]) -> int:
    """The most trials ``searches`` ever run at once given a slot for every trial: with at least this many slots the
    trials start and end exactly as with unlimited slots, so more slots cannot shorten the ``makespan``. Raises
    ``ValueError`` as ``makespan`` does."""
    return _simulate(searches, max(1, sum(len(search.seconds) for search in searches)))[1]


def _simulate(searches: Sequence[Search], slots: int) -> tuple[float, int]:
    """(makespan, the most trials running at once)."""
    if slots < 1:
        raise ValueError(f"slots: at least 1 trial at a time, got {slots}")
    for index, search in enumerate(searches):
        if search.leader is not None:
            if not 0 <= search.leader < index:
                raise ValueError(f"search {index}: its leader must come before it, got {search.leader}")
            if len(search.seconds) > len(searches[search.leader].seconds):
                raise ValueError(f"search {index}: more trials than its leader {search.leader}")
    asked = [0] * len(searches)  # trials handed out so far, per search
    running = [0] * len(searches)
    left = sum(len(search.seconds) for search in searches)
    ends: list[tuple[float, int]] = []  # (end time, search index) of the running trials
    now, free, peak = 0.0, slots, 0

    def may_ask(index: int) -> bool:
        search = searches[index]
        if asked[index] >= len(search.seconds):
            return False
        if search.leader is not None:
            return asked[search.leader] > asked[index]
        return search.start_up is None or asked[index] < search.start_up or running[index] == 0

    while left:
        while free:
            # Breadth-first: the lowest trial number, then run order (a leader always precedes its followers).
            waiting = [(asked[i], i) for i in range(len(searches)) if may_ask(i)]
            if not waiting:
                break
            _, index = min(waiting)
            heapq.heappush(ends, (now + searches[index].seconds[asked[index]], index))
            asked[index] += 1
            running[index] += 1
            free -= 1
            left -= 1
        peak = max(peak, slots - free)
        if not ends:  # never: a search with nothing running may always ask, and a leader asks before its followers
            raise AssertionError("no trial may run and none is running")
        now, index = heapq.heappop(ends)
        running[index] -= 1
        free += 1
        while ends and ends[0][0] == now:
            _, index = heapq.heappop(ends)
            running[index] -= 1
            free += 1
    while ends:
        now, _ = heapq.heappop(ends)
    return now, peak
