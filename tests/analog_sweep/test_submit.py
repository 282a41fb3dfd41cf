"""``analog-sweep submit``, ``jobs`` and ``logs`` against a real Ray head with its jobs server on 127.0.0.1.

The end-to-end test submits the quickstart (``--profile smoke``, two modes at the base point: 2 points, 2 trials),
waits for the job, and reads the results from the store; it prints the job id, the status sequence and the rows,
so they can be quoted (``pytest -s``). Bad input is refused before anything reaches a server.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.orchestrator import job_status
from analog_sweep.results import open_store

REPO = Path(__file__).resolve().parents[2]
QUICKSTART = str(REPO / "sweeps" / "quickstart.yaml")
SMALL = ["--profile", "smoke", "--set", "modes=[analog_tl,digital_tl]", "--set", "axes=null"]
JOB_SECONDS = 900  # measured 55 s for this job on the shared 2-core machine under load
NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing answers


def _one_line_error(result, code: int) -> str:
    assert result.exit_code == code, result.output
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.output and len(lines) == 1, result.stderr
    return lines[0]


def test_a_bad_spec_is_refused_before_the_server_is_asked():
    result = CliRunner().invoke(cli, ["submit", QUICKSTART, "--address", NOWHERE, "--set", "epochs=0"])
    assert "epochs: must be an integer from 1" in _one_line_error(result, 2)


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--store", "postgresql+psycopg://me:secret@db/sweeps"], "no password here"),
        (["--store", "sqlite:///relative.db"], "absolute SQLite path"),
        (["--storage-path", "relative/store"], "absolute path"),
    ],
)
def test_settings_that_would_go_wrong_on_a_cluster_are_refused(extra, message):
    result = CliRunner().invoke(cli, ["submit", QUICKSTART, "--address", NOWHERE, *extra])
    line = _one_line_error(result, 2)
    assert message in line and "secret" not in line


def test_spec_and_resume_together_are_a_usage_error():
    result = CliRunner().invoke(cli, ["submit", QUICKSTART, "--resume", "quickstart", "--address", NOWHERE])
    assert "not both" in _one_line_error(result, 2)


def test_an_unreachable_server_is_one_line_and_exit_1():
    result = CliRunner().invoke(cli, ["submit", QUICKSTART, "--address", NOWHERE])
    assert "cannot reach Ray's jobs server at http://127.0.0.1:9" in _one_line_error(result, 1)


@pytest.mark.slow
def test_submit_runs_the_quickstart_as_a_ray_job_and_the_store_has_its_rows(ray_head, tmp_path):
    store = f"sqlite:///{tmp_path / 'results.db'}"
    runner = CliRunner()
    submitted = runner.invoke(
        cli,
        [
            "submit",
            QUICKSTART,
            "--address",
            ray_head.address,
            *SMALL,
            "--store",
            store,
            "--storage-path",
            str(tmp_path / "storage"),
            "--format",
            "json",
        ],
    )
    assert submitted.exit_code == 0, submitted.output
    job = json.loads(submitted.stdout)["job"]
    print(f"\njob id: {job}")

    statuses: list[str] = []
    deadline = time.monotonic() + JOB_SECONDS
    while not statuses or statuses[-1] not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"job {job} still {statuses[-1]} after {JOB_SECONDS} s"
        status = job_status(ray_head.address, job)
        if not statuses or statuses[-1] != status:
            statuses.append(status)
        time.sleep(1)
    print(f"status sequence: {' -> '.join(statuses)}")

    logs = runner.invoke(cli, ["logs", job, "--address", ray_head.address, "--format", "json"])
    assert statuses[-1] == "SUCCEEDED", logs.output
    assert logs.exit_code == 0
    # The job ran the spec with the options given here (--profile is recorded on its command line).
    assert "--profile smoke" in logs.stdout and "sweep quickstart-smoke finished" in logs.stdout

    listed = runner.invoke(cli, ["jobs", "--address", ray_head.address, "--format", "json"])
    rows = {row["job"]: row for row in map(json.loads, listed.stdout.splitlines())}
    assert rows[job]["sweep"] == "quickstart-smoke" and rows[job]["status"] == "SUCCEEDED"

    with open_store(store, read_only=True) as opened:
        assert opened.get_sweep("quickstart-smoke")["status"] == "finished"
        points = opened.best_points("quickstart-smoke")
    print("rows in the store (best_points):")
    for point in points:
        print({k: point[k] for k in ("mode", "task", "seed", "status", "lr", "final_test_error")})
    assert sorted(p["mode"] for p in points) == ["analog_tl", "digital_tl"]
    assert all(p["status"] == "done" and 0 <= p["final_test_error"] <= 100 for p in points)


@pytest.mark.slow
def test_logs_of_an_unknown_job_is_bad_input(ray_head):
    result = CliRunner().invoke(cli, ["logs", "no-such-job", "--address", ray_head.address])
    assert "no job 'no-such-job'" in _one_line_error(result, 2)


@pytest.mark.slow
def test_a_head_whose_python_lacks_the_project_fails_the_submit_in_one_line(bare_ray_head):
    # Ray runs a job's entrypoint with the first 'python' on the head's PATH, not the interpreter running Ray.
    result = CliRunner().invoke(cli, ["submit", QUICKSTART, "--address", bare_ray_head.address, *SMALL])
    line = _one_line_error(result, 1)
    missing = line.split("has no ", 1)[1].split(": ", 1)[0].split(", ")
    assert "the Ray head's python" in line and {"ray", "torch", "aihwkit"} <= set(missing)
    assert "ray start --head" in line  # the fix
