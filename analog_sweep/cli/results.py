"""``analog-sweep results ...``: read the results store (tables, curves, plots, Parquet, read-only SQL).

A thin layer over the ``results`` library: every command opens the store read-only (``read_only``: it must exist, so a
mistyped path is an error, not a new empty store) and prints rows with the shared ``--format`` option.
Exit codes: 0 ok, 1 the store could not be used (unreachable server), 2 bad input.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import click

from analog_sweep.cli.output import (
    ACTIVITY_COLUMNS,
    display_rows,
    emit_rows,
    one_line_errors,
    output_options,
    progress,
    store_option,
)
from results import (
    AXES,
    SELECTION_SPLITS,
    Selection,
    Store,
    StoreError,
    StoreInputError,
    open_store,
    plot_axis_curve,
    plot_epoch_curves,
)

_store_errors = one_line_errors(StoreInputError, failure=(StoreError, OSError))


def _select_on_option(command: Callable) -> Callable:
    """Give a command ``--select-on validation|test``, passed on as ``select_on``."""
    return click.option(
        "--select-on", "select_on", type=click.Choice(SELECTION_SPLITS),
        help="Choose each point's learning rate and epoch on this split instead of the sweep's own rule "
             "(test: the paper's rule, optimistic). Shown in the selected_on column.",
    )(command)


def _selection(store: Store, sweep: str, select_on: str | None) -> Selection | None:
    """The rule ``--select-on`` asks for (keeping the sweep's per-seed setting), or None for the sweep's own."""
    if select_on is None:
        return None
    return Selection(split=select_on, per_seed=store.selection(sweep).per_seed)


_POINT_HELP = (
    "Only this point: its key, or a label such as transfer_noise=10, mode=analog_tl,task=5-8, or "
    "analog_tl/5-8/transfer_noise=10/seed0 (all seeds of one device point when no seed is named)."
)


@click.group()
def results() -> None:
    """Query the results store: progress, best learning rates, curves, Parquet export, read-only SQL.

    \b
    Example:
        analog-sweep results sweeps --store postgresql+psycopg://me@db-host/sweeps
    """


@results.command()
@store_option
@output_options
@_store_errors
def sweeps(store_url: str | None, output_format: str) -> None:
    """List sweeps with their status, points done of total, and trials by status.

    \b
    Example:
        analog-sweep results sweeps --format csv
    """
    with open_store(store_url, read_only=True) as store:
        emit_rows(display_rows(store.sweep_progress()), output_format, columns=_SWEEP_COLUMNS)


_SWEEP_COLUMNS = (
    "sweep", "status", "points_done", "points_total", "points_failed",
    "trials_running", "trials_completed", "trials_pruned", "trials_failed", "trials_diverged",
    "started_at", "ended_at",
)


@results.command()
@click.argument("sweep")
@click.option("--axis", type=click.Choice(AXES), help="Show the curve of test error against this device axis.")
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
    help="Also draw the --axis curve to this PNG (log x for transfer_noise, as in the paper).",
)
@_select_on_option
@store_option
@output_options
@_store_errors
def best(
    sweep: str, axis: str | None, plot: Path | None, select_on: str | None, store_url: str | None, output_format: str
) -> None:
    """Per point: the device axes, the chosen learning rate and epoch, and the test error there.

    The sweep's selection rule chooses (sweeps/README.md, "selection"): on validation, the learning rate and epoch
    with the lowest validation error, reporting that trial's test error at that epoch; on test (the paper's rule),
    the lowest final test error. The selected_on column says which. Rows sort by mode, task, device axes, seed.
    With --axis, one row per axis value and curve instead (the paper's Figures 3-5); an axis the sweep did not vary
    is refused.

    \b
    Examples:
        analog-sweep results best noise-sweep
        analog-sweep results best noise-sweep --axis transfer_noise --plot fig3.png
        analog-sweep results best noise-sweep --select-on test
    """
    if plot is not None and axis is None:
        raise click.UsageError("--plot needs --axis")
    with open_store(store_url, read_only=True) as store:
        selection = _selection(store, sweep, select_on)
        if axis is None:
            emit_rows(display_rows(store.best_points(sweep, selection)), output_format, columns=_BEST_COLUMNS)
            return
        curve = store.axis_curve(sweep, axis, selection)
    if plot is not None:
        plot_axis_curve(curve, axis, plot)
        progress(f"wrote {plot}")
    emit_rows(curve, output_format)


_BEST_COLUMNS = (
    "label", "mode", "task", "seed", *AXES, "status", "trials", "selected_on", "lr", "epoch", "test_error",
    "validation_error", "final_test_error", *ACTIVITY_COLUMNS, "point_key",
)


@results.command()
@click.argument("sweep")
@click.option("--point", "point", metavar="LABEL", help=_POINT_HELP + " Says why its trial was chosen.")
@_select_on_option
@store_option
@output_options
@_store_errors
def trials(sweep: str, point: str | None, select_on: str | None, store_url: str | None, output_format: str) -> None:
    """List the trials (learning rates) of a sweep or point, marking each point's chosen trial.

    \b
    Examples:
        analog-sweep results trials noise-sweep --point transfer_noise=10
        analog-sweep results trials noise-sweep --point mode=analog_tl,transfer_noise=10,seed=0 --select-on test
    """
    with open_store(store_url, read_only=True) as store:
        selection = _selection(store, sweep, select_on)
        best = {row["point_key"]: row for row in store.best_points(sweep, selection)}
        keys = None if point is None else store.resolve_replicates(sweep, point)
        rows = []
        for row in store.list_trials(sweep, keys):
            chosen = best[row["point_key"]]
            rows.append({**row, "chosen": row["trial_id"] == chosen["trial_id"], "selected_on": chosen["selected_on"]})
        for key in keys or ():
            progress(f"{best[key]['label']}: {store.best_trial(sweep, key, selection).why()}")
    emit_rows(display_rows(rows), output_format, columns=_TRIAL_COLUMNS)


_TRIAL_COLUMNS = (
    "label", "trial_id", "lr", "status", "chosen", "selected_on", "epochs_done", "best_validation_error",
    "best_validation_epoch", "final_test_error", "best_test_error", *ACTIVITY_COLUMNS, "error",
)


@results.command()
@click.argument("sweep")
@click.option("--point", "point", metavar="LABEL", help=_POINT_HELP)
@click.option(
    "--plot", type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.png",
    help="Also draw test error against epoch, log-log, to this PNG.",
)
@_select_on_option
@store_option
@output_options
@_store_errors
def curves(
    sweep: str, point: str | None, plot: Path | None, select_on: str | None, store_url: str | None, output_format: str
) -> None:
    """Validation and test error per epoch of each point's chosen trial (the paper's Figure 2); chosen_epoch is the
    epoch the point's number is reported at.

    \b
    Examples:
        analog-sweep results curves tl-vs-ref --plot fig2.png
        analog-sweep results curves noise-sweep --point transfer_noise=10
    """
    with open_store(store_url, read_only=True) as store:
        selection = _selection(store, sweep, select_on)
        keys = None if point is None else store.resolve_replicates(sweep, point)
        rows = store.epoch_curves(sweep, keys, selection)
    if plot is not None:
        plot_epoch_curves(rows, plot)
        progress(f"wrote {plot}")
    emit_rows(rows, output_format, columns=_CURVE_COLUMNS)


_CURVE_COLUMNS = (
    "label", "mode", "task", "selected_on", "lr", "chosen_epoch", "epoch", "validation_error", "test_error",
    "test_accuracy", "train_loss", *ACTIVITY_COLUMNS, "point_key",
)


@results.command()
@click.argument("sweep")
@click.option(
    "--out", required=True, type=click.Path(dir_okay=False, path_type=Path), metavar="FILE.parquet",
    help="Parquet file to write (replaced if it exists).",
)
@click.option(
    "--per", type=click.Choice(["epoch", "point"]), default="epoch", show_default=True,
    help="epoch: one row per trial and epoch, with every point column. point: one row per point.",
)
@_select_on_option
@store_option
@output_options
@_store_errors
def export(
    sweep: str, out: Path, per: str, select_on: str | None, store_url: str | None, output_format: str
) -> None:
    """Write a sweep as a tidy Parquet table that pandas, pyarrow and DuckDB read as is.

    Per point, test_error is the chosen trial's at the chosen epoch, and selected_on says what the choice was made
    on; per epoch, chosen and chosen_epoch mark the chosen trial and epoch.

    \b
    Examples:
        analog-sweep results export noise-sweep --out noise.parquet
        analog-sweep results export noise-sweep --out points.parquet --per point
    """
    with open_store(store_url, read_only=True) as store:
        selection = _selection(store, sweep, select_on)
        if per == "epoch":
            count = store.export_trials(sweep, out, selection)
        else:
            count = store.export_points(sweep, out, selection)
    emit_rows([{"file": str(out), "per": per, "rows": count}], output_format)


@results.command()
@click.argument("sql")
@click.option(
    "--limit", type=click.IntRange(1), default=1000, show_default=True, help="Print at most this many rows."
)
@store_option
@output_options
@_store_errors
def query(sql: str, limit: int, store_url: str | None, output_format: str) -> None:
    """Run one read-only SQL statement (SQL "-" reads it from stdin).

    Statements that would write or change the schema (INSERT, UPDATE, DELETE, DROP, CREATE, ALTER, ATTACH,
    PRAGMA other than schema lookups, writing CTEs, several statements) are refused, and exit 2.
    Tables: sweeps, points, trials, epochs, schema_version.

    \b
    Example:
        analog-sweep results query "SELECT mode, selected_on, avg(chosen_test_error) FROM points GROUP BY mode, selected_on"
    """
    if sql == "-":
        sql = sys.stdin.read()
    with open_store(store_url, read_only=True) as store:
        result = store.run_readonly_query(sql, max_rows=limit)
    columns = _unique(result.columns)
    emit_rows(display_rows(dict(zip(columns, row)) for row in result.rows), output_format, columns=columns)
    if result.truncated:
        progress(f"(only the first {limit} rows; raise --limit for more)")


def _unique(names: Iterable[str]) -> list[str]:
    """Column names made unique (``a``, ``a_2``), so rows keyed by name lose no column."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
