"""``analog-sweep run``, ``resume`` and ``status``: start a sweep from a YAML file, continue it, watch it."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click

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
from orchestrator import (
    ClusterError,
    Invocation,
    JournalDamaged,
    PreflightError,
    PretrainingFailed,
    StoreGaveUp,
    SweepFailed,
    SweepStateError,
    driver_alive,
    error_summary,
    resume_sweep,
    run_sweep,
)
from orchestrator._recorder import (
    RETRIES_ENV,
    RETRY_DELAY_ENV,
    retry_policy,
    with_retries,
)
from results import StoreError, StoreInputError, activity_warnings, open_store
from results._replicates import replicate_rows
from results._engine import SQLITE_BUSY_ENV
from sweeps import SpecError, detect_environment, dry_run_report, expand, load_spec
from workers.config import DEVICE_AXES

STORAGE_ENV = "ANALOG_SWEEP_STORAGE"
EXIT_INTERRUPTED = 130  # what a shell reports for a command stopped by Ctrl-C
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
    """Ctrl-C: the trials were stopped, what finished is kept; exit code 130."""

    exit_code = EXIT_INTERRUPTED


@contextlib.contextmanager
def _stops_cleanly(name: str) -> Iterator[None]:
    """A sweep that stops early says, in one line, how to continue it: after Ctrl-C, and after the store stayed
    unavailable through every retry."""
    resume = f"continue it with 'analog-sweep resume {name}'"
    try:
        yield
    except KeyboardInterrupt:
        raise SweepInterrupted(f"sweep {name} interrupted: finished trials are kept; {resume}") from None
    except StoreGaveUp as exc:
        raise click.ClickException(f"{exc}; sweep {name} stopped: once the store is back, {resume}") from None
    except (click.ClickException, SpecError, SweepStateError, StoreInputError, PreflightError, *_FAILURES):
        raise  # one line each, through _sweep_errors
    except Exception as exc:  # noqa: BLE001 - anything else is still one line, never a traceback
        raise click.ClickException(f"sweep {name} stopped: {error_summary(exc)}") from None


def _check_environment() -> None:
    """Refuse bad retry settings before anything is opened or written."""
    try:
        retry_policy()
    except ValueError as exc:
        raise BadInput(str(exc)) from None


def _cluster_options(command: Any) -> Any:
    command = click.option("--address", metavar="ADDR",
                           help="Join this Ray cluster (e.g. auto, or ray://head:10001) instead of starting a local one.")(command)
    command = click.option("--cpu-fallback", is_flag=True,
                           help="If the spec asks for GPUs and the cluster has none, run the trials on CPUs.")(command)
    return store_option(command)




def _point_table(store: Any, name: str, output_format: str, *, with_status: bool = False) -> None:
    """The best learning rate and its final test error at every point, with the axes the sweep varies, then one
    warning line per point whose analog tiles did not learn (or overwrote the pretrained weights).

    ``with_status`` (``status``): one row per point and seed. Otherwise (the end of ``run`` and ``resume``): seeds
    are replicates, one row per point with the mean, standard deviation and 95 % interval half-width across seeds.
    """
    rows = with_retries(lambda: store.best_points(name))  # the sweep's results are in: worth a wait for the store
    varied = [axis for axis in DEVICE_AXES if len({row[axis] for row in rows}) > 1]
    rows.sort(key=lambda row: (row["task"], row["mode"], *(row[axis] for axis in varied), row["seed"]))
    if with_status:
        columns = ["mode", "task", *varied, "seed", "status", "trials", "lr", "final_test_error", *ACTIVITY_COLUMNS]
        emit_rows(display_rows(rows), output_format, columns=columns)
    else:
        columns = ["mode", "task", *varied, "seeds", "lr", "test_error_mean", "test_error_sd", "test_error_ci95",
                   *ACTIVITY_COLUMNS]
        emit_rows(display_rows(replicate_rows(rows)), output_format, columns=columns)
    spec = with_retries(lambda: store.get_sweep(name))["spec"]
    frozen = bool((spec.get("algorithm") or {}).get("freeze_analog"))
    if frozen:
        progress("analog tiles frozen by algorithm.freeze_analog (a diagnostic ablation): no activity expected")
    for row in rows:
        problems = activity_warnings(row, frozen=frozen)
        if problems:
            label = "/".join([row["mode"], row["task"], *(f"{a}={row[a]:g}" for a in varied), f"seed{row['seed']}"])
            progress(f"warning: {label}: {'; '.join(problems)}")


@click.command(epilog=STORE_RETRY_HELP)
@click.argument("spec_file", type=SafePath(dir_okay=False))
@click.option("--set", "overrides", multiple=True, metavar="PATH=VALUE",
              help="Override a spec field, e.g. --set epochs=2 --set data.train_limit=64 (repeatable).")
@click.option("--dry-run", is_flag=True, help="Print the points, trial count and cost estimate; run nothing.")
@click.option("--storage-path", envvar=STORAGE_ENV, default="sweep-store", show_default=True,
              type=SafePath(file_okay=False),
              help=f"Folder for checkpoints, Optuna studies, Ray experiments and the pretraining cache [env: {STORAGE_ENV}]. "
                   "Must be shared by all nodes of a cluster.")
@_cluster_options
@output_options
@_sweep_errors
def run(spec_file: str, overrides: tuple[str, ...], dry_run: bool, storage_path: str, address: str | None,
        cpu_fallback: bool, store_url: str | None, output_format: str) -> None:
    """Run the sweep described by SPEC_FILE, then print the best learning rate and test error per point.

    \b
    Example:
        analog-sweep run sweeps/quickstart.yaml
        analog-sweep run sweeps/paper_fig3_transfer_noise.yaml --dry-run
        analog-sweep run sweeps/paper_fig2_modes.yaml --set epochs=1 --set data.dataset=digits --cpu-fallback
    """
    spec = load_spec(spec_file, overrides)
    if dry_run:
        click.echo(dry_run_report(spec, expand(spec), environment=detect_environment()))
        return
    _check_environment()
    with open_store(store_url) as store:
        invocation = Invocation(command_line(), {"spec_file": str(Path(spec_file).resolve()),
                                                 "overrides": list(overrides),
                                                 "storage_path": str(Path(storage_path).resolve()),
                                                 "store": store.label})
        with _stops_cleanly(spec.name):
            outcome = run_sweep(spec, store, storage_root=storage_path, address=address, cpu_fallback=cpu_fallback,
                                echo=progress, invocation=invocation)
        progress(outcome.message)
        if outcome.points_done or outcome.status == "finished":
            _point_table(store, spec.name, output_format)
        progress(f"results store: {store.label}")
        if outcome.status != "finished" or outcome.failed_trials:
            raise SystemExit(1)


@click.command(epilog=STORE_RETRY_HELP)
@click.argument("sweep")
@_cluster_options
@output_options
@_sweep_errors
def resume(sweep: str, address: str | None, cpu_fallback: bool, store_url: str | None, output_format: str) -> None:
    """Continue an interrupted sweep: finished trials are kept, interrupted ones continue from their checkpoints.

    \b
    Example:
        analog-sweep resume quickstart
        analog-sweep resume fig3-transfer-noise --address auto --store postgresql+psycopg://me@db/sweeps
    """
    _check_environment()
    with open_store(store_url, must_exist=True) as store:
        invocation = Invocation(command_line(), {"store": store.label})
        with _stops_cleanly(sweep):
            outcome = resume_sweep(sweep, store, address=address, cpu_fallback=cpu_fallback, echo=progress,
                                   invocation=invocation)
        progress(outcome.message)
        _point_table(store, sweep, output_format)
        if outcome.status != "finished" or outcome.failed_trials:
            raise SystemExit(1)


def _status_line(name: str, known: dict[str, Any]) -> str:
    """A sweep's status as the store has it, what it means, and the next step. A sweep the store calls ``running``
    whose driver holds no lock (it was killed, or its machine died) is said to be stopped."""
    resume = f"continue it with 'analog-sweep resume {name}'"
    status = known["status"]
    if status == "running" and driver_alive(known["experiment_path"]) is False:
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
            emit_rows(display_rows(store.sweep_progress()), output_format)
            return
        known = store.get_sweep(sweep)
        progress(f"sweep {sweep}: {_status_line(sweep, known)}, storage {known['experiment_path'] or '-'}")
        _point_table(store, sweep, output_format, with_status=True)

