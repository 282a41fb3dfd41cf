"""Options and error handling every command shares, so all commands print and fail the same way."""

from __future__ import annotations

import csv
import functools
import io
import json
import math
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any, TypeVar

import click

from analog_sweep.results import STORE_ENV

FORMATS = ("table", "csv", "json")
E = TypeVar("E", bound=BaseException)

# Exit codes scripts can rely on: 0 ok, 1 a failure while working, 2 bad input (click's own usage errors too).
EXIT_FAILURE = 1
EXIT_BAD_INPUT = 2


class BadInput(click.ClickException):
    """Bad input from the user: one line on stderr, exit code 2."""

    exit_code = EXIT_BAD_INPUT


class SafePath(click.Path):
    """``click.Path`` that refuses a NUL byte as a usage error (exit 2) instead of letting ``os.stat`` raise."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str) and "\0" in value:
            self.fail(f"{value!r} contains a NUL byte", param, ctx)
        return super().convert(value, param, ctx)


def output_options(command: Callable) -> Callable:
    """Give a command ``--format table|csv|json``, passed on as ``output_format``."""
    return click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="How to print rows.",
    )(command)


def one_line_errors(*bad_input: type[BaseException], failure: Sequence[type[BaseException]] = ()) -> Callable:
    """Turn library exceptions into one clean line: ``bad_input`` types exit 2, ``failure`` types exit 1."""

    def decorate(command: Callable) -> Callable:
        @functools.wraps(command)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return command(*args, **kwargs)
            except bad_input as exc:
                raise BadInput(_one_line(exc)) from None
            except tuple(failure) as exc:
                raise click.ClickException(_one_line(exc)) from None

        return wrapper

    return decorate


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return " ".join(text.split())


# The analog activity columns the tables show (workers._activity; the store has all of them): percent of head and body
# weights moved since conversion, and the body's mean|dW| / mean|W|.
ACTIVITY_COLUMNS = ("head_moved", "blocks_moved", "blocks_rel")


def emit_rows(
    rows: Iterable[dict[str, Any]],
    output_format: str,
    columns: Sequence[str] | None = None,
    *,
    table_drops_uniform: Sequence[str] = ("algorithm",),
) -> None:
    """Print rows (dicts) as an aligned table, CSV or JSON lines.

    CSV and JSON always carry every column; a table leaves out the ``table_drops_uniform`` columns that hold at most
    one value besides empty cells (``algorithm`` in a sweep of one algorithm: its labels name no algorithm either).
    """
    rows = list(rows)
    if columns is None:
        columns = list(rows[0]) if rows else []
    if output_format == "table":
        columns = [
            c
            for c in columns
            if c not in table_drops_uniform or len({row.get(c) for row in rows if row.get(c) is not None}) > 1
        ]
    if output_format == "json":
        for row in rows:
            click.echo(json_line({c: row.get(c) for c in columns}))
        return
    if output_format == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        for row in rows:
            writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        click.echo(buffer.getvalue(), nl=False)
        return
    click.echo(format_table(rows, columns))


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    cells = [[cell_text(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for r in cells:
        lines.append("  ".join(v.rjust(w) if _numeric(v) else v.ljust(w) for v, w in zip(r, widths)).rstrip())
    if not rows:
        lines.append("(no rows)")
    return "\n".join(lines)


def cell_text(value: Any) -> str:
    """A value as a table cell shows it: ``-`` for None, 4 significant digits for a float."""
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{value:.4g}"
    return str(value)


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def json_line(row: dict[str, Any]) -> str:
    """One row as strict JSON: inf and NaN (which JSON has no token for) become null, anything else not JSON-ready
    becomes text; never a bare ``NaN``."""
    return json.dumps({key: _json_value(value) for key, value in row.items()}, allow_nan=False)


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def store_option(command: Callable) -> Callable:
    """Give a command ``--store URL``, passed on as ``store_url``."""
    return click.option(
        "--store",
        "store_url",
        metavar="URL",
        help=f"SQLAlchemy URL of the results store [default: ${STORE_ENV}, else sqlite:///sweep-store/results.db].",
    )(command)


def display_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Times as ISO text to the second and class lists as comma-joined text, for tables and CSV alike."""

    def cell(value: Any) -> Any:
        if isinstance(value, datetime):
            return value.isoformat(timespec="seconds")
        if isinstance(value, list):
            return ",".join(map(str, value))
        return value

    return [{key: cell(value) for key, value in row.items()} for row in rows]


def command_line() -> list[str]:
    """The command line of this invocation as typed, program name first (``sys.argv`` outside the click root)."""
    from analog_sweep.cli import ARGV_KEY

    ctx = click.get_current_context(silent=True)
    argv = ctx.meta.get(ARGV_KEY) if ctx is not None else None
    return list(argv) if argv else list(sys.argv)


def progress(message: str) -> None:
    """Progress for long work goes to stderr, so stdout stays clean for tables and JSON."""
    click.echo(message, err=True)
    sys.stderr.flush()
