"""``analog-sweep run``, ``resume`` and ``status``: start a sweep from a YAML file, continue it, watch it."""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

from analog_sweep.cli._liveness import STOPPED, live_status, resume_hint, with_live_status
from analog_sweep.cli._sweep_list import emit_sweep_list
from analog_sweep.cli.output import (
    ACTIVITY_COLUMNS,
    BadInput,
    SafePath,
    command_line,
    display_rows,
    emit_rows,
    one_line_errors,
    output_options,
    progress,
    store_option,
)
from analog_sweep.cli.store import back_up_before_sweep
from analog_sweep.orchestrator import (
    CACHE_ENV,
    RETRIES_ENV,
    RETRY_DELAY_ENV,
    ClusterError,
    JournalDamaged,
    PreflightError,
    PretrainingFailed,
    RetryingStore,
    StoreGaveUp,
    SweepFailed,
    SweepStateError,
    driver_alive,
    environmental_cause,
    error_summary,
    is_lasting,
    pretraining_lines,
    retry_policy,
)
from analog_sweep.results import (
    SQLITE_BUSY_ENV,
    StoreError,
    StoreInputError,
    StoreMissing,
    StoreOutdated,
    few_seeds_note,
    open_store,
    profile_note,
    replicate_rows,
    sweep_activity_warnings,
)
from analog_sweep.sweeps import PROFILES, SpecError
from analog_sweep.workers import DEVICE_AXES

STORAGE_ENV = "ANALOG_SWEEP_STORAGE"
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C
EXIT_TERMINATED = 143  # ... and by SIGTERM (kill, docker stop, a batch scheduler's time limit)
_FAILURES = (ClusterError, JournalDamaged, StoreGaveUp, StoreError, SweepFailed, PretrainingFailed, OSError)
_sweep_errors = one_line_errors(SpecError, SweepStateError, StoreInputError, PreflightError, failure=_FAILURES)
# On Ctrl-C Ray Tune logs how to continue with its own API (Tuner.restore), and lists the trials it stopped; the
# command says the one thing to do instead ('analog-sweep resume NAME').
logging.getLogger("ray.tune.tune").setLevel(logging.CRITICAL)

STORE_RETRY_HELP = (
    "A store that is briefly unavailable (SQLite locked by another process, PostgreSQL connection lost) is "
    f"retried with back-off: ${RETRIES_ENV} retries (default 5), the first after ${RETRY_DELAY_ENV} seconds (default "
    f"0.25), doubling; SQLite also waits ${SQLITE_BUSY_ENV} (default 30) for a lock. A store that stays away stops "
    "the sweep (exit code 1), and 'analog-sweep resume NAME' later recovers every report from the checkpoints."
)


class SweepInterrupted(click.ClickException):
    """Ctrl-C or SIGTERM: the trials were stopped, what finished is kept; exit code 130 (143 after SIGTERM)."""

    exit_code = EXIT_INTERRUPTED


class _Termination:
    """Whether this process was asked to stop by SIGTERM (set by the handler ``_stops_cleanly`` installs)."""

    received = False


def _on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM stops the sweep the way Ctrl-C does: hand it to whatever handles SIGINT now (Ray Tune's handler ends
    the experiment gracefully; outside it Python raises KeyboardInterrupt)."""
    _Termination.received = True
    handler = signal.getsignal(signal.SIGINT)
    if callable(handler):
        handler(signal.SIGINT, frame)
    else:
        raise KeyboardInterrupt


def _exit_code_if_stopped() -> int:
    """The exit status of a sweep that did not finish: 143 after SIGTERM, otherwise 1."""
    return EXIT_TERMINATED if _Termination.received else 1


@contextlib.contextmanager
def _stops_cleanly(name: str) -> Iterator[None]:
    """A sweep that stops early says, in one line, how to continue it: after Ctrl-C or SIGTERM, and after the store
    stayed unavailable through every retry. SIGTERM is handled like Ctrl-C (the sweep is marked interrupted, never
    failed), with exit code 143."""
    resume = f"continue it with 'analog-sweep resume {name}'"
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    except KeyboardInterrupt:
        error = SweepInterrupted(f"sweep {name} interrupted: finished trials are kept; {resume}")
        if _Termination.received:
            error.exit_code = EXIT_TERMINATED
        raise error from None
    except StoreGaveUp as exc:
        back = "once space is freed there" if is_lasting(environmental_cause(str(exc))) else "once the store is back"
        raise click.ClickException(f"{exc}; sweep {name} stopped: {back}, {resume}") from None
    except (click.ClickException, SpecError, SweepStateError, StoreInputError, PreflightError, *_FAILURES):
        raise  # one line each, through _sweep_errors
    except Exception as exc:  # noqa: BLE001 - anything else is still one line, never a traceback
        raise click.ClickException(f"sweep {name} stopped: {error_summary(exc)}") from None
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _measured_in_store(store_url: str | None) -> dict[Any, Any]:
    """Epoch times of earlier sweeps in the store, for the dry run; none when there is no store yet, or when it is a
    PostgreSQL store of an older schema version, which the run itself upgrades. Read-only: a dry run creates and
    changes nothing."""
    try:
        with open_store(store_url, read_only=True) as store:
            from analog_sweep.sweeps import measured_epochs

            return measured_epochs(store.epoch_seconds())
    except (StoreMissing, StoreOutdated):
        return {}


def _pretraining_in_store(store_url: str | None) -> dict[str, Any]:
    """Pretraining times of earlier sweeps in the store, by cache key, for the dry run; none without a store (or
    with an older PostgreSQL one, as ``_measured_in_store``)."""
    try:
        with open_store(store_url, read_only=True) as store:
            from analog_sweep.sweeps import measured_pretraining

            names = [row["sweep"] for row in store.sweep_progress()]
            return measured_pretraining(
                {**model, "sweep": name} for name in names for model in store.provenance(name)["pretrained"]
            )
    except (StoreMissing, StoreOutdated):
        return {}


def _cache_option(command: Any) -> Any:
    """``--cache-dir``: where pretrained models are cached, shared by every sweep that uses the folder."""
    return click.option(
        "--cache-dir",
        envvar=CACHE_ENV,
        type=SafePath(file_okay=False),
        help=f"Folder of the pretrained-model cache, shared by every sweep that uses it [env: {CACHE_ENV}; default: "
        "~/.cache/analog-sweep/pretrained ($XDG_CACHE_HOME/analog-sweep/pretrained), with --address the storage "
        "path's cache folder, which every node shares]. {storage} stands for the storage path.",
    )(command)


def _check_environment() -> None:
    """Refuse bad retry settings before anything is opened or written."""
    try:
        retry_policy()
    except ValueError as exc:
        raise BadInput(str(exc)) from None


RAY_DASHBOARD_PORT = 8265  # Ray's own default


def profile_option(command: Any) -> Any:
    """``--profile NAME``: a named set of overrides applied before ``--set`` (``sweeps.PROFILES``)."""
    return click.option(
        "--profile",
        type=click.Choice(list(PROFILES)),
        help="Apply a profile's overrides before --set. smoke: the spec's own data and modes as a CPU run of "
        "minutes (micro model, 32 images, 1 epoch, first seed, one learning rate, axes cut to their ends; "
        "name + '-smoke'; sweeps/README.md, 'Profiles').",
    )(command)


def _ray_dashboard_options(command: Any) -> Any:
    command = click.option(
        "--ray-dashboard-port",
        type=click.IntRange(1, 65535),
        default=RAY_DASHBOARD_PORT,
        show_default=True,
        help="Port of Ray's dashboard with --ray-dashboard.",
    )(command)
    return click.option(
        "--ray-dashboard",
        is_flag=True,
        help="Keep Ray's dashboard on while a local run runs, on 127.0.0.1 (no --address).",
    )(command)


def _dashboard_port(ray_dashboard: bool, port: int, address: str | None) -> int | None:
    if not ray_dashboard:
        return None
    if address is not None:
        raise BadInput("--ray-dashboard is for a local run; a cluster's dashboard runs on its head (port 8265)")
    return port


def _cluster_options(command: Any) -> Any:
    command = click.option(
        "--address",
        metavar="ADDR",
        help="Join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting a local one.",
    )(command)
    command = click.option(
        "--cpu-fallback",
        is_flag=True,
        help="If the spec asks for GPUs and the cluster has none, run the trials on CPUs.",
    )(command)
    command = click.option(
        "--allow-mixed-versions",
        is_flag=True,
        help="Run on Ray nodes whose aihwkit, torch, torchvision, timm, numpy, Python or analog-sweep version differs "
        "from this driver's (their trials may give other numbers): warn once per node instead of refusing. Each "
        "trial records its node's versions (results provenance).",
    )(command)
    return store_option(command)


def _point_table(store: Any, name: str, output_format: str, *, with_status: bool = False) -> None:
    """The chosen learning rate and epoch and the test error there at every point, with the axes the sweep varies and
    what the choice was made on (``selected_on``: validation, or test by the paper's rule), then what the analog
    activity says (``results.sweep_activity_warnings``): a warning per point whose tiles did not learn (or overwrote
    the pretrained weights) at the base device, a note per curve where a swept axis did that.

    ``with_status`` (``status``): one row per point and seed. Otherwise (the end of ``run`` and ``resume``): seeds
    are replicates, one row per point with the mean, standard deviation and 95 % interval half-width across seeds.
    """
    store = RetryingStore(store)  # the sweep's results are in: worth a wait for the store
    rows = store.best_points(name)
    varied = [axis for axis in DEVICE_AXES if len({row[axis] for row in rows}) > 1]
    if with_status:
        columns = [
            "mode",
            "algorithm",
            "task",
            *varied,
            "seed",
            "status",
            "trials",
            "selected_on",
            "lr",
            "epoch",
            "test_error",
            "validation_error",
            *ACTIVITY_COLUMNS,
        ]
        emit_rows(display_rows(rows), output_format, columns=columns)
    else:
        columns = [
            "mode",
            "algorithm",
            "task",
            *varied,
            "seeds",
            "selected_on",
            "lr",
            "test_error_mean",
            "test_error_sd",
            "test_error_ci95",
            "few_seeds",
            *ACTIVITY_COLUMNS,
        ]
        replicates = replicate_rows(rows)
        if output_format == "table" and not any(row.get("few_seeds") for row in replicates):
            columns.remove("few_seeds")  # every point has enough seeds: a column of False says nothing
        emit_rows(display_rows(replicates), output_format, columns=columns)
        few = few_seeds_note(replicates)
        if few:
            progress(few)
    spec = store.get_sweep(name)["spec"]
    for line in sweep_activity_warnings(rows, spec):
        progress(line)
    note = profile_note(spec)
    if note:
        progress(note)


def _design_warnings(spec: Any) -> list[str]:
    """What the spec's design keeps its results from saying (``results.design_warnings``); none for a smoke run,
    whose one seed is the profile's choice and whose numbers are not results."""
    from analog_sweep.results import design_warnings

    if spec.profile is not None:
        return []

    return design_warnings(len(spec.seeds), dict(spec.axes.values), [refine.axis for refine in spec.axes.refine])


@click.command(epilog=STORE_RETRY_HELP)
@click.argument("spec_file", type=SafePath(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="PATH=VALUE",
    help="Override a spec field, e.g. --set epochs=2 --set data.train_limit=64 (repeatable).",
)
@profile_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Print the points, trial count and cost estimate (from epoch times measured in the store where "
    "it holds trials doing the same work); run nothing.",
)
@click.option(
    "--gpus",
    type=click.IntRange(min=1),
    metavar="N",
    help="With --dry-run: also estimate GPU-hours and the wall time on a cluster with N GPUs.",
)
@click.option(
    "--storage-path",
    envvar=STORAGE_ENV,
    default="sweep-store",
    show_default=True,
    type=SafePath(file_okay=False),
    help=f"Folder for checkpoints, Optuna studies and Ray experiments, and with --address the pretrained-model cache "
    f"[env: {STORAGE_ENV}]. Must be shared by all nodes of a cluster.",
)
@_cache_option
@_cluster_options
@_ray_dashboard_options
@output_options
@_sweep_errors
def run(
    spec_file: str,
    overrides: tuple[str, ...],
    profile: str | None,
    dry_run: bool,
    gpus: int | None,
    storage_path: str,
    cache_dir: str | None,
    address: str | None,
    cpu_fallback: bool,
    allow_mixed_versions: bool,
    store_url: str | None,
    ray_dashboard: bool,
    ray_dashboard_port: int,
    output_format: str,
) -> None:
    """Run the sweep described by SPEC_FILE, then print the best learning rate and test error per point.

    \b
    Example:
        analog-sweep run sweeps/quickstart.yaml
        analog-sweep run sweeps/quickstart.yaml --ray-dashboard
        analog-sweep run sweeps/paper_fig3_transfer_noise.yaml --dry-run --gpus 8
        analog-sweep run sweeps/paper_fig2_modes.yaml --profile smoke
        analog-sweep run sweeps/embedded_algorithms_sp_skew.yaml
    """
    # The sweep's machinery (Ray, Optuna, torch) loads here, not when the command line is built.
    from analog_sweep.orchestrator import Invocation, run_sweep
    from analog_sweep.sweeps import detect_environment, dry_run_report, expand, load_spec

    spec = load_spec(spec_file, overrides, profile=profile)
    if gpus is not None and not dry_run:
        raise BadInput("--gpus N goes with --dry-run: it prices the sweep on N GPUs; a run uses what the cluster has")
    if dry_run:
        from analog_sweep.orchestrator import models_in_cache, pretrain_cache_dir, sweep_paths

        cache = pretrain_cache_dir(storage_path, cache_dir, on_cluster=address is not None)
        click.echo(
            dry_run_report(
                spec,
                expand(spec),
                environment=detect_environment(),
                measured=_measured_in_store(store_url),
                gpus=gpus,
                cpu_fallback=cpu_fallback,
                design_warnings=_design_warnings(spec),
                pretraining=_pretraining_in_store(store_url),
                cached=models_in_cache(spec, [cache, sweep_paths(storage_path, spec.name).cache]),
            )
        )
        return
    for warning in _design_warnings(spec):
        progress(f"warning: {warning}")
    _check_environment()
    dashboard_port = _dashboard_port(ray_dashboard, ray_dashboard_port, address)
    with open_store(store_url) as store:
        back_up_before_sweep(store)
        invocation = Invocation(
            command_line(),
            {
                "spec_file": str(Path(spec_file).resolve()),
                "overrides": list(overrides),
                "storage_path": str(Path(storage_path).resolve()),
                "store": store.label,
            },
        )
        with _stops_cleanly(spec.name):
            outcome = run_sweep(
                spec,
                store,
                storage_root=storage_path,
                address=address,
                cpu_fallback=cpu_fallback,
                echo=progress,
                invocation=invocation,
                ray_dashboard_port=dashboard_port,
                cache_dir=cache_dir,
                allow_mixed_versions=allow_mixed_versions,
            )
        progress(outcome.message)
        if outcome.points_done or outcome.status == "finished":
            _point_table(store, spec.name, output_format)
        progress(f"results store: {store.label}")
        if outcome.status != "finished" or outcome.failed_trials or outcome.points_without_result:
            raise SystemExit(_exit_code_if_stopped())


@click.command(epilog=STORE_RETRY_HELP)
@click.argument("sweep")
@click.option(
    "--rerun-failed/--no-rerun-failed",
    default=True,
    show_default=True,
    help="Run again the trials that failed on environmental causes (a full disk, memory, a lost node, the store "
    "away), under their own ids, so every point is chosen from all its trials; --no-rerun-failed keeps them failed. "
    "Trials that failed on bad data or config, or diverged, are never run again.",
)
@_cache_option
@_cluster_options
@_ray_dashboard_options
@output_options
@_sweep_errors
def resume(
    sweep: str,
    rerun_failed: bool,
    cache_dir: str | None,
    address: str | None,
    cpu_fallback: bool,
    allow_mixed_versions: bool,
    store_url: str | None,
    ray_dashboard: bool,
    ray_dashboard_port: int,
    output_format: str,
) -> None:
    """Continue an interrupted sweep: finished trials are kept, interrupted ones continue from their checkpoints,
    and trials that failed on environmental causes (a full disk, memory, a lost node) run again.

    On a cluster: 'analog-sweep submit --resume SWEEP --address http://HEAD:8265'.

    \b
    Example:
        analog-sweep resume quickstart
        analog-sweep resume quickstart --format json
    """
    from analog_sweep.orchestrator import Invocation, resume_sweep  # the sweep's machinery loads here

    _check_environment()
    dashboard_port = _dashboard_port(ray_dashboard, ray_dashboard_port, address)
    with open_store(store_url, must_exist=True) as store:
        store.get_sweep(sweep)  # an unknown name is refused before a backup takes the place of an older one
        back_up_before_sweep(store)
        invocation = Invocation(command_line(), {"store": store.label})
        with _stops_cleanly(sweep):
            outcome = resume_sweep(
                sweep,
                store,
                address=address,
                cpu_fallback=cpu_fallback,
                echo=progress,
                invocation=invocation,
                ray_dashboard_port=dashboard_port,
                cache_dir=cache_dir,
                allow_mixed_versions=allow_mixed_versions,
                rerun_failed=rerun_failed,
            )
        progress(outcome.message)
        _point_table(store, sweep, output_format)
        if outcome.status != "finished" or outcome.failed_trials or outcome.points_without_result:
            raise SystemExit(_exit_code_if_stopped())


def _status_line(name: str, known: dict[str, Any]) -> str:
    """A sweep's status as the store has it, what it means, and the next step. A sweep the store calls ``running``
    whose driver holds no lock (it was killed, or its machine died) is said to be stopped."""
    resume = resume_hint(name)
    status = known["status"]
    if live_status(status, known["experiment_path"]) == STOPPED:
        return f"running in the store, but no driver is running it (it stopped without saying so): {resume}"
    if status == "interrupted":
        return f"interrupted (stopped before its end, finished trials are kept): {resume}"
    if status == "failed":
        return f"failed (it stopped on an error, finished trials are kept): fix the cause, then {resume}"
    return status


@click.command()
@click.argument("sweep", required=False)
@store_option
@output_options
@one_line_errors(StoreInputError, failure=(StoreError, OSError))
def status(sweep: str | None, store_url: str | None, output_format: str) -> None:
    """Show every sweep's progress, or one sweep's points with their best trial so far.

    \b
    Example:
        analog-sweep status
        analog-sweep status quickstart --format json
    """
    with open_store(store_url, read_only=True) as store:
        if sweep is None:
            rows = with_live_status(store.sweep_progress(), progress)
            for row in rows:
                for line in _pretraining_now(row["status"], row.get("experiment_path")):
                    progress(f"sweep {row['sweep']}: {line}")
            emit_sweep_list(rows, output_format)
            return
        known = store.get_sweep(sweep)
        progress(f"sweep {sweep}: {_status_line(sweep, known)}, storage {known['experiment_path'] or '-'}")
        for line in _pretraining_now(known["status"], known["experiment_path"]):
            progress(line)
        _point_table(store, sweep, output_format, with_status=True)


def _pretraining_now(status: str, experiment_path: str | None) -> list[str]:
    """What a running sweep's pretraining stage is doing, one line per model not yet ready (its driver's
    ``pretraining.json``); nothing unless its driver is alive on this machine and pretraining."""
    if status != "running" or not driver_alive(experiment_path):
        return []
    return pretraining_lines(experiment_path)
