"""The study's figures (the paper's Figs. 2-5) on a synthetic study read back from a real store, and on rows built to
test one rule each.

The study (``StudySweep``): four modes on two tasks, three seeds; analog TL swept over transfer noise with an elbow at
10 %; digital TL reaches 0 % test error on beaver-otter, every seed alike (sd 0). PNGs are checked for size, ink and
colours; the matplotlib figure itself is inspected before it is saved (``drawn``: markers, bars, scales, limits).
"""

from __future__ import annotations

import pytest

from analog_sweep.results import (
    MODE_STYLES,
    StoreInputError,
    _figures,
    axis_figure,
    epochs_figure,
    plot_axis_curve,
    plot_epoch_curves,
)

from .conftest import png_stats

COLOURS = {mode: style.color for mode, style in MODE_STYLES.items()}
BASE = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
SMOKE_RED = "#B00020"


@pytest.fixture
def drawn(monkeypatch) -> list:
    """The matplotlib figures the figure functions draw, caught just before they are saved."""
    figures = []
    render = _figures._render

    def keep(plt, figure, formats):
        figures.append(figure)
        return render(plt, figure, formats)

    monkeypatch.setattr(_figures, "_render", keep)
    return figures


def point(task="5-7", mode="analog_tl", seed=0, error=10.0, **axes) -> dict:
    return {
        "task": task,
        "mode": mode,
        "algorithm": "c-ttv2" if mode.startswith("analog") else None,
        "seed": seed,
        "test_error": error,
        "selected_on": "validation",
        **BASE,
        **axes,
    }


def epoch_row(epoch: int, error: float, seed: int = 0, mode: str = "analog_tl") -> dict:
    return {**point(mode=mode, seed=seed, error=error), "epoch": epoch}


def legend_clear_of_data(figure) -> None:
    for layout in figure.layout:
        assert layout.legend_box is not None, layout.title
        # the legend starts right of the panel's axes: it cannot cover anything drawn in them
        assert layout.legend_box[0] >= layout.axes_box[2], layout


def test_fig2_per_mode_with_its_seeds_linear_axes_for_four_epochs_and_sd_0_ringed(study_store, study, drawn):
    figure = epochs_figure(study_store.epoch_curves(study.name), formats=("png",))
    assert [title for title, _ in figure.panels] == ["task 5-8", "task beaver-otter"]
    for _, legend in figure.panels:
        modes = [entry for entry in legend if "(n = " in entry]
        assert modes == ["analog TL (n = 3)", "analog scratch (n = 3)", "digital TL (n = 3)", "digital scratch (n = 3)"]
    # digital TL on beaver-otter: every seed the same error at every epoch, so sd 0: ringed, named, never exact
    assert "ringed: sd 0 (seeds agreed), not exact" in figure.panels[1][1]
    assert "ringed: sd 0 (seeds agreed), not exact" not in figure.panels[0][1]
    assert "digital TL (beaver-otter): epochs 1, 2, 3, 4" in figure.caption and "not an exact value" in figure.caption
    # 4 epochs and errors from 0 %: nothing spans decades, so both axes are linear, the error axis from 0 to <= 100
    for layout in figure.layout:
        assert (layout.xscale, layout.yscale) == ("linear", "linear")
        assert layout.ylim[0] == 0 and 50 < layout.ylim[1] <= 100
    assert "Linear axes: the data span less than a factor of 20" in figure.caption
    assert "base device point" in figure.caption and "transfer noise 0 %" in figure.caption
    assert "learning rate chosen on test, the paper's rule" in figure.caption  # the study's stored rule
    legend_clear_of_data(figure)
    [ax] = [a for a in drawn[0].axes if a.get_title() == "task beaver-otter"]
    rings = [line for line in ax.get_lines() if line.get_markersize() == 11 and line.get_xdata().size]
    assert len(rings) == 1 and list(rings[0].get_xdata()) == [1, 2, 3, 4]
    stats = png_stats(figure.images["png"], COLOURS.values())
    assert 500 < stats.height <= 620 and stats.width > 2 * 720  # two panels, each with its legend beside it
    assert 0.05 < stats.ink < 0.6  # drawn, and not a solid block
    assert all(count > 200 for count in stats.colours.values()), stats.colours  # every mode's line shows


def test_fig2_axes_are_logarithmic_only_where_the_data_span_decades():
    many = [epoch_row(e, 60.0 / e, seed) for e in range(1, 31) for seed in (0, 1, 2)]
    figure = epochs_figure(many, formats=("png",))
    [layout] = figure.layout
    assert (layout.xscale, layout.yscale) == ("log", "log")
    assert 0 < layout.ylim[0] <= 2.0 and layout.ylim[1] <= 100
    assert "Both axes logarithmic" in figure.caption
    one = epochs_figure([epoch_row(1, 100.0), epoch_row(1, 90.0, mode="digital_tl")], formats=("png",))
    [layout] = one.layout
    # one epoch at 90-100 %: no log axis for one value, and the error axis ends at 100 % exactly
    assert (layout.xscale, layout.yscale) == ("linear", "linear")
    assert layout.ylim == (0.0, 100.0) and layout.xlim[0] < 1 < layout.xlim[1]


def test_error_axes_and_bars_stay_within_0_and_100_percent(drawn):
    # seeds at 80 and 100 % (mean 90, sd 14.1) and at 0 and 12 % (mean 6, sd 8.5): bars would cross 100 and 0
    rows = [
        point(error=e, transfer_noise=x, seed=s)
        for x, pair in ((0.0, (80, 100)), (30.0, (0, 12)))
        for s, e in enumerate(pair)
    ]
    rows += [point(error=e, transfer_noise=10.0, seed=s) for s, e in enumerate((40, 50, 45))]
    figure = axis_figure(rows, "transfer_noise", formats=("png",))
    [layout] = figure.layout
    assert layout.ylim == (0.0, 100.0)
    assert "Error bars end at 0 % and 100 %." in figure.caption
    [ax] = drawn[0].axes
    for collection in ax.collections:
        for segment in collection.get_segments():
            ys = [y for _, y in segment]
            assert 0 <= min(ys) and max(ys) <= 100
    band = [epoch_row(e, v, s) for e in (1, 2) for s, v in enumerate((70, 99, 99))]
    [layout] = epochs_figure(band, formats=("png",)).layout
    assert layout.ylim[1] == 100.0


def test_fig3_on_a_symlog_axis_with_the_paper_and_the_critical_point(study_store, study):
    elbows = [
        {
            "mode": "analog_tl",
            "task": "beaver-otter",
            "axis": "transfer_noise",
            "tested": True,
            "has_elbow": True,
            "breakpoint": 10.0,
            "ci_low": 8.0,
            "ci_high": 12.5,
            "p_value": 0.001,
        },
        {
            "mode": "analog_tl",
            "task": "5-8",
            "axis": "transfer_noise",
            "tested": True,
            "has_elbow": False,
            "breakpoint": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": 0.4,
            "reason": "no significant rise in slope (Davies p = 0.4 >= 0.05)",
        },
        {
            "mode": "analog_tl",
            "task": "5-8",
            "axis": "sp_skew",
            "has_elbow": True,  # another axis: not drawn here
            "breakpoint": 3.0,
            "ci_low": 1.0,
            "ci_high": 4.0,
            "p_value": 0.01,
        },
    ]
    references = {"beaver-otter": {"value": 15.0, "text": "elbow at about 15 %"}}
    figure = axis_figure(
        study_store.best_points(study.name),
        "transfer_noise",
        elbows=elbows,
        references=references,
        formats=("png", "svg"),
    )
    assert figure.name == "fig3_transfer_noise"
    legends = dict(figure.panels)
    assert legends["task 5-8"] == ("analog TL", "analog TL: tested, none found (p = 0.4)")
    assert legends["task beaver-otter"] == (
        "analog TL",
        "analog TL critical point 10 [8, 12.5] %",
        "paper: elbow at about 15 %",
    )
    # 0 to 50 % with positives 1-50: spans decades, so the paper's log axis (symlog for the 0)
    assert "symlog" in figure.caption and "n = 3 seeds per point" in figure.caption
    assert {layout.xscale for layout in figure.layout} == {"symlog"}
    assert "hollow" not in figure.caption.lower()  # every point has three seeds
    assert "Dashed line and shaded band: the critical point" in figure.caption
    assert "Tested for a critical point and none found: analog TL (5-8)" in figure.caption
    # what was plotted, by the rows' selection rule (the study stores the paper's rule), never "best test error"
    assert figure.caption.startswith("Final test error of the learning rate chosen on test (the paper's rule")
    assert "best test error" not in figure.caption.lower()
    legend_clear_of_data(figure)
    svg = figure.images["svg"].decode()
    assert "weight transfer noise (% of layer max |W|)" in svg and "test error (%)" in svg
    stats = png_stats(figure.images["png"], [COLOURS["analog_tl"]])
    assert 500 < stats.height <= 620 and stats.ink > 0.03
    assert stats.colours[COLOURS["analog_tl"]] > 300


def test_not_tested_is_told_apart_from_tested_and_none_found(study_store, study):
    untested = [
        {
            "mode": "analog_tl",
            "task": t,
            "axis": "transfer_noise",
            "tested": False,
            "has_elbow": False,
            "p_value": None,
            "n_values": 3,
            "reason": "not tested: fewer than 5 axis values (3)",
        }
        for t in study.tasks
    ]
    figure = axis_figure(study_store.best_points(study.name), "transfer_noise", formats=("png",), elbows=untested)
    assert dict(figure.panels)["task 5-8"] == ("analog TL", "analog TL: not tested\n(fewer than 5 axis values (3))")
    assert "No critical point" not in figure.caption and "none found" not in figure.caption
    assert "Critical points not tested for 2 curve(s): the test needs at least 5 axis values" in figure.caption
    assert "not tested is not the same as no critical point" in figure.caption


def test_fewer_than_3_seeds_are_hollow_with_dashed_bars_and_sd_0_is_ringed_not_exact(drawn):
    # two seeds everywhere; at 10 % both seeds hit the same error (sd 0): no bar, which must not read as exact
    pairs = {0.0: (20.0, 30.0), 10.0: (28.04, 28.04), 30.0: (25.0, 40.0)}
    rows = [point(error=e, transfer_noise=x, seed=s) for x, pair in pairs.items() for s, e in enumerate(pair)]
    figure = axis_figure(rows, "transfer_noise", formats=("png",))
    assert "Hollow markers and dashed bars: fewer than 3 seeds (here 2), so the bars are unreliable" in figure.caption
    assert "Ringed: sd 0 from the seeds" in figure.caption and "analog TL (5-7) at 10 % (n = 2)" in figure.caption
    assert "Linear axes: the swept values span less than a factor of 20" in figure.caption  # 10 and 30: no decades
    [(_, legend)] = figure.panels
    assert "hollow: fewer than 3 seeds, spread unreliable or none" in legend
    assert "ringed: sd 0 (seeds agreed), not exact" in legend
    [ax] = drawn[0].axes
    markers = [line for line in ax.get_lines() if line.get_linestyle() == "None" and line.get_xdata().size]
    hollow = [line for line in markers if line.get_markerfacecolor() == "white"]
    assert sorted(x for line in hollow for x in line.get_xdata()) == [0.0, 10.0, 30.0]
    rings = [line for line in markers if line.get_markersize() == 11]
    assert [list(line.get_xdata()) for line in rings] == [[10.0]]
    # bars only where the seeds differ, all dashed
    [bars] = ax.collections
    assert len(bars.get_segments()) == 2 and all(style[1] is not None for style in bars.get_linestyle())
    three = axis_figure([*rows, point(error=26.0, transfer_noise=0.0, seed=2)], "transfer_noise", formats=("png",))
    assert "fewer than 3 seeds (here 2)" in three.caption and "n = 2 to 3 seeds per point" in three.caption


def test_single_seed_points_are_hollow_and_said_so(study_store, study):
    rows = [r for r in study_store.best_points(study.name) if r["seed"] == 0 or r["transfer_noise"] == 0]
    figure = axis_figure(rows, "transfer_noise", formats=("png",))
    assert "n = 1 to 3 seeds per point" in figure.caption
    assert "Hollow markers: one seed, so no bar." in figure.caption and "dashed" not in figure.caption
    assert "Critical points were not computed" in figure.caption


def test_a_smoke_run_says_so_in_the_image_title_and_caption_and_drops_the_paper(study_store, study, drawn):
    references = {"beaver-otter": {"value": 15.0, "text": "elbow at about 15 %"}}
    rows = study_store.best_points(study.name)
    smoke = axis_figure(rows, "transfer_noise", references=references, formats=("png",), smoke=True)
    full = axis_figure(rows, "transfer_noise", references=references, formats=("png",))
    assert smoke.title.endswith("(smoke run: not results)") and not full.title.endswith("(smoke run: not results)")
    assert smoke.caption.startswith("Smoke run (--profile smoke): checks that every stage runs")
    assert not any(entry.startswith("paper:") for _, legend in smoke.panels for entry in legend)
    assert any(entry.startswith("paper:") for _, legend in full.panels for entry in legend)
    assert drawn[0].get_suptitle() == "Smoke run: checks that every stage runs; its numbers are not results"
    red = png_stats(smoke.images["png"], [SMOKE_RED]).colours[SMOKE_RED]
    assert red > 500 and png_stats(full.images["png"], [SMOKE_RED]).colours[SMOKE_RED] == 0
    fig2 = epochs_figure(study_store.epoch_curves(study.name), formats=("png",), smoke=True)
    assert fig2.title.endswith("(smoke run: not results)") and fig2.caption.startswith("Smoke run")
    assert png_stats(fig2.images["png"], [SMOKE_RED]).colours[SMOKE_RED] > 500


def test_an_axis_the_sweep_did_not_vary_is_refused_in_one_line(study_store, study):
    rows = study_store.best_points(study.name)
    with pytest.raises(
        StoreInputError,
        match=r"^the sweep did not vary sp_skew: every point has sp_skew = 0 "
        r"\(it varied: transfer_noise\)$",
    ):
        axis_figure(rows, "sp_skew")
    with pytest.raises(StoreInputError, match="unknown axis 'noise'"):
        axis_figure(rows, "noise")
    with pytest.raises(StoreInputError, match="nothing to plot"):
        axis_figure([], "transfer_noise")
    with pytest.raises(StoreInputError, match="nothing to plot"):
        epochs_figure([])


def test_plot_functions_write_the_format_their_suffix_names(study_store, study, tmp_path):
    rows = study_store.best_points(study.name)
    plot_axis_curve(rows, "transfer_noise", tmp_path / "fig3.pdf")
    assert (tmp_path / "fig3.pdf").read_bytes().startswith(b"%PDF")
    plot_epoch_curves(study_store.epoch_curves(study.name), tmp_path / "fig2.svg")
    assert b"<svg" in (tmp_path / "fig2.svg").read_bytes()[:500]
    with pytest.raises(StoreInputError, match=r"must end in \.png, \.pdf, \.svg"):
        plot_axis_curve(rows, "transfer_noise", tmp_path / "fig3.jpg")
    with pytest.raises(StoreInputError, match="no folder"):
        plot_axis_curve(rows, "transfer_noise", tmp_path / "missing" / "fig3.png")
