"""Live views: ``run --ray-dashboard`` serves Ray's dashboard while the sweep runs, and ``analog-sweep dashboard``
serves the finished sweep's studies in optuna-dashboard (fetched with a real HTTP client, and screenshot with
headless Chromium: the path is printed; set ``ANALOG_SWEEP_SCREENSHOTS=DIR`` to keep the picture)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from PIL import Image

from .conftest import answers, free_port

REPO = Path(__file__).resolve().parents[2]
SWEEP = "quickstart-smoke"
SMALL = ["--profile", "smoke", "--set", "modes=[analog_tl,digital_tl]", "--set", "axes=null"]
RUN_SECONDS = 900  # measured about 1 minute on the shared 2-core machine
SERVER_START_SECONDS = 120  # the dashboard command imports Ray: 5-20 s here


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "analog_sweep", *args]


def _env(tmp: Path) -> dict[str, str]:
    env = dict(os.environ, ANALOG_SWEEP_STORE=f"sqlite:///{tmp / 'results.db'}", ANALOG_SWEEP_STORAGE=str(tmp / "st"))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


@pytest.fixture(scope="module")
def ray_dashboard_run(tmp_path_factory):
    """Run the smoke quickstart with --ray-dashboard; fetch Ray's dashboard page while it runs."""
    tmp = tmp_path_factory.mktemp("live")
    port = free_port()
    log = tmp / "run.log"
    with log.open("w") as out:
        run = subprocess.Popen(
            _cli(
                "run",
                str(REPO / "sweeps" / "quickstart.yaml"),
                *SMALL,
                "--ray-dashboard",
                "--ray-dashboard-port",
                str(port),
            ),
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(tmp),
            cwd=tmp,
        )
    page = None
    deadline = time.monotonic() + RUN_SECONDS
    while run.poll() is None and time.monotonic() < deadline:
        if page is None and f"Ray dashboard: http://127.0.0.1:{port}" in log.read_text():
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                page = (response.status, response.read().decode(errors="replace"))
        time.sleep(0.5)
    if run.poll() is None:
        run.kill()
        pytest.fail(f"the sweep did not finish in {RUN_SECONDS} s: {log.read_text()[-2000:]}")
    return tmp, run.returncode, log.read_text(), page, port


@pytest.mark.slow
def test_run_keeps_rays_dashboard_on_while_the_sweep_runs(ray_dashboard_run):
    _, code, output, page, port = ray_dashboard_run
    assert code == 0, output
    assert page is not None, f"the sweep never said its dashboard was up: {output[-2000:]}"
    status, body = page
    assert status == 200 and "<title>Ray Dashboard</title>" in body, body[:500]
    assert f"sweep {SWEEP} finished" in output
    assert "Token authentication" not in output  # Ray's notice on the local instance it starts is dropped
    assert not answers(f"http://127.0.0.1:{port}/")  # the local instance and its dashboard are gone after


@pytest.mark.slow
def test_dashboard_serves_the_finished_sweeps_studies_read_only(ray_dashboard_run):
    tmp = ray_dashboard_run[0]
    port = free_port()
    log = tmp / "dashboard.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            _cli("dashboard", SWEEP, "--port", str(port)), stdout=out, stderr=subprocess.STDOUT, env=_env(tmp), cwd=tmp
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(f"{base}/dashboard"):
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        assert f"on {base}/dashboard" in log.read_text()
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            studies = json.load(response)["study_summaries"]
        assert len(studies) == 2  # one learning-rate study per point
        # Listed by the point's label, then its key (the study's own name).
        names = sorted(s["study_name"] for s in studies)
        assert [re.fullmatch(r"(\S+)/5-7/base/seed0 \[[0-9a-f]{16}\]", n)[1] for n in names] == [
            "analog_tl",
            "digital_tl",
        ]
        with urllib.request.urlopen(f"{base}/dashboard", timeout=30) as response:
            assert b'<style id="analog-sweep-read-only">' in response.read()
        request = urllib.request.Request(f"{base}/api/studies/{studies[0]['study_id']}", method="DELETE")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=30)
        assert refused.value.code == 405

        chromium = shutil.which("chromium") or shutil.which("chromium-browser")
        if chromium is None:
            pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
        folder = Path(os.environ.get("ANALOG_SWEEP_SCREENSHOTS", tmp))
        folder.mkdir(parents=True, exist_ok=True)
        for name, url in [
            ("optuna-dashboard-studies.png", f"{base}/dashboard"),
            ("optuna-dashboard-study.png", f"{base}/dashboard/studies/{studies[0]['study_id']}"),
        ]:
            shot = folder / name
            subprocess.run(
                [
                    chromium,
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--hide-scrollbars",
                    "--window-size=1400,900",
                    "--virtual-time-budget=15000",
                    f"--screenshot={shot}",
                    url,
                ],
                check=True,
                capture_output=True,
                timeout=180,
            )
            with Image.open(shot) as picture:
                colours = picture.convert("RGB").getcolors(maxcolors=1 << 20)
            assert picture.size == (1400, 900) and colours is not None and len(colours) > 50, shot
            print(f"\nscreenshot: {shot}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_dashboard_of_an_unknown_sweep_or_a_missing_journal_is_one_line_exit_2(tmp_path):
    from click.testing import CliRunner

    from analog_sweep.cli import cli
    from analog_sweep.results import open_store

    url = f"sqlite:///{tmp_path / 'results.db'}"
    with open_store(url) as store:
        store.record_sweep("elsewhere", {"name": "elsewhere"}, "hash", "finished", str(tmp_path / "not-here"))
    for sweep, message in [("nope", "unknown sweep 'nope'"), ("elsewhere", "no Optuna journal at")]:
        result = CliRunner().invoke(cli, ["dashboard", sweep, "--store", url, "--port", "0"])
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.exit_code == 2 and len(lines) == 1 and message in lines[0], result.output
