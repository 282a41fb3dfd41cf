"""The learning-rate search: one Optuna study per sweep point, served to Ray Tune as a single searcher.

Ray Tune asks one searcher for trials; the paper searches the learning rate separately at every device point. This
searcher keeps one Optuna study per point (TPE over a log range, or a fixed grid) and hands out trials breadth-first,
so every point gets its first trial before any gets its second. Which trial runs next is decided by
``sweeps._scheduling``, the rules the dry run replays too: this module reads the studies into the plain counts and
trial records those rules take, and turns their answer into Optuna and Ray Tune calls.

The studies live in an Optuna journal file beside the sweep's checkpoints (``orchestrator._journal`` checks it
first): they are the durable record of which trials exist, which finished, and with what result. A study trial that
was handed out but never told (the driver died) is handed out again on resume under the same trial id, so its worker
continues from that trial's own checkpoint instead of starting a new trial.

A trial that failed on its environment (a full disk, memory, a lost node: ``orchestrator._environmental``) can be run
again at a resume (``rerun``). A failed study trial cannot be reopened, so the rerun is a new study trial that records
which trial it runs again (``RERUN_OF``); it takes that trial's place, its trial id and its checkpoint folder, so the
store's row of the trial is updated in place and the point counts the trial once. The place of a trial is its
``slot``: its position among the point's trials that are not reruns (the Optuna trial number when there are none).
"""

from __future__ import annotations

import math
import pickle
import threading
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState
from ray.tune.search import Searcher

from analog_sweep.orchestrator._dashboard import OBJECTIVE_NAMES, POINT_LABEL
from analog_sweep.orchestrator._point_pruner import PointMedianPruner
from analog_sweep.orchestrator._warm_start import FINISHED_STATES as _FINISHED_STATES
from analog_sweep.orchestrator._warm_start import best_learning_rate, bracketed_rate, probe_learning_rate
from analog_sweep.sweeps import (
    COMPLETE,
    FAILED,
    PRUNED,
    RUNNING,
    BreadthFirst,
    LrSearchSpec,
    Neighbourhood,
    Point,
    SelectionSpec,
    TrialRecord,
    bracket_pending,
    has_finished,
    has_settled,
    is_ready,
    may_ask,
    neighbourhood,
    seed_leaders,
    start_up_count,
    trial_config,
    warm_starts,
)
from analog_sweep.workers import DevicePoint

# What the studies optimise and prune on: the test error by the paper's rule (and for a searcher made without a
# selection rule), the validation error when points are chosen on validation (``METRICS[split]``).
METRIC = "test_error"
METRICS = {"test": "test_error", "validation": "validation_error"}
# What the studies' objective is (the study attribute OBJECTIVE), by the metric they minimise; its name and unit
# (``study.metric_names``, optuna-dashboard's axis titles) are ``OBJECTIVE_NAMES`` of the split it is measured on.
OBJECTIVES = {
    "test_error": "test error (%) at the trial's last epoch; its intermediate values are each epoch's test error",
    "validation_error": "lowest validation error (%) of the trial's epochs; its intermediate values are each epoch's "
    "validation error",
}
# The study attribute that says what a study minimises, for people and tools reading the journal; POINT_LABEL holds
# the label of the point it searches (``Point.label``; the study's name is the point's key, which never changes).
OBJECTIVE = "objective"
# The key of a trial's last report when it ended without a result (``orchestrator._trainable``): "failed" or
# "diverged", with "error" beside it.
ENDED_AS = "ended_as"
# The trial attribute of a study trial that runs a failed trial again: the slot (``LearningRateSearch._view``) of the
# trial it replaces, whose trial id it reports under.
RERUN_OF = "rerun_of"
# The study attribute that keeps the one-line errors of the point's trials that failed through Ray Tune, by trial id.
# Ray Tune tells a search only that a trial failed; the recorder, which reads the error, keeps it here as well as in
# the store, so a resume knows a failure's cause even when the store was away as the trial failed.
FAILURE_ERRORS = "failure_errors"
# The study attribute that records a point's warm-start learning rates, written once before the first is queued.
WARM_START = "warm_start"
# The study attribute that records a warm-started point's probe (its first sampler trial's rate, or None), written
# just before WARM_START, from the same neighbour trials.
WARM_PROBE = "warm_probe"
# The study attribute that records whether a warm-started point was bracketed (``_warm_start.bracketed_rate``): its
# neighbours on both sides had finished and chose its warm-start rate, so under patience it runs that rate alone.
# Written between WARM_PROBE and WARM_START.
WARM_BRACKETED = "warm_bracketed"

# A study trial's state as the scheduling rules name it (``sweeps._scheduling.TrialRecord``); WAITING (a queued
# value not handed out yet) is never passed to them.
_RECORDED = {TrialState.COMPLETE: COMPLETE, TrialState.PRUNED: PRUNED, TrialState.FAIL: FAILED}

optuna.logging.set_verbosity(optuna.logging.WARNING)


def _store_status(trial: optuna.trial.FrozenTrial) -> str:
    """The store's status of an ended study trial: a failed one that diverged is ``diverged``."""
    if trial.state == TrialState.FAIL and trial.user_attrs.get(ENDED_AS) == "diverged":
        return "diverged"
    names = {TrialState.COMPLETE: "completed", TrialState.PRUNED: "pruned", TrialState.FAIL: "failed"}
    return names.get(trial.state, "running")


@dataclass(frozen=True)
class IssuedTrial:
    point_key: str
    number: int
    trial_id: str


@dataclass(frozen=True)
class _View:
    """A point's trials by slot: ``trials[slot]`` is the latest study trial in the slot, ``slots`` maps the number of
    every study trial that is not a rerun to its slot."""

    trials: list[optuna.trial.FrozenTrial]
    slots: dict[int, int]

    @classmethod
    def of(cls, study_trials: list[optuna.trial.FrozenTrial]) -> _View:
        trials: list[optuna.trial.FrozenTrial] = []
        slots: dict[int, int] = {}
        for trial in study_trials:  # in number order: a rerun comes after the trial it replaces
            if RERUN_OF in trial.user_attrs:
                slot = int(trial.user_attrs[RERUN_OF])
                if slot < len(trials):
                    trials[slot] = trial
                continue
            slots[trial.number] = len(trials)
            trials.append(trial)
        return cls(trials, slots)


def trial_id_for(sweep: str, point_key: str, number: int) -> str:
    """A trial's id in the store and its checkpoint folder's name: unique across sweeps that share points."""
    return f"{sweep}-{point_key}-lr{number}"


class LearningRateSearch(Searcher):
    """A Ray Tune searcher over per-point Optuna studies; also tells the pruning scheduler when to stop a trial.

    Which trial runs next follows ``sweeps._scheduling``: breadth-first over the points in run order; where seeds share
    one TPE search (``selection.per_seed: false``) the first seed of each device point runs the search and its other
    seeds run the rates it drew, in the same order; with warm starts (``lr_search.warm_start: neighbours``, TPE, and a
    ``base``) points run base first, then outward, a point that has not started waits for its inward neighbours while
    other points have trials to run, its first trial runs their best learning rate (recorded in the study before it
    is queued, so a resume neither loses nor repeats it), and the median pruner compares like with like
    (``orchestrator._warm_start``, ``orchestrator._point_pruner``). Under ``lr_search.patience`` a point's search ends
    once that many sampler trials in a row have not beaten its best (``settled``).

    Args:
        sweep: The sweep's name, part of every trial id (``trial_id_for``).
        points: The points to search, one Optuna study each.
        lr_search: The spec's learning-rate search.
        journal_path: The Optuna journal file holding the studies.
        trial_settings: Settings added to every trial's config (what the worker needs beside the point and rate).
        selection: The spec's selection rule: on ``validation`` the studies minimise each trial's lowest validation
            error over its epochs and prune on each epoch's validation error; on ``test`` (or None) the final test
            error, as the paper did.
        base: The spec's base device (``device``); warm starts need it.
        earlier: The points of the sweep's earlier phases (the grid, before a refinement round), all ended. They are
            never run here, but are the new points' only axis neighbours (their studies are in the same journal): a
            round's point starts from its nearest inward one's best rate without waiting for the round's other points
            (a later seed with a choice per seed still waits for its earlier seeds), and the nearest one beyond it
            serves the bracket test (``orchestrator._warm_start.bracketed_rate``).
    """

    def __init__(
        self,
        sweep: str,
        points: list[Point],
        lr_search: LrSearchSpec,
        journal_path: str | Path,
        trial_settings: dict[str, Any],
        selection: SelectionSpec | None = None,
        base: DevicePoint | None = None,
        earlier: list[Point] | None = None,
    ) -> None:
        self.metric_name = METRICS[selection.split] if selection is not None else METRIC
        super().__init__(metric=self.metric_name, mode="min")
        self.sweep = sweep
        self.points = list(points)
        self.lr_search = lr_search
        self.journal_path = str(journal_path)
        self.trial_settings = dict(trial_settings)
        self.selection = selection
        self.base = base
        self.earlier = list(earlier or ())
        self._leaders = self._seed_leaders()  # follower point key -> its leader's
        self._followers: dict[str, list[str]] = {}
        for point in self.points:
            if point.key in self._leaders:
                self._followers.setdefault(self._leaders[point.key], []).append(point.key)
        self._warm: Neighbourhood | None = None
        self._order = self.points
        if base is not None and warm_starts(lr_search):
            shared = selection is not None and not selection.per_seed
            self._warm = neighbourhood(self.points, base, shared_seeds=shared, earlier=self.earlier)
            by_key = {point.key: point for point in self.points}
            self._order = [by_key[key] for key in self._warm.order if key in by_key]
        self._issued: dict[str, IssuedTrial] = {}
        self._pruned: set[str] = set()
        self._studies: dict[str, optuna.Study] = {}
        self._by_key = {point.key: point for point in self.points}
        self._labels = {point.key: point.label for point in [*self.earlier, *self.points]}
        # Caches that keep each suggestion and progress line from reading every study's journal records (a study of
        # thousands of points): each point's trials as last read, dropped whenever this searcher changes the study
        # (it is the journal's only writer, under the driver lock); trials handed out per point; and the trials an
        # interruption left running, read once, then kept up to date.
        self._trials_cache: dict[str, _View] = {}
        self._asked_counts: dict[str, int] = {}
        self._left_running: dict[str, IssuedTrial] | None = None
        # Failed trials to run again before any new trial (``rerun``), by trial id: (point key, slot).
        self._reruns: dict[str, tuple[str, int]] = {}
        self._storage: JournalStorage | None = None
        self._lock = threading.RLock()

    # --- studies -------------------------------------------------------------------------------------------------

    def study(self, point_key: str) -> optuna.Study:
        with self._lock:
            if point_key not in self._studies:
                if self._storage is None:
                    Path(self.journal_path).parent.mkdir(parents=True, exist_ok=True)
                    self._storage = JournalStorage(JournalFileBackend(self.journal_path))
                study = optuna.create_study(
                    study_name=point_key,
                    storage=self._storage,
                    direction="minimize",
                    sampler=self._sampler(point_key),
                    pruner=self._pruner(point_key),
                    load_if_exists=True,
                )
                self._describe(study, point_key)
                if self.lr_search.method == "grid":
                    self._queue_grid(study)
                elif held := len(study.get_trials(deepcopy=False)):
                    # Reopened (a resume): a sampler seeded as at the start would draw the rates it drew before the
                    # interruption again, so a point could run one rate twice; seeded by the trials it holds, it
                    # draws on from a new, still reproducible, stream.
                    study.sampler = self._sampler(point_key, held)
                self._studies[point_key] = study
            return self._studies[point_key]

    def _describe(self, study: optuna.Study, point_key: str) -> None:
        """Record in the study which point it searches and what it minimises (``POINT_LABEL``, ``OBJECTIVE``, and
        the metric name from ``OBJECTIVE_NAMES``), for optuna-dashboard and anyone loading it; only what it lacks is
        written, so a study of a journal written without them (or cut between these writes) gets them when it is
        reopened."""
        attrs = study.user_attrs
        label = self._labels.get(point_key)
        if label is not None and attrs.get(POINT_LABEL) != label:
            study.set_user_attr(POINT_LABEL, label)
        if attrs.get(OBJECTIVE) != OBJECTIVES[self.metric_name]:
            study.set_user_attr(OBJECTIVE, OBJECTIVES[self.metric_name])
        names = [OBJECTIVE_NAMES["validation" if self.metric_name == METRICS["validation"] else "test"]]
        if study.metric_names != names:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)  # marked experimental
                study.set_metric_names(names)

    def _queue_grid(self, study: optuna.Study) -> None:
        """Queue every grid value the study does not hold yet; each ask takes the next queued one.

        Queueing is one journal write per value, so a driver stopped part way leaves part of the grid queued. The
        study's trials, queued or asked, say which values it already has (a queued value is the trial's fixed
        parameter until it is drawn), so this runs at every opening and queues exactly the rest, in grid order:
        after any interruption every value is run once."""
        held: list[float] = []
        for trial in study.get_trials(deepcopy=False):
            lr = trial.params.get("lr", trial.system_attrs.get("fixed_params", {}).get("lr"))
            if lr is not None:
                held.append(lr)
        for lr in self.lr_search.values:
            if lr in held:
                held.remove(lr)
            else:
                study.enqueue_trial({"lr": lr})

    def _sampler(self, point_key: str, held: int = 0) -> optuna.samplers.BaseSampler:
        """The point's TPE sampler, seeded by the search's seed, the point and the trials its study already holds."""
        seed = self.lr_search.seed + int(point_key[:8], 16) + 7919 * held  # point keys are hex content hashes
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.lr_search.startup_trials)

    def _pruner(self, point_key: str) -> optuna.pruners.BasePruner:
        options = dict(self.lr_search.pruner_options)
        if self.lr_search.pruner == "median" and self._warm is not None:
            return PointMedianPruner(
                exempt=lambda trial: self._slot(point_key, trial) < self._warm_start_count(point_key),
                neighbour_trials=lambda: self._neighbour_trials(point_key),
                leader_pruned=lambda trial: self._leader_pruned(point_key, self._slot(point_key, trial)),
                follower=point_key in self._leaders,
                **options,
            )
        if self.lr_search.pruner == "median":
            return optuna.pruners.MedianPruner(**options)
        if self.lr_search.pruner == "hyperband":
            # The epoch count is known, so brackets exist from the first trial on (Optuna's "auto" waits for one to
            # end).
            return optuna.pruners.HyperbandPruner(max_resource=self.points[0].epochs, **options)
        if self.lr_search.pruner == "successive_halving":
            return optuna.pruners.SuccessiveHalvingPruner(**options)
        return optuna.pruners.NopPruner()

    # --- Ray Tune's searcher interface ----------------------------------------------------------------------------

    def suggest(self, ray_trial_id: str) -> dict[str, Any] | None:
        with self._lock:
            issued = self._interrupted_trial() or self._rerun_trial() or self._new_trial()
            if issued is None:
                return Searcher.FINISHED if not self._issued else None
            self._issued[ray_trial_id] = issued
            point = self._point(issued.point_key)
            lr = self._learning_rate(issued)
            trial = trial_config(point, lr).to_dict()
            return {
                "trial_id": issued.trial_id,
                "point_key": point.key,
                "lr": lr,
                "trial": trial,
                **self.trial_settings,
            }

    def _interrupted_trial(self) -> IssuedTrial | None:
        """A study trial handed out before an interruption and never finished: it runs again under its own id.

        Read from every study once; afterwards only a trial this run stops before its end (``on_trial_complete``)
        joins them."""
        if self._left_running is None:
            live = {issued.trial_id for issued in self._issued.values()}
            self._left_running = {}
            for point in self.points:
                for slot, frozen in enumerate(self._trials(point.key)):
                    trial_id = trial_id_for(self.sweep, point.key, slot)
                    if frozen.state == TrialState.RUNNING and trial_id not in live:
                        self._left_running[trial_id] = IssuedTrial(point.key, frozen.number, trial_id)
        if not self._left_running:
            return None
        trial_id = next(iter(self._left_running))
        return self._left_running.pop(trial_id)

    def _new_trial(self) -> IssuedTrial | None:
        """The next trial, breadth-first over the points in run order (``sweeps._scheduling.BreadthFirst``): with
        warm starts, points ready to start go first. A point that must wait for its own trials gets none."""
        keys = [point.key for point in self._order]
        counts = {key: self._asked_count(key) for key in keys}
        asked = [counts[key] for key in keys]
        index = BreadthFirst(asked).pick(
            asked,
            lambda index: self._may_ask(keys[index], counts),
            lambda index: self._ready(keys[index], counts),
        )
        return None if index is None else self._ask(keys[index], asked[index])

    def _ask(self, point_key: str, round_: int) -> IssuedTrial:
        asked = self._asked_count(point_key)
        study = self.study(point_key)
        leader = self._leaders.get(point_key)
        # Queueing and asking are two journal writes: a value queued before a crash is asked now, not queued twice.
        if not study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
            if leader is not None:
                # A seed that follows its device point's first seed runs that seed's trial of the same number. The
                # leader comes first in the run order (and is never deferred after its follower), so it has been
                # asked for this round already.
                study.enqueue_trial({"lr": self._learning_rate(self._leader_trial(leader, round_))})
            elif self._warm is not None:
                warm = self._warm_start_rates(study, round_)
                rates = warm or self._spread_start_rates()
                if round_ < len(rates):
                    study.enqueue_trial({"lr": rates[round_]})
                elif warm and round_ == len(warm) and (probe := study.user_attrs.get(WARM_PROBE)) is not None:
                    study.enqueue_trial({"lr": probe})
        trial = study.ask()
        self._draw_lr(trial)
        self._changed(point_key)
        self._asked_counts[point_key] = asked + 1
        slot = self._view(point_key).slots[trial.number]
        return IssuedTrial(point_key, trial.number, trial_id_for(self.sweep, point_key, slot))

    # --- trials run again (a failure on the environment, ``rerun``) ----------------------------------------------

    def failed_trials(self) -> dict[str, str | None]:
        """The trials whose study trial failed (not diverged), by trial id, with the error the journal holds: the
        trial's own report, else the one kept for a failure through Ray Tune (``keep_failure_error``); None when
        neither was written."""
        found: dict[str, str | None] = {}
        for point in self.points:
            kept = self.study(point.key).user_attrs.get(FAILURE_ERRORS) or {}
            for slot, frozen in enumerate(self._trials(point.key)):
                if frozen.state == TrialState.FAIL and _store_status(frozen) == "failed":
                    trial_id = trial_id_for(self.sweep, point.key, slot)
                    found[trial_id] = frozen.user_attrs.get("error") or kept.get(trial_id) or None
        return found

    def keep_failure_error(self, point_key: str, trial_id: str, error: str) -> None:
        """Keep the one-line error of a trial that failed through Ray Tune (``FAILURE_ERRORS``), replacing an
        earlier one of the same trial; ``failed_trials`` reads it back, in this run or at a resume."""
        with self._lock:
            study = self.study(point_key)
            kept = dict(study.user_attrs.get(FAILURE_ERRORS) or {})
            kept[trial_id] = error
            study.set_user_attr(FAILURE_ERRORS, kept)

    def rerun(self, trial_ids: list[str]) -> None:
        """Hand these failed trials out again, before any new trial, each under its own trial id (its worker
        continues from the trial's checkpoint). Until it is handed out, such a trial counts as not ended."""
        with self._lock:
            for point in self.points:
                for slot in range(len(self._trials(point.key))):
                    trial_id = trial_id_for(self.sweep, point.key, slot)
                    if trial_id in trial_ids:
                        self._reruns[trial_id] = (point.key, slot)

    def _rerun_pending(self, point_key: str, slot: int) -> bool:
        return trial_id_for(self.sweep, point_key, slot) in self._reruns

    def _rerun_trial(self) -> IssuedTrial | None:
        """The next failed trial to run again: a new study trial in its place (``RERUN_OF``), made running with the
        failed one's learning rate in one journal write, so a driver that dies now leaves it to be continued like any
        interrupted trial."""
        while self._reruns:
            trial_id = next(iter(self._reruns))
            point_key, slot = self._reruns.pop(trial_id)
            failed = self._trials(point_key)[slot]
            if failed.state != TrialState.FAIL:
                continue
            study = self.study(point_key)
            template = optuna.trial.FrozenTrial(
                number=-1,
                state=TrialState.RUNNING,
                value=None,
                datetime_start=datetime.now(UTC),
                datetime_complete=None,
                params=dict(failed.params),
                distributions=dict(failed.distributions),
                user_attrs={RERUN_OF: slot},
                system_attrs={},
                intermediate_values={},
                trial_id=-1,
            )
            number = study._storage.get_trial_number_from_id(
                study._storage.create_new_trial(study._study_id, template_trial=template)
            )
            self._changed(point_key)
            return IssuedTrial(point_key, number, trial_id)
        return None

    # --- warm starts (orchestrator._warm_start) ------------------------------------------------------------------

    def _ready(self, point_key: str, counts: dict[str, int]) -> bool:
        """Whether a point may have its next trial now without waiting for other points: a started point, a follower
        once its leader has had this round's trial, a new point once every inward neighbour finished
        (``sweeps._scheduling.is_ready``)."""
        leader = self._leaders.get(point_key)
        return is_ready(
            counts[point_key],
            leader_asked=None if leader is None else counts[leader],
            inward_finished=lambda: all(self.point_finished(key) for key in self._inward_keys(point_key)),
        )

    def _may_ask(self, point_key: str, counts: dict[str, int]) -> bool:
        """Whether a point may have another trial at all now (``sweeps._scheduling.may_ask``)."""
        leader = self._leaders.get(point_key)
        if leader is not None:
            return may_ask(counts[point_key], self.lr_search.trials_per_point, leader_asked=counts[leader])
        start_up = None
        if self._warm is not None and self.lr_search.patience is not None:
            start_up = self._start_up_count(point_key) or None
        trials = self._asked(point_key)
        return may_ask(
            counts[point_key],
            self.lr_search.trials_per_point,
            start_up=start_up,
            running=sum(t.state not in _FINISHED_STATES for t in trials),
            stopped=lambda: self._bracket_pending(point_key) or self.settled(point_key),
        )

    def _bracket_pending(self, owner: str) -> bool:
        """Whether a bracketed point (``WARM_BRACKETED``) still waits for the warm-start trial of one of its seeds
        (``sweeps._scheduling.bracket_pending``)."""
        if not self.study(owner).user_attrs.get(WARM_BRACKETED):
            return False
        return bracket_pending(self._seed_records(owner), self._start_up_count(owner))

    def _seed_records(self, owner: str) -> list[list[TrialRecord]]:
        """The trials asked so far at every seed of a point, as the scheduling rules take them: the first seed's
        and, when seeds share the search, its followers'."""
        return [
            [TrialRecord(self._slot(key, t), _RECORDED.get(t.state, RUNNING), t.value) for t in self._asked(key)]
            for key in (owner, *self._followers.get(owner, ()))
        ]

    def settled(self, point_key: str) -> bool:
        """Whether a point's search ended before its budget (``sweeps._scheduling.has_settled``).

        A follower seed settles with its leader. False without warm starts or patience, and for a study begun before
        warm starts were recorded.
        """
        owner = self._leaders.get(point_key, point_key)
        if self._warm is None or self.lr_search.patience is None:
            return False
        return has_settled(
            self._seed_records(owner),
            start_up=self._start_up_count(owner),
            patience=self.lr_search.patience,
            bracketed=bool(self.study(owner).user_attrs.get(WARM_BRACKETED)),
        )

    @property
    def may_stop_early(self) -> bool:
        """Whether points may end their search before ``trials_per_point`` (``lr_search.patience``)."""
        return self._warm is not None and self.lr_search.patience is not None

    def planned_trials(self) -> int:
        """The trials the search runs over all its points: the budget of each, or what a settled point was given
        (the most it may run while ``may_stop_early``)."""
        return sum(self._target(point.key) for point in self.points)

    def _target(self, point_key: str) -> int:
        """How many trials the point runs: its budget, or (once its search settled) the trials it was given."""
        owner = self._leaders.get(point_key, point_key)
        if self.settled(owner):
            return len(self._asked(owner))
        return self.lr_search.trials_per_point

    def _leader_pruned(self, point_key: str, number: int) -> bool:
        """Whether a follower seed's trial ``number`` runs a rate its leader's trial pruned: with seeds sharing one
        choice, a rate that not every seed completed is never chosen (``results._best``)."""
        leader = self._leaders.get(point_key)
        if leader is None:
            return False
        trials = self._trials(leader)
        return number < len(trials) and trials[number].state == TrialState.PRUNED

    def _warm_start_rates(self, study: optuna.Study, round_: int) -> list[float]:
        """The learning rates a point's first trials run, decided once and recorded in its study.

        They are decided at the point's first trial from what its inward neighbours have completed then (the best rate
        of all of them together) and recorded in one journal write before any is queued; a resume reads the record.
        The probe (``_probe_rate``) and whether the point is bracketed are decided from the same trials and recorded
        just before. A study without the record at a later trial (begun without warm starts) gets none: like a point
        whose neighbours had no rate, it runs the spread start-up trials it has not reached yet, by trial number
        (``_spread_start_rates``), and TPE draws its first sampler trial.

        Args:
            study: The point's study.
            round_: The number of the trial about to be asked.

        Returns:
            The warm-start rates: the neighbours' best rate, or none.
        """
        if WARM_START in study.user_attrs:
            return list(study.user_attrs[WARM_START])
        if round_ > 0:
            return []
        neighbours = self._neighbour_trials(study.study_name)
        best = best_learning_rate(neighbours)
        rates = [] if best is None else [best]
        key = study.study_name
        # Bracketed only with every neighbour finished: the inward ones (with a choice per seed, the earlier seeds
        # too, which may still run when a slot would otherwise idle) and those beyond it.
        bracketed = (
            best is not None
            and self.lr_search.patience is not None
            and all(self.point_finished(other) for other in self._warm.neighbour_keys(key))
            and best
            == bracketed_rate(
                self._warm.brackets.get(key, ()),
                lambda other: self.study(other).get_trials(deepcopy=False),
                self.point_finished,
            )
        )
        # The probe and the bracket first: a study holding WARM_START holds them too (a crash between the writes
        # decides all three again at the resume, nothing having been queued).
        probe = None if best is None or bracketed else self._probe_rate(neighbours, best)
        study.set_user_attr(WARM_PROBE, probe)
        study.set_user_attr(WARM_BRACKETED, bracketed)
        study.set_user_attr(WARM_START, rates)
        return rates

    def _probe_rate(self, neighbours: list[optuna.trial.FrozenTrial], best: float) -> float | None:
        """A warm-started point's first sampler trial (``orchestrator._warm_start.probe_learning_rate``): one step
        from its warm-start rate, the step being one of ``trials_per_point`` equal parts of [low, high] on a log
        scale."""
        low, high = self.lr_search.low, self.lr_search.high
        step = (high / low) ** (1 / self.lr_search.trials_per_point)
        return probe_learning_rate(neighbours, best, low, high, step)

    def _spread_start_rates(self) -> list[float]:
        """The first trials of a point that got no warm-start rate (the base point, whose best rate then warm-starts
        every other point; a point started before any neighbour completed): the midpoints, on a log scale, of
        ``startup`` equal parts of [low, high], lowest first, instead of TPE's random start-up draws (``startup``:
        the sampler's start-up count, ``LrSearchSpec.startup_trials``). Decided by the spec alone, so a resume queues
        the same rate for the same trial number; a point with a warm-start rate never gets them."""
        low, high = math.log(self.lr_search.low), math.log(self.lr_search.high)
        parts = self.lr_search.startup_trials
        return [math.exp(low + (high - low) * (part + 0.5) / parts) for part in range(parts)]

    def _warm_start_count(self, point_key: str) -> int:
        """How many of a point's first trials run warm-start rates (a follower's: its leader's)."""
        owner = self._leaders.get(point_key, point_key)
        return len(self.study(owner).user_attrs.get(WARM_START, ()))

    def _start_up_count(self, point_key: str) -> int:
        """How many of a point's first trials come before its sampler trials (a follower's: its leader's;
        ``sweeps._scheduling.start_up_count``)."""
        owner = self._leaders.get(point_key, point_key)
        return start_up_count(self.study(owner).user_attrs.get(WARM_START), self.lr_search.startup_trials)

    def _inward_keys(self, point_key: str) -> list[str]:
        """The point keys of a point's inward neighbours (none without warm starts)."""
        return [] if self._warm is None else self._warm.neighbour_keys(point_key)

    def _neighbour_trials(self, point_key: str) -> list[optuna.trial.FrozenTrial]:
        owner = self._leaders.get(point_key, point_key)
        return [t for key in self._inward_keys(owner) for t in self.study(key).get_trials(deepcopy=False)]

    def _seed_leaders(self) -> dict[str, str]:
        """Follower point key -> the key of its device point's first seed (``sweeps._scheduling.seed_leaders``)."""
        points = self.earlier + self.points
        return {
            points[follower].key: points[leader].key
            for follower, leader in seed_leaders(points, self.lr_search, self.selection).items()
        }

    def _leader_trial(self, leader: str, slot: int) -> IssuedTrial:
        """The leader's trial in ``slot`` (run again or not: its learning rate is the same)."""
        return IssuedTrial(leader, self._trials(leader)[slot].number, trial_id_for(self.sweep, leader, slot))

    def _draw_lr(self, trial: optuna.trial.Trial) -> float:
        if self.lr_search.method == "grid":
            return trial.suggest_categorical("lr", list(self.lr_search.values))  # the queued value
        return trial.suggest_float("lr", self.lr_search.low, self.lr_search.high, log=True)

    def _learning_rate(self, issued: IssuedTrial) -> float:
        """The trial's learning rate. A trial asked just before the driver died may have none yet (asking and
        drawing are two journal writes): it never reached a worker, so its value is drawn now (a grid trial gets
        its queued value)."""
        study = self.study(issued.point_key)
        frozen = study.trials[issued.number]
        if "lr" not in frozen.params:
            lr = self._draw_lr(optuna.trial.Trial(study, frozen._trial_id))
            self._changed(issued.point_key)
            return lr
        return frozen.params["lr"]

    def _asked(self, point_key: str) -> list[optuna.trial.FrozenTrial]:
        """The study's trials that were handed out (queued grid values waiting for their turn are not)."""
        return [t for t in self._trials(point_key) if t.state != TrialState.WAITING]

    def _asked_count(self, point_key: str) -> int:
        if point_key not in self._asked_counts:
            self._asked_counts[point_key] = len(self._asked(point_key))
        return self._asked_counts[point_key]

    def _trials(self, point_key: str) -> list[optuna.trial.FrozenTrial]:
        """The point's trials, one per slot in slot order: each the latest study trial in that slot (a failed trial
        run again is its rerun). Not copies: read, never change them."""
        return self._view(point_key).trials

    def _view(self, point_key: str) -> _View:
        """The point's trials by slot, read from the journal once per change."""
        with self._lock:
            if point_key not in self._trials_cache:
                self._trials_cache[point_key] = _View.of(self.study(point_key).get_trials(deepcopy=False))
            return self._trials_cache[point_key]

    def _slot(self, point_key: str, trial: optuna.trial.FrozenTrial) -> int:
        """The slot of one of the point's study trials (its number when the point has no reruns)."""
        if RERUN_OF in trial.user_attrs:
            return int(trial.user_attrs[RERUN_OF])
        return self._view(point_key).slots.get(trial.number, trial.number)

    def _changed(self, point_key: str) -> None:
        """This searcher changed the point's study: read its trials again next time."""
        self._trials_cache.pop(point_key, None)

    def should_prune(self, ray_trial_id: str, result: dict[str, Any]) -> bool:
        """Report an epoch's error (validation or test: ``metric_name``) to the point's study; True if its pruner
        says stop."""
        with self._lock:
            issued = self._issued.get(ray_trial_id)
            if issued is None or result.get(self.metric_name) is None:
                return False
            study = self.study(issued.point_key)
            frozen = study.trials[issued.number]
            if frozen.state != TrialState.RUNNING:
                return False
            trial = optuna.trial.Trial(study, frozen._trial_id)
            step = int(result["epoch"])
            if step not in frozen.intermediate_values:
                trial.report(float(result[self.metric_name]), step)
                self._changed(issued.point_key)
            if step >= self._point(issued.point_key).epochs:
                return False  # its last epoch is done: stopping it saves nothing and would throw its result away
            if trial.should_prune():
                self._pruned.add(ray_trial_id)
                return True
            return False

    def was_pruned(self, ray_trial_id: str) -> bool:
        return ray_trial_id in self._pruned

    def issued(self, ray_trial_id: str) -> IssuedTrial | None:
        return self._issued.get(ray_trial_id)

    def on_trial_complete(self, ray_trial_id: str, result: dict | None = None, error: bool = False) -> None:
        with self._lock:
            issued = self._issued.pop(ray_trial_id, None)
            if issued is None:
                return
            try:
                self._tell(issued, ray_trial_id, result, error)
            finally:
                self._changed(issued.point_key)

    def _tell(self, issued: IssuedTrial, ray_trial_id: str, result: dict | None, error: bool) -> None:
        """Tell the point's study how the trial ended (``on_trial_complete``)."""
        study = self.study(issued.point_key)
        if study.trials[issued.number].state in _FINISHED_STATES:
            return
        if ray_trial_id in self._pruned:
            study.tell(issued.number, state=TrialState.PRUNED)
        elif result and result.get(ENDED_AS) in ("failed", "diverged"):
            # Ended without a result (bad data, diverged training): a failed study trial that remembers why.
            trial = optuna.trial.Trial(study, study.trials[issued.number]._trial_id)
            trial.set_user_attr(ENDED_AS, result[ENDED_AS])
            trial.set_user_attr("error", str(result.get("error") or ""))
            study.tell(issued.number, state=TrialState.FAIL)
        elif error or not result or result.get(self.metric_name) is None:
            study.tell(issued.number, state=TrialState.FAIL)
        elif not self.ran_every_epoch(issued.point_key, result):
            # Stopped early by the driver (Ctrl-C, store gone): it stays open, and runs again when handed out.
            if self._left_running is not None:
                self._left_running[issued.trial_id] = issued
            return
        else:
            study.tell(issued.number, self._objective(study.trials[issued.number], result))

    def _objective(self, frozen: optuna.trial.FrozenTrial, result: dict[str, Any]) -> float:
        """What the study minimises: the final test error, or (on validation) the lowest validation error of any
        epoch, since the epoch is chosen on it too (the epochs' values are in the journal as intermediate values)."""
        final = float(result[self.metric_name])
        if self.metric_name == METRICS["validation"]:
            return min([final, *frozen.intermediate_values.values()])
        return final

    def ran_every_epoch(self, point_key: str, result: dict | None) -> bool:
        """Whether a trial's last result is its point's final epoch (a trial stopped before that is unfinished)."""
        return bool(result) and int(result.get("epoch", 0)) >= self._point(point_key).epochs

    # --- progress -------------------------------------------------------------------------------------------------

    def point_finished(self, point_key: str) -> bool:
        """Whether the point has used its whole budget (or its search settled, ``settled``) and every trial of it has
        ended."""
        trials = self._asked(point_key)
        ended = sum(self._ended(point_key, slot, t) for slot, t in enumerate(trials))
        return has_finished(len(trials), ended, self._target(point_key))

    def _ended(self, point_key: str, slot: int, trial: optuna.trial.FrozenTrial) -> bool:
        """Whether the trial in ``slot`` has ended for good: a failed one waiting to run again has not."""
        return trial.state in _FINISHED_STATES and not self._rerun_pending(point_key, slot)

    def ended_trials(self, point_key: str) -> list[tuple[str, float, str]]:
        """(trial id, lr, store status) of every trial of the point that the study knows has ended; a diverged
        trial's status is ``diverged``."""
        return [
            (trial_id_for(self.sweep, point_key, slot), t.params["lr"], _store_status(t))
            for slot, t in enumerate(self._trials(point_key))
            if t.state in _FINISHED_STATES
        ]

    def ended_errors(self, point_key: str) -> dict[str, str]:
        """Why each trial of the point that ended without a result (failed on bad data, diverged) did, by trial id."""
        return {
            trial_id_for(self.sweep, point_key, slot): t.user_attrs["error"]
            for slot, t in enumerate(self._trials(point_key))
            if t.state == TrialState.FAIL and t.user_attrs.get("error")
        }

    def counts(self) -> dict[str, int]:
        """Trials by state over all points; how many points have used their whole budget (``points_done``) and how
        many others have a trial that ended (``points_begun``: results are coming in)."""
        totals = {"complete": 0, "pruned": 0, "failed": 0, "diverged": 0, "running": 0, "points_done": 0}
        totals["points_begun"] = 0
        for point in self.points:
            trials = self._trials(point.key)
            # A failed trial waiting to run again counts as neither failed nor running until it is handed out.
            states = [t.state for slot, t in enumerate(trials) if not self._rerun_pending(point.key, slot)]
            diverged = sum(_store_status(t) == "diverged" for t in trials)
            totals["complete"] += states.count(TrialState.COMPLETE)
            totals["pruned"] += states.count(TrialState.PRUNED)
            totals["failed"] += states.count(TrialState.FAIL) - diverged
            totals["diverged"] += diverged
            totals["running"] += states.count(TrialState.RUNNING)
            finished = self.point_finished(point.key)
            totals["points_done"] += finished
            totals["points_begun"] += not finished and any(state in _FINISHED_STATES for state in states)
        return totals

    def _point(self, key: str) -> Point:
        return self._by_key[key]

    # Only the plan travels when Ray Tune saves the searcher: the studies are reopened from the journal.
    def get_state(self) -> dict:
        return {
            "sweep": self.sweep,
            "points": self.points,
            "lr_search": self.lr_search,
            "journal_path": self.journal_path,
            "trial_settings": self.trial_settings,
            "selection": self.selection,
            "base": self.base,
            "earlier": self.earlier,
        }

    def set_state(self, state: dict) -> None:
        self.__init__(
            state["sweep"],
            state["points"],
            state["lr_search"],
            state["journal_path"],
            state["trial_settings"],
            state.get("selection"),
            state.get("base"),
            state.get("earlier"),
        )

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as handle:
            pickle.dump(self.get_state(), handle)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as handle:
            self.set_state(pickle.load(handle))

    def __getstate__(self) -> dict:
        caches = {"_trials_cache": {}, "_asked_counts": {}, "_left_running": None, "_reruns": {}}
        return {**self.__dict__, "_studies": {}, "_storage": None, "_lock": None, **caches}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update({"_trials_cache": {}, "_asked_counts": {}, "_left_running": None, "_reruns": {}, **state})
        self._by_key = {point.key: point for point in self.points}
        self._lock = threading.RLock()
