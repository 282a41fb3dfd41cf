"""``analog-sweep results ...``: read the results store (tables, curves, plots, Parquet, read-only SQL).

A thin layer over the ``results`` library: every command opens the store read-only (``read_only``: it must exist, so a
mistyped path is an error, not a new empty store) and prints rows with the shared ``--format`` option. Rows carry the
sweep's ``profile`` (``smoke`` for a smoke run; CSV and JSON only, as a table shows one value in every row, except
the list of sweeps, which shows it when a sweep has one); a table of a smoke run is preceded by one line on stderr
saying its numbers are not results, and a table of replicates with fewer than 3 seeds, or of curves not tested
for a critical point, is followed by one line saying so.
Exit codes: 0 ok, 1 the store could not be used (unreachable server), 2 bad input.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import textwrap
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from analog_sweep.cli._liveness import with_live_status
from analog_sweep.cli._sweep_list import emit_sweep_list
from analog_sweep.cli.output import (
    ACTIVITY_COLUMNS,
    cell_text,
    display_rows,
    emit_rows,
    one_line_errors,
    output_options,
    progress,
    store_option,
)
from analog_sweep.results import (
    AXES,
    MIN_REPLICATES,
    SELECTION_SPLITS,
    Selection,
    Store,
    StoreError,
    StoreInputError,
    differences_text,
    few_seeds_note,
    node_label,
    nodes_summary,
    open_store,
    plot_axis_curve,
    plot_epoch_curves,
    profile_note,
    run_profile,
)

_store_errors = one_line_errors(StoreInputError, failure=(StoreError, OSError))
# ``results provenance``'s table: its width without a terminal, the most its section, item and field columns take,
# the least room its value column gets (the key columns narrow to leave it on a narrow terminal), and how many
# characters of an rpu config's point labels it shows without --full.
PROVENANCE_WIDTH = 120
PROVENANCE_KEY_WIDTH = 36
PROVENANCE_MIN_VALUE = 26
PROVENANCE_POINTS_SHOWN = 160


def _select_on_option(command: Callable) -> Callable:
    """Give a command ``--select-on validation|test``, passed on as ``select_on``."""
    return click.option(
        "--select-on",
        "select_on",
        type=click.Choice(SELECTION_SPLITS),
        help="Choose each point's learning rate and epoch on this split instead of the sweep's own rule "
        "(test: the paper's rule, optimistic). Shown in the selected_on column.",
    )(command)


def _selection(store: Store, sweep: str, select_on: str | None) -> Selection | None:
    """The rule ``--select-on`` asks for (keeping the sweep's per-seed setting), or None for the sweep's own."""
    if select_on is None:
        return None
    return Selection(split=select_on, per_seed=store.selection(sweep).per_seed)


# Columns a table leaves out when every row has the same value (CSV and JSON keep them): one algorithm, one profile.
_UNIFORM = ("algorithm", "profile")


def _profile(store: Store, sweep: str) -> str | None:
    """The sweep's profile (``smoke``, or None for a full run), after printing the smoke-run line on stderr for one:
    before the table, so it is read first. Raises ``NotFound`` for an unknown sweep."""
    spec = store.get_sweep(sweep)["spec"]
    note = profile_note(spec)
    if note:
        progress(note)
    return run_profile(spec)


def _footnote(note: str | None) -> None:
    if note:
        progress(note)


_POINT_HELP = (
    "Only this point: its key, or a label such as transfer_noise=10, mode=analog_tl,task=5-7, or "
    "analog_tl/5-7/transfer_noise=10/seed0 (all seeds of one device point when no seed is named)."
)


@click.group()
def results() -> None:
    """Query the results store: progress, best learning rates, curves, critical points, Parquet export, read-only SQL.

    \b
    Example:
        analog-sweep results sweeps
    """


@results.command()
@store_option
@output_options
@_store_errors
def sweeps(store_url: str | None, output_format: str) -> None:
    """List sweeps with their status, points done of total, and trials by status. A sweep the store calls running
    whose driver is gone (killed, or its machine died) is listed as stopped, with a line saying how to continue it.

    \b
    Example:
        analog-sweep results sweeps --format csv
    """
    with open_store(store_url, read_only=True) as store:
        rows = with_live_status(store.sweep_progress(), progress)
        emit_sweep_list(rows, output_format, columns=_SWEEP_COLUMNS)


_SWEEP_COLUMNS = (
    "sweep",
    "status",
    "points_done",
    "points_total",
    "points_failed",
    "trials_running",
    "trials_completed",
    "trials_pruned",
    "trials_failed",
    "trials_diverged",
    "started_at",
    "ended_at",
    "profile",
)


@results.command()
@click.argument("sweep")
@click.option("--axis", type=click.Choice(AXES), help="Show the curve of test error against this device axis.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw the --axis curve (the report's figure: mean and sd over seeds per task, log x for "
    "transfer_noise where its values span decades, as in the paper) to this .png, .pdf or .svg file.",
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
        analog-sweep results best quickstart
        analog-sweep results best quickstart --axis transfer_noise --plot fig3.png
        analog-sweep results best quickstart --select-on test
    """
    if plot is not None and axis is None:
        raise click.UsageError("--plot needs --axis (results curves --plot draws the modes per epoch)")
    with open_store(store_url, read_only=True) as store:
        profile = _profile(store, sweep)
        selection = _selection(store, sweep, select_on)
        if axis is None:
            rows = [{**row, "profile": profile} for row in store.best_points(sweep, selection)]
            emit_rows(display_rows(rows), output_format, columns=_BEST_COLUMNS, table_drops_uniform=_UNIFORM)
            return
        curve = [
            {**row, "few_seeds": row["points"] < MIN_REPLICATES, "profile": profile}
            for row in store.axis_curve(sweep, axis, selection)
        ]
        if plot is not None:
            try:
                elbows = store.elbows(sweep, axis)
            except StoreInputError:  # an axis the sweep did not vary: the figure says so in its own words
                elbows = None
            plot_axis_curve(store.best_points(sweep, selection), axis, plot, elbows=elbows, smoke=profile == "smoke")
            progress(f"wrote {plot}")
    emit_rows(curve, output_format, table_drops_uniform=_UNIFORM)
    _footnote(few_seeds_note(curve))


_BEST_COLUMNS = (
    "label",
    "mode",
    "algorithm",
    "task",
    "seed",
    *AXES,
    "status",
    "trials",
    "selected_on",
    "lr",
    "epoch",
    "test_error",
    "validation_error",
    "final_test_error",
    *ACTIVITY_COLUMNS,
    "point_key",
    "profile",
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
        analog-sweep results trials quickstart --point transfer_noise=30
        analog-sweep results trials quickstart --point mode=analog_tl,transfer_noise=30,seed=0 --select-on test
    """
    with open_store(store_url, read_only=True) as store:
        profile = _profile(store, sweep)
        selection = _selection(store, sweep, select_on)
        best = {row["point_key"]: row for row in store.best_points(sweep, selection)}
        keys = None if point is None else store.resolve_replicates(sweep, point)
        rows = []
        for row in store.list_trials(sweep, keys):
            chosen = best[row["point_key"]]
            rows.append(
                {
                    **row,
                    "chosen": row["trial_id"] == chosen["trial_id"],
                    "selected_on": chosen["selected_on"],
                    "profile": profile,
                }
            )
        for key in keys or ():
            progress(f"{best[key]['label']}: {store.best_trial(sweep, key, selection).why()}")
    emit_rows(display_rows(rows), output_format, columns=_TRIAL_COLUMNS, table_drops_uniform=_UNIFORM)


_TRIAL_COLUMNS = (
    "label",
    "trial_id",
    "lr",
    "status",
    "chosen",
    "selected_on",
    "epochs_done",
    "best_validation_error",
    "best_validation_epoch",
    "final_test_error",
    "best_test_error",
    *ACTIVITY_COLUMNS,
    "error",
    "profile",
)


@results.command()
@click.argument("sweep")
@click.option("--point", "point", metavar="LABEL", help=_POINT_HELP)
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.png",
    help="Also draw test error against epoch (the report's Fig. 2: per task, one line per mode at the base device "
    "point, mean and sd over seeds, log axes where the data span decades) to this .png, .pdf or .svg file.",
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
        analog-sweep results curves quickstart --plot fig2.png
        analog-sweep results curves quickstart --point transfer_noise=30
    """
    with open_store(store_url, read_only=True) as store:
        profile = _profile(store, sweep)
        selection = _selection(store, sweep, select_on)
        keys = None if point is None else store.resolve_replicates(sweep, point)
        rows = [{**row, "profile": profile} for row in store.epoch_curves(sweep, keys, selection)]
    if plot is not None:
        plot_epoch_curves(rows, plot, smoke=profile == "smoke")
        progress(f"wrote {plot}")
    emit_rows(rows, output_format, columns=_CURVE_COLUMNS, table_drops_uniform=_UNIFORM)


_CURVE_COLUMNS = (
    "label",
    "mode",
    "algorithm",
    "task",
    "selected_on",
    "lr",
    "chosen_epoch",
    "epoch",
    "validation_error",
    "test_error",
    "test_accuracy",
    "train_loss",
    *ACTIVITY_COLUMNS,
    "point_key",
    "profile",
)


@results.command()
@click.argument("sweep")
@click.option("--axis", type=click.Choice(AXES), help="Only this device axis (one the sweep varied).")
@store_option
@output_options
@_store_errors
def elbows(sweep: str, axis: str | None, store_url: str | None, output_format: str) -> None:
    """Critical points: where test error starts rising along each swept axis, per mode (and algorithm) and task, with
    a 95 % interval and the Davies test of whether there is an elbow at all (piecewise-regression; every seed is one
    observation). A flat or straight curve gives has_elbow false, tested true and the reason (tested, none found);
    fewer than 5 axis values or 6 observations give tested false (not tested: no answer either way).

    Breakpoint and interval are in the axis's unit; p_value is the Davies test of "no elbow" (one-sided:
    the slope rises); flat_level is the mean test error (%) below the elbow; slope_after is % per axis unit, or per
    decade where log_x (transfer_noise is fitted on a log axis, as the paper plots it).

    \b
    Examples:
        analog-sweep results elbows quickstart
        analog-sweep results elbows quickstart --axis transfer_noise --format json
    """
    with open_store(store_url, read_only=True) as store:
        profile = _profile(store, sweep)
        rows = [{**row, "profile": profile} for row in store.elbows(sweep, axis)]
    # numpy, which the other commands need not load
    from analog_sweep.results import elbow_few_seeds, few_seeds_elbows_note, untested_note

    rows = [{**row, "few_seeds": elbow_few_seeds(row)} for row in rows]
    emit_rows(rows, output_format, columns=_ELBOW_COLUMNS, table_drops_uniform=(*_UNIFORM, "few_seeds"))
    _footnote(untested_note(rows))
    _footnote(few_seeds_elbows_note(rows))


@results.command()
@click.argument("sweep")
@click.option("--axis", type=click.Choice(AXES), help="Only this device axis.")
@_select_on_option
@store_option
@output_options
@_store_errors
def compare(sweep: str, axis: str | None, select_on: str | None, store_url: str | None, output_format: str) -> None:
    """Algorithms side by side: in a sweep whose spec lists several algorithms, each pair of them at every value of
    each swept axis, per task and analog mode. difference is mean test error A - B in percentage points (negative:
    A has the lower error) with Welch's 95 % interval over the seeds; resolved is true when the interval excludes 0.

    \b
    Examples:
        analog-sweep results compare embedded_algorithms_sp_skew
        analog-sweep results compare embedded_algorithms_sp_skew --axis sp_skew --format csv
    """
    with open_store(store_url, read_only=True) as store:
        profile = _profile(store, sweep)
        rows = [
            {**row, "profile": profile}
            for row in store.algorithm_differences(sweep, axis, _selection(store, sweep, select_on))
        ]
        if not rows:
            algorithms = sorted({r["algorithm"] for r in store.list_points(sweep) if r.get("algorithm")})
            if len(algorithms) < 2:
                raise StoreInputError(
                    f"sweep {sweep!r} runs {len(algorithms)} analog algorithm(s) ({', '.join(algorithms) or 'none'}): "
                    "nothing to compare; a spec's algorithms list compares several"
                )
            where = f"along {axis} (did the sweep vary it?)" if axis else "yet"
            raise StoreInputError(f"sweep {sweep!r}: no device point has results of two algorithms {where}")
    emit_rows(rows, output_format, columns=_COMPARE_COLUMNS, table_drops_uniform=_UNIFORM)
    if any(row["few_seeds"] for row in rows):
        _footnote(
            f"few_seeds: {sum(row['few_seeds'] for row in rows)} of {len(rows)} comparisons have fewer than "
            f"{MIN_REPLICATES} seeds on a side: unreliable, never counted as resolved"
        )


_COMPARE_COLUMNS = (
    "task",
    "mode",
    "axis",
    "value",
    "selected_on",
    "comparison",
    "a",
    "b",
    "a_mean",
    "a_n",
    "b_mean",
    "b_n",
    "difference",
    "ci_low",
    "ci_high",
    "resolved",
    "few_seeds",
    "text",
    "profile",
)


_ELBOW_COLUMNS = (
    "mode",
    "algorithm",
    "task",
    "axis",
    "n_values",
    "n_obs",
    "tested",
    "few_seeds",
    "has_elbow",
    "breakpoint",
    "ci_low",
    "ci_high",
    "p_value",
    "flat_level",
    "slope_after",
    "log_x",
    "reason",
    "method",
    "profile",
)


@results.command()
@click.argument("sweep")
@click.option(
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    metavar="FILE.parquet",
    help="Parquet file to write (replaced if it exists).",
)
@click.option(
    "--per",
    type=click.Choice(["epoch", "point", "elbow"]),
    default="epoch",
    show_default=True,
    help="epoch: one row per trial and epoch, with every point column. point: one row per point. "
    "elbow: one row per critical point (results elbows), per mode, task and swept axis.",
)
@_select_on_option
@store_option
@output_options
@_store_errors
def export(sweep: str, out: Path, per: str, select_on: str | None, store_url: str | None, output_format: str) -> None:
    """Write a sweep as a tidy Parquet table that pandas, pyarrow and DuckDB read as is.

    Per point, test_error is the chosen trial's at the chosen epoch, and selected_on says what the choice was made
    on; replicates counts the seeds of the point's device point and few_seeds marks fewer than 3; per epoch, chosen
    and chosen_epoch mark the chosen trial and epoch. Every row has the sweep's profile (smoke: not results).

    \b
    Examples:
        analog-sweep results export quickstart --out noise.parquet
        analog-sweep results export quickstart --out points.parquet --per point
        analog-sweep results export quickstart --out elbows.parquet --per elbow
    """
    with open_store(store_url, read_only=True) as store:
        _profile(store, sweep)
        selection = _selection(store, sweep, select_on)
        if per == "epoch":
            count = store.export_trials(sweep, out, selection)
        elif per == "point":
            count = store.export_points(sweep, out, selection)
        else:
            count = store.export_elbows(sweep, out)
    emit_rows([{"file": str(out), "per": per, "rows": count}], output_format)


@results.command()
@click.argument("sql")
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Print at most this many rows.")
@store_option
@output_options
@_store_errors
def query(sql: str, limit: int, store_url: str | None, output_format: str) -> None:
    """Run one read-only SQL statement (SQL "-" reads it from stdin).

    Statements that would write or change the schema (INSERT, UPDATE, DELETE, DROP, CREATE, ALTER, ATTACH,
    PRAGMA other than schema lookups, writing CTEs, several statements) are refused, and exit 2.
    Tables: sweeps, points, trials, epochs, rpu_configs, node_environments, sweep_runs, pretrained_models,
    schema_version.

    \b
    Example:
        analog-sweep results query "SELECT mode, avg(chosen_test_error) FROM points GROUP BY mode"
    """
    if sql == "-":
        sql = sys.stdin.read()
    with open_store(store_url, read_only=True) as store:
        result = store.run_readonly_query(sql, max_rows=limit)
    columns = _unique(result.columns)
    emit_rows(display_rows(dict(zip(columns, row)) for row in result.rows), output_format, columns=columns)
    if result.truncated:
        progress(f"(only the first {limit} rows; raise --limit for more)")


@results.command()
@click.argument("sweep")
@click.option(
    "--full", is_flag=True, help="Also list every field of each rpu config (table and csv; json always has them)."
)
@store_option
@output_options
@_store_errors
def provenance(sweep: str, full: bool, store_url: str | None, output_format: str) -> None:
    """How a sweep was made: each run and resume (command line, options, package versions, project commit, host,
    CPU and GPUs), the pretrained models it used (cache key, file hash, source error, training time), the
    resolved aihwkit rpu configs of its trials, and the Ray nodes they ran on (the package versions there, how many
    trials each ran, and what differs from the driver's versions).

    Tables and CSV have one row per fact (section, item, field, value); --format json prints the whole record as
    one JSON document (runs oldest first; rpu configs with the trials that ran with each). The table fits the
    terminal's width (120 columns when it has none), a long value wrapped under its column, and names an rpu
    config's points by label, seeds together (analog_tl/5-7/base/seed0-6), the first few unless --full; CSV and JSON
    list every point by key and label.

    \b
    Example:
        analog-sweep results provenance quickstart
        analog-sweep results provenance quickstart --format json
    """
    with open_store(store_url, read_only=True) as store:
        found = store.provenance(sweep)
    if output_format == "json":
        click.echo(json.dumps(_plain(found), allow_nan=False))
        return
    columns = ("section", "item", "field", "value")
    if output_format == "table":
        width = shutil.get_terminal_size((PROVENANCE_WIDTH, 24)).columns
        click.echo(_fact_table(list(_provenance_rows(found, full, table=True)), columns, width))
        return
    emit_rows(_provenance_rows(found, full), output_format, columns=columns)


def _plain(value: Any) -> Any:
    """Provenance as strict JSON data: times as ISO text, non-finite numbers as null."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _text(value: Any) -> Any:
    """One cell: scalars as they are, times to the second, anything nested as compact JSON."""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dict, list)):
        return json.dumps(_plain(value), separators=(",", ":"))
    return value


def _count(part: dict[str, Any] | None) -> str | None:
    if not part:
        return None
    return f"{part.get('model') or 'none'} x {part.get('count')}" if part.get("count") else "none"


def _provenance_rows(found: dict[str, Any], full: bool, table: bool = False) -> Iterator[dict[str, Any]]:
    """Provenance as facts (section, item, field, value). Each rpu config names its points by key (``points``) and
    by label (``point_labels``); for a ``table`` by label only, seeds together and, unless ``full``, the first
    few (``_points_in_short``)."""

    def row(section: str, item: Any, name: str, value: Any) -> dict[str, Any]:
        return {"section": section, "item": str(item), "field": name, "value": _text(value)}

    for run in found["runs"]:
        number = run["run"]
        for name in ("kind", "started_at", "command", "host", "platform"):
            yield row("run", number, name, run[name])
        yield row("run", number, "cpu", _count(run["cpu"]))
        yield row("run", number, "gpus", _count(run["gpus"]))
        cluster = run["cluster"] or {}
        if cluster:
            types = ", ".join(cluster.get("accelerator_types") or [])
            yield row(
                "run",
                number,
                "cluster",
                f"{cluster.get('nodes')} node(s), {cluster.get('cpus', 0):g} CPU, "
                f"{cluster.get('gpus', 0):g} GPU{f' ({types})' if types else ''}",
            )
        for name, value in run["project"].items():
            yield row("run", number, f"project.{name}", value)
        for name, value in run["packages"].items():
            yield row("run", number, f"packages.{name}", value)
        yield row("run", number, "aihwkit_cuda", run["aihwkit_cuda"])
        for name, value in run["options"].items():
            yield row("run", number, f"options.{name}", value)
    for model in found["pretrained"]:
        for name in ("file_hash", "source_error", "source_train_error", "train_seconds", "trained_now", "run", "path"):
            yield row("pretrained", model["cache_key"], name, model[name])
    for group in found["rpu_configs"]:
        yield row("rpu_config", group["config_hash"], "class", group["rpu_config"].get("__class__"))
        yield row("rpu_config", group["config_hash"], "trials", len(group["trial_ids"]))
        labels = group.get("point_labels") or group["point_keys"]
        if table:
            yield row("rpu_config", group["config_hash"], "points", _points_in_short(labels, full))
        else:
            yield row("rpu_config", group["config_hash"], "points", ",".join(group["point_keys"]))
            yield row("rpu_config", group["config_hash"], "point_labels", "; ".join(labels))
        if full:
            for name, value in _leaves(group["rpu_config"]):
                yield row("rpu_config", group["config_hash"], f"config.{name}", value)
    if found["trials_without_rpu_config"]:
        # Digital trials, and trials recorded before the store kept rpu configs.
        yield row("rpu_config", "none", "trials", found["trials_without_rpu_config"])
    yield from _node_rows(found, row, table)


def _node_rows(found: dict[str, Any], row: Callable[..., dict[str, Any]], table: bool) -> Iterator[dict[str, Any]]:
    """The Ray nodes of a sweep as facts: a summary, then per node its host, how many trials ran there, its package
    versions and what differs from the driver of the last run (CSV and JSON also give the node id and the hash)."""
    nodes = found.get("nodes") or []
    if nodes:
        yield row("node", "all", "summary", nodes_summary(nodes))
    for node in nodes:
        item = node_label(node)
        if not table:
            yield row("node", item, "node_id", node["node_id"])
            yield row("node", item, "environment_hash", node["environment_hash"])
        yield row("node", item, "host", node["host"])
        yield row("node", item, "trials", node["trials"])
        yield row("node", item, "differences", differences_text(node["differences"]))
        packages = ", ".join(f"{name} {version or 'none'}" for name, version in node["packages"].items())
        yield row("node", item, "packages", packages)
    if found.get("trials_without_node"):
        # Trials recorded before the store kept nodes, or whose reports never reached the driver.
        yield row("node", "none", "trials", found["trials_without_node"])


def _points_in_short(labels: list[str], full: bool) -> str:
    """An rpu config's points for the table: how many, then their labels with the seeds of one device point
    together (``analog_tl/5-7/base/seed0-6``), the first ``PROVENANCE_POINTS_SHOWN`` characters' worth unless
    ``full``."""
    seeds: dict[str, list[int]] = {}
    for label in labels:
        head, mark, seed = label.rpartition("/seed")
        if mark and seed.isdigit():
            seeds.setdefault(head, []).append(int(seed))
        else:
            seeds.setdefault(label, [])
    names = [f"{head}/seed{_number_ranges(numbers)}" if numbers else head for head, numbers in seeds.items()]
    count = f"{len(labels)} point{'s' if len(labels) != 1 else ''}: "
    shown: list[str] = []
    for name in names:
        if not full and shown and len(", ".join([*shown, name])) > PROVENANCE_POINTS_SHOWN:
            return f"{count}{', '.join(shown)}, ... {len(names) - len(shown)} more (--full lists them)"
        shown.append(name)
    return count + ", ".join(shown)


def _number_ranges(numbers: list[int]) -> str:
    """Numbers as runs: [0, 1, 2, 5] -> ``0-2,5``."""
    runs: list[list[int]] = []
    for number in sorted(set(numbers)):
        if runs and number == runs[-1][1] + 1:
            runs[-1][1] = number
        else:
            runs.append([number, number])
    return ",".join(f"{low}-{high}" if high > low else f"{low}" for low, high in runs)


def _fact_table(rows: list[dict[str, Any]], columns: tuple[str, ...], width: int) -> str:
    """Rows as a table that fits ``width`` characters, every cell left-aligned, so no short number is pushed right by
    a long value. The last column wraps (``_wrap``; it keeps at least ``PROVENANCE_MIN_VALUE`` characters): a value
    of many lines (a command line, a path) starts under the column's head and continues below it. The other columns
    are at most ``PROVENANCE_KEY_WIDTH`` wide, narrower (none below its heading) where the value column would
    otherwise get less than ``PROVENANCE_MIN_VALUE``; a longer cell (an rpu config's deepest fields,
    --full, or a node on a narrow terminal) has the line to itself, its value starting on the next."""
    cells = [[cell_text(row.get(column)) for column in columns] for row in rows]
    widths = [
        min(PROVENANCE_KEY_WIDTH, max([len(column)] + [len(cells_[i]) for cells_ in cells]))
        for i, column in enumerate(columns[:-1])
    ]
    floors = [len(column) for column in columns[:-1]]
    room_for_keys = width - PROVENANCE_MIN_VALUE - 2 * len(widths)
    while sum(widths) > room_for_keys and widths != floors:
        # Narrow the column that puts the fewest rows on a line of their own (a node's item, the longest field).
        narrowed = min(
            (i for i in range(len(widths)) if widths[i] > floors[i]),
            key=lambda i: (sum(len(cells_[i]) >= widths[i] for cells_ in cells), -widths[i]),
        )
        widths[narrowed] -= 1
    indent = sum(widths) + 2 * len(widths)
    room = max(PROVENANCE_MIN_VALUE, width - indent)
    widths.append(min(room, max([len(columns[-1])] + [len(cells_[-1]) for cells_ in cells])))
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for cells_ in cells:
        value = _wrap(cells_[-1], room)
        head = "  ".join(c.ljust(w) for c, w in zip(cells_[:-1], widths, strict=False)) + "  "
        if len(head) > indent:
            lines.append(head)
            head = " " * indent
        lines.append(head + value[0])
        lines.extend(" " * indent + more for more in value[1:])
    if not rows:
        lines.append("(no rows)")
    return "\n".join(line.rstrip() for line in lines)


def _wrap(text: str, width: int) -> list[str]:
    """``text`` in lines of at most ``width`` characters, broken at spaces; a word longer than a line (a path, a
    label, a class name) is broken after its last ``/``, ``,`` or ``.`` that fits, else at ``width``."""
    lines: list[str] = []
    for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False) or [""]:
        while len(line) > width:
            cut = max(line.rfind(mark, 0, width) for mark in "/,.") + 1 or width
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def _leaves(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every leaf of a nested config as (dotted path, value); list items as ``name[i]``."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, f"{prefix}.{key}" if prefix else key)
    elif isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        for index, item in enumerate(value):
            yield from _leaves(item, f"{prefix}[{index}]")
    else:
        yield prefix, value


def _unique(names: Iterable[str]) -> list[str]:
    """Column names made unique (``a``, ``a_2``), so rows keyed by name lose no column."""
    seen: dict[str, int] = {}
    unique = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        unique.append(name if seen[name] == 1 else f"{name}_{seen[name]}")
    return unique
