"""The sweep driver: spec in, Ray Tune trials out, every report into the store; resumable after any interruption.

A sweep's durable state lives in three places, all under its folder in the storage path plus the store:
- ``optuna.journal``: one Optuna study per point, the record of which trials exist and how they ended;
- ``trials/<trial id>/``: each trial's per-epoch checkpoint;
- the results store: sweeps, points, trials and epochs, written only by this driver.
``resume`` rebuilds the plan from the spec kept in the store and runs a new Ray Tune experiment
(``ray/run-N``) over the same studies: finished trials are never handed out again, interrupted ones continue from
their checkpoints under their own ids, and replayed reports land on the rows they already have.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import ray
from ray import tune

from analog_sweep.orchestrator._progress import ProgressLine, format_duration
from analog_sweep.orchestrator._provenance import (
    Invocation,
    cluster_info,
    gather_environment,
    run_record,
    version_warnings,
)
from analog_sweep.orchestrator._pruning import OptunaPruning
from analog_sweep.orchestrator._recorder import (
    RetryPolicy,
    StoreGaveUp,
    StoreGaveUpStopper,
    StoreRecorder,
    with_retries,
)
from analog_sweep.orchestrator._refine import LinePlan, plan_round, refinement_summary, round_points
from analog_sweep.orchestrator._search import JournalDamaged, LearningRateSearch, repair_journal
from analog_sweep.orchestrator._trainable import fine_tune
from analog_sweep.results import NotFound, Selection, Store
from analog_sweep.sweeps import (
    Point,
    SweepSpec,
    detect_environment,
    expand,
    preflight_problems,
    pretrain_keys,
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


# How often a pretraining job that has not finished is checked to be placeable still.
PLACEMENT_CHECK_SECONDS = 30.0


class SweepStateError(ValueError):
    """The sweep cannot be run or resumed in its present state; the message says what to do instead."""


class ClusterError(RuntimeError):
    """The Ray cluster cannot give the sweep what its spec asks for; the message lists what it has."""


class PreflightError(ValueError):
    """The sweep cannot succeed as specified (its data files are missing, ...): found before Ray starts or anything
    is written; the message says what to fix."""


class SweepFailed(RuntimeError):
    """The sweep stopped on an error after it was marked running; it is now marked ``failed`` and the message says
    why and how to continue it."""


@dataclass(frozen=True)
class SweepPaths:
    """Where one sweep keeps its files; ``cache`` (pretrained models) is shared by every sweep in the storage path."""

    root: Path

    @property
    def trials(self) -> Path:
        return self.root / "trials"

    @property
    def journal(self) -> Path:
        return self.root / "optuna.journal"

    @property
    def ray(self) -> Path:
        return self.root / "ray"

    @property
    def cache(self) -> Path:
        return self.root.parent / "cache"

    @property
    def lock(self) -> Path:
        return self.root / "driver.lock"

    def next_run_name(self) -> str:
        runs = [int(p.name[4:]) for p in self.ray.glob("run-*") if p.name[4:].isdigit()] if self.ray.exists() else []
        return f"run-{max(runs, default=0) + 1}"


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


def sweep_paths(storage_root: str | os.PathLike, name: str) -> SweepPaths:
    return SweepPaths(Path(storage_root).resolve() / name)


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
) -> SweepOutcome:
    """Start a new sweep. A finished sweep of the same spec does nothing; an interrupted one must be resumed.

    The run is recorded with its environment (``Store.provenance``); ``invocation`` is how it was started (the
    command line and its options, from the CLI; default: this process's ``sys.argv``). ``ray_dashboard_port``: on a
    local run (no ``address``), keep Ray's dashboard on at http://127.0.0.1:PORT while the sweep runs (``echo``
    prints its address)."""
    digest = spec_hash(spec)
    try:
        known = with_retries(lambda: store.get_sweep(spec.name))
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
        store,
        sweep_paths(storage_root, spec.name),
        address=address,
        cpu_fallback=cpu_fallback,
        echo=echo,
        kind="run",
        invocation=invocation,
        ray_dashboard_port=ray_dashboard_port,
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
) -> SweepOutcome:
    """Continue an interrupted sweep from the store's spec, the Optuna studies and the trials' checkpoints.

    The resume is recorded like a run; a package whose version differs from the run before is named in one
    ``warning:`` line through ``echo`` before anything runs (``ray_dashboard_port`` as for ``run_sweep``)."""
    known = with_retries(lambda: store.get_sweep(name))
    if known["status"] == "finished":
        return SweepOutcome(name, "finished", 0, 0, 0.0, f"sweep {name!r} already finished: nothing to resume")
    if not known["experiment_path"]:
        raise SweepStateError(f"sweep {name!r} has no storage path recorded; start it again with 'analog-sweep run'")
    rule = with_retries(lambda: store.selection(name))
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
        store,
        paths,
        address=address,
        cpu_fallback=cpu_fallback,
        echo=echo,
        kind="resume",
        invocation=invocation,
        ray_dashboard_port=ray_dashboard_port,
        recorded_hash=known["spec_hash"],
    )


def _execute(
    spec: SweepSpec,
    store: Store,
    paths: SweepPaths,
    *,
    address: str | None,
    cpu_fallback: bool,
    echo: Callable[[str], None],
    kind: str,
    invocation: Invocation | None,
    ray_dashboard_port: int | None = None,
    recorded_hash: str | None = None,
) -> SweepOutcome:
    started = time.monotonic()
    points = expand(spec)
    preflight(spec, address=address, cpu_fallback=cpu_fallback)  # before Ray starts or any file is made
    environment = gather_environment()
    with _driver_lock(paths, spec.name):
        _check_journal(store, spec.name, paths, echo)
        if kind == "resume":
            _warn_changed_versions(store, spec.name, environment, echo)
        marked_running = False
        try:
            with ray_session(address, dashboard_port=ray_dashboard_port, echo=echo):
                # What the cluster cannot give is refused before anything is written.
                cpu, gpu, slots = trial_resources(spec, cpu_fallback)
                selection = Selection(split=spec.selection.split, per_seed=spec.selection.per_seed)
                with_retries(
                    lambda: store.record_sweep(
                        spec.name,
                        spec.raw,
                        recorded_hash or spec_hash(spec),
                        "running",
                        str(paths.root),
                        selection=selection,
                    )
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
                    },
                    cluster_info(),
                )
                with_retries(lambda: store.record_run(spec.name, run))
                for point in points:
                    _record_point(store, spec.name, point)
                _pretrain_stage(
                    spec,
                    paths,
                    cpu,
                    gpu,
                    echo,
                    on_model=lambda model: with_retries(
                        lambda: store.record_pretrained(spec.name, {**model, "run_id": run["run_id"]})
                    ),
                )
                phase = _Phase(spec, store, paths, cpu, gpu, slots, echo)
                done = phase.run(points, f"sweep {spec.name}")
                if done == len(points) and spec.axes.refine:
                    added, added_done = _refine(spec, store, phase, echo)
                    points, done = points + added, done + added_done
        except KeyboardInterrupt:
            with_retries(lambda: store.set_sweep_status(spec.name, "interrupted"))
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
        empty = sum(row["status"] == "failed" for row in with_retries(lambda: store.list_points(spec.name)))
        if empty:
            why += (
                f"; {empty} of {len(points)} points have no result (every trial failed or diverged): widen or "
                "lower the learning rates, then run them as a new sweep"
            )
        if done == len(points):
            with_retries(lambda: store.set_sweep_status(spec.name, "finished"))
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
        with_retries(lambda: store.set_sweep_status(spec.name, "interrupted"))
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
        store: Store,
        paths: SweepPaths,
        cpu: float,
        gpu: float,
        slots: int,
        echo: Callable[[str], None],
    ) -> None:
        self.spec, self.store, self.paths, self.echo = spec, store, paths, echo
        self.cpu, self.gpu, self.slots = cpu, gpu, slots
        self.ran: list[Point] = []  # the points of the phases run so far: neighbours for warm starts of the next

    def run(self, points: list[Point], title: str) -> int:
        """Run ``points`` (already recorded in the store); return how many ended (their best trial chosen)."""
        spec, store, paths = self.spec, self.store, self.paths
        search = LearningRateSearch(
            spec.name,
            points,
            spec.lr_search,
            paths.journal,
            {"trials_dir": str(paths.trials), "cache_dir": str(paths.cache), "threads": self.cpu, "gpu": self.gpu},
            selection=spec.selection,
            base=spec.device,
            earlier=self.ran,
        )
        self.ran = self.ran + list(points)
        _reconcile(store, spec, search, paths)
        if all(search.point_finished(point.key) for point in points):
            return _close_points(store, spec.name, search)  # a resume that finds this phase over: no experiment
        total = search.planned_trials()
        most = "at most " if search.may_stop_early else ""
        self.echo(
            f"{title}: {len(points)} points, {most}{total} trials, {self.slots} at a time "
            f"({self.cpu:g} CPU{f', {self.gpu:g} GPU' if self.gpu else ''} each)"
        )
        progress = ProgressLine(search, self.slots, self.echo)
        recorder = StoreRecorder(store, spec.name, search)
        tuner = tune.Tuner(
            tune.with_resources(fine_tune, {"cpu": self.cpu, "gpu": self.gpu}),
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
        progress.print_if_changed()
        return _close_points(store, spec.name, search)


def _refine(spec: SweepSpec, store: Store, phase: _Phase, echo: Callable[[str], None]) -> tuple[list[Point], int]:
    """Adaptive refinement after the grid (``orchestrator._refine``): plan a round from the store, run it, repeat.
    Returns the points added and how many of them ended; a round left unfinished stops here (``resume`` re-plans
    the same round from the store and continues it)."""
    added: list[Point] = []
    done = 0
    first: dict[tuple[str, str, str], LinePlan] = {}
    for round_ in range(1, max(r.rounds for r in spec.axes.refine) + 1):
        plans = plan_round(spec, with_retries(lambda: store.best_points(spec.name)), round_)
        for plan in plans:
            first.setdefault((plan.axis, plan.mode, plan.task), plan)
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
        with_retries(lambda: store.best_points(spec.name)),
        first.values(),
        with_retries(lambda: store.list_trials(spec.name)),
    )
    for line in final:
        echo(line)
    return added, done


def error_summary(exc: BaseException) -> str:
    """One line for an error of any kind: a Ray task error is shown by its cause, a multi-line text (a traceback
    Ray Tune wraps) by its last line."""
    cause = getattr(exc, "cause", None)
    if isinstance(exc, ray.exceptions.RayTaskError) and isinstance(cause, BaseException):
        exc = cause
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if len(lines) > 1 and "Traceback" in str(exc) else " ".join(lines)
    if not text:
        return type(exc).__name__
    if isinstance(exc, (SweepFailed, PretrainingFailed)):
        return text[:400]
    return f"{type(exc).__name__}: {text}"[:400]


def _try_status(store: Store, name: str, status: str) -> None:
    """Set the sweep's status with one try and no retries; a store that is away is left as it is."""
    try:
        with_retries(lambda: store.set_sweep_status(name, status), policy=RetryPolicy(retries=0), notice=None)
    except Exception:  # noqa: BLE001 - the error being reported matters more than this write
        pass


def _ended_without_result(store: Store, name: str) -> tuple[int, int, str]:
    """How many of the sweep's trials failed and diverged, and a clause saying so with the reasons ('' if none)."""
    rows = with_retries(lambda: store.list_trials(name))
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


def _check_journal(store: Store, name: str, paths: SweepPaths, echo: Callable[[str], None]) -> None:
    """Repair a torn last record of the sweep's Optuna journal (saying so), before Ray starts or anything is
    written. Damage that cannot be repaired safely raises ``JournalDamaged``; a sweep the store still calls
    ``running`` (its driver died: this one holds the lock) is then marked ``interrupted``, so ``status`` tells the
    truth while the journal is fixed."""
    try:
        repair_journal(paths.journal, echo)
    except JournalDamaged as damaged:
        try:
            status = with_retries(lambda: store.get_sweep(name))["status"]
        except NotFound:
            status = None
        if status == "running":
            with_retries(lambda: store.set_sweep_status(name, "interrupted"))
        raise damaged


def _warn_changed_versions(store: Store, name: str, environment: dict[str, Any], echo: Callable[[str], None]) -> None:
    """Say which package versions differ from the sweep's last recorded run (nothing if none was recorded)."""
    try:
        runs = with_retries(lambda: store.provenance(name))["runs"]
    except NotFound:
        return
    if runs:
        for line in version_warnings(runs[-1], environment):
            echo(line)


def _trial_name(trial: Any) -> str:
    return f"{trial.config['trial_id']}_{trial.trial_id}"


def _record_point(store: Store, sweep: str, point: Point) -> None:
    axes = {axis: getattr(point.device, axis) for axis in DEVICE_AXES}
    with_retries(
        lambda: store.record_point(
            sweep,
            point.key,
            mode=point.mode,
            task=point.task,
            classes=list(point.classes),
            seed=point.seed,
            axes=axes,
            label=point.label,
        )
    )


def _reconcile(store: Store, spec: SweepSpec, search: LearningRateSearch, paths: SweepPaths) -> None:
    """Bring the store up to the studies after a crash: a trial the study saw end but the store did not (the driver
    died between the two writes) gets its end status, and its epochs replayed from the trial's own checkpoint."""
    known = {row["trial_id"]: row for row in with_retries(lambda: store.list_trials(spec.name))}
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
            with_retries(partial(store.record_trial, trial_id, spec.name, point.key, lr=lr, status=status, error=error))
            _fill_rpu_config(store, trial_id, row, config)
            checkpoint = TrialCheckpoint(paths.trials / trial_id, config.checkpoint_key())
            for report in checkpoint.reports():
                fields = {k: v for k, v in report.to_dict().items() if k != "epoch"}
                with_retries(partial(store.record_epoch, trial_id, report.epoch, **fields))


def _fill_rpu_config(store: Store, trial_id: str, row: dict[str, Any] | None, config: Any) -> None:
    """An analog trial that ended without its rpu config in the store (no report of it got there: the driver died
    first) gets it from its config, as the worker builds it."""
    if config.is_analog and (row or {}).get("rpu_config") is None:
        rpu_config = trial_rpu_config_json(config)
        with_retries(lambda: store.set_trial_rpu_config(trial_id, rpu_config))


def _close_points(store: Store, sweep: str, search: LearningRateSearch) -> int:
    """Choose the best trial of every point whose search has ended; return how many have."""
    done = 0
    for point in search.points:
        if search.point_finished(point.key):
            with_retries(lambda key=point.key: store.choose_best(sweep, key))
            done += 1
    return done


@contextmanager
def _driver_lock(paths: SweepPaths, name: str) -> Iterator[None]:
    """One driver per sweep: a second ``run``/``resume`` of a sweep that is running is refused, not interleaved."""
    paths.root.mkdir(parents=True, exist_ok=True)
    with open(paths.lock, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise SweepStateError(f"sweep {name!r} is running in another process ({handle.read().strip()})") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        yield


def driver_alive(experiment_path: str | os.PathLike | None) -> bool | None:
    """Whether a driver holds the sweep's lock now: True, False, or None when this machine cannot tell (no path,
    or the sweep's folder is not here). Opens the lock file read-only and takes nothing."""
    if not experiment_path:
        return None
    lock = SweepPaths(Path(experiment_path)).lock
    try:
        handle = open(lock)
    except FileNotFoundError:
        return False if Path(experiment_path).is_dir() else None
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


@contextmanager
def ray_session(
    address: str | None, *, dashboard_port: int | None = None, echo: Callable[[str], None] = print
) -> Iterator[None]:
    """Join the Ray cluster at ``address``, or start a local instance on this machine's cores; leave it after.

    ``dashboard_port``: a local instance keeps Ray's dashboard on, at http://127.0.0.1:PORT (loopback only: the
    dashboard can submit jobs), and ``echo`` says where; a cluster's dashboard is its head's, so with ``address``
    this raises ``ValueError``."""
    if dashboard_port is not None and address is not None:
        raise ValueError("--ray-dashboard is for a local run: a cluster's dashboard runs on its head (port 8265)")
    if ray.is_initialized():
        yield
        return
    # ray.init replaces the process's SIGTERM handler with one that exits at once (sys.exit in the middle of the
    # Tune loop, then a core dump at shutdown); a handler the process owner installed (the command line's: SIGTERM
    # stops the sweep like Ctrl-C) is put back.
    owner_sigterm = signal.getsignal(signal.SIGTERM)
    dashboard = {} if dashboard_port is None else {"dashboard_host": "127.0.0.1", "dashboard_port": dashboard_port}
    context = ray.init(
        # Without an address, a new local instance: "local", because Ray's default (None) joins whatever cluster a
        # `ray start` on this machine last recorded in /tmp/ray, which may be someone else's, or gone.
        address=address or "local",
        include_dashboard=dashboard_port is not None,
        **dashboard,
        log_to_driver=False,
        logging_level="WARNING",
        configure_logging=True,
    )
    if callable(owner_sigterm) and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, owner_sigterm)
    if dashboard_port is not None:
        echo(f"Ray dashboard: http://{context.dashboard_url or f'127.0.0.1:{dashboard_port}'}")
    try:
        yield
    finally:
        ray.shutdown()


def _alive_nodes() -> list[dict[str, float]]:
    """The resources of each live node of the cluster."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive")]


def trial_resources(spec: SweepSpec, cpu_fallback: bool) -> tuple[float, float, int]:
    """CPUs and GPUs per trial and how many trials fit at once; refuse at once what no node of the cluster can give
    (a trial, and a pretraining job, runs on one node: a request above the largest node would wait forever)."""
    total = ray.cluster_resources()
    cpus, gpus = float(total.get("CPU", 0)), float(total.get("GPU", 0))
    nodes = _alive_nodes() or [dict(total)]
    node_cpus = max(float(node.get("CPU", 0)) for node in nodes)
    node_gpus = max(float(node.get("GPU", 0)) for node in nodes)
    count = f"{len(nodes)} node{'s' if len(nodes) != 1 else ''}"
    have = f"the cluster has {cpus:g} CPU, {gpus:g} GPU, {total.get('memory', 0) / 2**30:.1f} GiB memory"
    cpu, gpu = spec.resources.cpu, spec.resources.gpu
    if gpu > 0 and gpus == 0:
        if not cpu_fallback:
            raise ClusterError(
                f"the sweep asks for {gpu:g} GPU per trial but {have}; pass --cpu-fallback to run on CPUs"
            )
        gpu = 0.0
    if gpu > node_gpus:
        raise ClusterError(
            f"the sweep asks for {gpu:g} GPU per trial but the largest node has {node_gpus:g} GPU "
            f"({have} over {count}); a trial runs on one node: lower resources.gpu"
        )
    if cpu > node_cpus:
        raise ClusterError(
            f"the sweep asks for {cpu:g} CPU per trial but the largest node has {node_cpus:g} CPU "
            f"({have} over {count}); a trial runs on one node: lower resources.cpu"
        )
    if gpu > 0:  # a trial needs its CPUs and GPUs on the same node
        fits = [node for node in nodes if float(node.get("CPU", 0)) >= cpu and float(node.get("GPU", 0)) >= gpu]
        if not fits:
            raise ClusterError(
                f"the sweep asks for {cpu:g} CPU and {gpu:g} GPU per trial but no node has both ({have} over {count})"
            )
    slots = 0
    for node in nodes:
        here = int(float(node.get("CPU", 0)) // cpu) if cpu > 0 else int(float(node.get("CPU", 0)))
        if gpu > 0:
            here = min(here, int(float(node.get("GPU", 0)) // gpu))
        slots += here
    return cpu, gpu, max(1, slots)


def preflight(spec: SweepSpec, *, address: str | None, cpu_fallback: bool) -> None:
    """Refuse, before Ray starts or anything is written, a sweep that cannot succeed: what the dry run knows (data
    files missing under the data root; on a local run, more CPUs or GPUs per trial than this machine has).
    Raises ``PreflightError`` (bad input) or ``ClusterError``."""
    local = address is None and not ray.is_initialized()
    problems = preflight_problems(spec, environment=detect_environment() if local else None, cpu_fallback=cpu_fallback)
    if problems.data:
        raise PreflightError(f"sweep {spec.name} cannot run: {'; '.join(problems.data)}")
    if problems.resources:
        raise ClusterError(f"sweep {spec.name} cannot run here: {'; '.join(problems.resources)}")


@ray.remote
def _pretrain_job(job: Any, cache_dir: str, threads: int) -> dict[str, Any]:
    import torch

    from analog_sweep.workers import pretrained_model

    torch.set_num_threads(max(1, threads))
    result = pretrained_model(job.data, job.model, job.pretrain, cache_dir)
    return {
        "trained_now": result.trained_now,
        "seconds": result.seconds,
        "source_test_error": result.source_test_error,
        "source_train_error": result.source_train_error,
        "key": result.key,
        "file_hash": result.file_hash,
        "path": str(result.path),
    }


def _pretrain_stage(
    spec: SweepSpec,
    paths: SweepPaths,
    cpu: float,
    gpu: float,
    echo: Callable[[str], None],
    on_model: Callable[[dict[str, Any]], None] = lambda model: None,
) -> None:
    """Pretrain each distinct pretraining key once, before any fine-tuning trial needs it; hand each model's record
    (``cache_key``, ``file_hash``, ``source_error``, ``source_train_error``, ``train_seconds``, ``trained_now``,
    ``path``) to ``on_model``."""
    jobs = list(pretrain_keys(spec).values())
    if not jobs:
        return
    echo(f"pretraining: {len(jobs)} model(s) needed")
    # Nothing else runs during this stage: fewer jobs than CPUs share them out (up to one node's worth each).
    # A job never asks for more than the largest node has (trial_resources checked that a trial's request fits).
    largest_node = max((float(node.get("CPU", 0)) for node in _alive_nodes()), default=cpu)
    per_job = max(cpu, min(largest_node, ray.cluster_resources().get("CPU", cpu) // len(jobs)))
    remote = _pretrain_job.options(num_cpus=per_job, num_gpus=gpu)
    refs = {remote.remote(job, str(paths.cache), int(max(1, per_job))): job for job in jobs}
    try:
        for ref in refs:
            _wait_placeable(ref, per_job, gpu)
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                raise PretrainingFailed(f"pretraining {refs[ref].key} failed: {error_summary(exc)}") from None
            how = f"trained in {format_duration(result['seconds'])}" if result["trained_now"] else "from cache"
            echo(f"pretraining {refs[ref].key}: {how}, source test error {result['source_test_error']:.1f} %")
            on_model(
                {
                    "cache_key": result["key"],
                    "file_hash": result["file_hash"],
                    "path": result["path"],
                    "source_error": result["source_test_error"],
                    "source_train_error": result["source_train_error"],
                    "train_seconds": result["seconds"],
                    "trained_now": result["trained_now"],
                }
            )
    except BaseException:
        # The jobs still running are not needed any more; one that has ended (the one that failed) is left alone.
        # Cleaning up never hides why the stage stopped (a cluster that went away fails these calls too).
        with contextlib.suppress(Exception):
            ended, _ = ray.wait(list(refs), num_returns=len(refs), timeout=0)
            for ref in refs:
                if ref not in ended:
                    ray.cancel(ref, force=True)
        raise


def _wait_placeable(ref: Any, cpu: float, gpu: float, every: float = PLACEMENT_CHECK_SECONDS) -> None:
    """Wait for a pretraining job, checking every ``every`` seconds that some live node can still hold it (nodes
    come and go): a job no node can hold would wait forever, so that raises ``ClusterError``."""
    while not ray.wait([ref], timeout=every)[0]:
        nodes = _alive_nodes()
        if not any(float(n.get("CPU", 0)) >= cpu and float(n.get("GPU", 0)) >= gpu for n in nodes):
            largest = max((float(n.get("CPU", 0)) for n in nodes), default=0.0)
            raise ClusterError(
                f"a pretraining job needs {cpu:g} CPU{f' and {gpu:g} GPU' if gpu else ''} on one node, "
                f"but no live node has that any more (the largest has {largest:g} CPU)"
            )


class PretrainingFailed(RuntimeError):
    """A pretraining job raised; the message names its key and the cause in one line."""
