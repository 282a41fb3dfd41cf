"""The list of sweeps that ``status`` and ``results sweeps`` print, smoke runs marked as such."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from analog_sweep.cli.output import display_rows, emit_rows, progress


def emit_sweep_list(rows: Sequence[dict[str, Any]], output_format: str, columns: Sequence[str] | None = None) -> None:
    """Print sweep rows (``Store.sweep_progress``) in ``columns`` (default: every column of a row).

    A smoke run (``profile`` ``smoke``) is named first, in one line on stderr, since its numbers are not results; a
    table then shows the ``profile`` column, which it leaves out when no sweep has a profile (CSV and JSON always
    carry it)."""
    columns = list(columns or (rows[0] if rows else ()))
    profiled = [row["sweep"] for row in rows if row.get("profile")]
    if profiled:
        progress(f"smoke runs (--profile smoke), whose numbers are not results: {', '.join(profiled)}")
    elif output_format == "table":
        columns = [column for column in columns if column != "profile"]
    emit_rows(display_rows(rows), output_format, columns=columns)
