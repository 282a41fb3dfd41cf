"""Stopping unpromising learning rates early: Ray Tune's scheduler hook, decided by the point's Optuna pruner."""

from __future__ import annotations

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from analog_sweep.orchestrator._search import LearningRateSearch


class OptunaPruning(FIFOScheduler):
    """Runs trials first-in first-out and stops one when its point's study prunes it (recorded as pruned)."""

    def __init__(self, search: LearningRateSearch) -> None:
        super().__init__()
        self.search = search

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:  # noqa: ANN001 - Ray's signature
        if self.search.should_prune(trial.trial_id, result):
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE
