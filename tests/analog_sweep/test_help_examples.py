"""Every ``Example:`` in every command's help runs.

The examples are read from the commands' docstrings (what ``--help`` prints) and run through the command line's
own entry point (``analog_sweep.cli:cli``, what the ``analog-sweep`` script calls; in this process, as click's
test runner does, since a new Python with Ray costs seconds per example) in a scratch folder holding ``sweeps/``,
with a scratch store and
storage path in ``$ANALOG_SWEEP_STORE``/``$ANALOG_SWEEP_STORAGE``, CIFAR files in the real layout (tiny, written
here) in ``$ANALOG_SWEEP_DATA``, and a real Ray head for the cluster commands. What the test changes, and why:

- ``HEAD:8265`` (the placeholder for a cluster's head) is the test's own Ray head, and ``JOB_ID`` the id the
  last submit example printed; each submitted job is waited for and must succeed;
- ``run sweeps/quickstart.yaml`` (a 6-minute sweep) gets ``--profile smoke --set name=quickstart`` added: the
  documented smoke run, under the name the later examples query; ``run sweeps/embedded_algorithms_sp_skew.yaml``
  (30 minutes) likewise, for ``results compare``;
- ``trial`` examples get ``--pretrain-epochs 2 --train-limit 16 --test-limit 16`` added (pretraining 60 epochs
  takes minutes);
- ``dashboard`` examples get ``--port FREE`` added (8080 may be taken on a shared machine) and run until their page
  answers, then are stopped: a server never exits on its own.

Everything else runs as written, in the order run, resume, status, results, trial, dashboard, submit, jobs, logs.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.orchestrator import job_status

from ..workers.test_data import _write_cifar10, _write_cifar100
from .conftest import answers, free_port

REPO = Path(__file__).resolve().parents[2]
ORDER = ("run", "resume", "status", "results", "trial", "dashboard", "submit", "jobs", "logs")
EXAMPLE_SECONDS = 900
SERVER_START_SECONDS = 120
ADDED = {
    ("run", "sweeps/quickstart.yaml"): ["--profile", "smoke", "--set", "name=quickstart"],
    ("run", "sweeps/embedded_algorithms_sp_skew.yaml"): [
        "--profile",
        "smoke",
        "--set",
        "name=embedded_algorithms_sp_skew",
    ],
    ("trial",): ["--pretrain-epochs", "2", "--train-limit", "16", "--test-limit", "16"],
}


def _commands(
    group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()
) -> dict[tuple[str, ...], click.Command]:
    found: dict[tuple[str, ...], click.Command] = {prefix: group}
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        if isinstance(command, click.Group):
            found.update(_commands(command, ctx, (*prefix, name)))
        else:
            found[(*prefix, name)] = command
    return found


def examples() -> list[tuple[tuple[str, ...], list[str]]]:
    """(command path, the example's arguments after 'analog-sweep') for every example of every command."""
    found = []
    for path, command in _commands(cli, click.Context(cli)).items():
        lines = (command.help or "").splitlines()
        starts = [i for i, line in enumerate(lines) if re.fullmatch(r"\s*Examples?:\s*", line)]
        for start in starts:
            for line in lines[start + 1 :]:
                if not line.strip().startswith("analog-sweep "):
                    break
                found.append((path, shlex.split(line.strip())[1:]))
    return found


EXAMPLES = examples()


def test_every_command_has_an_example_and_every_example_parses():
    paths = {path for path, _ in EXAMPLES}
    assert paths == set(_commands(cli, click.Context(cli))), "a command without an example"
    for _path, args in EXAMPLES:
        ctx = click.Context(cli)
        command: click.Command = cli
        rest = list(args)
        while isinstance(command, click.Group) and rest:
            command = command.get_command(ctx, rest.pop(0))
        command.make_context("analog-sweep", rest)  # raises on an unknown option or a bad value


def _order(item: tuple[tuple[str, ...], list[str]]) -> int:
    path, _ = item
    return ORDER.index(path[0]) if path and path[0] in ORDER else len(ORDER)


def _added(args: list[str]) -> list[str]:
    for key, extra in ADDED.items():
        if tuple(args[: len(key)]) == key and not (
            key == ("run", "sweeps/quickstart.yaml") and len(args) > 2 and args[2] == "--dry-run"
        ):
            return extra
    return []


@pytest.mark.slow
def test_every_help_example_runs(ray_head, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sweeps").symlink_to(REPO / "sweeps")
    data = tmp_path / "cifar"
    _write_cifar10(data)
    _write_cifar100(data)
    env = dict(
        os.environ,
        ANALOG_SWEEP_STORE=f"sqlite:///{tmp_path / 'results.db'}",
        ANALOG_SWEEP_STORAGE=str(tmp_path / "sweep-store"),
        ANALOG_SWEEP_DATA=str(data),
    )
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env["RAY_ADDRESS"] = None  # unset while an example runs: --address is given where one is needed
    head = ray_head.address.removeprefix("http://")
    job_id = None
    ran = []
    for path, args in sorted(EXAMPLES, key=_order):
        args = [arg.replace("HEAD:8265", head) for arg in args]
        if "JOB_ID" in args:
            assert job_id is not None, "a logs example before any submit example"
            args = [job_id if arg == "JOB_ID" else arg for arg in args]
        args += _added(args)
        if path[:1] == ("dashboard",):  # a server: in its own process, stopped once it answers
            command = [sys.executable, "-m", "analog_sweep", *args, "--port", str(port := free_port())]
            _serve_until_it_answers(command, port, env, tmp_path)
            ran.append(args)
            continue
        started = time.monotonic()
        result = CliRunner(env=env).invoke(cli, args)
        assert result.exit_code == 0, (
            f"analog-sweep {shlex.join(args)} exited {result.exit_code}:\n{result.output[-3000:]}"
        )
        print(f"ok {time.monotonic() - started:5.0f} s  analog-sweep {shlex.join(args)}")
        if path[:1] == ("submit",):
            job_id = re.search(r"analog-sweep logs (\S+) ", result.stderr).group(1)
            _wait_for(ray_head.address, job_id)
        ran.append(args)
    assert len(ran) == len(EXAMPLES)


def _wait_for(address: str, job: str) -> None:
    deadline = time.monotonic() + EXAMPLE_SECONDS
    while (status := job_status(address, job)) not in ("SUCCEEDED", "FAILED", "STOPPED"):
        assert time.monotonic() < deadline, f"job {job} still {status}"
        time.sleep(1)
    assert status == "SUCCEEDED", f"job {job} ended {status}"


def _serve_until_it_answers(command: list[str], port: int, env: dict[str, str], cwd: Path) -> None:
    env = {key: value for key, value in env.items() if value is not None}
    server = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while not answers(f"http://127.0.0.1:{port}/dashboard"):
            assert server.poll() is None, f"{shlex.join(command)} exited {server.returncode}: {server.stderr.read()}"
            assert time.monotonic() < deadline, f"{shlex.join(command)} did not answer"
            time.sleep(0.5)
        print(f"ok serving  {shlex.join(command[3:])}")
    finally:
        server.terminate()
        server.wait(timeout=30)
