"""Warm starts across a sweep's points: neighbouring device points want nearly the same learning rate.

A robustness sweep moves one device property at a time away from a base device (``sweeps/README.md``,
"Expansion"). The learning rate that suits transfer noise 10 % is close to the one that suits 0 % or 30 %, so a
point's search need not start from scratch: with ``lr_search.warm_start: neighbours`` (the default; TPE only) its
first trial runs the best learning rate of its *inward neighbours* (the next point towards the base device on each
axis it differs in, same mode, algorithm, task and seed), its first sampler trial probes one step from that rate
to the side its neighbours' trials favour (``probe_learning_rate``), and the points run base first, then outward
along each axis, so that neighbours tend to be finished when a point starts. This module holds the rates and
re-exports the geometry (``sweeps._neighbours``, which the dry run shares);
``orchestrator._search`` records and queues them, ``orchestrator._point_pruner`` prunes like with like.

Definitions (all in the points' own axis values, the units of ``sweeps._schema.DEVICE_AXES``):

- an axis's *ranks* are the positions of its values, sorted, with the base device's value among them;
- a point's *distance* is the sum over its swept axes of |rank - base rank| (0 for the base point and for modes that
  do not respond to any swept axis);
- an *inward neighbour* of a point P on axis A is the point with the same mode, algorithm, task, seed and other
  axis values whose value on A lies between the base's and P's, nearest to P's (one per axis P differs from the
  base in);
- with ``selection.per_seed: false`` a neighbour is its whole device point (every seed), so its best learning rate
  is the shared choice's: the rate completed by the most seeds, then the lowest mean objective, then the smaller
  (the device point's first seed runs the search, the others follow its rates: ``orchestrator._search``);
- with ``selection.per_seed: true`` each seed searches on its own, and a point's *earlier seeds* (the seeds before
  it in the spec's order at the same mode, algorithm, task and device) are neighbours too, one group: so seed 1 of
  the base point starts from seed 0's best rate;
- an *outward neighbour* of P on axis A is the same with A's value beyond P's, away from the base, nearest to P's.
  P is *bracketed* on A when it has both; with every neighbour on both sides finished and agreeing on one best
  learning rate, that rate is strongly predicted at P (``bracketed_rate``). Along a grid the outward neighbour runs
  after P, so this happens where points are added between finished ones: adaptive refinement (``axes.refine``).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence

import optuna
from optuna.trial import TrialState

# The states of a study trial that has ended (completed, pruned, or failed: diverged or crashed).
FINISHED_STATES = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)


def best_learning_rate(trials: Iterable[optuna.trial.FrozenTrial]) -> float | None:
    """The best learning rate among completed study trials (of one point, or of the seeds of one device point):
    completed by the most trials (seeds), then the lowest mean objective, then the smaller rate; None if none
    completed. The objective is what the studies minimise (``orchestrator._search``: validation or test error, %)."""
    scores: dict[float, list[float]] = defaultdict(list)
    for trial in trials:
        if trial.state == TrialState.COMPLETE and trial.value is not None and "lr" in trial.params:
            scores[trial.params["lr"]].append(trial.value)
    if not scores:
        return None
    return min(scores, key=lambda lr: (-len(scores[lr]), sum(scores[lr]) / len(scores[lr]), lr))


def bracketed_rate(
    pairs: Sequence[tuple[Sequence[str], Sequence[str]]],
    trials_of: Callable[[str], list[optuna.trial.FrozenTrial]],
    finished: Callable[[str], bool],
) -> float | None:
    """The learning rate a bracketed point's neighbours on both sides agree on, else None.

    ``pairs``: the point's (inward, outward) neighbour groups, one per axis it differs from the base in
    (``Neighbourhood.brackets``; empty: not bracketed). ``trials_of(key)``: a neighbour's study trials;
    ``finished(key)``: whether that neighbour's search has ended. The rate is returned only when every neighbour of
    every pair has finished and each group's best rate (``best_learning_rate``) is one and the same rate.
    """
    if not pairs:
        return None
    rates = set()
    for pair in pairs:
        for group in pair:
            if not all(finished(key) for key in group):
                return None
            rate = best_learning_rate([trial for key in group for trial in trials_of(key)])
            if rate is None:
                return None
            rates.add(rate)
    return rates.pop() if len(rates) == 1 else None


def probe_learning_rate(
    trials: Iterable[optuna.trial.FrozenTrial], best: float, low: float, high: float, step: float
) -> float | None:
    """The first sampler trial of a warm-started point: one step from its warm-start rate, towards the likelier side.

    The side: the neighbours' nearest tried rate below ``best`` and nearest above (on a log scale), each scored by
    the mean objective of its completed trials (a rate with none completed, all pruned or failed, scores worst). A
    side with no tried rate is unexplored and goes first (the other side's rate is known to be worse than ``best``);
    with both sides tried, the lower score's side; with neither, or a tie, the side towards the middle of the range on
    a log scale (down at the middle). The probe is clipped to the range; a warm-start rate at the edge probes the
    other side. So the search walks along the learning rate as the sweep moves outward: a point whose neighbour's
    probe lost probes the other way, one whose neighbour's probe won goes on in the same direction.

    Args:
        trials: The inward neighbours' study trials (objective: validation or test error, %).
        best: The point's warm-start learning rate.
        low: The lower end of the search range.
        high: The upper end of the search range.
        step: The factor (> 1) between the warm-start rate and the probe.

    Returns:
        The probe's learning rate, or None when the range leaves no room on either side.
    """
    scores: dict[float, list[float]] = {}
    for trial in trials:
        lr = trial.params.get("lr")
        if lr is None or lr == best or trial.state not in FINISHED_STATES:
            continue
        scores.setdefault(lr, [])  # a rate tried, even if no trial of it completed
        if trial.state == TrialState.COMPLETE and trial.value is not None:
            scores[lr].append(trial.value)

    def score(lr: float) -> float:
        return sum(scores[lr]) / len(scores[lr]) if scores[lr] else math.inf

    below = max((lr for lr in scores if lr < best), default=None)
    above = min((lr for lr in scores if lr > best), default=None)
    towards_middle = 1 if math.log(best) < (math.log(low) + math.log(high)) / 2 else -1
    if below is None and above is None:
        direction = towards_middle
    elif below is None or above is None:
        direction = -1 if below is None else 1
    elif score(below) != score(above):
        direction = -1 if score(below) < score(above) else 1
    else:
        direction = towards_middle
    for side in (direction, -direction):
        probe = min(high, max(low, best * step**side))
        if abs(math.log(probe / best)) > 1e-9:
            return probe
    return None
