"""The sweep driver's link to the results store: a Ray Tune callback that records trials and epochs as they arrive.

The driver is the only writer of the store; workers only report to Ray Tune. The recorder writes through
``RetryingStore``, so a store that is briefly unavailable is waited out; a store that stays away stops the sweep
(``StoreGaveUp``, through ``StoreGaveUpStopper``), and ``resume`` later replays what the trials have checkpointed.
A trial that failed on a cause lasting for the rest of the run (a full disk: ``_environmental.LASTING``) stops the
sweep the same way (``lasting``), since every other trial would fail on it too; ``resume`` reruns it.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import Callable
from typing import Any

from ray import tune

from analog_sweep.orchestrator._environmental import environmental_cause, is_lasting
from analog_sweep.orchestrator._errors import LastingFailure, StoreGaveUp
from analog_sweep.orchestrator._node_versions import NodeVersions, environment_from_report
from analog_sweep.orchestrator._retrying_store import RetryingStore
from analog_sweep.orchestrator._rpu_text import rpu_config_from_report
from analog_sweep.orchestrator._search import ENDED_AS, LearningRateSearch
from analog_sweep.results import ACTIVITY_FIELDS, Store, open_store, without_secrets

_EPOCH_FIELDS = ("train_loss", "test_error", "test_accuracy", "seconds", "validation_error", *ACTIVITY_FIELDS)


class StoreRecorder(tune.Callback):
    """Records each trial's start, epochs and end in the store, and re-chooses the point's trial (with the sweep's
    selection rule) once the point's trials are over.

    Args:
        store: The results store; a plain ``Store`` is wrapped in a ``RetryingStore``.
        sweep: The sweep's name.
        search: The learning-rate search whose trials Ray Tune runs.
        node_versions: The driver's package versions and what it said about each node: a trial's node that differs
            is warned about once (None: no warnings; the node is recorded all the same).
    """

    def __init__(
        self,
        store: Store | RetryingStore,
        sweep: str,
        search: LearningRateSearch,
        node_versions: NodeVersions | None = None,
    ) -> None:
        self.store = store if isinstance(store, RetryingStore) else RetryingStore(store)
        self.sweep = sweep
        self.search = search
        self.node_versions = node_versions
        # Trials whose rpu config this driver has recorded (it comes with every report; one write a trial suffices).
        self.rpu_recorded: set[str] = set()
        # Each trial's node environment as last recorded (a trial retried elsewhere reports its new node).
        self.node_recorded: dict[str, dict[str, Any]] = {}
        # Ray Tune wraps an exception raised in a callback into a TuneError holding only its traceback text; the
        # driver (or the command line) finds the real reason here, or in the TuneError's ``__context__``.
        self.gave_up: StoreGaveUp | None = None
        # The first trial that failed on a cause that lasts for the rest of the run (a full disk): the sweep stops.
        self.lasting: LastingFailure | None = None

    def _write(self, write: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Call ``write``, a method of the retrying store, unless the store was given up on.

        A write that gives up is kept in ``gave_up`` instead of raised, and nothing more is written;
        ``StoreGaveUpStopper`` then stops the sweep (raising here would go through Ray Tune, which logs a traceback
        on some paths).
        """
        if self.gave_up is not None:
            return
        try:
            write(*args, **kwargs)
        except StoreGaveUp as exc:
            self.gave_up = exc

    # Ray Tune pickles its callbacks (and, through the stopper, this recorder) into the experiment's files
    # (tuner.pkl, search_gen_state-*.json): they must hold no connection and no secret. The pickle carries a token
    # for the open store of this process and the store's URL without its password; unpickled here, the recorder
    # uses the same store, elsewhere it reopens the URL (the password then comes from PGPASSWORD or ~/.pgpass).
    def __getstate__(self) -> dict[str, Any]:
        token = self.__dict__.get("_store_token") or uuid.uuid4().hex
        self.__dict__["_store_token"] = token
        _OPEN_STORES[token] = self.store.wrapped
        url = without_secrets(self.store.engine.url).render_as_string(hide_password=False)
        return {**self.__dict__, "store": url}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.store = RetryingStore(_OPEN_STORES.get(state.get("_store_token", "")) or open_store(state["store"]))

    def _record_trial(self, trial: Any, status: str, error: str | None = None) -> None:
        config = trial.config
        self._write(
            self.store.record_trial,
            config["trial_id"],
            self.sweep,
            config["point_key"],
            lr=config["lr"],
            status=status,
            ray_trial_id=trial.trial_id,
            error=error,
        )

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._record_trial(trial, "running")

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if "epoch" not in result:
            return
        # The rpu config first: the epoch is then the last write of a result, so a store that has an epoch of a trial
        # also has the config it ran with.
        self._record_rpu_config(trial.config["trial_id"], result)
        self._record_node(trial.config["trial_id"], result)
        fields = {name: result.get(name) for name in _EPOCH_FIELDS}
        self._write(self.store.record_epoch, trial.config["trial_id"], int(result["epoch"]), **fields)

    def _record_rpu_config(self, trial_id: str, result: dict) -> None:
        """Keep the trial's resolved rpu config (sent with its first report, as JSON text) once: analog trials
        only."""
        if result.get("rpu_config") is None or trial_id in self.rpu_recorded:
            return
        self._write(self.store.set_trial_rpu_config, trial_id, rpu_config_from_report(result["rpu_config"]))
        if self.gave_up is None:
            self.rpu_recorded.add(trial_id)

    def _record_node(self, trial_id: str, result: dict) -> None:
        """Keep the environment of the trial's node (sent with the first report of each run of the trial), and let
        ``node_versions`` warn about a node that differs from the driver."""
        environment = environment_from_report(result.get("node_environment"))
        if environment is None or self.node_recorded.get(trial_id) == environment:
            return
        if self.node_versions is not None:
            self.node_versions.trial_environment(environment)
        self._write(self.store.set_trial_node_environment, trial_id, environment)
        if self.gave_up is None:
            self.node_recorded[trial_id] = environment

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        ended_as = (trial.last_result or {}).get(ENDED_AS)
        if ended_as in ("failed", "diverged"):  # no result: bad data, diverged training (the reason beside it)
            error = trial.last_result.get("error") or ended_as
            self._record_trial(trial, ended_as, error=error)
            self._record_rpu_config(trial.config["trial_id"], trial.last_result)
            if self.lasting is None and ended_as == "failed" and is_lasting(environmental_cause(error)):
                self.lasting = LastingFailure(trial.config["trial_id"], error, trial.last_result.get("log"))
            self._record_node(trial.config["trial_id"], trial.last_result)
            self._choose_best_if_done(trial.config["point_key"])
            return
        pruned = self.search.was_pruned(trial.trial_id)
        if not pruned and not self.search.ran_every_epoch(trial.config["point_key"], trial.last_result):
            return  # stopped early by the driver: it stays running until resume finishes it
        self._record_trial(trial, "pruned" if pruned else "completed")
        self._choose_best_if_done(trial.config["point_key"])

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        error = (trial.error_file and _last_line(trial.error_file)) or "trial failed"
        try:  # the sweep's journal too: the store may be away now, and a resume needs the cause to rerun it
            self.search.keep_failure_error(trial.config["point_key"], trial.config["trial_id"], error)
        except OSError:  # a full disk: the store row still has the error, and the sweep stops on it
            pass
        self._record_trial(trial, "failed", error=error)
        self._choose_best_if_done(trial.config["point_key"])

    def _choose_best_if_done(self, point_key: str) -> None:
        if self.search.point_finished(point_key):
            self._write(self.store.choose_best, self.sweep, point_key)


# The stores recorders of this process write to, by the token their pickles carry instead of a URL with a password.
_OPEN_STORES: weakref.WeakValueDictionary[str, Store] = weakref.WeakValueDictionary()


class StoreGaveUpStopper(tune.Stopper):
    """Stops the whole sweep once the recorder has given up on the store, or a trial failed on a cause that lasts
    (``StoreRecorder.lasting``)."""

    def __init__(self, recorder: StoreRecorder) -> None:
        self.recorder = recorder

    def __call__(self, trial_id: str, result: dict) -> bool:
        return False

    def stop_all(self) -> bool:
        return self.recorder.gave_up is not None or self.recorder.lasting is not None


def _last_line(path: str) -> str | None:
    try:
        with open(path) as handle:
            lines = [line.strip() for line in handle if line.strip()]
    except OSError:
        return None
    return lines[-1][:500] if lines else None
