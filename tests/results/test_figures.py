"""The study's figures (the paper's Figs. 2-5) on a synthetic study read back from a real store.

The study (``StudySweep``): four modes on two tasks, three seeds; analog TL swept over transfer noise with an elbow at
10 %; digital TL reaches 0 % test error on beaver-otter. PNGs are checked for size, ink and the mode colours.
"""

from __future__ import annotations

import pytest

from analog_sweep.results import (
    MODE_STYLES,
    StoreInputError,
    axis_figure,
    epochs_figure,
    plot_axis_curve,
    plot_epoch_curves,
)

from .conftest import png_stats

COLOURS = {mode: style.color for mode, style in MODE_STYLES.items()}
# Panels are 3.6 x 3.0 in at 200 dpi; two tasks side by side.
TWO_PANELS = (2 * 720, 600)


def test_fig2_one_legend_entry_per_mode_with_its_seeds_and_a_zero_error_at_a_stated_floor(study_store, study):
    figure = epochs_figure(study_store.epoch_curves(study.name), formats=("png",))
    assert [title for title, _ in figure.panels] == ["task 5-8", "task beaver-otter"]
    for _, legend in figure.panels:
        modes = [entry for entry in legend if "(n = " in entry]
        assert modes == ["analog TL (n = 3)", "analog scratch (n = 3)", "digital TL (n = 3)", "digital scratch (n = 3)"]
    # digital TL's 0 % on beaver-otter is drawn at the 1 % floor, said in the legend and the caption, not as a drop
    assert "below 1 % (0 included): drawn at 1 %" in figure.panels[1][1]
    assert "below 1 % (0 included): drawn at 1 %" not in figure.panels[0][1]
    assert "Values below 1 % (a zero error included) are drawn at 1 %" in figure.caption
    assert "base device point" in figure.caption and "transfer noise 0 %" in figure.caption
    stats = png_stats(figure.images["png"], COLOURS.values())
    assert (stats.width, stats.height) == TWO_PANELS
    assert 0.05 < stats.ink < 0.6  # drawn, and not a solid block
    assert all(count > 200 for count in stats.colours.values()), stats.colours  # every mode's line shows


def test_fig3_mean_and_sd_over_seeds_on_a_log_axis_with_the_paper_and_the_critical_point(study_store, study):
    elbows = [
        {
            "mode": "analog_tl",
            "task": "beaver-otter",
            "axis": "transfer_noise",
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
            "has_elbow": False,
            "breakpoint": None,
            "ci_low": None,
            "ci_high": None,
            "p_value": 0.4,
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
    assert legends["task 5-8"] == ("analog TL", "analog TL: no elbow (p = 0.4)")
    assert legends["task beaver-otter"] == (
        "analog TL",
        "analog TL critical point 10 [8, 12.5] %",
        "paper: elbow at about 15 %",
    )
    assert "symlog" in figure.caption and "n = 3 seeds per point" in figure.caption
    assert "hollow" not in figure.caption  # every point has three seeds
    assert "Dashed line and shaded band: the critical point" in figure.caption
    flat = axis_figure(
        study_store.best_points(study.name),
        "transfer_noise",
        formats=("png",),
        elbows=[
            {
                "mode": "analog_tl",
                "task": t,
                "axis": "transfer_noise",
                "has_elbow": False,
                "p_value": None,
                "reason": "fewer than 5 axis values (3)",
            }
            for t in study.tasks
        ],
    )
    assert dict(flat.panels)["task 5-8"] == ("analog TL", "analog TL: no elbow\n(fewer than 5 axis values (3))")
    assert "No critical point was found; the legend says why" in flat.caption
    svg = figure.images["svg"].decode()
    assert "weight transfer noise (% of layer max |W|)" in svg and "test error (%)" in svg
    stats = png_stats(figure.images["png"], [COLOURS["analog_tl"]])
    assert (stats.width, stats.height) == TWO_PANELS and stats.ink > 0.03
    assert stats.colours[COLOURS["analog_tl"]] > 300


def test_single_seed_points_are_hollow_and_said_so(study_store, study):
    rows = [r for r in study_store.best_points(study.name) if r["seed"] == 0 or r["transfer_noise"] == 0]
    figure = axis_figure(rows, "transfer_noise", formats=("png",))
    assert "n = 1 to 3 seeds per point" in figure.caption and "hollow markers: one seed, no bar" in figure.caption
    assert "Critical points were not computed" in figure.caption


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
