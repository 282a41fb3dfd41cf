"""The sweep driver's link to the results store: a Ray Tune callback that records trials and epochs as they arrive.

The driver is the only writer of the store; workers only report to Ray Tune. Every write is an idempotent upsert on
natural keys, so reports replayed after a resume land on the same rows. A store that is briefly unavailable (SQLite
locked by another process, a dropped PostgreSQL connection) is retried with back-off; a store that stays away stops
the sweep (``StoreGaveUp``), and ``resume`` later replays what the trials have checkpointed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from ray import tune

from orchestrator._search import LearningRateSearch
from results import Store, StoreUnavailable, open_store

T = TypeVar("T")
_EPOCH_FIELDS = ("train_loss", "test_error", "test_accuracy", "seconds")


class StoreGaveUp(RuntimeError):
    """The store stayed unavailable through every retry; the sweep stops and can be resumed."""


def with_retries(write: Callable[[], T], *, attempts: int = 6, first_delay: float = 0.25) -> T:
    """Run ``write``, retrying while the store is unavailable: delays double from ``first_delay`` (0.25 .. 8 s)."""
    delay = first_delay
    for attempt in range(1, attempts + 1):
        try:
            return write()
        except StoreUnavailable as exc:
            if attempt == attempts:
                raise StoreGaveUp(f"results store unavailable after {attempts} attempts: {exc}") from None
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


class StoreRecorder(tune.Callback):
    """Records each trial's start, epochs and end in the store, and re-chooses the point's best trial on each end."""

    def __init__(self, store: Store, sweep: str, search: LearningRateSearch) -> None:
        self.store = store
        self.sweep = sweep
        self.search = search

    # Ray Tune pickles its callbacks with the experiment: keep the store's URL, not its connections.
    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "store": self.store.url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = open_store(state["store"])

    def _record_trial(self, trial: Any, status: str, error: str | None = None) -> None:
        config = trial.config
        with_retries(
            lambda: self.store.record_trial(
                config["trial_id"], self.sweep, config["point_key"], lr=config["lr"], status=status,
                ray_trial_id=trial.trial_id, error=error,
            )
        )

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record_trial(trial, "running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "epoch" not in result:
            return
        fields = {name: result.get(name) for name in _EPOCH_FIELDS}
        with_retries(lambda: self.store.record_epoch(trial.config["trial_id"], int(result["epoch"]), **fields))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record_trial(trial, "pruned" if self.search.was_pruned(trial.trial_id) else "completed")
        self._choose_best_if_done(trial.config["point_key"])

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.error_file and _last_line(trial.error_file)
        self._record_trial(trial, "failed", error=error or "trial failed")
        self._choose_best_if_done(trial.config["point_key"])

    def _choose_best_if_done(self, point_key: str) -> None:
        if self.search.point_finished(point_key):
            with_retries(lambda: self.store.choose_best(self.sweep, point_key))


def _last_line(path: str) -> str | None:
    try:
        with open(path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None
