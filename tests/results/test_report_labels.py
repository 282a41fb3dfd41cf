"""The report says what its numbers are: a smoke run is labelled on the page and in every figure and compared with
none of the paper's values; intervals from fewer than 3 seeds and an sd of 0 are flagged, never shown as precise; a
curve with too few axis values is "not tested", never "no elbow". Real stores (SQLite and PostgreSQL), real HTML, and
headless Chromium for the banner."""

from __future__ import annotations

import base64
import re

from analog_sweep import results
from analog_sweep.results import SMOKE_NOTE, smoke_run, write_report

from ..conftest import chromium_screenshot
from .conftest import StudySweep, png_stats

SMOKE_RED = "#B00020"  # the figures' smoke title
BANNER_BORDER = "#b00020"


class SmokeStudy(StudySweep):
    name = "study-smoke"
    profile = "smoke"

    @staticmethod
    def key(task: str, mode: str, noise: float, seed: int) -> str:
        return "smoke/" + StudySweep.key(task, mode, noise, seed)  # trial ids are unique across a store's sweeps


class TwoSeeds(StudySweep):
    """Two seeds and three transfer-noise values: the newcomer's small study."""

    name = "two"
    seeds = (0, 1)
    noises = (0.0, 10.0, 30.0)


def embedded_pngs(html: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)]


def report(store, study: StudySweep, folder) -> str:
    study.write(store)
    write_report(store, study.name, folder)
    return (folder / "report.html").read_text(encoding="utf-8")


def test_smoke_run_is_read_from_the_stored_spec(store):
    SmokeStudy().write(store)
    StudySweep().write(store)
    assert smoke_run(store.get_sweep("study-smoke")["spec"]) and not smoke_run(store.get_sweep("study")["spec"])
    assert not smoke_run(None) and not smoke_run({"profile": None}) and not smoke_run(["profile", "smoke"])


def test_a_smoke_report_has_a_banner_smoke_figures_and_no_paper_values(store, tmp_path):
    html = report(store, SmokeStudy(), tmp_path / "smoke")
    assert "<title>analog-sweep report: study-smoke (smoke run: not results)</title>" in html
    [banner] = re.findall(r'<p class="smoke" id="smoke-banner" role="note">(.*?)</p>', html, re.S)
    assert f"<strong>{SMOKE_NOTE}.</strong>" in banner and "none is compared\nwith the paper's values" in banner
    assert "<tr><th>profile</th><td>smoke: a smoke run, not results</td></tr>" in html
    # every figure: the title in the report, the caption, and the image itself
    titles = re.findall(r'<figure id="[^"]+">\n<h3>([^<]*)</h3>', html)
    assert len(titles) == 2 and all(t.endswith("(smoke run: not results)") for t in titles)
    captions = re.findall(r"<figcaption>([^<]*)", html)
    assert len(captions) == 2 and all(c.startswith(f"{SMOKE_NOTE}. ") for c in captions)
    for png in embedded_pngs(html):
        assert png_stats(png, [SMOKE_RED]).colours[SMOKE_RED] > 500
    # beaver-otter on cifar is a paper task; a smoke run is compared with none of the paper's values
    assert "elbow at about 15 %" not in html and "about +2 points" not in html and "paper:" not in html
    assert "<th>the paper</th>" not in html and "no paper value for this task" not in html
    assert '<p class="absent">Left out: a smoke run&#39;s numbers are not results, so they are set beside none' in html
    full = report(store, StudySweep(), tmp_path / "full")
    assert 'id="smoke-banner"' not in full and "smoke run" not in full.lower()
    assert "elbow at about 15 % (Fig. 3, Sec. III.B)" in full and "<th>the paper</th>" in full


def test_two_seeds_are_flagged_and_an_sd_of_0_is_never_shown_as_precise(store, tmp_path):
    html = report(store, TwoSeeds(), tmp_path)
    # digital TL on beaver-otter: both seeds at 0 % (sd 0 from 2 seeds)
    assert html.count("&#9888; sd 0 from 2 seeds</span>") == 1
    # every other point: 2 seeds, sd and interval flagged unreliable
    assert html.count("&#9888; from 2 seeds: unreliable</span>") == 2 * (3 + 3) - 1
    assert "Fewer than 3 seeds: the sd and the 95% interval are unreliable" in html.replace("\n", " ")
    # the mode comparisons: two seeds a side never resolve a difference
    verdicts = re.findall(r"<td>([^<]*lower by[^<]*)</td>", html)
    assert len(verdicts) == 4 and all("fewer than 3 seeds on a side (n = 2, 2): unreliable" in v for v in verdicts)
    assert "the 95 % interval excludes 0" not in html
    fig3 = [c for c in re.findall(r"<figcaption>([^<]*)", html) if "against weight transfer noise" in c][0]
    assert "Hollow markers and dashed bars: fewer than 3 seeds (here 2), so the bars are unreliable." in fig3
    fig2 = [c for c in re.findall(r"<figcaption>([^<]*)", html) if c.startswith("Test error per epoch")][0]
    assert "Ringed: sd 0 from the seeds" in fig2 and "digital TL (beaver-otter): epochs 1, 2, 3, 4" in fig2


def test_three_axis_values_are_not_tested_not_no_elbow(store, tmp_path):
    html = report(store, TwoSeeds(), tmp_path)
    rows = re.findall(
        r"<tr><td>weight transfer noise[^<]*</td><td>([^<]*)</td><td>analog TL</td><td>(yes|no)</td>"
        r'<td class="n few">([^<]*)</td>',
        html,
    )
    assert rows == [(task, "no", "not tested: fewer than 5 axis values (3)") for task in ("5-8", "beaver-otter")]
    assert "Critical points not tested for 2 curve(s): the test needs at least 5 axis values" in html
    findings = html.split('<section id="findings">', 1)[1].split("</section>", 1)[0]
    assert "no elbow" not in findings and "No critical point was found" not in html


def test_the_smoke_banner_shows_in_chromium(tmp_path):
    for study in (SmokeStudy(), StudySweep()):
        with results.open_store(f"sqlite:///{tmp_path / study.name}.db") as store:
            study.write(store)
            write_report(store, study.name, tmp_path / study.name)
    colours = [BANNER_BORDER, "#ffe9ed"]
    seen = {}
    for name in ("study-smoke", "study"):
        shot = tmp_path / f"{name}.png"
        assert chromium_screenshot(tmp_path / name / "report.html", shot, height=400) == []
        seen[name] = png_stats(shot.read_bytes(), colours).colours
    # the banner's red border and pink background, in the first 400 pixels of the page; none without a smoke run
    assert seen["study-smoke"][BANNER_BORDER] > 3000 and seen["study-smoke"]["#ffe9ed"] > 40_000, seen
    assert seen["study"][BANNER_BORDER] == 0 and seen["study"]["#ffe9ed"] < 50, seen  # a few anti-aliased pixels
