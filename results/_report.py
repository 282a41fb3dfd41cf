"""The study's report: one self-contained HTML file (figures embedded) plus each figure as PNG and PDF.

``write_report(store, sweep, out)`` reads a sweep from the store and writes ``out/report.html`` and
``out/<figure>.png|pdf``: the paper's Fig. 2 (``epochs_figure``), one Fig. 3-5 per varied device axis (``axis_figure``),
the findings (``_findings``: mode comparisons with Welch intervals, critical points, analog learning activity;
``_algorithms``: the algorithms compared per axis value, where the sweep compares several) beside the paper's values
(``_paper``), every point's replicate summary, the provenance of the runs, and the spec. A smoke run (``_profile``) is
labelled on the page, in every figure and caption, and is set beside none of the paper's values. A part the store
cannot give (critical points or provenance from a version that does not record them, figures of a sweep with no
completed trial) is shown as absent with the reason, never left out silently. The HTML has no scripts and loads
nothing: it opens the same from a mail attachment as from the folder.
"""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from analog_sweep.results._algorithms import algorithm_differences, algorithm_label, compared_algorithms
from analog_sweep.results._basepoint import base_points, device_point, varied_axes
from analog_sweep.results._elbows import MIN_AXIS_VALUES, few_seeds_elbows_note, untested_note
from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._figures import (
    AXIS_LABELS,
    FORMATS,
    Figure,
    axis_figure,
    epochs_figure,
    series_style,
)
from analog_sweep.results._findings import activity_by_mode, critical_points, mode_differences, task_names
from analog_sweep.results._paper import CRITICAL_POINT, PAPER_VALUES, paper_value
from analog_sweep.results._profile import SMOKE_NOTE, run_profile, smoke_run
from analog_sweep.results._provenance import differences_text, node_label, nodes_summary
from analog_sweep.results._replicates import CONFIDENCE, MIN_REPLICATES, replicate_rows

REPORT_NAME = "report.html"
# Why a smoke run's report leaves out the paper's values.
SMOKE_NO_PAPER = "a smoke run's numbers are not results, so they are set beside none of the paper's values"
# How each point's trial was chosen, as the report states it: by the ``selected_on`` column of the best rows where
# the store has one, else the paper's rule (``results._best``), which is the only rule of stores without it.
SELECTION_RULES = {
    "test": "Each point's learning rate is the one whose completed trial has the lowest final test error (ties: the "
    "smaller rate): selected on the test set, the paper's rule (Sec. II), so the reported errors are "
    "optimistic.",
    "validation": "Each point's learning rate and epoch are chosen on a validation split held out of the training "
    "data; the reported error is the chosen trial's test error at that epoch.",
}


def selection_rule(best_rows: list[dict[str, Any]]) -> str:
    """The selection rule of a sweep's chosen trials in words (several when its points differ)."""
    rules = sorted({row.get("selected_on") or "test" for row in best_rows}) or ["test"]
    return " ".join(SELECTION_RULES.get(rule, f"Selected on {rule}.") for rule in rules)


@dataclass
class Section:
    """A part of the report that may be absent: ``rows`` when present, else ``absent`` says why."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    absent: str | None = None


@dataclass
class StudyReport:
    """Everything the HTML shows, computed from the store (``build_report``). ``profile``: the profile the sweep was
    made with (``smoke``), or None; ``smoke`` whether it is a smoke run; ``paper_absent`` why the paper's values are
    left out (a smoke run), else None; ``critical_note`` the sentence on curves not tested for a critical point."""

    sweep: dict[str, Any]
    progress: dict[str, Any]
    store: str
    figures: list[Figure]
    figures_absent: list[tuple[str, str]]
    differences: Section
    algorithms: Section
    critical: Section
    activity: Section
    points: list[dict[str, Any]]
    points_raw: list[dict[str, Any]]
    point_axes: list[str]
    paper: list[dict[str, Any]]
    provenance: dict[str, Any] | None
    provenance_absent: str | None
    generated_at: str
    version: str
    profile: str | None = None
    smoke: bool = False
    paper_absent: str | None = None
    critical_note: str | None = None


def build_report(store: Any, sweep: str, *, formats: tuple[str, ...] = FORMATS) -> StudyReport:
    """Read ``sweep`` from ``store`` (a ``Store``) and compute the report; ``NotFound`` for an unknown sweep."""
    sweep_row = store.get_sweep(sweep)
    best = store.best_points(sweep)
    # Fig. 2 draws the base device point only: read those points' epochs, not every chosen trial's.
    chosen = [r for r in best if r.get("trial_id") is not None]
    bases = base_points(chosen)
    at_base = [r["point_key"] for r in chosen if device_point(r) == bases[r["task"]]]
    curves = store.epoch_curves(sweep, at_base) if at_base else []
    modes_by_task: dict[str, set[str]] = {}
    for row in chosen:
        modes_by_task.setdefault(row["task"], set()).add(row["mode"])
    progress = next(row for row in store.sweep_progress() if row["sweep"] == sweep)
    spec = sweep_row.get("spec") or {}
    smoke = smoke_run(spec)
    # A smoke run is set beside none of the paper's values: no paper task, so no paper column, line or reference.
    dataset = None if smoke else (spec.get("data") or {}).get("dataset", "digits")
    done = [r for r in best if r.get("test_error") is not None]

    elbows, elbows_absent = _elbows(store, sweep)
    figures, figures_absent = [], []
    try:
        figures.append(epochs_figure(curves, formats=formats, modes_by_task=modes_by_task, smoke=smoke))
    except StoreInputError as exc:
        figures_absent.append(("Test error per epoch of the modes at the base device (the paper's Fig. 2)", str(exc)))
    papers = task_names(best, dataset)
    axes = varied_axes(done)
    for axis in axes:
        references = {
            task: {"value": ref.value, "text": ref.claim}
            for task, name in papers.items()
            if (ref := paper_value(name, CRITICAL_POINT, axis)) is not None
        }
        figures.append(axis_figure(done, axis, elbows=elbows, references=references, formats=formats, smoke=smoke))
    if not done:
        figures_absent.append(
            ("Test error against the device axes (the paper's Figs. 3-5)", "no point has a completed trial yet")
        )
    elif not axes:
        figures_absent.append(
            (
                "Test error against the device axes (the paper's Figs. 3-5)",
                "the sweep varied no device axis (it ran at the base device point only)",
            )
        )

    differences = (
        Section(mode_differences(done, dataset=dataset))
        if done
        else Section(absent="no point has a completed trial yet")
    )
    if done and not differences.rows:
        differences.absent = "the sweep does not run both modes of a comparison at a task's base device point"
    compared = compared_algorithms(best)
    if len(compared) < 2:
        one = f" ({algorithm_label(compared[0])})" if compared else ""
        algorithms = Section(
            absent=f"the sweep runs one analog algorithm{one}; a spec's algorithms list compares several"
        )
    elif not done:
        algorithms = Section(absent="no point has a completed trial yet")
    else:
        algorithms = Section(algorithm_differences(done))
        if not algorithms.rows:
            algorithms.absent = "no device point has completed trials of two algorithms yet"
    if elbows is None:
        critical = Section(absent=elbows_absent)
    elif not done:
        critical = Section(absent="no point has a completed trial yet")
    elif not axes:
        critical = Section(
            absent="the completed points vary no device axis (yet: the sweep may still be running)"
            if progress.get("status") == "running"
            else "the sweep varied no device axis"
        )
    else:
        critical = Section(critical_points(elbows, done, dataset=dataset))
        if not critical.rows:
            critical.absent = "no critical point was estimated for the varied axes"
    activity = Section(activity_by_mode(done, spec))
    if not activity.rows:
        activity.absent = (
            "no chosen trial has analog activity columns (digital modes only, or a store written "
            "before schema version 3)"
        )

    critical_note = (
        " ".join(n for n in (untested_note(elbows), few_seeds_elbows_note(elbows)) if n) or None
        if elbows and critical.rows
        else None
    )
    provenance, provenance_absent = _provenance(store, sweep)
    return StudyReport(
        sweep=sweep_row,
        progress=progress,
        store=store.label,
        figures=figures,
        figures_absent=figures_absent,
        differences=differences,
        algorithms=algorithms,
        critical=critical,
        activity=activity,
        points=replicate_rows(best),
        points_raw=best,
        point_axes=varied_axes(best),
        paper=[] if smoke else _paper_rows(set(papers.values())),
        provenance=provenance,
        provenance_absent=provenance_absent,
        generated_at=datetime.now(UTC).isoformat(timespec="seconds"),
        version=_version(),
        profile=run_profile(spec),
        smoke=smoke,
        paper_absent=SMOKE_NO_PAPER if smoke else None,
        critical_note=critical_note,
    )


def write_report(store: Any, sweep: str, out: Path, *, formats: tuple[str, ...] = FORMATS) -> list[dict[str, Any]]:
    """Write ``out/report.html`` and every figure as ``out/<name>.<format>`` (``out`` is created if needed; files of
    the same names are replaced). Returns one row per file: ``file``, ``what``, ``bytes``.

    Raises ``NotFound`` for an unknown sweep, ``StoreInputError`` when ``out`` is not a folder, ``OSError`` when it
    cannot be written.
    """
    if out.exists() and not out.is_dir():
        raise StoreInputError(f"cannot write the report into {out}: it is a file, not a folder")
    report = build_report(store, sweep, formats=formats)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for figure in report.figures:
        for path in figure.write(out):
            files.append(
                {"file": str(path), "what": f"figure ({path.suffix[1:].upper()})", "bytes": path.stat().st_size}
            )
    html = render_html(report)
    target = out / REPORT_NAME
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    temporary.write_text(html, encoding="utf-8")
    os.replace(temporary, target)
    files.insert(0, {"file": str(target), "what": "report (HTML, figures embedded)", "bytes": target.stat().st_size})
    return files


def render_html(report: StudyReport) -> str:
    """The report as one HTML document: PNGs embedded as data URIs, no scripts, no external resources."""
    import jinja2  # only the report needs it

    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("analog_sweep.results", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(num=_num, signed=_signed, cell=_cell)
    template = environment.get_template("report.html.j2")
    compared = compared_algorithms(report.points_raw)  # once: the template labels every row with it
    spec = report.sweep.get("spec") or {}
    return template.render(
        r=report,
        spec_text=yaml.safe_dump(spec, sort_keys=False, allow_unicode=True),
        figures=[_figure_view(f) for f in report.figures],
        axis_labels=AXIS_LABELS,
        selection=selection_rule(report.points_raw),
        confidence=f"{CONFIDENCE:.0%}",
        tasks=sorted({p["task"] for p in report.points}),
        seeds=sorted({s for s in (report.sweep.get("spec") or {}).get("seeds", [])}) or None,
        provenance_view=_provenance_view(report.provenance) if report.provenance else None,
        algorithms=", ".join(algorithm_label(a) for a in compared) or "c-TTv2",
        mode_label=lambda m, a=None: series_style(m, a, compare=len(compared) > 1).label,
        smoke_note=SMOKE_NOTE,
        min_replicates=MIN_REPLICATES,
        min_axis_values=MIN_AXIS_VALUES,
    )


def _figure_view(figure: Figure) -> dict[str, Any]:
    png = figure.images.get("png")
    width = struct.unpack(">I", png[16:20])[0] if png else None
    return {
        "name": figure.name,
        "title": figure.title,
        "caption": figure.caption,
        "src": f"data:image/png;base64,{base64.b64encode(png).decode('ascii')}" if png else None,
        "width": int(width / 1.6) if width else None,  # 200 dpi shown at 125 CSS pixels per inch: sharp, readable
        "files": [f"{figure.name}.{fmt}" for fmt in figure.images],
    }


def _elbows(store: Any, sweep: str) -> tuple[list[dict[str, Any]] | None, str | None]:
    compute = getattr(store, "elbows", None)
    if compute is None:
        return None, "critical points are not estimated by this version of analog-sweep (no Store.elbows)"
    try:
        return list(compute(sweep)), None
    except (StoreInputError, ValueError) as exc:
        return None, f"critical points could not be estimated: {exc}"


def _provenance(store: Any, sweep: str) -> tuple[dict[str, Any] | None, str | None]:
    read = getattr(store, "provenance", None)
    if read is None:
        return None, "provenance is not recorded by this version of analog-sweep (no Store.provenance)"
    recorded = read(sweep)
    if not any(recorded.get(part) for part in ("runs", "pretrained", "rpu_configs", "nodes")):
        return None, "none recorded for this sweep (it ran before analog-sweep recorded provenance)"
    return recorded, None


def _provenance_view(provenance: Mapping[str, Any]) -> dict[str, Any]:
    """``Store.provenance`` as the report shows it: each run as label-value pairs, the pretrained models as a table,
    each distinct rpu config as JSON with the trials and points that ran with it, and the Ray nodes the trials ran
    on as a table (trials each, what differs from the driver's versions, the versions there)."""
    runs = []
    for run in provenance.get("runs") or []:
        project = run.get("project") or {}
        commit = project.get("commit")
        runs.append(
            [
                ("run", f"{run.get('run', '-')} ({run.get('kind', '-')}), started {_cell(run.get('started_at'))} UTC"),
                ("command", _cell(run.get("command"))),
                ("options", _pairs(run.get("options"))),
                (
                    "project",
                    f"analog-sweep {project.get('version') or '-'}, "
                    + (
                        f"commit {commit}" + (" (with uncommitted changes)" if project.get("dirty") else "")
                        if commit
                        else "not run from a git checkout"
                    ),
                ),
                ("host", ", ".join(str(v) for v in (run.get("host"), run.get("platform")) if v) or "-"),
                ("CPU", _device(run.get("cpu"))),
                ("GPUs", _device(run.get("gpus"))),
                ("aihwkit with CUDA", {True: "yes", False: "no"}.get(run.get("aihwkit_cuda"), "-")),
                ("cluster", _pairs(run.get("cluster"))),
                ("packages", _pairs(run.get("packages"))),
            ]
        )
    columns = (
        "cache key",
        "file SHA-256",
        "source test error (%)",
        "source train error (%)",
        "training (s)",
        "trained by this sweep",
        "first used by run",
        "file",
    )
    fields = (
        "cache_key",
        "file_hash",
        "source_error",
        "source_train_error",
        "train_seconds",
        "trained_now",
        "run",
        "path",
    )
    pretrained = [[_cell(model.get(f)) for f in fields] for model in provenance.get("pretrained") or []]
    configs = [
        {
            "summary": f"{config.get('config_hash', '-')}: {len(config.get('trial_ids') or [])} trial(s) at "
            f"{len(config.get('point_keys') or [])} point(s)",
            "points": ", ".join(config.get("point_labels") or config.get("point_keys") or []),
            "text": json.dumps(config.get("rpu_config"), indent=1, default=str, sort_keys=True),
        }
        for config in provenance.get("rpu_configs") or []
    ]
    nodes = provenance.get("nodes") or []
    node_rows = [
        [
            node_label(node),
            _cell(node.get("host")),
            _cell(node.get("trials")),
            differences_text(node.get("differences") or {}),
            _pairs(node.get("packages")),
        ]
        for node in nodes
    ]
    return {
        "runs": runs,
        "pretrained": {"columns": columns, "rows": pretrained},
        "rpu_configs": configs,
        "without": provenance.get("trials_without_rpu_config"),
        "nodes": {
            "columns": ("node", "host", "trials", "differences from the driver", "packages"),
            "rows": node_rows,
            "summary": nodes_summary(nodes) if nodes else None,
            "without": provenance.get("trials_without_node"),
        },
    }


def _pairs(value: Any) -> str:
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {_cell(v)}" for k, v in value.items()) or "none"
    return _cell(value)


def _device(value: Any) -> str:
    if isinstance(value, Mapping) and ("model" in value or "count" in value):
        return f"{value.get('count', '?')} x {value.get('model') or 'unknown model'}" if value.get("count") else "none"
    return _pairs(value)


def _paper_rows(matched: set[str | None]) -> list[dict[str, Any]]:
    return [
        {
            "source": v.source,
            "task": v.task,
            "what": "critical point" if v.quantity == CRITICAL_POINT else "difference in test error",
            "subject": " - ".join(series_style(m).label for m in v.subject.split(" - "))
            if v.quantity != CRITICAL_POINT
            else AXIS_LABELS.get(v.subject, v.subject),
            "claim": v.claim,
            "quote": v.quote,
            "matched": v.task in matched,
        }
        for v in PAPER_VALUES
    ]


def _version() -> str:
    try:
        return importlib.metadata.version("analog-sweep")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _num(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


def _signed(value: float | None) -> str:
    return "-" if value is None else f"{value:+.2f}"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, sort_keys=True)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
