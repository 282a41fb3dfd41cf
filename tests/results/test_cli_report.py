"""``analog-sweep report``: through click on a synthetic study (SQLite and PostgreSQL), and once end to end on a real
sweep run by ``analog-sweep run``, opened in headless Chromium."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.results import MODE_STYLES

from ..conftest import chromium_screenshot
from .conftest import png_stats

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def study_url(study_store, store_url) -> str:
    return store_url


def invoke(*args: str):
    outcome = CliRunner().invoke(cli, list(args))
    return outcome.exit_code, outcome.stdout, outcome.stderr


def test_report_writes_the_files_and_lists_them(study_url, study, tmp_path):
    out = tmp_path / "out"
    code, stdout, stderr = invoke("report", study.name, "--out", str(out), "--store", study_url, "--format", "json")
    assert code == 0, stderr
    rows = [json.loads(line) for line in stdout.splitlines()]
    assert rows[0] == {
        "file": str(out / "report.html"),
        "what": "report (HTML, figures embedded)",
        "bytes": (out / "report.html").stat().st_size,
    }
    assert {Path(r["file"]).name for r in rows[1:]} == {
        "fig2_modes.png",
        "fig2_modes.pdf",
        "fig3_transfer_noise.png",
        "fig3_transfer_noise.pdf",
    }
    assert f"wrote {out / 'report.html'}" in stderr


def test_report_defaults_to_a_folder_named_after_the_sweep(study_url, study, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, stderr = invoke("report", study.name, "--store", study_url)
    assert code == 0, stderr
    assert (tmp_path / f"{study.name}-report" / "report.html").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["report", "nope"], "Error: unknown sweep 'nope'"),
        (["report", "study", "--out", "{file}"], "is a file"),
        (
            ["results", "best", "study", "--axis", "sp_skew", "--plot", "{dir}/x.png"],
            "Error: sweep 'study' did not vary sp_skew: it varied transfer_noise",
        ),
        (["results", "best", "study", "--axis", "transfer_noise", "--plot", "{dir}/x.jpg"], "must end in .png"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(study_url, tmp_path, args, message):
    (tmp_path / "file").write_text("x")
    args = [a.format(file=tmp_path / "file", dir=tmp_path) for a in args]
    code, stdout, stderr = invoke(*args, "--store", study_url)
    assert code == 2 and stdout == ""
    assert stderr.count("\n") == 1 and message in stderr


@pytest.mark.slow
def test_a_real_sweep_s_report_opens_in_chromium_and_shows_its_figures(tmp_path):
    """The quickstart at nano size with two seeds, run by the CLI as a user would; then its report."""
    store = f"sqlite:///{tmp_path / 'results.db'}"
    nano = [
        "data.train_limit=16",
        "data.test_limit=16",
        "data.source_limit=100",
        "model.overrides.depths=[1,1]",
        "model.overrides.embed_dim=12",
        "pretrain.epochs=2",
        "epochs=2",
        "seeds=[0,1]",
        "lr_search.values=[0.1]",
    ]
    command = [
        sys.executable,
        "-c",
        "from analog_sweep.cli import main; main()",
        "run",
        str(REPO / "sweeps" / "quickstart.yaml"),
        "--store",
        store,
        "--storage-path",
        str(tmp_path / "storage"),
        *(arg for setting in nano for arg in ("--set", setting)),
    ]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    ran = subprocess.run(command, capture_output=True, text=True, timeout=900, env=env, cwd=tmp_path)
    assert ran.returncode == 0, ran.stderr[-3000:]
    code, stdout, stderr = invoke("report", "quickstart", "--out", str(tmp_path / "report"), "--store", store)
    assert code == 0, stderr
    html = (tmp_path / "report" / "report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == 2  # Fig. 2 and transfer noise (Fig. 3)
    assert "analog TL - analog scratch" in html and "analog TL - digital TL" in html
    for name in ("fig2_modes.png", "fig3_transfer_noise.png"):
        stats = png_stats((tmp_path / "report" / name).read_bytes(), [MODE_STYLES["analog_tl"].color])
        assert stats.width >= 700 and stats.ink > 0.03 and stats.colours[MODE_STYLES["analog_tl"].color] > 100
    console = chromium_screenshot(tmp_path / "report" / "report.html", tmp_path / "screenshot.png")
    assert console == []
    colours = [style.color for style in MODE_STYLES.values()]
    stats = png_stats((tmp_path / "screenshot.png").read_bytes(), colours)
    assert all(count > 100 for count in stats.colours.values()), stats.colours
