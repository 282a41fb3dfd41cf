"""A job's entrypoint, run by ``/bin/sh`` as Ray's job supervisor runs it: it checks the ``python`` on the head's
PATH before running the sweep, and says in one line what that interpreter lacks and how to start the head."""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

from analog_sweep.orchestrator._jobs import JOB_LINE, _entrypoint, required_distributions


def _run(path: str, cwd: Path) -> subprocess.CompletedProcess:
    # The sweep's own command is replaced by 'echo': what is tested is the check in front of it.
    entrypoint = _entrypoint(["run", "spec.yaml"]).replace("exec python -m analog_sweep run spec.yaml", "echo SWEEP")
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/tmp")}
    return subprocess.run(["/bin/sh", "-c", entrypoint], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_the_projects_own_python_passes_and_is_named(tmp_path):
    result = _run(f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin", tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{JOB_LINE} python {sys.executable} (Python {sys.version.split()[0]})",
        "SWEEP",
    ]


def test_a_bare_python_is_refused_in_one_line_naming_what_it_lacks_and_the_fix(tmp_path):
    venv.create(tmp_path / "bare", with_pip=False)
    (tmp_path / "ray").mkdir()  # a folder named like a module (Ray's /tmp/ray) is not the module
    result = _run(f"{tmp_path / 'bare' / 'bin'}{os.pathsep}/usr/bin:/bin", tmp_path)
    assert result.returncode == 127 and "SWEEP" not in result.stdout
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{JOB_LINE} the Ray head's python ({tmp_path / 'bare' / 'bin' / 'python'}) has no ")
    for name in ("ray", "torch", "aihwkit", "click", "pyyaml"):  # every run-time requirement, not a few
        assert name in line
    assert "ray start --head" in line


def test_no_python_at_all_is_one_line_too(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = subprocess.run(
        ["/bin/sh", "-c", _entrypoint(["run", "spec.yaml"])],
        env={"PATH": str(empty)},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 127
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"{JOB_LINE} no python on the Ray head's PATH") and "ray start --head" in line


def test_the_check_covers_the_projects_runtime_requirements():
    names = required_distributions()
    assert {"ray", "torch", "aihwkit", "click", "sqlalchemy"} <= set(names)
    assert "pytest" not in names  # a test extra, not needed to run a sweep


def test_quoting_survives_a_spec_path_with_spaces_and_quotes(tmp_path):
    entrypoint = _entrypoint(["run", "my spec's.yaml"]).replace("exec python -m analog_sweep", "exec printf '%s\\n'")
    env = {"PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"}
    result = subprocess.run(["/bin/sh", "-c", entrypoint], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert result.stdout.splitlines()[1:] == ["run", "my spec's.yaml"]


def test_every_option_a_job_passes_is_one_that_run_and_resume_take() -> None:
    # The job's command line is assembled here and parsed on the cluster: an option the commands do not take would
    # fail the job only there.
    from analog_sweep.cli.run import resume, run
    from analog_sweep.orchestrator._jobs import _common_args

    for command, storage_path in ((run, "/shared/sweeps"), (resume, None)):  # a resume's path is in the store
        args = _common_args(storage_path, "sqlite:////shared/results.db", True, True)
        assert "--allow-mixed-versions" in args and "--cpu-fallback" in args
        taken = {name for param in command.params for name in param.opts}
        assert {arg for arg in args if arg.startswith("--")} <= taken, command.name
