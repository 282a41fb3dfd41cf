"""The sweep driver's link to the results store: a Ray Tune callback that records trials and epochs as they arrive.

The driver is the only writer of the store; workers only report to Ray Tune. Every write is an idempotent upsert on
natural keys, so reports replayed after a resume land on the same rows. A store that is briefly unavailable (SQLite
locked by another process, a dropped PostgreSQL connection) is retried with back-off; a store that stays away stops
the sweep (``StoreGaveUp``), and ``resume`` later replays what the trials have checkpointed.

How long "briefly" is can be set from the environment (read at each write, so tests can shorten it):
``ANALOG_SWEEP_STORE_RETRIES`` retries after the first try (default 5, 0 to 100) and
``ANALOG_SWEEP_STORE_RETRY_DELAY`` the first wait in seconds (default 0.25), doubled after each retry up to 30 s.
With the defaults a write gives up after about 8 s of waits (plus SQLite's busy timeout on each try; see
``ANALOG_SWEEP_SQLITE_BUSY_SECONDS`` in ``results``). Each retry prints one line on stderr.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ray import tune

from analog_sweep.orchestrator._search import ENDED_AS, LearningRateSearch
from analog_sweep.results import ACTIVITY_FIELDS, Store, StoreUnavailable, open_store
from analog_sweep.results._engine import without_secrets

T = TypeVar("T")
_EPOCH_FIELDS = ("train_loss", "test_error", "test_accuracy", "seconds", "validation_error", *ACTIVITY_FIELDS)
RETRIES_ENV = "ANALOG_SWEEP_STORE_RETRIES"
RETRY_DELAY_ENV = "ANALOG_SWEEP_STORE_RETRY_DELAY"
DEFAULT_RETRIES = 5
DEFAULT_FIRST_DELAY = 0.25
MAX_DELAY = 30.0


class StoreGaveUp(RuntimeError):
    """The store stayed unavailable through every retry; the sweep stops and can be resumed."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a store write is retried: ``retries`` after the first try, the first wait
    ``first_delay`` seconds, doubled after each retry up to ``MAX_DELAY``."""

    retries: int = DEFAULT_RETRIES
    first_delay: float = DEFAULT_FIRST_DELAY

    def delays(self) -> list[float]:
        return [min(MAX_DELAY, self.first_delay * 2**n) for n in range(self.retries)]


def retry_policy() -> RetryPolicy:
    """The retry policy from ``$ANALOG_SWEEP_STORE_RETRIES`` and ``$ANALOG_SWEEP_STORE_RETRY_DELAY`` (defaults if
    unset); a value that is not a number in range raises ``ValueError`` with a one-line message."""
    retries, delay = DEFAULT_RETRIES, DEFAULT_FIRST_DELAY
    text = os.environ.get(RETRIES_ENV, "").strip()
    if text:
        try:
            retries = int(text)
        except ValueError:
            retries = -1
        if not 0 <= retries <= 100:
            raise ValueError(f"{RETRIES_ENV} must be a whole number from 0 to 100, got {text!r}")
    text = os.environ.get(RETRY_DELAY_ENV, "").strip()
    if text:
        try:
            delay = float(text)
        except ValueError:
            delay = -1.0
        if not 0 <= delay <= MAX_DELAY:  # NaN fails too
            raise ValueError(f"{RETRY_DELAY_ENV} must be a number of seconds from 0 to {MAX_DELAY:g}, got {text!r}")
    return RetryPolicy(retries, delay)


def _notice(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def with_retries(
    write: Callable[[], T],
    *,
    policy: RetryPolicy | None = None,
    notice: Callable[[str], None] | None = _notice,
) -> T:
    """Run ``write``, retrying while the store is unavailable (``retry_policy()`` unless ``policy`` is given);
    each retry is announced through ``notice``. Raises ``StoreGaveUp`` when the last retry fails too."""
    policy = policy or retry_policy()
    delays = policy.delays()
    for attempt in range(len(delays) + 1):
        try:
            return write()
        except StoreUnavailable as exc:
            if attempt == len(delays):
                tries = "1 try" if attempt == 0 else f"{attempt + 1} tries"
                raise StoreGaveUp(f"results store unavailable after {tries}: {exc}") from None
            if notice is not None:
                notice(
                    f"results store unavailable ({exc}); retry {attempt + 1} of {len(delays)} in {delays[attempt]:g} s"
                )
            time.sleep(delays[attempt])
    raise AssertionError("unreachable")


class StoreRecorder(tune.Callback):
    """Records each trial's start, epochs and end in the store, and re-chooses the point's trial (with the sweep's
    selection rule) once the point's trials are over."""

    def __init__(self, store: Store, sweep: str, search: LearningRateSearch) -> None:
        self.store = store
        self.sweep = sweep
        self.search = search
        # Trials whose rpu config this driver has recorded (it comes with every report; one write a trial suffices).
        self.rpu_recorded: set[str] = set()
        # Ray Tune wraps an exception raised in a callback into a TuneError holding only its traceback text; the
        # driver (or the command line) finds the real reason here, or in the TuneError's ``__context__``.
        self.gave_up: StoreGaveUp | None = None

    def _write(self, write: Callable[[], T]) -> T | None:
        """Write with retries. Once the store is given up on, nothing more is written; ``StoreGaveUpStopper``
        then stops the sweep (raising here would go through Ray Tune, which logs a traceback on some paths)."""
        if self.gave_up is not None:
            return None
        try:
            return with_retries(write)
        except StoreGaveUp as exc:
            self.gave_up = exc
            return None

    # Ray Tune pickles its callbacks (and, through the stopper, this recorder) into the experiment's files
    # (tuner.pkl, search_gen_state-*.json): they must hold no connection and no secret. The pickle carries a token
    # for the open store of this process and the store's URL without its password; unpickled here, the recorder
    # uses the same store, elsewhere it reopens the URL (the password then comes from PGPASSWORD or ~/.pgpass).
    def __getstate__(self) -> dict[str, Any]:
        token = self.__dict__.get("_store_token") or uuid.uuid4().hex
        self.__dict__["_store_token"] = token
        _OPEN_STORES[token] = self.store
        url = without_secrets(self.store.engine.url).render_as_string(hide_password=False)
        return {**self.__dict__, "store": url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = _OPEN_STORES.get(state.get("_store_token", "")) or open_store(state["store"])

    def _record_trial(self, trial: Any, status: str, error: str | None = None) -> None:
        config = trial.config
        self._write(
            lambda: self.store.record_trial(
                config["trial_id"],
                self.sweep,
                config["point_key"],
                lr=config["lr"],
                status=status,
                ray_trial_id=trial.trial_id,
                error=error,
            )
        )

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record_trial(trial, "running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "epoch" not in result:
            return
        # The rpu config first: the epoch is then the last write of a result, so a store that has an epoch of a trial
        # also has the config it ran with.
        self._record_rpu_config(trial.config["trial_id"], result)
        fields = {name: result.get(name) for name in _EPOCH_FIELDS}
        self._write(lambda: self.store.record_epoch(trial.config["trial_id"], int(result["epoch"]), **fields))

    def _record_rpu_config(self, trial_id: str, result: dict) -> None:
        """Keep the trial's resolved rpu config (sent with each report) once: analog trials only."""
        if result.get("rpu_config") is None or trial_id in self.rpu_recorded:
            return
        self._write(lambda: self.store.set_trial_rpu_config(trial_id, result["rpu_config"]))
        if self.gave_up is None:
            self.rpu_recorded.add(trial_id)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        ended_as = (trial.last_result or {}).get(ENDED_AS)
        if ended_as in ("failed", "diverged"):  # no result: bad data, diverged training (the reason beside it)
            self._record_trial(trial, ended_as, error=trial.last_result.get("error") or ended_as)
            self._record_rpu_config(trial.config["trial_id"], trial.last_result)
            self._choose_best_if_done(trial.config["point_key"])
            return
        pruned = self.search.was_pruned(trial.trial_id)
        if not pruned and not self.search.ran_every_epoch(trial.config["point_key"], trial.last_result):
            return  # stopped early by the driver: it stays running until resume finishes it
        self._record_trial(trial, "pruned" if pruned else "completed")
        self._choose_best_if_done(trial.config["point_key"])

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = trial.error_file and _last_line(trial.error_file)
        self._record_trial(trial, "failed", error=error or "trial failed")
        self._choose_best_if_done(trial.config["point_key"])

    def _choose_best_if_done(self, point_key: str) -> None:
        if self.search.point_finished(point_key):
            self._write(lambda: self.store.choose_best(self.sweep, point_key))


# The stores recorders of this process write to, by the token their pickles carry instead of a URL with a password.
_OPEN_STORES: weakref.WeakValueDictionary[str, Store] = weakref.WeakValueDictionary()


class StoreGaveUpStopper(tune.Stopper):
    """Stops the whole sweep once the recorder has given up on the store."""

    def __init__(self, recorder: StoreRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.recorder.gave_up is not None


def _last_line(path: str) -> str | None:
    try:
        with open(path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None
