"""PNG plots in the paper's style: test error against a device axis (Figs. 3-5) and against epoch (Fig. 2).

matplotlib is imported inside the functions, with the Agg backend, so reading the store never needs a display
and commands that do not plot do not pay for the import.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from results._errors import StoreInputError
from results._schema import AXES

# Axes the paper draws on a log scale (Fig. 3: weight transfer noise, 10^0 to 10^2).
LOG_AXES = frozenset({"transfer_noise"})


def plot_axis_curve(rows: list[dict[str, Any]], axis: str, path: Path) -> None:
    """One line per curve of ``axis_curve`` rows (mode, task, other varying axes), min-max band over seeds."""
    _check_target(rows, path)
    plt = _pyplot()
    curves: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        names = [k for k in row if k not in _CURVE_VALUES and k != axis]
        label = ", ".join(str(row[k]) if k in ("mode", "task") else f"{k}={row[k]:g}" for k in names)
        curves[label].append(row)
    figure, ax = plt.subplots(figsize=(6, 4))
    for label, points in curves.items():
        points.sort(key=lambda r: r[axis])
        x = [r[axis] for r in points]
        ax.plot(x, [r["test_error"] for r in points], marker="o", label=label)
        if any(r["points"] > 1 for r in points):
            low, high = [r["test_error_min"] for r in points], [r["test_error_max"] for r in points]
            ax.fill_between(x, low, high, alpha=0.2)
    values = [r[axis] for r in rows]
    if axis in LOG_AXES:
        if min(values) > 0:
            ax.set_xscale("log")
        else:  # a zero setting (no noise) still shows, linear up to the smallest non-zero value
            positive = [v for v in values if v > 0]
            ax.set_xscale("symlog", linthresh=min(positive) if positive else 1.0)
    ax.set_xlabel(axis)
    ax.set_ylabel(f"test error, %{_chosen_on(rows)}")
    _finish(plt, figure, ax, path)


def plot_epoch_curves(rows: list[dict[str, Any]], path: Path) -> None:
    """Test error against epoch, log-log, one line per point's best trial."""
    _check_target(rows, path)
    plt = _pyplot()
    lines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        lines[row["point_key"]].append(row)
    # Points that share mode and task are told apart by the device axes (and seed) that differ between them.
    firsts = [epochs[0] for epochs in lines.values()]
    varying = [c for c in (*AXES, "seed") if len({row[c] for row in firsts}) > 1]
    figure, ax = plt.subplots(figsize=(6, 4))
    for epochs in lines.values():
        first = epochs[0]
        label = ", ".join([first["mode"], first["task"], *(f"{c}={first[c]:g}" for c in varying)])
        kept = [r for r in epochs if r["test_error"] is not None]
        ax.plot([r["epoch"] for r in kept], [r["test_error"] for r in kept], label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel(f"test error, %{_chosen_on(rows)}")
    _finish(plt, figure, ax, path)


_CURVE_VALUES = frozenset({"test_error", "test_error_min", "test_error_max", "points", "selected_on"})


def _chosen_on(rows: list[dict[str, Any]]) -> str:
    """What the plotted trials were chosen on, for the axis label: the paper's rule (test) is named as such."""
    splits = {row.get("selected_on") for row in rows} - {None}
    if not splits:
        return ""
    return " (trials chosen on " + " and ".join(
        "test: the paper's rule" if split == "test" else split for split in sorted(splits)
    ) + ")"


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _check_target(rows: list[dict[str, Any]], path: Path) -> None:
    if not rows:
        raise StoreInputError("nothing to plot: no point has a completed trial yet")
    if not path.parent.is_dir():
        raise StoreInputError(f"cannot write {path}: no folder {path.parent}")


def _finish(plt: Any, figure: Any, ax: Any, path: Path) -> None:
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
