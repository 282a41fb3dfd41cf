"""The driver's results store, retried at the boundary: a wrapper whose every call waits out a store that is away.

A store that is briefly unavailable (SQLite locked by another process, a dropped PostgreSQL connection) raises
``StoreUnavailable``; ``RetryingStore`` retries such a call with back-off and raises ``StoreGaveUp`` when the store
stays away, so the sweep stops and ``resume`` later replays what the trials have checkpointed. Every write is an
idempotent upsert on natural keys, so a retried write, or one replayed after a resume, lands on the same row. Any
other store error (``NotFound``, a conflict) is raised at once: asking again would not change the answer, and so
is a full disk ("database or disk is full"), which waiting does not free.

Other sweeps writing the same store at the same time are not an outage and never reach this retry: on SQLite each
write transaction takes the store's one write lock when it begins (``BEGIN IMMEDIATE``) and waits inside SQLite's
busy timeout for another driver's transaction (milliseconds) to commit; on PostgreSQL row locks do the same.

How long "briefly" is can be set from the environment, read at each call (so tests can shorten it):
``ANALOG_SWEEP_STORE_RETRIES`` retries after the first try (default 5, 0 to 100) and
``ANALOG_SWEEP_STORE_RETRY_DELAY`` the first wait in seconds (default 0.25), doubled after each retry up to 30 s.
With the defaults a call gives up after about 8 s of waits (plus SQLite's busy timeout on each try; see
``ANALOG_SWEEP_SQLITE_BUSY_SECONDS`` in ``results``). Each retry prints one line on stderr.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

from analog_sweep.orchestrator._environmental import environmental_cause, is_lasting
from analog_sweep.orchestrator._errors import StoreGaveUp
from analog_sweep.results import StoreUnavailable

if TYPE_CHECKING:
    import sqlalchemy as sa

    from analog_sweep.results import BestTrial, Selection, Store

T = TypeVar("T")
RETRIES_ENV = "ANALOG_SWEEP_STORE_RETRIES"
RETRY_DELAY_ENV = "ANALOG_SWEEP_STORE_RETRY_DELAY"
DEFAULT_RETRIES = 5
DEFAULT_FIRST_DELAY = 0.25
MAX_DELAY = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a store call is retried: ``retries`` after the first try, the first wait
    ``first_delay`` seconds, doubled after each retry up to ``MAX_DELAY``."""

    retries: int = DEFAULT_RETRIES
    first_delay: float = DEFAULT_FIRST_DELAY

    def delays(self) -> list[float]:
        return [min(MAX_DELAY, self.first_delay * 2**n) for n in range(self.retries)]


def retry_policy() -> RetryPolicy:
    """The retry policy from ``$ANALOG_SWEEP_STORE_RETRIES`` and ``$ANALOG_SWEEP_STORE_RETRY_DELAY``.

    Returns:
        The policy, with the defaults for a variable that is unset or empty.

    Raises:
        ValueError: If a variable is not a number in range (a one-line message naming it).
    """
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
    """Run ``write``, retrying while the store is unavailable.

    Args:
        write: The store call, without arguments.
        policy: How to retry; ``retry_policy()`` (read now) if None.
        notice: Told each retry in one line; None says nothing.

    Returns:
        What ``write`` returned.

    Raises:
        StoreGaveUp: If the last retry fails too (``StoreUnavailable`` every time).
        ValueError: If ``policy`` is None and the environment's retry settings are bad.
    """
    policy = policy or retry_policy()
    delays = policy.delays()
    for attempt in range(len(delays) + 1):
        try:
            return write()
        except StoreUnavailable as exc:
            if is_lasting(environmental_cause(str(exc))):  # a full disk: waiting would not free it
                raise StoreGaveUp(f"results store full: {exc}") from None
            if attempt == len(delays):
                tries = "1 try" if attempt == 0 else f"{attempt + 1} tries"
                raise StoreGaveUp(f"results store unavailable after {tries}: {exc}") from None
            if notice is not None:
                notice(
                    f"results store unavailable ({exc}); retry {attempt + 1} of {len(delays)} in {delays[attempt]:g} s"
                )
            time.sleep(delays[attempt])
    raise AssertionError("unreachable")


class RetryingStore:
    """A results store whose calls are retried with ``with_retries`` while the store is unavailable.

    It delegates, one explicit method each, the ``Store`` calls the sweep driver and its recorder make; each raises
    ``StoreGaveUp`` where ``Store`` would raise ``StoreUnavailable`` after the last retry, and every other error of
    ``Store`` unchanged. A call that must not wait (a last status write while an error is being reported) goes to
    ``wrapped``, the plain store, instead.

    Args:
        store: The store to wrap. A ``RetryingStore`` is unwrapped first, so calls are never retried twice over.
        policy: How to retry; None reads ``retry_policy()`` at each call.
        notice: Told each retry in one line (default: stderr); None says nothing.
    """

    def __init__(
        self,
        store: Store | RetryingStore,
        *,
        policy: RetryPolicy | None = None,
        notice: Callable[[str], None] | None = _notice,
    ) -> None:
        self.wrapped: Store = store.wrapped if isinstance(store, RetryingStore) else store
        self.policy = policy
        self.notice = notice

    def _retry(self, call: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        return with_retries(partial(call, *args, **kwargs), policy=self.policy, notice=self.notice)

    @property
    def engine(self) -> sa.Engine:
        return self.wrapped.engine

    # ---- writes: idempotent upserts, so a retried one lands on the row a first, lost, try may have written ----

    def record_sweep(
        self,
        name: str,
        spec: Mapping[str, Any],
        spec_hash: str,
        status: str = "pending",
        experiment_path: str | None = None,
        selection: Selection | None = None,
    ) -> None:
        """``Store.record_sweep``, retried."""
        self._retry(self.wrapped.record_sweep, name, spec, spec_hash, status, experiment_path, selection)

    def set_sweep_status(self, name: str, status: str) -> None:
        """``Store.set_sweep_status``, retried."""
        self._retry(self.wrapped.set_sweep_status, name, status)

    def record_run(self, sweep: str, run: Mapping[str, Any]) -> None:
        """``Store.record_run``, retried."""
        self._retry(self.wrapped.record_run, sweep, run)

    def record_pretrained(self, sweep: str, model: Mapping[str, Any]) -> None:
        """``Store.record_pretrained``, retried."""
        self._retry(self.wrapped.record_pretrained, sweep, model)

    def record_point(self, sweep: str, point_key: str, **fields: Any) -> None:
        """``Store.record_point``, retried (``fields``: its keyword arguments)."""
        self._retry(self.wrapped.record_point, sweep, point_key, **fields)

    def record_trial(self, trial_id: str, sweep: str, point_key: str, **fields: Any) -> None:
        """``Store.record_trial``, retried (``fields``: its keyword arguments)."""
        self._retry(self.wrapped.record_trial, trial_id, sweep, point_key, **fields)

    def record_epoch(self, trial_id: str, epoch: int, **fields: Any) -> None:
        """``Store.record_epoch``, retried (``fields``: its keyword arguments)."""
        self._retry(self.wrapped.record_epoch, trial_id, epoch, **fields)

    def set_trial_rpu_config(self, trial_id: str, rpu_config: Mapping[str, Any] | None) -> None:
        """``Store.set_trial_rpu_config``, retried."""
        self._retry(self.wrapped.set_trial_rpu_config, trial_id, rpu_config)

    def record_node_environment(self, environment: Mapping[str, Any]) -> str:
        """``Store.record_node_environment``, retried."""
        return self._retry(self.wrapped.record_node_environment, environment)

    def set_trial_node_environment(self, trial_id: str, environment: Mapping[str, Any] | None) -> None:
        """``Store.set_trial_node_environment``, retried."""
        self._retry(self.wrapped.set_trial_node_environment, trial_id, environment)

    def choose_best(self, sweep: str, point_key: str) -> BestTrial:
        """``Store.choose_best``, retried."""
        return self._retry(self.wrapped.choose_best, sweep, point_key)

    # ---- reads ----

    def get_sweep(self, name: str) -> dict[str, Any]:
        """``Store.get_sweep``, retried (``NotFound`` at once)."""
        return self._retry(self.wrapped.get_sweep, name)

    def selection(self, sweep: str) -> Selection:
        """``Store.selection``, retried."""
        return self._retry(self.wrapped.selection, sweep)

    def provenance(self, sweep: str) -> dict[str, Any]:
        """``Store.provenance``, retried (``NotFound`` at once)."""
        return self._retry(self.wrapped.provenance, sweep)

    def list_points(self, sweep: str) -> list[dict[str, Any]]:
        """``Store.list_points``, retried."""
        return self._retry(self.wrapped.list_points, sweep)

    def list_trials(self, sweep: str, point_key: str | Sequence[str] | None = None) -> list[dict[str, Any]]:
        """``Store.list_trials``, retried."""
        return self._retry(self.wrapped.list_trials, sweep, point_key)

    def best_points(self, sweep: str, selection: Selection | None = None) -> list[dict[str, Any]]:
        """``Store.best_points``, retried."""
        return self._retry(self.wrapped.best_points, sweep, selection)
