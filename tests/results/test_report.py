"""``write_report``: one self-contained HTML file with the figures embedded, the figures beside it, the findings, and
parts the store cannot give shown as absent. Checked on a synthetic study in a real store (SQLite and PostgreSQL),
and once in headless Chromium."""

from __future__ import annotations

import base64
import re

import pytest

from analog_sweep import results
from analog_sweep.results import MODE_STYLES, NotFound, StoreInputError, write_report

from ..conftest import chromium_screenshot
from .conftest import StudySweep, png_stats

COLOURS = [style.color for style in MODE_STYLES.values()]


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def test_the_report_is_one_self_contained_file_with_the_figures_and_findings(study_store, study, tmp_path):
    out = tmp_path / "report"
    files = write_report(study_store, study.name, out)
    names = sorted(path.rsplit("/", 1)[-1] for path in (f["file"] for f in files))
    assert names == [
        "fig2_modes.pdf",
        "fig2_modes.png",
        "fig3_transfer_noise.pdf",
        "fig3_transfer_noise.png",
        "report.html",
    ]
    assert all(f["bytes"] > 5000 for f in files)
    html = (out / "report.html").read_text(encoding="utf-8")
    # self-contained: no script, nothing loaded from elsewhere; the embedded PNGs are the files beside it
    assert "<script" not in html and "http://" not in html and "https://" not in html
    assert re.findall(r'src="([^"]{0,22})', html) == ["data:image/png;base64,"] * 2
    assert embedded_pngs(html) == [
        (out / "fig2_modes.png").read_bytes(),
        (out / "fig3_transfer_noise.png").read_bytes(),
    ]
    # the findings: Welch differences over three seeds each, the paper beside them for its task only
    assert "-15.00 [-18.40, -11.60]" in html
    assert "about +2 points (Fig. 2, Sec. III.A)" in html and "no paper value for this task" in html
    assert "body barely moved (0.5 % of the weights) at transfer_noise 50 % (3 of 3 chosen trials)" in html
    # critical points from Store.elbows (the synthetic rise starts at 10 %), the paper's 15 % beside beaver-otter's
    rows = re.findall(
        r"<tr><td>weight transfer noise[^\n]*</td><td>([^<]*)</td><td>analog TL</td><td>yes</td>"
        r'<td class="n">([0-9.]+) % \[([0-9.]+), ([0-9.]+)\]</td>.*?<td>([^<]*)</td></tr>',
        html,
        re.S,
    )
    assert [(task, paper) for task, *_, paper in rows] == [
        ("5-8", "-"),
        ("beaver-otter", "elbow at about 15 % (Fig. 3, Sec. III.B)"),
    ]
    for _, point, low, high, _ in rows:
        assert float(low) < float(point) < float(high) and 5 < float(point) < 20
    # every point with its seeds: n, mean, sd and interval
    assert html.count("<td>0.05,0.05,0.05</td>") == len(study.tasks) * (len(study.noises) + 3)
    # the paper's values, the ones of this sweep's tasks marked
    assert "elbow at about 15 %" in html and "digital TL outperforms the analog TL by about 2 %" in html
    for section in ("findings", "figures", "points", "paper", "provenance", "spec"):
        assert f'<section id="{section}">' in html
    for png in embedded_pngs(html):
        stats = png_stats(png, COLOURS[:1])
        assert stats.width >= 1000 and stats.ink > 0.03 and stats.colours[COLOURS[0]] > 200


def test_parts_the_store_cannot_give_are_absent_with_a_reason(store, tmp_path):
    store.record_sweep("empty", {"name": "empty"}, "hash-empty", "running")
    write_report(store, "empty", tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    absent = re.findall(r'<p class="absent">Absent: ([^<]*)</p>', html)
    assert "nothing to plot: no point has a completed epoch yet." in absent
    # The axis figures, the mode comparison and the critical points (not "varied no device axis": it may yet).
    assert absent.count("no point has a completed trial yet.") >= 3
    assert not any("varied no device axis" in reason for reason in absent)
    assert "none recorded for this sweep (it ran before analog-sweep recorded provenance)." in absent
    assert len(absent) >= 5 and "<img" not in html


def test_a_mode_without_a_result_at_the_base_device_is_named_under_fig_2(store, tmp_path):
    """Analog scratch ran along transfer noise but every trial at the base device point failed: Fig. 2 (drawn from
    the base point's curves only) still says which mode it lacks."""
    store.record_sweep("m", {"name": "m"}, "h", status="running")
    for mode, noises in (("digital_tl", (0.0,)), ("analog_tl", (0.0, 10.0)), ("analog_scratch", (0.0, 10.0))):
        for noise in noises:
            key = f"{mode}-{noise:g}"
            axes = {"transfer_noise": noise, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
            store.record_point("m", key, mode=mode, task="5-8", classes=["5", "8"], seed=0, axes=axes)
            store.record_trial(f"{key}-t", "m", key, lr=0.1, status="running")
            for epoch in (1, 2):
                store.record_epoch(f"{key}-t", epoch, train_loss=1.0, test_error=20.0, test_accuracy=80.0, seconds=1.0)
            failed = mode == "analog_scratch" and noise == 0.0
            store.record_trial(f"{key}-t", "m", key, lr=0.1, status="failed" if failed else "completed")
            store.choose_best("m", key)
    write_report(store, "m", tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "No point at the base device for: analog scratch (5-8)." in html


def test_unknown_sweep_and_a_file_for_a_folder_are_refused(study_store, study, tmp_path):
    with pytest.raises(NotFound, match="unknown sweep 'nope'"):
        write_report(study_store, "nope", tmp_path)
    (tmp_path / "taken").write_text("x")
    with pytest.raises(StoreInputError, match="is a file, not a folder"):
        write_report(study_store, study.name, tmp_path / "taken")


def test_text_from_the_store_is_escaped(store, tmp_path):
    name = "<script>alert(1)</script>"
    store.record_sweep(name, {"name": name, "note": "<img src=x>"}, "hash-x", "running")
    write_report(store, name, tmp_path)
    html = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "<script" not in html and "<img src=x>" not in html and "&lt;script&gt;alert(1)" in html


def test_the_report_opens_in_headless_chromium_without_console_messages_and_shows_the_figures(tmp_path):
    with results.open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        StudySweep().write(store)
        write_report(store, StudySweep.name, tmp_path / "report")
    console = chromium_screenshot(tmp_path / "report" / "report.html", tmp_path / "screenshot.png")
    assert console == []
    stats = png_stats((tmp_path / "screenshot.png").read_bytes(), COLOURS)
    assert (stats.width, stats.height) == (1280, 4000)
    # the page's own styles use none of the mode colours: pixels of all four mean the figures were drawn
    assert all(count > 100 for count in stats.colours.values()), stats.colours


def test_provenance_is_shown_per_run_with_its_models_and_rpu_configs(study_store, study, tmp_path):
    write_report(study_store, study.name, tmp_path / "before")
    before = (tmp_path / "before" / "report.html").read_text(encoding="utf-8")
    assert "Absent: none recorded for this sweep (it ran before analog-sweep recorded provenance)." in before
    study_store.record_run(
        study.name,
        {
            "run_id": "r1",
            "kind": "run",
            "command": ["analog-sweep", "run", "study.yaml", "--set", "epochs=4"],
            "options": {"overrides": ["epochs=4"], "cpu_fallback": False},
            "packages": {"torch": "2.10.0", "aihwkit": "1.1.0"},
            "aihwkit_cuda": False,
            "project": {"version": "0.1.0", "commit": "0123abcd" * 5, "dirty": True},
            "host": "node-1",
            "platform": "Linux",
            "cpu": {"model": "AMD EPYC 7B13", "count": 2},
            "gpus": {"model": None, "count": 0},
            "cluster": {"nodes": 1, "cpus": 2.0},
        },
    )
    study_store.record_pretrained(
        study.name,
        {
            "cache_key": "9e540985ae936667",
            "file_hash": "ab" * 32,
            "source_error": 3.7,
            "train_seconds": 21.5,
            "trained_now": True,
            "run_id": "r1",
        },
    )
    trial = f"{study.key('5-8', 'analog_tl', 10.0, 0)}/lr0.05"
    study_store.set_trial_rpu_config(trial, {"device": {"fast_lr": 0.5}})
    # Two trials ran on a node with the driver's versions, one on a node with another aihwkit.
    same = {
        "node_id": "aa" * 28,
        "host": "gpu-1",
        "ip": "10.0.0.1",
        "packages": {"torch": "2.10.0", "aihwkit": "1.1.0"},
    }
    other = {**same, "node_id": "bb" * 28, "host": "gpu-7", "ip": "10.0.0.7", "packages": {"aihwkit": "1.0.0"}}
    study_store.set_trial_node_environment(trial, other)
    for seed in (1, 2):
        study_store.set_trial_node_environment(f"{study.key('5-8', 'analog_tl', 10.0, seed)}/lr0.05", same)
    write_report(study_store, study.name, tmp_path / "after")
    html = (tmp_path / "after" / "report.html").read_text(encoding="utf-8")
    assert "none recorded for this sweep" not in html
    assert "analog-sweep run study.yaml --set epochs=4" in html
    assert f"commit {'0123abcd' * 5} (with uncommitted changes)" in html
    assert "2 x AMD EPYC 7B13" in html and "torch 2.10.0, aihwkit 1.1.0" in html
    assert "9e540985ae936667" in html and "ab" * 32 in html
    assert "1 trial(s) at 1 point(s)" in html and "&#34;fast_lr&#34;: 0.5" in html
    assert "53 trial(s) have none (digital trials, or trials recorded before provenance)" in html
    assert "2 nodes, 2 package sets; 1 node differs from the driver (1 trial)" in html
    assert "<td><code>10.0.0.7 (bbbbbbbb)</code></td><td><code>gpu-7</code></td><td><code>1</code></td>" in html
    assert "aihwkit 1.0.0 (the driver 1.1.0)" in html and "<td><code>none</code></td>" in html
    assert "51 trial(s) have no node recorded" in html
