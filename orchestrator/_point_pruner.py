"""Pruning that compares like with like: a trial against the other trials of its own point, epoch by epoch.

Optuna's median pruner compares a trial only with *completed* trials of its study. A sweep point's trials run side by
side (a warm-started first trial and the sampler's next ones start together), so its second trial would have nothing
to compare with and run to the end. ``PointMedianPruner`` (used with ``lr_search.warm_start: neighbours`` and
``pruner: median``) compares with every other trial of the same point that has reached the same epoch, running or
completed; only while the point has fewer such trials than ``n_startup_trials`` (at least 1) are the completed
trials of its inward neighbours (``orchestrator._warm_start``) added. Trials started at a warm-start learning rate
are never pruned, and neither is a trial while no other trial of its point has completed or is running (a point
started before any neighbour finished has no warm-start trial), so every point keeps at least one trial run to its
last epoch. When the seeds of a device point share one search (``selection.per_seed: false``), a follower seed's
trials follow its leader's decisions only: a trial is pruned at its next epoch once the leader's trial of the same
rate was pruned (a rate that not every seed completed is never chosen), and never on the follower's own values (which
would veto a rate the leader kept from the shared choice).

Options, in the product's epochs (1-based, as reported by the worker): ``n_startup_trials`` S (default 5, as
Optuna's): no trial is pruned at an epoch until S other trials have a value there; ``n_warmup_steps`` W (default 0):
no trial is pruned before epoch W (epochs 1 and W = 0 or 1 alike, as ``sweeps._cost.pruned_trial_epochs`` prices
it). A trial is pruned at epoch e when its best value up to e is above the median of the others' values at e.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable

import optuna
from optuna.trial import FrozenTrial, TrialState

_COMPARED = (TrialState.COMPLETE, TrialState.RUNNING)


class PointMedianPruner(optuna.pruners.BasePruner):
    """A median pruner over the point's own trials (running included), then its neighbours' completed ones.

    ``exempt(trial)``: whether a trial may never be pruned (it runs a warm-start rate). ``neighbour_trials()``: the
    completed trials of the point's inward neighbours. ``leader_pruned(trial)``: whether the same rate's trial of the
    first seed (which the trial follows) was pruned; ``follower``: the point is a follower seed, whose trials are
    pruned only that way. Values are the studies' objective (validation or test error, %), lower is better.
    """

    def __init__(
        self,
        exempt: Callable[[FrozenTrial], bool],
        neighbour_trials: Callable[[], list[FrozenTrial]],
        n_startup_trials: int = 5,
        n_warmup_steps: int = 0,
        leader_pruned: Callable[[FrozenTrial], bool] = lambda trial: False,
        follower: bool = False,
    ) -> None:
        self._exempt = exempt
        self._leader_pruned = leader_pruned
        self._follower = follower
        self._neighbour_trials = neighbour_trials
        self._n_startup = max(1, n_startup_trials)
        self._n_warmup = n_warmup_steps

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        step = trial.last_step
        if step is None or step < self._n_warmup or self._exempt(trial):
            return False
        best = min(value for at, value in trial.intermediate_values.items() if at <= step)
        if math.isnan(best):
            return True
        if self._follower:
            return self._leader_pruned(trial)
        own = [t for t in study.get_trials(deepcopy=False, states=_COMPARED) if t.number != trial.number]
        if not own:
            return False  # the point's last hope: pruning it could leave the point without a completed trial
        others = [t.intermediate_values[step] for t in own if step in t.intermediate_values]
        if len(others) < self._n_startup:
            others += [
                t.intermediate_values[step]
                for t in self._neighbour_trials()
                if t.state == TrialState.COMPLETE and step in t.intermediate_values
            ]
        others = [value for value in others if not math.isnan(value)]
        if len(others) < self._n_startup:
            return False
        return best > statistics.median(others)
