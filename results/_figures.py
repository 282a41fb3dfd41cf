"""The study's figures, drawn once for the report and for ``results best --plot`` / ``results curves --plot``.

- ``epochs_figure``: the paper's Fig. 2, test error per epoch of the four modes at the base device point, one panel
  per task, log-log as in the paper; mean over seeds with a band of one standard deviation.
- ``axis_figure``: the paper's Figs. 3-5, best test error against one device axis, one panel per task, error bars
  of one standard deviation across seeds, and the critical point with its 95 % interval where one is given.

Seeds are replicates (``results._replicates.Summary``). Every mode keeps one colour and line style in every figure
(``MODE_STYLES``: the Okabe-Ito palette, which stays distinct under the common colour-vision deficiencies); in a
sweep that compares algorithms (``results._algorithms``) colour says the algorithm instead, the same in every figure
(``ALGORITHM_COLOURS``), line style and marker the mode, and the digital modes are grey (``series_style``). Axes
carry units (``AXIS_LABELS``; test errors are percent, as the worker measures them: ``workers._metrics``), and
panels are sized for print (3.6 x 3.0 in, 9 pt text; PNG at 200 dpi, PDF as vectors).
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
from analog_sweep.results._errors import StoreInputError
from analog_sweep.results._labels import algorithm_rank
from analog_sweep.results._replicates import Summary
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

FORMATS = ("png", "pdf")
PLOT_SUFFIXES = {".png": "png", ".pdf": "pdf", ".svg": "svg"}
PNG_DPI = 200
_PANEL = (3.6, 3.0)  # inches
_LEGEND_INCHES = 2.4  # beside each panel, when algorithms are compared
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
class Figure:
    """A rendered figure: ``name`` (file stem), ``title``, ``caption`` (what is drawn and how), the image bytes per
    format (``png``, ``pdf``, ``svg``), and per panel its title and legend entries (``panels``)."""

    name: str
    title: str
    caption: str
    images: Mapping[str, bytes] = field(repr=False)
    panels: tuple[tuple[str, tuple[str, ...]], ...] = ()

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


# ---- Fig. 2: test error per epoch ----


def epochs_figure(
    curve_rows: Iterable[Mapping[str, Any]],
    *,
    formats: Sequence[str] = FORMATS,
    modes_by_task: Mapping[str, set[str]] | None = None,
) -> Figure:
    """The paper's Fig. 2 from ``Store.epoch_curves`` rows (point columns, ``epoch``, ``test_error`` in percent).

    One panel per task; per mode (and algorithm, when the rows compare several), the chosen trials at the task's base
    device point (``_basepoint``), averaged over seeds per epoch, with a band of ± 1 standard deviation where there are
    two seeds or more. Both axes are logarithmic, as in the paper; a mean (or band edge) below the floor (a power of ten
    at or below the smallest positive error, at most 1 %) is drawn at the floor and marked, never as a drop. A mode the
    task ran (in ``modes_by_task``, task -> modes, when the rows hold the base points only; else in the rows) without a
    point at the base is named in the caption. Raises ``StoreInputError`` when no row has a test error.
    """
    rows = [r for r in curve_rows if r.get("test_error") is not None]
    if not rows:
        raise StoreInputError("nothing to plot: no point has a completed epoch yet")
    positives = [r["test_error"] for r in rows if r["test_error"] > 0]
    floor = min(1.0, 10 ** math.floor(math.log10(min(positives)))) if positives else 1.0
    bases = base_points(rows)
    tasks = sorted(bases)
    compare = compares_algorithms(rows)
    plt, ticker = _pyplot()
    clipped, cut, missing, panel_legends = False, False, [], []
    with plt.rc_context(_RC):
        figure, panels = _panels(plt, len(tasks), legend_inches=_LEGEND_INCHES if compare else 0.0)
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
            for series in sorted(by_series, key=_series_rank):
                style = series_style(*series, compare=compare)
                epochs = sorted(by_series[series])
                stats = [Summary.of(by_series[series][e]) for e in epochs]
                n = max(s.n for s in stats)
                means = [max(s.mean, floor) for s in stats]
                ax.plot(
                    epochs,
                    means,
                    color=style.color,
                    linestyle=style.linestyle,
                    marker=style.marker,
                    markersize=3.5,
                    linewidth=1.5,
                    label=f"{style.label} (n = {n})",
                )
                band = [(e, s.mean, s.sd) for e, s in zip(epochs, stats) if s.sd is not None]
                if band:
                    ax.fill_between(
                        [e for e, _, _ in band],
                        [max(m - sd, floor) for _, m, sd in band],
                        [max(m + sd, floor) for _, m, sd in band],
                        color=style.color,
                        alpha=0.18,
                        linewidth=0,
                    )
                    cut = cut or any(m - sd < floor for _, m, sd in band)
                low = [e for e, s in zip(epochs, stats) if s.mean < floor]
                if low:
                    clipped = True
                    ax.plot(low, [floor] * len(low), linestyle="none", marker="v", color=style.color, markersize=6)
            if any(line.get_marker() == "v" for line in ax.get_lines()):
                ax.plot(
                    [],
                    [],
                    linestyle="none",
                    marker="v",
                    color="0.3",
                    markersize=6,
                    label=f"below {floor:g} % (0 included): drawn at {floor:g} %",
                )
            ax.set_xscale("log")
            ax.set_yscale("log")
            _log_ticks(ax.xaxis, ticker, integers=True)
            _log_ticks(ax.yaxis, ticker)
            last = max(int(r["epoch"]) for r in rows)
            if last <= 12:  # few epochs: label each one (a log axis labels only 1, 2, 5, 10)
                ax.xaxis.set_major_locator(ticker.FixedLocator(range(1, last + 1)))
            ax.set_xlabel("epoch")
            ax.set_ylabel(ERROR_LABEL)
            ax.set_title(f"task {task}")
            panel_legends.append(_finish_panel(ax, outside=compare))
        images = _render(plt, figure, formats, tight=compare)
    base_text = (
        "; ".join(f"{task}: {describe_point(bases[task])}" for task in tasks)
        if len(tasks) > 1
        else (describe_point(bases[tasks[0]]))
    )
    caption = (
        "Test error per epoch of each point's chosen trial, per task and mode, at the base device point "
        f"({base_text}): mean over seeds (line) and ± 1 standard deviation (band; n seeds in the legend; "
        "no band for one seed). Both axes logarithmic, as in the paper's Fig. 2."
    )
    if clipped:
        caption += (
            f" Values below {floor:g} % (a zero error included) are drawn at {floor:g} % and marked by a triangle."
        )
    if cut:
        caption += f" Bands are cut at {floor:g} %."
    if missing:
        caption += f" No point at the base device for: {', '.join(missing)}."
    if compare:
        caption += " Colour: the algorithm, the same in every figure; line style: the mode; digital modes in grey."
    title = "Test error per epoch of the modes at the base device (the paper's Fig. 2)"
    return Figure("fig2_modes", title, caption, images, tuple(panel_legends))


# ---- Figs. 3-5: best test error against a device axis ----


def axis_figure(
    best_rows: Iterable[Mapping[str, Any]],
    axis: str,
    *,
    elbows: Iterable[Mapping[str, Any]] | None = None,
    references: Mapping[str, Mapping[str, Any]] | None = None,
    formats: Sequence[str] = FORMATS,
) -> Figure:
    """The paper's Figs. 3-5 for ``axis`` from ``Store.best_points`` rows (one per point and seed).

    One panel per task and one line per mode (and algorithm, when the rows compare several) that varies ``axis`` (and
    per setting of any other varied axis, as in a grid): mean of the chosen trials' final test error (percent) over
    seeds, error bars ± 1 standard deviation, hollow markers where a point has one seed. ``elbows``: rows with ``mode``,
    ``algorithm``, ``task``, ``axis``, ``has_elbow``, ``breakpoint``, ``ci_low``, ``ci_high``, ``p_value``
    (``results.sweep_elbows``); each is drawn as a dashed line with its 95 % interval shaded, or listed as "no elbow";
    None: not computed (the caption says so). ``references``: per task, ``{"value": x or None, "text": ...}``, the
    paper's value, drawn dotted grey. ``transfer_noise`` gets a log x axis as in the paper's Fig. 3 (symlog, linear
    below the smallest positive value, when 0 was swept). Raises ``StoreInputError`` for an unknown axis, no completed
    point, or an axis the sweep did not vary.
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
    others = [a for a in AXES if a != axis]
    tasks = sorted({r["task"] for r in done})
    compare = compares_algorithms(done)
    plt, ticker = _pyplot()
    counts: set[int] = set()
    single, panel_legends = False, []
    with plt.rc_context(_RC):
        figure, panels = _panels(plt, len(tasks), legend_inches=_LEGEND_INCHES if compare else 0.0)
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
                    label=label,
                )
                many = [(x, s) for x, s in zip(xs, stats) if s.n > 1]
                if many:
                    ax.errorbar(
                        [x for x, _ in many],
                        [s.mean for _, s in many],
                        yerr=[s.sd for _, s in many],
                        color=style.color,
                        linestyle="none",
                        marker=style.marker,
                        markersize=4.5,
                        capsize=3,
                        elinewidth=1,
                    )
                ones = [(x, s) for x, s in zip(xs, stats) if s.n == 1]
                if ones:
                    single = True
                    ax.plot(
                        [x for x, _ in ones],
                        [s.mean for _, s in ones],
                        linestyle="none",
                        marker=style.marker,
                        markersize=4.5,
                        color=style.color,
                        markerfacecolor="white",
                    )
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
            scale_text = _x_scale(ax, ticker, axis, values)
            ax.set_ylim(bottom=0)
            ax.set_xlabel(AXIS_LABELS[axis])
            ax.set_ylabel(ERROR_LABEL)
            ax.set_title(f"task {task}")
            panel_legends.append(_finish_panel(ax, outside=compare))
        images = _render(plt, figure, formats, tight=compare)
    n_text = f"n = {min(counts)}" if len(counts) == 1 else f"n = {min(counts)} to {max(counts)}"
    caption = (
        f"Best test error against {AXIS_LABELS[axis]}, per task (the paper's {PAPER_FIGURES[axis]}): each point's "
        f"chosen trial, mean over seeds with error bars of ± 1 standard deviation ({n_text} seeds per point)"
        + ("; hollow markers: one seed, no bar" if single else "")
        + f". {scale_text}"
    )
    if elbows is None:
        caption += " Critical points were not computed."
    elif any(e.get("has_elbow") for e in elbow_rows):
        caption += (
            " Dashed line and shaded band: the critical point (elbow) and its 95 % interval, per mode; "
            "a mode without an elbow is listed as such in the legend."
        )
    elif elbow_rows:
        caption += " No critical point was found; the legend says why for each mode."
    else:
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
    name = f"{PAPER_FIGURES[axis].replace('Fig. ', 'fig')}_{axis}"
    return Figure(name, title, caption, images, tuple(panel_legends))


def _draw_elbow(ax: Any, axis: str, elbow: Mapping[str, Any], style: ModeStyle) -> None:
    point, low, high = elbow.get("breakpoint"), elbow.get("ci_low"), elbow.get("ci_high")
    if elbow.get("has_elbow") and point is not None:
        label = f"{style.label} critical point {_g(point)}"
        if low is not None and high is not None:
            ax.axvspan(low, high, color=style.color, alpha=0.12, linewidth=0)
            label += f" [{_g(low)}, {_g(high)}]"
        ax.axvline(
            point, color=style.color, linestyle=(0, (4, 2)), linewidth=1.2, label=label + AXIS_UNITS.get(axis, "")
        )
    else:
        p, reason = elbow.get("p_value"), elbow.get("reason") or ""
        if p is not None and reason and not reason.startswith("no significant rise"):
            # The test found a rise but no usable breakpoint (no convergence, at the range's edge, no rise after):
            # the p value alone would read as an elbow found.
            why = f" (p = {p:.2g})\n({_shorter(reason)})"
        else:
            why = f" (p = {p:.2g})" if p is not None else f"\n({reason})" if reason else ""  # a reason is long
        ax.plot([], [], linestyle="none", label=f"{style.label}: no elbow{why}")


def _shorter(reason: str) -> str:
    """An elbow's reason without its numbers in brackets, short enough for a legend line."""
    return reason.split(" (", 1)[0]


def _draw_reference(ax: Any, axis: str, reference: Mapping[str, Any]) -> None:
    value = reference.get("value")
    if value is not None:
        ax.axvline(value, color="0.4", linestyle=":", linewidth=1.4, label=f"paper: {reference['text']}")
    else:
        ax.plot([], [], linestyle="none", label=f"paper: {reference['text']}")


def _g(value: float) -> str:
    return f"{value:.3g}"


def _x_scale(ax: Any, ticker: Any, axis: str, values: Sequence[float]) -> str:
    """Set the x scale (log for ``LOG_AXES``) and limits a little beyond the swept values; return the caption text."""
    text = "Linear x axis."
    if axis in LOG_AXES:
        positive = [v for v in values if v > 0]
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
    transform = ax.xaxis.get_transform()
    low, high = transform.transform([min(values), max(values)])
    pad = 0.06 * (high - low)
    ax.set_xlim(*transform.inverted().transform([low - pad, high + pad]))
    return text


# ---- shared ----


def plot_epoch_curves(curve_rows: Iterable[Mapping[str, Any]], path: Path) -> Figure:
    """Draw ``epochs_figure`` to ``path`` (``.png``, ``.pdf`` or ``.svg``); ``StoreInputError`` for another suffix
    or a missing folder."""
    fmt = _check_target(path)
    figure = epochs_figure(curve_rows, formats=(fmt,))
    path.write_bytes(figure.images[fmt])
    return figure


def plot_axis_curve(
    best_rows: Iterable[Mapping[str, Any]],
    axis: str,
    path: Path,
    *,
    elbows: Iterable[Mapping[str, Any]] | None = None,
) -> Figure:
    """Draw ``axis_figure`` to ``path`` (``.png``, ``.pdf`` or ``.svg``); ``StoreInputError`` as there, or for
    another suffix or a missing folder."""
    fmt = _check_target(path)
    figure = axis_figure(best_rows, axis, elbows=elbows, formats=(fmt,))
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


def _finish_panel(ax: Any, *, outside: bool = False) -> tuple[str, tuple[str, ...]]:
    """Grid and legend; ``outside`` puts the legend to the right of the panel (algorithms compared: too many entries
    to sit on the data)."""
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    if outside:
        legend = ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0)
    else:
        legend = ax.legend(loc="best")
    return ax.get_title(), tuple(text.get_text() for text in legend.get_texts())


def _render(plt: Any, figure: Any, formats: Sequence[str], *, tight: bool = False) -> dict[str, bytes]:
    """The figure as bytes per format (no creation dates, so the same data gives the same files); ``tight`` grows the
    image to hold legends placed outside the panels."""
    figure.tight_layout()
    images = {}
    try:
        for fmt in formats:
            buffer = io.BytesIO()
            metadata = {"png": {"Software": None}, "pdf": {"CreationDate": None}, "svg": {"Date": None}}.get(fmt)
            extra = {"bbox_inches": "tight", "pad_inches": 0.05} if tight else {}
            figure.savefig(buffer, format=fmt, dpi=PNG_DPI, metadata=metadata, **extra)
            images[fmt] = buffer.getvalue()
    finally:
        plt.close(figure)
    return images
