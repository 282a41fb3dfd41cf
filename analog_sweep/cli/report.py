"""``analog-sweep report SWEEP [--out DIR]``: the study's report, a thin layer over ``results.write_report``.

Opens the store read-only, writes ``DIR/report.html`` (one self-contained file, figures embedded) and every figure as
PNG and PDF beside it, and prints one row per file written. Exit codes: 0 ok, 1 the store or the folder could not
be used, 2 bad input (unknown sweep, ``--out`` naming a file).
"""

from __future__ import annotations

from pathlib import Path

import click

from analog_sweep.cli.output import SafePath, emit_rows, one_line_errors, output_options, progress, store_option
from analog_sweep.results import REPORT_NAME, StoreError, StoreInputError, open_store, profile_note, write_report


@click.command()
@click.argument("sweep")
@click.option(
    "--out",
    type=SafePath(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Folder to write the report into (created if needed; files of the same names are replaced) "
    "[default: SWEEP-report].",
)
@store_option
@output_options
@one_line_errors(StoreInputError, failure=(StoreError, OSError))
def report(sweep: str, out: Path | None, store_url: str | None, output_format: str) -> None:
    """Write a sweep's report: HTML with the paper's figures, findings and provenance, plus the figures as PNG/PDF.

    The report holds the four modes' test error per epoch (the paper's Fig. 2), test error against every varied
    device axis with its critical point (Figs. 3-5), the findings (analog TL against analog scratch and digital TL,
    with intervals over seeds; critical points; analog learning activity) beside the paper's values, every point,
    and how the sweep was run. Parts the store cannot give are shown as absent, with the reason. A smoke run's
    report says so on the page and in every figure, and sets none of its numbers beside the paper's.

    \b
    Example:
        analog-sweep report quickstart --out quickstart-report
    """
    out = out if out is not None else Path(f"{sweep}-report")
    with open_store(store_url, read_only=True) as store:
        files = write_report(store, sweep, out)
        note = profile_note(store.get_sweep(sweep)["spec"])
    progress(f"wrote {out / REPORT_NAME}: open it in a browser")
    if note:
        progress(note)
    emit_rows(files, output_format, columns=("file", "what", "bytes"))
