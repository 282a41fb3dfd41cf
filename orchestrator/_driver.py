"""The sweep driver: spec in, Ray Tune trials out, every report into the store; resumable after any interruption.

A sweep's durable state lives in three places, all under its folder in the storage path plus the store:
- ``optuna.journal``: one Optuna study per point, the record of which trials exist and how they ended;
- ``trials/<trial id>/``: each trial's per-epoch checkpoint;
- the results store: sweeps, points, trials and epochs, written only by this driver.
``resume`` rebuilds the plan from the spec kept in the store and runs a new Ray Tune experiment
(``ray/run-N``) over the same studies: finished trials are never handed out again, interrupted ones continue from
their checkpoints under their own ids, and replayed reports land on the rows they already have.

The driver talks to the store through ``RetryingStore`` (a store that is briefly away is waited out), to the cluster
through ``_cluster``, and trains the source models through ``_pretraining`` before the first learning-rate search.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from analog_sweep.orchestrator import JournalDamaged, repair_journal
from analog_sweep.orchestrator._cluster import ray_session, trial_resources
from analog_sweep.orchestrator._environmental import environmental_cause, summarise_causes
from analog_sweep.orchestrator._errors import (
    ClusterError,
    PreflightError,
    StoreGaveUp,
    SweepFailed,
    SweepStateError,
    error_summary,
)
from analog_sweep.orchestrator._node_versions import NodeVersions
from analog_sweep.orchestrator._paths import (
    SweepPaths,
    check_cache_dir,
    driver_lock,
    pretrain_cache_dir,
    sweep_paths,
)
from analog_sweep.orchestrator._pretraining import pretrain_stage
from analog_sweep.orchestrator._progress import ProgressLine, format_duration
from analog_sweep.orchestrator._provenance import (
    Invocation,
    cluster_info,
    gather_environment,
    run_record,
    version_warnings,
)
from analog_sweep.orchestrator._pruning import OptunaPruning
from analog_sweep.orchestrator._recorder import StoreGaveUpStopper, StoreRecorder
from analog_sweep.orchestrator._refine import LinePlan, plan_round, refinement_summary, round_points
from analog_sweep.orchestrator._retrying_store import RetryingStore
from analog_sweep.orchestrator._search import LearningRateSearch
from analog_sweep.orchestrator._trainable import fine_tune
from analog_sweep.results import NotFound, Selection, Store, store_in_use
from analog_sweep.sweeps import (
    Point,
    SweepSpec,
    detect_environment,
    expand,
    preflight_problems,
    spec_as_recorded,
    spec_hash,
    trial_config,
)
from analog_sweep.workers import DEVICE_AXES, TrialCheckpoint, trial_rpu_config_json

# Quiet Ray Tune: the driver prints its own progress, and keeps its own per-trial records.
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)  # no result.json: by design
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
# A trial that ends without a result reports why (``ended_as``, ``error``) instead of a test error.
os.environ.setdefault("TUNE_DISABLE_STRICT_METRIC_CHECKING", "1")
# A failed trial is recorded with its error in the store, and the sweep's last line counts the failures by cause:
# Ray Tune's traceback per failed try (kept in the trial's error.txt), its warning with a traceback every ten seconds
# while the storage path cannot take its experiment state and its error when the last save fails (the driver resumes
# from its own journal instead), and
# Ray's notice of each stopped trial's unread error would bury that line (hundreds of lines on a full disk).
os.environ.setdefault("TUNE_PRINT_ALL_TRIAL_ERRORS", "0")
os.environ.setdefault("RAY_IGNORE_UNHANDLED_ERRORS", "1")
for _name in ("ray.train._internal.syncer", "ray.tune.execution.experiment_state"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)


@dataclass(frozen=True)
class SweepOutcome:
    name: str
    status: str
    points_done: int
    points: int
    seconds: float
    message: str
    failed_trials: int = 0  # trials that ended with an error (the message says how many and why)
    diverged_trials: int = 0
    points_without_result: int = 0  # points whose every trial failed or diverged: no number for them


def run_sweep(
    spec: SweepSpec,
    store: Store,
    *,
    storage_root: str | os.PathLike,
    address: str | None = None,
    cpu_fallback: bool = False,
    echo: Callable[[str], None] = print,
    invocation: Invocation | None = None,
    ray_dashboard_port: int | None = None,
    trainable: Callable[[dict[str, Any]], None] = fine_tune,
    cache_dir: str | os.PathLike | None = None,
    allow_mixed_versions: bool = False,
) -> SweepOutcome:
    """Start a new sweep and run it to the end; a finished sweep of the same spec does nothing.

    Args:
        spec: The sweep.
        store: The results store; every report is written to it as it arrives.
        storage_root: The storage path; the sweep's files go in a folder named after it.
        address: The Ray cluster to join; None starts a local instance.
        cpu_fallback: Run on CPUs when the spec asks for GPUs and the cluster has none.
        echo: Told the sweep's progress, one line at a time.
        invocation: How the sweep was started (the command line and its options), recorded with the run's
            environment (``Store.provenance``); None records this process's ``sys.argv``.
        ray_dashboard_port: On a local run, keep Ray's dashboard on at http://127.0.0.1:PORT while the sweep runs
            (``echo`` prints its address).
        trainable: The function Ray Tune runs for each trial (``_trainable.fine_tune``, which trains); a
            benchmark of the orchestration passes a stand-in that reports and checkpoints like it without training.
            Never set from a spec or the command line.
        cache_dir: Where pretrained models are cached (``{storage}`` stands for the storage path); None:
            ``$ANALOG_SWEEP_CACHE``, else the user's cache folder, or on a cluster (``address``) the storage path's
            ``cache`` folder (``_paths.pretrain_cache_dir``).
        allow_mixed_versions: Run on Ray nodes whose package versions differ from the driver's (one warning line
            each) instead of refusing the cluster (``_node_versions``).

    Returns:
        How the sweep ended: ``finished``, or ``interrupted`` with the points done so far.

    Raises:
        SweepStateError: If the store has a different sweep of the same name, or this one was started before (it
            must be resumed), or another driver runs it.
        PreflightError: If the sweep cannot succeed as specified (data files missing, a pretrained-model cache it
            cannot write), before anything is written.
        ClusterError: If the cluster cannot give a trial what it asks for, or a node's package versions differ from
            the driver's (without ``allow_mixed_versions``).
        StoreGaveUp: If the store stayed away through every retry (the sweep is marked interrupted if it can be).
        SweepFailed: If anything else stopped the sweep after it was marked running (it is now marked failed).
    """
    digest = spec_hash(spec)
    retrying = RetryingStore(store)
    try:
        known = retrying.get_sweep(spec.name)
    except NotFound:
        known = None
    if known is not None:
        if known["spec_hash"] != digest:
            raise SweepStateError(
                f"a different sweep named {spec.name!r} is already in the store (spec hash {known['spec_hash']}); "
                "rename the new sweep"
            )
        if known["status"] == "finished":
            return SweepOutcome(
                spec.name, "finished", 0, 0, 0.0, f"sweep {spec.name!r} already finished: nothing new to run"
            )
        raise SweepStateError(
            f"sweep {spec.name!r} was started before and is {known['status']}: continue it with "
            f"'analog-sweep resume {spec.name}'"
        )
    return _execute(
        spec,
        retrying,
        sweep_paths(storage_root, spec.name),
        address=address,
        cpu_fallback=cpu_fallback,
        echo=echo,
        kind="run",
        invocation=invocation,
        ray_dashboard_port=ray_dashboard_port,
        trainable=trainable,
        cache_dir=cache_dir,
        allow_mixed_versions=allow_mixed_versions,
    )


def resume_sweep(
    name: str,
    store: Store,
    *,
    address: str | None = None,
    cpu_fallback: bool = False,
    echo: Callable[[str], None] = print,
    invocation: Invocation | None = None,
    ray_dashboard_port: int | None = None,
    trainable: Callable[[dict[str, Any]], None] = fine_tune,
    cache_dir: str | os.PathLike | None = None,
    allow_mixed_versions: bool = False,
    rerun_failed: bool = True,
) -> SweepOutcome:
    """Continue an interrupted sweep from the store's spec, the Optuna studies and the trials' checkpoints.

    The resume is recorded like a run; a package whose version differs from the run before is named in one
    ``warning:`` line through ``echo`` before anything runs. Trials that failed on their environment (a full disk,
    memory, a lost node, the store away: ``orchestrator._environmental``) run again under their own ids, said in
    one line, also in a sweep that finished with them failed; with ``rerun_failed`` False they stay failed.

    Args:
        name: The sweep's name in the store.
        store: The results store.
        address: As for ``run_sweep``.
        cpu_fallback: As for ``run_sweep``.
        echo: As for ``run_sweep``.
        invocation: As for ``run_sweep``.
        ray_dashboard_port: As for ``run_sweep``.
        trainable: As for ``run_sweep``.
        cache_dir: As for ``run_sweep`` (the storage path is the sweep's, as the store records it).
        allow_mixed_versions: As for ``run_sweep``.
        rerun_failed: Run the trials that failed on environmental causes again (the default).

    Returns:
        How the sweep ended (``finished`` at once if it had finished before with no trial to run again).

    Raises:
        NotFound: If the store has no sweep of that name.
        SweepStateError: If the sweep's storage path is not recorded or not here, or another driver runs it.
        JournalDamaged: If the sweep's Optuna journal is damaged beyond a safe repair.
        PreflightError, ClusterError, StoreGaveUp, SweepFailed: As for ``run_sweep``.
    """
    retrying = RetryingStore(store)
    known = retrying.get_sweep(name)
    if known["status"] == "finished" and not (rerun_failed and _environmental_failures(retrying, name)):
        return SweepOutcome(name, "finished", 0, 0, 0.0, f"sweep {name!r} already finished: nothing to resume")
    if not known["experiment_path"]:
        raise SweepStateError(f"sweep {name!r} has no storage path recorded; start it again with 'analog-sweep run'")
    rule = retrying.selection(name)
    spec = spec_as_recorded(
        known["spec"], selected_on=rule.split, per_seed=rule.per_seed, source=f"sweep {name!r} in the store"
    )
    paths = SweepPaths(Path(known["experiment_path"]))
    if not paths.root.is_dir():
        raise SweepStateError(f"sweep {name!r}: its storage path {paths.root} is missing; was it moved?")
    # The sweep is the one the store holds under this name: its recorded hash stays its identity, also when a newer
    # version of analog-sweep hashes the same mapping differently (fields added since, with their defaults).
    return _execute(
        spec,
        retrying,
        paths,
        address=address,
        cpu_fallback=cpu_fallback,
        echo=echo,
        kind="resume",
        invocation=invocation,
        ray_dashboard_port=ray_dashboard_port,
        recorded_hash=known["spec_hash"],
        trainable=trainable,
        cache_dir=cache_dir,
        allow_mixed_versions=allow_mixed_versions,
        rerun_failed=rerun_failed,
    )


def _environmental_failures(store: RetryingStore, name: str) -> dict[str, str]:
    """The sweep's trials the store has as failed on an environmental cause: trial id -> cause."""
    found = {}
    for row in store.list_trials(name):
        cause = environmental_cause(row["error"]) if row["status"] == "failed" else None
        if cause is not None:
            found[row["trial_id"]] = cause
    return found


def _execute(
    spec: SweepSpec,
    store: RetryingStore,
    paths: SweepPaths,
    *,
    address: str | None,
    cpu_fallback: bool,
    echo: Callable[[str], None],
    kind: str,
    invocation: Invocation | None,
    ray_dashboard_port: int | None = None,
    recorded_hash: str | None = None,
    trainable: Callable[[dict[str, Any]], None] = fine_tune,
    cache_dir: str | os.PathLike | None = None,
    allow_mixed_versions: bool = False,
    rerun_failed: bool = False,
) -> SweepOutcome:
    started = time.monotonic()
    points = expand(spec)
    preflight(spec, address=address, cpu_fallback=cpu_fallback)  # before Ray starts or any file is made
    cache = pretrain_cache_dir(paths.root.parent, cache_dir, on_cluster=address is not None)
    if any(point.pretrain_key for point in points):
        check_cache_dir(cache)
    environment = gather_environment()
    with driver_lock(paths, spec.name), store_in_use(store.engine.url):
        _check_journal(store, spec.name, paths, echo)
        if kind == "resume":
            _warn_changed_versions(store, spec.name, environment, echo)
        marked_running = False
        try:
            with ray_session(address, dashboard_port=ray_dashboard_port, echo=echo):
                # What the cluster cannot give is refused before anything is written.
                cpu, gpu, slots = trial_resources(spec, cpu_fallback)
                # So is a node whose package versions differ from the driver's (unless mixing is allowed).
                node_versions = NodeVersions(allow_mixed_versions, echo)
                nodes = node_versions.check_cluster()
                selection = Selection(split=spec.selection.split, per_seed=spec.selection.per_seed)
                store.record_sweep(
                    spec.name,
                    spec.raw,
                    recorded_hash or spec_hash(spec),
                    "running",
                    str(paths.root),
                    selection=selection,
                )
                marked_running = True
                run = run_record(
                    kind,
                    environment,
                    invocation,
                    {
                        "address": address,
                        "cpu_fallback": cpu_fallback,
                        "trial_resources": {"cpu": cpu, "gpu": gpu, "slots": slots},
                        "allow_mixed_versions": allow_mixed_versions,
                    },
                    {
                        **cluster_info(),
                        "node_environments": [store.record_node_environment(node) for node in nodes],
                    },
                )
                store.record_run(spec.name, run)
                for point in points:
                    _record_point(store, spec.name, point)
                pretrain_stage(
                    spec,
                    paths,
                    cpu,
                    gpu,
                    echo,
                    on_model=lambda model: store.record_pretrained(spec.name, {**model, "run_id": run["run_id"]}),
                    cache_dir=cache,
                )
                phase = _Phase(spec, store, paths, cpu, gpu, slots, echo, trainable, cache, node_versions)
                phase.rerun_failed = rerun_failed
                done = phase.run(points, f"sweep {spec.name}")
                if done == len(points) and spec.axes.refine:
                    added, added_done = _refine(spec, store, phase, echo)
                    points, done = points + added, done + added_done
        except KeyboardInterrupt:
            store.set_sweep_status(spec.name, "interrupted")
            raise
        except StoreGaveUp:
            if marked_running:  # the store is away: one try, so 'status' tells the truth if it is back already
                _try_status(store, spec.name, "interrupted")
            raise
        except BaseException as exc:
            if not marked_running:
                raise
            # Every other way out leaves a true status and a next step (the command line prints this one line).
            _try_status(store, spec.name, "failed")
            raise SweepFailed(
                f"sweep {spec.name} failed: {error_summary(exc)}; it is marked failed: fix the cause, then continue "
                f"it with 'analog-sweep resume {spec.name}'"
            ) from exc
        seconds = time.monotonic() - started
        failed, diverged, why = _ended_without_result(store, spec.name)
        again = _environmental_failures(store, spec.name)
        if again:
            why += (
                f" ({len(again)} on environmental causes: {summarise_causes(list(again.values()))}; once the cause is "
                f"gone, 'analog-sweep resume {spec.name}' runs them again)"
            )
        empty = sum(row["status"] == "failed" for row in store.list_points(spec.name))
        if empty:
            why += (
                f"; {empty} of {len(points)} points have no result (every trial failed or diverged): widen or "
                "lower the learning rates, then run them as a new sweep"
            )
        if done == len(points):
            store.set_sweep_status(spec.name, "finished")
            return SweepOutcome(
                spec.name,
                "finished",
                done,
                len(points),
                seconds,
                f"sweep {spec.name} finished in {format_duration(seconds)}{why}",
                failed,
                diverged,
                empty,
            )
        store.set_sweep_status(spec.name, "interrupted")
        return SweepOutcome(
            spec.name,
            "interrupted",
            done,
            len(points),
            seconds,
            f"sweep {spec.name} stopped with {done}/{len(points)} points done{why}: continue with "
            f"'analog-sweep resume {spec.name}'",
            failed,
            diverged,
            empty,
        )


class _Phase:
    """Runs one set of points to the end: a learning-rate search over them and one Ray Tune experiment
    (``ray/run-N``); the grid is one phase and each refinement round another."""

    def __init__(
        self,
        spec: SweepSpec,
        store: RetryingStore,
        paths: SweepPaths,
        cpu: float,
        gpu: float,
        slots: int,
        echo: Callable[[str], None],
        trainable: Callable[[dict[str, Any]], None] = fine_tune,
        cache: Path | None = None,
        node_versions: NodeVersions | None = None,
    ) -> None:
        self.spec, self.store, self.paths, self.echo = spec, store, paths, echo
        self.node_versions = node_versions
        self.trainable = trainable
        self.cache = cache if cache is not None else paths.cache  # the pretrained models (the stage put them there)
        self.cpu, self.gpu, self.slots = cpu, gpu, slots
        self.ran: list[Point] = []  # the points of the phases run so far: neighbours for warm starts of the next
        self.rerun_failed = False  # run the trials that failed on environmental causes again (a resume)

    def run(self, points: list[Point], title: str) -> int:
        """Run ``points`` (already recorded in the store); return how many ended (their best trial chosen)."""
        spec, store, paths = self.spec, self.store, self.paths
        search = LearningRateSearch(
            spec.name,
            points,
            spec.lr_search,
            paths.journal,
            {"trials_dir": str(paths.trials), "cache_dir": str(self.cache), "threads": self.cpu, "gpu": self.gpu},
            selection=spec.selection,
            base=spec.device,
            earlier=self.ran,
        )
        self.ran = self.ran + list(points)
        _reconcile(store, spec, search, paths)
        if self.rerun_failed:
            _rerun_environmental(store, spec.name, search, self.echo)
        if all(search.point_finished(point.key) for point in points):
            return _close_points(store, spec.name, search)  # a resume that finds this phase over: no experiment
        total = search.planned_trials()
        most = "at most " if search.may_stop_early else ""
        self.echo(
            f"{title}: {len(points)} points, {most}{total} trials, {self.slots} at a time "
            f"({self.cpu:g} CPU{f', {self.gpu:g} GPU' if self.gpu else ''} each)"
            + (
                "; the grid tries every point's first learning rate before any point's second, so points finish "
                "towards the end ('with trials in': points with a trial ended)"
                if len(spec.lr_search.values) > 1 and len(points) > self.slots
                else ""
            )
        )
        progress = ProgressLine(search, self.slots, self.echo)
        recorder = StoreRecorder(store, spec.name, search, self.node_versions)
        tuner = tune.Tuner(
            tune.with_resources(self.trainable, {"cpu": self.cpu, "gpu": self.gpu}),
            tune_config=tune.TuneConfig(
                search_alg=search,
                scheduler=OptunaPruning(search),
                num_samples=-1,
                max_concurrent_trials=self.slots,
                reuse_actors=True,
                trial_name_creator=_trial_name,
                trial_dirname_creator=_trial_name,
            ),
            run_config=tune.RunConfig(
                name=paths.next_run_name(),
                storage_path=str(paths.ray),
                callbacks=[recorder, progress],
                failure_config=tune.FailureConfig(max_failures=spec.max_retries),
                stop=StoreGaveUpStopper(recorder),
                verbose=0,
            ),
        )
        tuner.fit()
        if recorder.gave_up is not None:
            raise recorder.gave_up
        if recorder.lasting is not None:
            raise recorder.lasting
        progress.print_if_changed()
        return _close_points(store, spec.name, search)


def _refine(
    spec: SweepSpec, store: RetryingStore, phase: _Phase, echo: Callable[[str], None]
) -> tuple[list[Point], int]:
    """Adaptive refinement after the grid (``orchestrator._refine``): plan a round from the store, run it, repeat.
    Returns the points added and how many of them ended; a round left unfinished stops here (``resume`` re-plans
    the same round from the store and continues it)."""
    added: list[Point] = []
    done = 0
    first: dict[tuple[str, str, str], LinePlan] = {}
    for round_ in range(1, max(r.rounds for r in spec.axes.refine) + 1):
        plans = plan_round(spec, store.best_points(spec.name), round_)
        for plan in plans:
            first.setdefault((plan.axis, *plan.line), plan)
            echo(plan.describe())
        points = round_points(spec, plans)
        if not points:
            break
        for point in points:
            _record_point(store, spec.name, point)
        ended = phase.run(points, f"sweep {spec.name}, refinement round {round_}")
        added += points
        done += ended
        if ended < len(points):
            return added, done
    final = refinement_summary(
        spec,
        store.best_points(spec.name),
        first.values(),
        store.list_trials(spec.name),
    )
    for line in final:
        echo(line)
    return added, done


def _rerun_environmental(
    store: RetryingStore, name: str, search: LearningRateSearch, echo: Callable[[str], None]
) -> None:
    """Hand the trials that failed on an environmental cause out again (``LearningRateSearch.rerun``), saying so in
    one line. The cause is read from the error the journal holds (``LearningRateSearch.failed_trials``), else the
    store's row."""
    rows = {row["trial_id"]: row for row in store.list_trials(name)}
    causes = {}
    for trial_id, error in search.failed_trials().items():
        cause = environmental_cause(error or (rows.get(trial_id) or {}).get("error"))
        if cause is not None:
            causes[trial_id] = cause
    if not causes:
        return
    search.rerun(list(causes))
    count = f"{len(causes)} trial{'s' if len(causes) > 1 else ''}"
    echo(f"rerunning {count} that failed on environmental causes ({summarise_causes(list(causes.values()))})")


def _try_status(store: RetryingStore, name: str, status: str) -> None:
    """Set the sweep's status with one try and no retries; a store that is away is left as it is.

    This runs while an error is on its way out: waiting out the store would only delay the error's message.
    """
    try:
        store.wrapped.set_sweep_status(name, status)
    except Exception:  # noqa: BLE001 - the error being reported matters more than this write
        pass


def _ended_without_result(store: RetryingStore, name: str) -> tuple[int, int, str]:
    """How many of the sweep's trials failed and diverged, and a clause saying so with the reasons ('' if none)."""
    rows = store.list_trials(name)
    failed = [row for row in rows if row["status"] == "failed"]
    diverged = [row for row in rows if row["status"] == "diverged"]
    parts = []
    if failed:
        reasons: dict[str, int] = {}
        for row in failed:
            reason = row["error"] or "no reason recorded"
            reasons[reason] = reasons.get(reason, 0) + 1
        shown = [f"{reason} ({count}x)" if count > 1 else reason for reason, count in reasons.items()]
        listed = "; ".join(shown[:3]) + (f"; and {len(shown) - 3} other reasons" if len(shown) > 3 else "")
        parts.append(f"{len(failed)} of {len(rows)} trials failed: {listed}")
    if diverged:
        rates = ", ".join(f"{row['lr']:g}" for row in diverged)
        parts.append(f"{len(diverged)} of {len(rows)} trials diverged (lr {rates}; not chosen as best)")
    return len(failed), len(diverged), "".join(f"; {part}" for part in parts)


def _check_journal(store: RetryingStore, name: str, paths: SweepPaths, echo: Callable[[str], None]) -> None:
    """Repair a torn last record of the sweep's Optuna journal (saying so), before Ray starts or anything is written.

    Raises:
        JournalDamaged: If the damage cannot be repaired safely. A sweep the store still calls ``running`` (its
            driver died: this one holds the lock) is first marked ``interrupted``, so ``status`` tells the truth
            while the journal is fixed.
    """
    try:
        repair_journal(paths.journal, echo)
    except JournalDamaged as damaged:
        try:
            status = store.get_sweep(name)["status"]
        except NotFound:
            status = None
        if status == "running":
            store.set_sweep_status(name, "interrupted")
        raise damaged


def _warn_changed_versions(
    store: RetryingStore, name: str, environment: dict[str, Any], echo: Callable[[str], None]
) -> None:
    """Say which package versions differ from the sweep's last recorded run (nothing if none was recorded)."""
    try:
        runs = store.provenance(name)["runs"]
    except NotFound:
        return
    if runs:
        for line in version_warnings(runs[-1], environment):
            echo(line)


def _trial_name(trial: Any) -> str:
    return f"{trial.config['trial_id']}_{trial.trial_id}"


def _record_point(store: RetryingStore, sweep: str, point: Point) -> None:
    axes = {axis: getattr(point.device, axis) for axis in DEVICE_AXES}
    store.record_point(
        sweep,
        point.key,
        mode=point.mode,
        task=point.task,
        classes=list(point.classes),
        seed=point.seed,
        axes=axes,
        label=point.label,
        algorithm=point.algorithm_name,
    )


def _reconcile(store: RetryingStore, spec: SweepSpec, search: LearningRateSearch, paths: SweepPaths) -> None:
    """Bring the store up to the studies after a crash: a trial the study saw end but the store did not (the driver
    died between the two writes) gets its end status, and its epochs replayed from the trial's own checkpoint."""
    known = {row["trial_id"]: row for row in store.list_trials(spec.name)}
    for point in search.points:
        errors = search.ended_errors(point.key)
        for trial_id, lr, status in search.ended_trials(point.key):
            row = known.get(trial_id)
            config = trial_config(point, lr)
            complete = status != "completed" or (row is not None and row["epochs_done"] == spec.epochs)
            if row is not None and row["status"] == status and complete:
                _fill_rpu_config(store, trial_id, row, config)
                continue
            error = errors.get(trial_id) or (row or {}).get("error")
            store.record_trial(trial_id, spec.name, point.key, lr=lr, status=status, error=error)
            _fill_rpu_config(store, trial_id, row, config)
            checkpoint = TrialCheckpoint(paths.trials / trial_id, config.checkpoint_key())
            for report in checkpoint.reports():
                fields = {k: v for k, v in report.to_dict().items() if k != "epoch"}
                store.record_epoch(trial_id, report.epoch, **fields)


def _fill_rpu_config(store: RetryingStore, trial_id: str, row: dict[str, Any] | None, config: Any) -> None:
    """An analog trial that ended without its rpu config in the store (no report of it got there: the driver died
    first) gets it from its config, as the worker builds it."""
    if config.is_analog and (row or {}).get("rpu_config_hash") is None:
        rpu_config = trial_rpu_config_json(config)
        store.set_trial_rpu_config(trial_id, rpu_config)


def _close_points(store: RetryingStore, sweep: str, search: LearningRateSearch) -> int:
    """Choose the best trial of every point whose search has ended; return how many have."""
    done = 0
    for point in search.points:
        if search.point_finished(point.key):
            store.choose_best(sweep, point.key)
            done += 1
    return done


def preflight(spec: SweepSpec, *, address: str | None, cpu_fallback: bool) -> None:
    """Refuse, before Ray starts or anything is written, a sweep that cannot succeed as far as the dry run knows.

    Raises:
        PreflightError: If data files are missing under the data root.
        ClusterError: If, on a local run, a trial asks for more CPUs or GPUs than this machine has.
    """
    local = address is None and not ray.is_initialized()
    problems = preflight_problems(spec, environment=detect_environment() if local else None, cpu_fallback=cpu_fallback)
    if problems.data:
        raise PreflightError(f"sweep {spec.name} cannot run: {'; '.join(problems.data)}")
    if problems.resources:
        raise ClusterError(f"sweep {spec.name} cannot run here: {'; '.join(problems.resources)}")
