"""Every way out of the driver leaves a status that ``status`` explains, with a next step.

- An unexpected error (here: one raised inside the driver after the sweep was marked running) marks the sweep
  ``failed`` and prints one line that says why and to resume; ``status`` says the same; ``resume`` finishes it.
- A pretraining failure (a data error while reading the source task) is one line naming the pretraining key and
  the cause, not a Ray traceback, and the sweep is ``failed``, not ``running``.
- A sweep the store still calls ``running`` whose driver is gone (killed: no driver holds its lock) is shown as
  stopped, with the resume step, by every command that shows sweep statuses (``status NAME``, ``status``,
  ``results sweeps``).
"""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import analog_sweep.orchestrator._driver as driver
from analog_sweep.cli import cli
from analog_sweep.results import open_store

from .conftest import NANO, QUICKSTART, assert_one_line_error, set_args, snapshot
from .test_preflight import CIFAR, fake_cifar

NO_PRETRAINING = [*NANO, "epochs=1", "modes=[digital_scratch]", "axes=null"]


def listed_status(url: str, *command: str) -> tuple[str, str]:
    """The sweep ``gone``'s status in the JSON rows of a listing command, and what it said on stderr."""
    import json

    result = CliRunner().invoke(cli, [*command, "--store", url, "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = {row["sweep"]: row for row in map(json.loads, result.stdout.splitlines())}  # one JSON object a line
    return rows["gone"]["status"], result.stderr


def status_of(url: str, name: str = "quickstart") -> str:
    result = CliRunner().invoke(cli, ["status", name, "--store", url])
    assert result.exit_code == 0, result.output
    return result.stderr.splitlines()[0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_an_unexpected_error_marks_the_sweep_failed_says_so_in_one_line_and_resume_finishes_it(
    tmp_path, ray_cluster, monkeypatch
):
    url = f"sqlite:///{tmp_path}/results.db"
    args = ["run", QUICKSTART, *set_args(NO_PRETRAINING), "--store", url, "--storage-path", str(tmp_path / "s")]

    def broken(*args, **kwargs):
        raise RuntimeError("something nobody expected")

    monkeypatch.setattr(driver, "_reconcile", broken)  # our own code, after the sweep is marked running
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 1, (result.output, result.exception)
    assert_one_line_error(
        result.stderr,
        "sweep quickstart failed: RuntimeError: something nobody expected",
        "marked failed",
        "analog-sweep resume quickstart",
    )
    assert snapshot(url)["sweeps"] == {"quickstart": "failed"}
    assert "failed" in status_of(url) and "analog-sweep resume quickstart" in status_of(url)
    again = CliRunner().invoke(cli, args)  # run refuses, and says what to do
    assert again.exit_code == 2 and "analog-sweep resume quickstart" in again.stderr

    monkeypatch.undo()
    resumed = CliRunner().invoke(cli, ["resume", "quickstart", "--store", url])
    assert resumed.exit_code == 0, (resumed.output, resumed.exception)
    assert snapshot(url)["sweeps"] == {"quickstart": "finished"}
    assert status_of(url).startswith("sweep quickstart: finished")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_pretraining_failure_is_one_line_and_leaves_the_sweep_failed_not_running(tmp_path, ray_cluster):
    url = f"sqlite:///{tmp_path}/results.db"
    root = fake_cifar(tmp_path / "cifar")  # every file there (the preflight passes), none readable
    overrides = [*NANO, *CIFAR, f"data.data_root={root}", "modes=[digital_tl]", "axes=null"]
    result = CliRunner().invoke(
        cli, ["run", QUICKSTART, *set_args(overrides), "--store", url, "--storage-path", str(tmp_path / "s")]
    )
    assert result.exit_code == 1, (result.output, result.exception)
    line = assert_one_line_error(
        result.stderr,
        "pretraining",
        "failed: DataError:",
        "is not a CIFAR python-pickle file",
        "analog-sweep resume quickstart",
    )
    assert len(line) < 600
    assert "RayTaskError" not in result.stderr
    assert snapshot(url)["sweeps"] == {"quickstart": "failed"}
    assert "fix the cause" in status_of(url)


def test_a_running_sweep_whose_driver_is_gone_is_shown_as_stopped_with_the_next_step(tmp_path):
    url = f"sqlite:///{tmp_path}/results.db"
    folder = tmp_path / "storage" / "gone"
    folder.mkdir(parents=True)
    (folder / "driver.lock").write_text("pid 999999\n")  # left by a driver that was killed
    with open_store(url) as store:
        store.record_sweep("gone", {"name": "gone"}, "hash", "running", str(folder))
    line = status_of(url, "gone")
    assert "no driver is running it" in line and "analog-sweep resume gone" in line
    for command in (["status"], ["results", "sweeps"]):
        status, said = listed_status(url, *command)
        assert status == "stopped", (command, status)
        assert "analog-sweep resume gone" in said, (command, said)

    # While a driver holds the lock, running means running.
    import fcntl

    with open(folder / "driver.lock", "a+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        assert status_of(url, "gone").startswith("sweep gone: running, storage")
        for command in (["status"], ["results", "sweeps"]):
            assert listed_status(url, *command) == ("running", ""), command
