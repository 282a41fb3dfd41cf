"""The study's figures, drawn once for the report and for ``results best --plot`` / ``results curves --plot``.

- ``epochs_figure``: the paper's Fig. 2, test error per epoch of the four modes at the base device point, one panel
  per task; mean over seeds with a band of one standard deviation.
- ``axis_figure``: the paper's Figs. 3-5, test error at the chosen epoch (chosen on validation, or on test by the
  paper's rule: ``selected_on``) against one device axis, one panel per task, error bars of one standard deviation
  across seeds, and the critical point with its 95 % interval where one is given, or why there is none ("not
  tested", "tested, none found").

Rules every figure keeps, so it can go into a paper as it is: test error stays within 0-100 % on its axis; an axis is
logarithmic only where its data span more than a factor of ``LOG_SPAN`` (as the paper's Figs. 2 and 3 do); legends
sit beside the panels, never on the data; the caption says what was plotted and how it was chosen; fewer than
``MIN_REPLICATES`` seeds are flagged (hollow markers, dashed bars, hatched bands) and an sd of 0 is ringed, never
drawn as an exact value; a smoke run (``_profile``) says so in the image, its title and its caption.

Seeds are replicates (``results._replicates.Summary``). Every mode keeps one colour and line style in every figure
(``MODE_STYLES``: the Okabe-Ito palette, which stays distinct under the common colour-vision deficiencies); in a
sweep that compares algorithms (``results._algorithms``) colour says the algorithm instead, the same in every figure
(``ALGORITHM_COLOURS``), line style and marker the mode, and the digital modes are grey (``series_style``). Axes
carry units (``AXIS_LABELS``; test errors are percent, as the worker measures them: ``workers._metrics``), and
panels are sized for print (3.6 x 3.0 in plus 2.4 in for the legend, 9 pt text; PNG at 200 dpi, PDF as vectors).
matplotlib is imported inside the functions with the Agg backend, so reading the store never needs a display.
"""

from __future__ import annotations

import io
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analog_sweep.results._algorithms import algorithm_label, compared_algorithms, compares_algorithms
from analog_sweep.results._basepoint import DevicePoint, base_points, device_point, varied_axes
from analog_sweep.results._elbows import (
    FEW_SEEDS_MARK,
    elbow_few_seeds,
    elbow_outcome,
    elbow_tested,
    few_seeds_elbows_note,
    untested_note,
)
from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._labels import algorithm_rank
from analog_sweep.results._profile import SMOKE_NOTE, SMOKE_PURPOSE, SMOKE_TITLE
from analog_sweep.results._replicates import MIN_REPLICATES, Summary
from analog_sweep.results._schema import AXES, AXIS_UNITS


@dataclass(frozen=True)
class ModeStyle:
    label: str
    color: str
    linestyle: str
    marker: str


# Okabe & Ito (2008), "Color Universal Design": blue, vermillion, bluish green, reddish purple. Analog solid,
# digital dashed, so the modes differ in more than colour.
MODE_STYLES = {
    "analog_tl": ModeStyle("analog TL", "#0072B2", "-", "o"),
    "analog_scratch": ModeStyle("analog scratch", "#D55E00", "-", "s"),
    "digital_tl": ModeStyle("digital TL", "#009E73", "--", "^"),
    "digital_scratch": ModeStyle("digital scratch", "#CC79A7", "--", "D"),
}
MODE_ORDER = tuple(MODE_STYLES)
_SPARE_COLOURS = ("#E69F00", "#56B4E9", "#000000", "#F0E442")
# Algorithms compared: the same four Okabe-Ito colours, now one per algorithm; the modes' line styles and markers
# (analog TL solid, analog scratch dash-dot, digital dashed and dotted) and greys for the digital modes.
ALGORITHM_COLOURS = {"c-ttv2": "#0072B2", "ttv2": "#D55E00", "agad": "#009E73", "sgd": "#CC79A7"}
_COMPARED_MODES = {
    "analog_tl": ("-", "o"),
    "analog_scratch": ("-.", "s"),
    "digital_tl": ("--", "^"),
    "digital_scratch": (":", "D"),
}
_DIGITAL_GREYS = {"digital_tl": "0.35", "digital_scratch": "0.6"}

# Axis labels with the paper's units (sweeps/README.md, "device"; paper Sec. II eq. 1 and Sec. III.C).
AXIS_LABELS = {
    "transfer_noise": "weight transfer noise (% of layer max |W|)",
    "sp_skew": "symmetry-point skew (% of weight range)",
    "sp_variability": "symmetry-point variability (% of weight range)",
    "pulse_noise": "pulse update noise (std / mean pulse)",
    "dtod": "pulse-size device-to-device variation (std / mean)",
}
AXIS_NAMES = {
    "transfer_noise": "transfer noise",
    "sp_skew": "symmetry-point skew",
    "sp_variability": "symmetry-point variability",
    "pulse_noise": "pulse noise",
    "dtod": "device-to-device variation",
}
ERROR_LABEL = "test error (%)"
# Which figure of the paper plots each axis, and the axes it draws on a log scale (Fig. 3: 10^0 to 10^2).
PAPER_FIGURES = {
    "transfer_noise": "Fig. 3",
    "sp_skew": "Fig. 4",
    "sp_variability": "Fig. 4",
    "pulse_noise": "Fig. 5",
    "dtod": "Fig. 5",
}
LOG_AXES = frozenset({"transfer_noise"})
# An axis is drawn logarithmic only where its data's largest value is more than this many times its smallest.
LOG_SPAN = 20.0

FORMATS = ("png", "pdf")
PLOT_SUFFIXES = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
PNG_DPI = 200
_PANEL = (3.6, 3.0)  # inches
_LEGEND_INCHES = 2.4  # beside each panel, so a legend never covers data
_RC = {
    "font.size": 9,
    "axes.titlesize": 9.5,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 7.5,
    "legend.framealpha": 0.85,
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
}


@dataclass(frozen=True)
class PanelLayout:
    """Where one panel ended up, as drawn: its ``title``, the axes' scales (``linear``, ``log``, ``symlog``) and
    limits (axis units; test error in percent), and the boxes of the axes and of its legend in the figure's pixels
    at ``PNG_DPI`` (x0, y0, x1, y1; None without a legend)."""

    title: str
    xscale: str
    yscale: str
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    axes_box: tuple[float, float, float, float]
    legend_box: tuple[float, float, float, float] | None


@dataclass(frozen=True)
class Figure:
    """A rendered figure: ``name`` (file stem), ``title``, ``caption`` (what is drawn and how), the image bytes per
    format (``png``, ``pdf``, ``svg``), per panel its title and legend entries (``panels``) and its layout
    (``layout``)."""

    name: str
    title: str
    caption: str
    images: Mapping[str, bytes] = field(repr=False)
    panels: tuple[tuple[str, tuple[str, ...]], ...] = ()
    layout: tuple[PanelLayout, ...] = ()

    def write(self, folder: Path) -> list[Path]:
        """Write ``<folder>/<name>.<format>`` for every format; return the paths."""
        paths = []
        for fmt, data in self.images.items():
            path = folder / f"{self.name}.{fmt}"
            path.write_bytes(data)
            paths.append(path)
        return paths


def mode_style(mode: str) -> ModeStyle:
    """The mode's label, colour, line style and marker (modes beyond the four get a spare colour, dotted)."""
    if mode in MODE_STYLES:
        return MODE_STYLES[mode]
    return ModeStyle(mode, _SPARE_COLOURS[sum(map(ord, mode)) % len(_SPARE_COLOURS)], ":", "x")


def series_style(mode: str, algorithm: str | None = None, *, compare: bool = False) -> ModeStyle:
    """The style of one curve: ``mode_style`` in a sweep of one algorithm; with ``compare`` (the figure's rows hold
    several algorithms), the algorithm's colour (``ALGORITHM_COLOURS``), the mode's line style and marker, and a
    label naming both (``analog TL, c-TTv2``); a digital mode (``algorithm`` None) in grey."""
    style = mode_style(mode)
    if not compare:
        return style
    linestyle, marker = _COMPARED_MODES.get(mode, (":", "x"))
    if algorithm is None:
        return ModeStyle(style.label, _DIGITAL_GREYS.get(mode, "0.45"), linestyle, marker)
    colour = ALGORITHM_COLOURS.get(algorithm) or _SPARE_COLOURS[sum(map(ord, algorithm)) % len(_SPARE_COLOURS)]
    return ModeStyle(f"{style.label}, {algorithm_label(algorithm)}", colour, linestyle, marker)


def _series_rank(series: tuple[str, str | None]) -> tuple:
    return (_mode_rank(series[0]), algorithm_rank(series[1]))


def axis_value(axis: str, value: float) -> str:
    """``10 %`` for a percent axis, ``0.3`` for a ratio."""
    return f"{value:g}{AXIS_UNITS.get(axis, '')}"


def describe_point(point: DevicePoint) -> str:
    """A device point in words with units, e.g. ``transfer noise 0 %, ..., pulse noise 3.75, ...``."""
    return ", ".join(f"{AXIS_NAMES[a]} {axis_value(a, v)}" for a, v in zip(AXES, point))


# ---- shared: what the rows were chosen on, how to scale, replicates that say little ----


def selection_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """What a figure's numbers are, by the rows' ``selected_on``: ``test error at the epoch chosen on validation``,
    ``final test error of the learning rate chosen on test (the paper's rule, optimistic)``, or both, per point."""
    rules = sorted({str(r.get("selected_on") or "test") for r in rows} or {"test"})
    texts = {
        "validation": "test error at the epoch chosen on validation",
        "test": "final test error of the learning rate chosen on test (the paper's rule, optimistic)",
    }
    said = [texts.get(rule, f"test error chosen on {rule}") for rule in rules]
    return said[0] if len(said) == 1 else " or ".join(said) + " (per point)"


def _choice_text(rows: Iterable[Mapping[str, Any]]) -> str:
    """How Fig. 2's trials were chosen, by the rows' ``selected_on``."""
    rules = sorted({str(r.get("selected_on") or "test") for r in rows} or {"test"})
    texts = {
        "validation": "its learning rate chosen on validation",
        "test": "its learning rate chosen on test, the paper's rule (optimistic)",
    }
    return " or ".join(texts.get(rule, f"chosen on {rule}") for rule in rules)


def spans_decades(values: Iterable[float]) -> bool:
    """Whether a log axis suits ``values``: all positive and the largest more than ``LOG_SPAN`` times the smallest."""
    values = [float(v) for v in values]
    return bool(values) and min(values) > 0 and max(values) / min(values) > LOG_SPAN


# ---- Fig. 2: test error per epoch ----


def epochs_figure(
    curve_rows: Iterable[Mapping[str, Any]],
    *,
    formats: Sequence[str] = FORMATS,
    modes_by_task: Mapping[str, set[str]] | None = None,
    smoke: bool = False,
) -> Figure:
    """The paper's Fig. 2 from ``Store.epoch_curves`` rows (point columns, ``epoch``, ``test_error`` in percent,
    ``selected_on``).

    One panel per task; per mode (and algorithm, when the rows compare several), the chosen trials at the task's base
    device point (``_basepoint``), averaged over seeds per epoch, with a band of ± 1 standard deviation where there are
    two seeds or more. An axis is logarithmic only where its data span more than a factor of ``LOG_SPAN`` (epochs:
    the last over the first; errors: the largest mean over the smallest, all above 0), else linear; the error axis
    stays within 0-100 %, and a log error axis starts at a power of ten (the floor) below which a band is cut.
    Epochs with fewer than ``MIN_REPLICATES`` seeds have hollow markers and a hatched band (unreliable), and an sd of 0
    from two seeds or more is ringed (the seeds agreed: not an exact value). Legends sit beside the panels, never on
    the data. A mode the task ran (in ``modes_by_task``, task -> modes, when the rows hold the base points only; else
    in the rows) without a point at the base is named in the caption. ``smoke``: a smoke run (``_profile``), said in
    the image, the title and the caption. Raises ``StoreInputError`` when no row has a test error.
    """
    rows = [r for r in curve_rows if r.get("test_error") is not None]
    if not rows:
        raise StoreInputError("nothing to plot: no point has a completed epoch yet")
    bases = base_points(rows)
    tasks = sorted(bases)
    compare = compares_algorithms(rows)
    plt, ticker = _pyplot()
    missing, panel_legends, scales = [], [], set()
    few_counts: set[int] = set()
    flat_epochs: list[str] = []
    cut_floor: float | None = None
    with plt.rc_context(_RC):
        figure, panels = _panels(plt, len(tasks), legend_inches=_LEGEND_INCHES)
        for ax, task in zip(panels, tasks):
            at_base = [r for r in rows if r["task"] == task and device_point(r) == bases[task]]
            by_series: dict[tuple[str, str | None], dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
            for row in at_base:
                series = (row["mode"], row.get("algorithm"))
                by_series[series][int(row["epoch"])].append(float(row["test_error"]))
            present = (
                set(modes_by_task.get(task, ()))
                if modes_by_task is not None
                else {r["mode"] for r in rows if r["task"] == task}
            )
            drawn = {mode for mode, _ in by_series}
            missing += [f"{mode_style(m).label} ({task})" for m in _ordered(present - drawn)]
            summaries = {
                series: [(e, Summary.of(by_series[series][e])) for e in sorted(by_series[series])]
                for series in by_series
            }
            epochs_all = sorted({e for stats in summaries.values() for e, _ in stats})
            means = [s.mean for stats in summaries.values() for _, s in stats]
            log_x = spans_decades(epochs_all)
            log_y = spans_decades(means)
            floor = 10 ** math.floor(math.log10(min(means))) if log_y else 0.0
            scales.add((log_x, log_y))
            for series in sorted(summaries, key=_series_rank):
                style = series_style(*series, compare=compare)
                stats = summaries[series]
                epochs = [e for e, _ in stats]
                n = max(s.n for _, s in stats)
                label = f"{style.label} (n = {n}{_few_label(n, 'band')})"
                ax.plot(
                    epochs,
                    [s.mean for _, s in stats],
                    color=style.color,
                    linestyle=style.linestyle,
                    linewidth=1.5,
                    marker=style.marker,
                    markersize=4.5,
                    markerfacecolor="white" if n < MIN_REPLICATES else style.color,
                    label=label,
                )
                _markers(ax, epochs, [s for _, s in stats], style)
                band = [(e, s.mean, s.sd, s.few) for e, s in stats if s.sd is not None]
                if band:
                    low = [min(100.0, max(m - sd, floor)) for _, m, sd, _ in band]
                    high = [min(100.0, max(m + sd, floor)) for _, m, sd, _ in band]
                    few = any(f for *_, f in band)
                    ax.fill_between(
                        [e for e, *_ in band],
                        low,
                        high,
                        facecolor=style.color if not few else "none",
                        edgecolor=style.color if few else "none",
                        hatch="///" if few else None,
                        alpha=0.18 if not few else 0.3,
                        linewidth=0,
                    )
                    if log_y and any(m - sd < floor for _, m, sd, _ in band):
                        cut_floor = floor
                few_counts.update(s.n for _, s in stats if s.few)
                flat = [e for e, s in stats if s.no_spread]
                if flat:
                    flat_epochs.append(
                        f"{style.label} ({task}): epoch{'s' if len(flat) > 1 else ''} " + ", ".join(map(str, flat))
                    )
            _flag_legend(
                ax,
                few=any(s.few for st in summaries.values() for _, s in st),
                flat=any(s.no_spread for st in summaries.values() for _, s in st),
            )
            _epoch_axis(ax, ticker, epochs_all, log_x)
            _error_axis(ax, ticker, log_y, floor)
            ax.set_xlabel("epoch")
            ax.set_ylabel(ERROR_LABEL)
            ax.set_title(f"task {task}")
            panel_legends.append(_finish_panel(ax))
        _smoke_mark(figure, smoke)
        layouts = _layouts(figure, panels)
        images = _render(plt, figure, formats)
    base_text = (
        "; ".join(f"{task}: {describe_point(bases[task])}" for task in tasks)
        if len(tasks) > 1
        else (describe_point(bases[tasks[0]]))
    )
    caption = (
        f"Test error per epoch of each point's chosen trial ({_choice_text(rows)}), per task and mode, at the base "
        f"device point ({base_text}): mean over seeds (line) and ± 1 standard deviation (band; n seeds in the "
        "legend; no band for one seed). " + _scale_text(scales)
    )
    if cut_floor is not None:
        caption += f" Bands are cut at {cut_floor:g} %, the bottom of the log axis."
    caption += _replicate_caption(few_counts, flat_epochs, "band")
    if missing:
        caption += f" No point at the base device for: {', '.join(missing)}."
    if compare:
        caption += " Colour: the algorithm, the same in every figure; line style: the mode; digital modes in grey."
    title = "Test error per epoch of the modes at the base device (the paper's Fig. 2)"
    caption, title = _smoke_text(caption, title, smoke)
    return Figure("fig2_modes", title, caption, images, tuple(panel_legends), layouts)


# ---- Figs. 3-5: test error against a device axis ----


def axis_figure(
    best_rows: Iterable[Mapping[str, Any]],
    axis: str,
    *,
    elbows: Iterable[Mapping[str, Any]] | None = None,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    formats: Sequence[str] = FORMATS,
    smoke: bool = False,
) -> Figure:
    """The paper's Figs. 3-5 for ``axis`` from ``Store.best_points`` rows (one per point and seed).

    One panel per task and one line per mode (and algorithm, when the rows compare several) that varies ``axis`` (and
    per setting of any other varied axis, as in a grid): mean over seeds of the chosen trials' test error at the
    chosen epoch (percent; ``test_error``, chosen as each row's ``selected_on`` says), error bars ± 1 standard
    deviation. Hollow markers and dashed bars where a point has fewer than ``MIN_REPLICATES`` seeds (one seed: no
    bar); a ring where two seeds or more gave the same error (sd 0: not an exact value). ``elbows``: rows with
    ``mode``, ``algorithm``, ``task``, ``axis``, ``tested``, ``has_elbow``, ``breakpoint``, ``ci_low``, ``ci_high``,
    ``p_value``, ``reason`` (``results.sweep_elbows``); each is drawn as a dashed line with its 95 % interval shaded,
    or listed in the legend as "not tested" or "tested, none found" (``_elbows.elbow_outcome``); None: not computed
    (the caption says so). ``references``: per task, ``{"value": x or None, "text": ...}``, the paper's value,
    drawn dotted grey (never in a smoke run). ``transfer_noise`` gets a log x axis as in the paper's Fig. 3 where its
    positive values span more than a factor of ``LOG_SPAN`` (symlog, linear below the smallest positive value, when 0
    was swept); the error axis starts at 0 % and ends at 100 % at most; legends sit beside the panels. ``smoke``: a
    smoke run (``_profile``), said in the image, the title and the caption. Raises ``StoreInputError`` for an unknown
    axis, no completed point, or an axis the sweep did not vary.
    """
    if axis not in AXES:
        raise StoreInputError(f"unknown axis {axis!r}: expected one of {', '.join(AXES)}")
    done = [r for r in best_rows if r.get("test_error") is not None]
    if not done:
        raise StoreInputError("nothing to plot: no point has a completed trial yet")
    values = sorted({float(r[axis]) for r in done})
    if len(values) < 2:
        varied = varied_axes(done)
        raise StoreInputError(
            f"the sweep did not vary {axis}: every point has {axis} = {values[0]:g} (it varied: "
            f"{', '.join(varied) if varied else 'no device axis; see results curves --plot for the modes'})"
        )
    elbow_rows = [e for e in (elbows or ()) if e.get("axis") == axis]
    if smoke:
        references = None  # a smoke run's numbers are not set beside the paper's
    others = [a for a in AXES if a != axis]
    tasks = sorted({r["task"] for r in done})
    compare = compares_algorithms(done)
    plt, ticker = _pyplot()
    counts: set[int] = set()
    few_counts: set[int] = set()
    flat_points: list[str] = []
    clipped, panel_legends = False, []
    with plt.rc_context(_RC):
        figure, panels = _panels(plt, len(tasks), legend_inches=_LEGEND_INCHES)
        for ax, task in zip(panels, tasks):
            curves: dict[tuple[str, str | None, tuple], dict[float, list[float]]] = defaultdict(
                lambda: defaultdict(list)
            )
            for row in done:
                if row["task"] == task:
                    key = (row["mode"], row.get("algorithm"), tuple(float(row[a]) for a in others))
                    curves[key][float(row[axis])].append(float(row["test_error"]))
            curves = {k: v for k, v in curves.items() if len(v) >= 2}
            per_series = defaultdict(list)
            for mode, algorithm, setting in curves:
                per_series[(mode, algorithm)].append(setting)
            any_few = any_flat = False
            for mode, algorithm, setting in sorted(curves, key=lambda k: (_series_rank(k[:2]), k[2])):
                style = series_style(mode, algorithm, compare=compare)
                label = style.label
                settings = per_series[(mode, algorithm)]
                if len(settings) > 1:  # a grid: tell this series' curves apart by the other axes that differ
                    differ = [a for i, a in enumerate(others) if len({s[i] for s in settings}) > 1]
                    label += ", " + ", ".join(f"{a}={axis_value(a, setting[others.index(a)])}" for a in differ)
                points = curves[(mode, algorithm, setting)]
                xs = sorted(points)
                stats = [Summary.of(points[x]) for x in xs]
                counts.update(s.n for s in stats)
                ax.plot(
                    xs,
                    [s.mean for s in stats],
                    color=style.color,
                    linestyle=style.linestyle,
                    linewidth=1.5,
                    marker=style.marker,
                    markersize=4.5,
                    markerfacecolor="white" if all(s.few for s in stats) else style.color,
                    label=label,
                )
                with_sd = [(x, s) for x, s in zip(xs, stats) if s.sd is not None and s.sd > 0]
                for few in (False, True):
                    bars = [(x, s) for x, s in with_sd if s.few == few]
                    if not bars:
                        continue
                    low = [min(s.sd, s.mean) for _, s in bars]  # bars end at 0 % and 100 %
                    high = [min(s.sd, 100.0 - s.mean) for _, s in bars]
                    clipped = clipped or any(s.mean - s.sd < 0 or s.mean + s.sd > 100 for _, s in bars)
                    _, _, lines = ax.errorbar(
                        [x for x, _ in bars],
                        [s.mean for _, s in bars],
                        yerr=[low, high],
                        color=style.color,
                        linestyle="none",
                        capsize=3,
                        elinewidth=1,
                    )
                    if few:
                        for line in lines:
                            line.set_linestyle((0, (2, 1.5)))
                _markers(ax, xs, stats, style)
                any_few = any_few or any(s.few for s in stats)
                any_flat = any_flat or any(s.no_spread for s in stats)
                few_counts.update(s.n for s in stats if s.few)
                flat = [axis_value(axis, x) for x, s in zip(xs, stats) if s.no_spread]
                if flat:
                    n_flat = sorted({s.n for s in stats if s.no_spread})
                    flat_points.append(f"{label} ({task}) at {', '.join(flat)} (n = {', '.join(map(str, n_flat))})")
            for elbow in elbow_rows:
                # An elbow row names its algorithm where the sweep compares several; else its mode suffices.
                drawn = [
                    series
                    for series in per_series
                    if series[0] == elbow.get("mode") and (not compare or series[1] == elbow.get("algorithm"))
                ]
                if elbow.get("task") == task and drawn:
                    _draw_elbow(ax, axis, elbow, series_style(*drawn[0], compare=compare))
            reference = (references or {}).get(task)
            if reference is not None:
                _draw_reference(ax, axis, reference)
            _flag_legend(ax, few=any_few, flat=any_flat)
            scale_text = _x_scale(ax, ticker, axis, values)
            _error_axis(ax, ticker, False, 0.0)
            ax.set_xlabel(AXIS_LABELS[axis])
            ax.set_ylabel(ERROR_LABEL)
            ax.set_title(f"task {task}")
            panel_legends.append(_finish_panel(ax))
        _smoke_mark(figure, smoke)
        layouts = _layouts(figure, panels)
        images = _render(plt, figure, formats)
    n_text = f"n = {min(counts)}" if len(counts) == 1 else f"n = {min(counts)} to {max(counts)}"
    what = selection_text(done)
    caption = (
        f"{what[0].upper()}{what[1:]} against {AXIS_LABELS[axis]}, per task (the paper's {PAPER_FIGURES[axis]}): "
        f"each point's chosen trial, mean over seeds with error bars of ± 1 standard deviation ({n_text} "
        f"{'seed' if max(counts) == 1 else 'seeds'} per point). {scale_text}"
    )
    if clipped:
        caption += " Error bars end at 0 % and 100 %."
    caption += _replicate_caption(few_counts, flat_points, "bar")
    if elbows is None:
        caption += " Critical points were not computed."
    else:
        found = [e for e in elbow_rows if e.get("has_elbow")]
        untested = [e for e in elbow_rows if not elbow_tested(e)]
        tested_none = [e for e in elbow_rows if elbow_tested(e) and not e.get("has_elbow")]
        if found:
            caption += " Dashed line and shaded band: the critical point (elbow) and its 95 % interval, per mode."
            few = few_seeds_elbows_note(found)
            caption += f" {few}" if few else ""
        if tested_none:
            caption += (
                " Tested for a critical point and none found: "
                + ", ".join(_elbow_name(e, compare) for e in tested_none)
                + " (the legend gives the test's p)."
            )
        if untested:
            caption += " " + (untested_note(untested) or "")
        if not elbow_rows:
            caption += f" No critical point was estimated for {axis}."
    if references:
        caption += " Dotted grey: the paper's reported value for the same task."
    if compare:
        names = ", ".join(algorithm_label(a) for a in compared_algorithms(done))
        caption += (
            f" Algorithms overlaid ({names}): colour says the algorithm, the same in every figure; line style and "
            "marker the mode."
        )
    title = f"Test error against {AXIS_NAMES[axis]} (the paper's {PAPER_FIGURES[axis]})"
    if compare:
        title = f"Test error against {AXIS_NAMES[axis]}, algorithms compared (the paper's {PAPER_FIGURES[axis]})"
    caption, title = _smoke_text(caption, title, smoke)
    name = f"{PAPER_FIGURES[axis].replace('Fig. ', 'fig')}_{axis}"
    return Figure(name, title, caption, images, tuple(panel_legends), layouts)


def _elbow_name(elbow: Mapping[str, Any], compare: bool) -> str:
    style = series_style(elbow.get("mode", ""), elbow.get("algorithm"), compare=compare)
    return f"{style.label} ({elbow.get('task')})"


def _few_label(n: int, what: str) -> str:
    """A legend's note on ``n`` seeds: nothing from ``MIN_REPLICATES`` on; ``, no band`` for one; ``: band
    unreliable`` for fewer."""
    if n >= MIN_REPLICATES:
        return ""
    return f", no {what}" if n < 2 else f": {what} unreliable"


def _markers(ax: Any, xs: Sequence[float], stats: Sequence[Summary], style: ModeStyle) -> None:
    """The series' markers: filled for ``MIN_REPLICATES`` seeds or more, hollow for fewer, and a ring around a mean
    whose seeds all gave the same error (sd 0, which is no sign of precision)."""
    for few in (False, True):
        at = [(x, s.mean) for x, s in zip(xs, stats) if s.few == few]
        if at:
            ax.plot(
                [x for x, _ in at],
                [m for _, m in at],
                linestyle="none",
                marker=style.marker,
                markersize=4.5,
                color=style.color,
                markerfacecolor="white" if few else style.color,
                clip_on=False,
            )
    flat = [(x, s.mean) for x, s in zip(xs, stats) if s.no_spread]
    if flat:
        ax.plot(
            [x for x, _ in flat],
            [m for _, m in flat],
            linestyle="none",
            marker="o",
            markersize=11,
            markerfacecolor="none",
            markeredgecolor=style.color,
            markeredgewidth=1.0,
            clip_on=False,
        )


def _flag_legend(ax: Any, *, few: bool, flat: bool) -> None:
    """Legend entries that say what hollow markers and rings mean, where the panel has them."""
    entries = [
        (few, {"markersize": 4.5, "color": "0.3", "markerfacecolor": "white"},
         f"hollow: fewer than {MIN_REPLICATES} seeds, spread unreliable or none"),
        (flat, {"markersize": 9, "markerfacecolor": "none", "markeredgecolor": "0.3"},
         "ringed: sd 0 (seeds agreed), not exact"),
    ]  # fmt: skip
    for shown, style, label in entries:
        if shown:
            ax.plot([], [], linestyle="none", marker="o", label=label, **style)


def _replicate_caption(few_counts: set[int], flat: Sequence[str], what: str) -> str:
    """The caption's sentences on points with fewer than ``MIN_REPLICATES`` seeds (``few_counts``: their seed counts)
    and on spreads of 0 (``flat``: where), for a figure with error ``what`` (``bar`` or ``band``)."""
    text = ""
    spread = sorted(n for n in few_counts if n > 1)
    if spread:
        counts = " or ".join(map(str, sorted(few_counts)))
        drawn = "dashed bars" if what == "bar" else "hatched bands"
        text += (
            f" Hollow markers and {drawn}: fewer than {MIN_REPLICATES} seeds (here {counts}), so the {what}s are "
            "unreliable" + (f"; one seed has no {what}" if 1 in few_counts else "") + "."
        )
    elif few_counts:
        text += f" Hollow markers: one seed, so no {what}."
    if flat:
        text += (
            " Ringed: sd 0 from the seeds (they gave the same error, e.g. the same count of test images), drawn "
            f"without a {what}, which is not an exact value: " + "; ".join(flat) + "."
        )
    return text


def _smoke_mark(figure: Any, smoke: bool) -> None:
    """A smoke run says so in the image itself, so a PNG taken out of the report still does."""
    if smoke:
        figure.suptitle(f"Smoke run: {SMOKE_PURPOSE}", color="#B00020", fontsize=9, fontweight="bold")


def _smoke_text(caption: str, title: str, smoke: bool) -> tuple[str, str]:
    if not smoke:
        return caption, title
    return f"{SMOKE_NOTE}. {caption}", f"{title} ({SMOKE_TITLE})"


def _epoch_axis(ax: Any, ticker: Any, epochs: Sequence[int], log: bool) -> None:
    """Epochs on a log axis where they span decades, else linear with integer ticks (one epoch: that one)."""
    first, last = min(epochs), max(epochs)
    if log:
        ax.set_xscale("log")
        _log_ticks(ax.xaxis, ticker, integers=True)
        return
    if last <= 12:
        ax.xaxis.set_major_locator(ticker.FixedLocator(range(first, last + 1)))
    else:
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    pad = max(0.5, 0.04 * (last - first))
    ax.set_xlim(first - pad, last + pad)


def _error_axis(ax: Any, ticker: Any, log: bool, floor: float) -> None:
    """Test error (%) within 0-100: a linear axis from 0, or a log axis from ``floor``; never above 100, with a
    margin above the highest value drawn (markers at 0 or 100 % are drawn unclipped)."""
    high = float(ax.dataLim.y1) if ax.dataLim.height >= 0 and math.isfinite(ax.dataLim.y1) else 1.0
    if log:
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, ticker)
        ax.set_ylim(floor, min(100.0, max(high * 1.3, floor * 10)))
        return
    ax.set_ylim(0.0, min(100.0, max(high * 1.06, 1.0)))


def _scale_text(scales: set[tuple[bool, bool]]) -> str:
    """The caption's sentence on Fig. 2's axes, from each panel's (log epochs, log errors)."""
    if len(scales) > 1:
        return (
            f"Each panel's axes are logarithmic only where its data span more than a factor of {LOG_SPAN:g} "
            "(see the ticks)."
        )
    log_x, log_y = next(iter(scales))
    if log_x and log_y:
        return "Both axes logarithmic, as in the paper's Fig. 2 (the data span decades)."
    if log_y:
        return f"Logarithmic error axis (the errors span more than a factor of {LOG_SPAN:g}); linear epochs."
    if log_x:
        return f"Logarithmic epoch axis; linear error axis (the errors span less than a factor of {LOG_SPAN:g})."
    return f"Linear axes: the data span less than a factor of {LOG_SPAN:g} (the paper's Fig. 2 is log-log)."


def _draw_elbow(ax: Any, axis: str, elbow: Mapping[str, Any], style: ModeStyle) -> None:
    point, low, high = elbow.get("breakpoint"), elbow.get("ci_low"), elbow.get("ci_high")
    if elbow.get("has_elbow") and point is not None:
        label = f"{style.label} critical point {_g(point)}"
        if low is not None and high is not None:
            ax.axvspan(low, high, color=style.color, alpha=0.12, linewidth=0)
            label += f" [{_g(low)}, {_g(high)}]"
        label += AXIS_UNITS.get(axis, "")
        if elbow_few_seeds(elbow):
            label += f"\n({FEW_SEEDS_MARK})"
        ax.axvline(point, color=style.color, linestyle=(0, (4, 2)), linewidth=1.2, label=label)
    else:
        ax.plot([], [], linestyle="none", label=f"{style.label}: {_legend_outcome(elbow)}")


def _legend_outcome(elbow: Mapping[str, Any]) -> str:
    """``elbow_outcome`` on legend lines: ``not tested`` with its reason below, ``tested, none found (p = 0.4)``, and
    a significant rise without a usable breakpoint with the reason below (the p-value alone reads as found)."""
    outcome = elbow_outcome(elbow)
    if not elbow_tested(elbow):
        head, _, why = outcome.partition(": ")
        return f"{head}\n({why})" if why else head
    head, _, inside = outcome.partition(" (")
    p_text, _, why = inside.rstrip(")").partition("; ")
    if why:
        return f"{head} ({p_text})\n({why})"
    return outcome


def _draw_reference(ax: Any, axis: str, reference: Mapping[str, Any]) -> None:
    value = reference.get("value")
    if value is not None:
        ax.axvline(value, color="0.4", linestyle=":", linewidth=1.4, label=f"paper: {reference['text']}")
    else:
        ax.plot([], [], linestyle="none", label=f"paper: {reference['text']}")


def _g(value: float) -> str:
    return f"{value:.3g}"


def _x_scale(ax: Any, ticker: Any, axis: str, values: Sequence[float]) -> str:
    """Set the x scale and limits a little beyond the swept values; return the caption text. A ``LOG_AXES`` axis is
    logarithmic (symlog when 0 was swept) where its positive values span more than a factor of ``LOG_SPAN``."""
    text = "Linear axes."
    positive = [v for v in values if v > 0]
    if axis in LOG_AXES and spans_decades(positive):
        if min(values) > 0:
            ax.set_xscale("log")
            text = "Logarithmic x axis, as in the paper."
        else:
            ax.set_xscale("symlog", linthresh=min(positive), linscale=0.6)
            text = (
                f"x axis logarithmic above {min(positive):g} and linear from 0 to {min(positive):g} (symlog), so "
                "the zero setting shows; the paper's axis is logarithmic."
            )
        low, high = math.floor(math.log10(min(positive))), math.ceil(math.log10(max(positive)))
        ticks = [m * 10.0**k for k in range(low, high + 1) for m in (1, 2, 5)]
        ticks = [t for t in ticks if min(positive) <= t <= max(positive)] + ([0.0] if min(values) == 0 else [])
        if len(values) <= 6:  # few swept values: label exactly those
            ticks = list(values)
        ax.xaxis.set_major_locator(ticker.FixedLocator(sorted(ticks)))
        ax.xaxis.set_minor_locator(ticker.NullLocator())
        ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    else:
        if axis in LOG_AXES:
            text = (
                f"Linear axes: the swept values span less than a factor of {LOG_SPAN:g} (the paper's axis is "
                "logarithmic)."
            )
        if len(values) <= 6:
            ax.xaxis.set_major_locator(ticker.FixedLocator(list(values)))
            ax.xaxis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}"))
    transform = ax.xaxis.get_transform()
    low, high = transform.transform([min(values), max(values)])
    pad = 0.06 * (high - low)
    ax.set_xlim(*transform.inverted().transform([low - pad, high + pad]))
    return text


# ---- shared ----


def plot_epoch_curves(curve_rows: Iterable[Mapping[str, Any]], path: Path, *, smoke: bool = False) -> Figure:
    """Draw ``epochs_figure`` to ``path`` (``.png``, ``.pdf`` or ``.svg``; ``smoke`` as there); ``StoreInputError``
    for another suffix or a missing folder."""
    fmt = _check_target(path)
    figure = epochs_figure(curve_rows, formats=(fmt,), smoke=smoke)
    path.write_bytes(figure.images[fmt])
    return figure


def plot_axis_curve(
    best_rows: Iterable[Mapping[str, Any]],
    axis: str,
    path: Path,
    *,
    elbows: Iterable[Mapping[str, Any]] | None = None,
    smoke: bool = False,
) -> Figure:
    """Draw ``axis_figure`` to ``path`` (``.png``, ``.pdf`` or ``.svg``; ``elbows`` and ``smoke`` as there);
    ``StoreInputError`` as there, or for another suffix or a missing folder."""
    fmt = _check_target(path)
    figure = axis_figure(best_rows, axis, elbows=elbows, formats=(fmt,), smoke=smoke)
    path.write_bytes(figure.images[fmt])
    return figure


def _check_target(path: Path) -> str:
    fmt = PLOT_SUFFIXES.get(path.suffix.lower())
    if fmt is None:
        raise StoreInputError(f"cannot draw {path}: the file name must end in {', '.join(PLOT_SUFFIXES)}")
    if not path.parent.is_dir():
        raise StoreInputError(f"cannot write {path}: no folder {path.parent}")
    return fmt


def _mode_rank(mode: str) -> tuple[int, str]:
    return (MODE_ORDER.index(mode) if mode in MODE_ORDER else len(MODE_ORDER), mode)


def _ordered(modes: Iterable[str]) -> list[str]:
    return sorted(modes, key=_mode_rank)


def _pyplot() -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker as ticker

    return plt, ticker


def _panels(plt: Any, count: int, *, legend_inches: float = 0.0) -> tuple[Any, list[Any]]:
    """A grid of ``count`` panels, at most 3 a row; ``legend_inches`` widens each column for a legend beside it."""
    columns = min(count, 3)
    rows = math.ceil(count / columns)
    size = ((_PANEL[0] + legend_inches) * columns, _PANEL[1] * rows)
    figure, axes = plt.subplots(rows, columns, figsize=size, squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax in flat[count:]:
        ax.set_visible(False)
    return figure, flat[:count]


def _log_ticks(axis: Any, ticker: Any, *, integers: bool = False) -> None:
    """Label a log axis in plain numbers at 1, 2, 5 x 10^k (integers only for epochs), not only at decades."""
    axis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_minor_locator(ticker.LogLocator(base=10, subs=tuple(range(1, 10))))
    axis.set_major_formatter(ticker.FuncFormatter(lambda v, _: f"{v:g}" if not integers or v >= 1 else ""))
    axis.set_minor_formatter(ticker.NullFormatter())


def _finish_panel(ax: Any) -> tuple[str, tuple[str, ...]]:
    """Grid and legend, the legend to the right of the panel (``_LEGEND_INCHES`` wide), so it never covers data."""
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    return ax.get_title(), tuple(text.get_text() for text in legend.get_texts())


def _layouts(figure: Any, panels: Sequence[Any]) -> tuple[PanelLayout, ...]:
    """Each panel as laid out for saving (after ``tight_layout``; pixels at ``PNG_DPI``)."""
    figure.set_dpi(PNG_DPI)
    figure.tight_layout()
    figure.canvas.draw()
    out = []
    for ax in panels:
        legend = ax.get_legend()
        box = ax.get_window_extent()
        legend_box = legend.get_window_extent() if legend is not None else None
        out.append(
            PanelLayout(
                title=ax.get_title(),
                xscale=ax.get_xscale(),
                yscale=ax.get_yscale(),
                xlim=tuple(float(v) for v in ax.get_xlim()),
                ylim=tuple(float(v) for v in ax.get_ylim()),
                axes_box=(box.x0, box.y0, box.x1, box.y1),
                legend_box=None if legend_box is None else (legend_box.x0, legend_box.y0, legend_box.x1, legend_box.y1),
            )
        )
    return tuple(out)


def _render(plt: Any, figure: Any, formats: Sequence[str]) -> dict[str, bytes]:
    """The figure as bytes per format (no creation dates, so the same data gives the same files), grown to hold the
    legends beside the panels."""
    figure.tight_layout()
    images = {}
    try:
        for fmt in formats:
            buffer = io.BytesIO()
            metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
            figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata, bbox_inches="tight", pad_inches=0.05)
            images[fmt] = buffer.getvalue()
    finally:
        plt.close(figure)
    return images
