"""Sweeps as Ray Jobs: submit ``run`` or ``resume`` to a cluster's jobs server, list them, follow their logs.

The job's runtime environment carries the project (its five packages as ``py_modules``, so the cluster runs the
submitter's code) and, for ``run``, the spec file (``working_dir``); the job's entrypoint is the same command line
as a local run, with ``--address auto`` (inside a job, Ray's ``RAY_ADDRESS`` names the cluster). The spec is
validated here first, so a bad spec is refused before anything is sent. With ``--address``, the pretrained-model
cache defaults to the storage path's ``cache`` folder, which every node shares (``_paths.pretrain_cache_dir``; the
cluster's ``$ANALOG_SWEEP_CACHE`` chooses another). Uses Ray's Jobs SDK
(``ray.job_submission.JobSubmissionClient``), which talks to the dashboard's HTTP port (8265 by default).

Ray runs a job's entrypoint with the shell of the head, so ``python`` is the first one on the PATH the head was
started with, not the interpreter running Ray (a head started as ``.venv/bin/ray start --head`` without activating
the environment runs the system's). The entrypoint therefore checks that interpreter first: it prints one line
naming it, or one line naming what it lacks and how to start the head, and exits 127; ``wait_for_start`` reads
that line back for the submitter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
import shlex
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from analog_sweep.orchestrator._errors import JobInputError, JobsError
from analog_sweep.sweeps import load_spec

# The package a job needs, shipped as a py_module so the cluster runs the submitter's code; its subpackages live in
# folders of their own in a source checkout (pyproject's package-dir mapping), so the job gets them put together.
PROJECT_PACKAGE = "analog_sweep"
PROJECT_SUBPACKAGES = ("cli", "orchestrator", "workers", "results", "sweeps")
JOB_SPEC_FILE = "spec.yaml"
METADATA_KEY = "analog_sweep"  # metadata[METADATA_KEY] = "run" or "resume": the jobs this tool submitted
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")
# The project's distribution: its metadata lists what the head's python must have before 'python -m analog_sweep'
# can run (the project's own packages come with the job).
DISTRIBUTION = "analog-sweep"
JOB_LINE = "analog-sweep job:"  # the entrypoint's first line: the interpreter it runs, or why it cannot
START_FIX = (
    "start the Ray head with the project's environment first on its PATH "
    "(PATH=/path/to/.venv/bin:$PATH ray start --head ..., or activate the environment before 'ray start')"
)


def required_distributions() -> tuple[str, ...]:
    """The distributions the project needs at run time, by name (its metadata's requirements without extras)."""
    from importlib.metadata import PackageNotFoundError, requires

    try:
        requirements = requires(DISTRIBUTION) or []
    except PackageNotFoundError:  # run from a checkout that was never installed: what a job cannot do without
        requirements = ["ray", "optuna", "torch", "aihwkit", "timm", "sqlalchemy"]
    names = {re.match(r"[A-Za-z0-9._-]+", r).group(0) for r in requirements if "extra ==" not in r}
    return tuple(sorted(names, key=str.lower))


def _check_python(distributions: Iterable[str]) -> str:
    """One line of Python for the head: exit 1 with one line naming what its python lacks, or print the interpreter
    it found. Distributions are matched by their normalised names (PEP 503), as pip does."""
    missing = f"{JOB_LINE} the Ray head's python ({{}}) has no {{}}: {START_FIX}"
    return (
        "import importlib.metadata as m, re, sys; n = lambda s: re.sub(r'[-_.]+', '-', s).lower(); "
        "have = {n(d.metadata['Name'] or '') for d in m.distributions()}; "
        f"missing = [d for d in {tuple(distributions)!r} if n(d) not in have]; "
        f"sys.exit({missing!r}.format(sys.executable, ', '.join(missing))) if missing else "
        f"print({JOB_LINE!r}, 'python', sys.executable, '(Python ' + sys.version.split()[0] + ')', flush=True)"
    )


# The SDK logs each package it uploads and each closed log stream at INFO: the commands say what happened instead.
_CHATTY_LOGGERS = (
    "ray._private.runtime_env.packaging",
    "ray.dashboard.modules.dashboard_sdk",
    "ray.dashboard.modules.job.sdk",
)


@dataclass(frozen=True)
class SubmittedJob:
    """A submitted sweep job: its id (``submission_id``), the sweep's name, ``run`` or ``resume``, the command."""

    job_id: str
    sweep: str
    command: str
    entrypoint: str


def _client(address: str) -> Any:
    """A Jobs SDK client. As ``ray.init`` does when it joins a cluster, a Ray token found on this machine
    (``$RAY_AUTH_TOKEN``, ``$RAY_AUTH_TOKEN_PATH`` or ``~/.ray/auth_token``) is sent unless ``$RAY_AUTH_MODE`` says
    otherwise: Ray 2.5x clusters ask for one by default."""
    from ray.job_submission import JobSubmissionClient

    for name in _CHATTY_LOGGERS:  # after the import: the SDK's modules set INFO when they load
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )

        quiet = logging.getLogger("ray._private.authentication.authentication_token_setup")
        level = quiet.level
        quiet.setLevel(logging.ERROR)  # its warning is advice for cluster operators, not for a submitter
        try:
            maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        finally:
            quiet.setLevel(level)
    except ImportError:  # an older Ray without token authentication
        pass
    try:
        return JobSubmissionClient(address)
    except Exception as exc:  # noqa: BLE001 - connection, authentication, a bad address: one line each
        raise JobsError(f"cannot reach Ray's jobs server at {address}: {_line(exc)}") from None


def _line(exc: BaseException) -> str:
    """An error as one line: the first line of the message (Ray's come with paragraphs of advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]


def check_cluster_paths(storage_path: str | None, store_url: str | None) -> None:
    """Refuse settings that would go wrong on a cluster: a relative storage path or SQLite file (they would land in
    the job's temporary folder and vanish with it), and a store URL with a password (a job's command line and
    settings are readable by anyone who can see the dashboard). Raises ``JobInputError``."""
    if storage_path is not None and not os.path.isabs(storage_path):
        raise JobInputError(f"--storage-path {storage_path!r}: give an absolute path on a volume every node shares")
    if store_url is None:
        return
    try:
        url = sa.make_url(store_url)
    except sa.exc.ArgumentError:
        raise JobInputError(f"--store: not a SQLAlchemy URL: {store_url!r}") from None
    if url.password is not None:
        raise JobInputError(
            f"--store {url.render_as_string(hide_password=True)}: a job's settings are readable on the cluster's "
            "dashboard, so no password here: put it in the cluster's environment (ANALOG_SWEEP_STORE from a "
            "Secret, PGPASSWORD, or ~/.pgpass on the head)"
        )
    if url.get_backend_name() == "sqlite" and not os.path.isabs(url.database or ""):
        raise JobInputError(f"--store {store_url}: give an absolute SQLite path on a shared volume, or PostgreSQL")


def _entrypoint(args: Iterable[str]) -> str:
    """The job's shell command: check the head's ``python`` (one line either way), then run the CLI with it."""
    no_python = shlex.quote(f"{JOB_LINE} no python on the Ray head's PATH: {START_FIX}")
    command = " ".join(shlex.quote(arg) for arg in ["python", "-m", "analog_sweep", *args])
    return (
        f"command -v python >/dev/null 2>&1 || {{ echo {no_python} >&2; exit 127; }}; "
        f"python -c {shlex.quote(_check_python(required_distributions()))} || exit 127; exec {command}"
    )


def _common_args(
    storage_path: str | None, store_url: str | None, cpu_fallback: bool, allow_mixed_versions: bool = False
) -> list[str]:
    args = ["--address", "auto"]
    if storage_path is not None:
        args += ["--storage-path", storage_path]
    if store_url is not None:
        args += ["--store", store_url]
    if cpu_fallback:
        args.append("--cpu-fallback")
    if allow_mixed_versions:
        args.append("--allow-mixed-versions")
    return args


def _assemble_package(into: Path) -> Path:
    """Copy the project's package, with each subpackage where Python imports it from, into ``into``.

    Returns the assembled package's folder (``into / "analog_sweep"``), as installed or from a source checkout alike.
    """
    import importlib
    import shutil

    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    target = into / PROJECT_PACKAGE
    shutil.copytree(list(importlib.import_module(PROJECT_PACKAGE).__path__)[0], target, ignore=ignore)
    for sub in PROJECT_SUBPACKAGES:
        source = Path(list(importlib.import_module(f"{PROJECT_PACKAGE}.{sub}").__path__)[0])
        if not (target / sub).exists():
            shutil.copytree(source, target / sub, ignore=ignore)
    return target


def _runtime_env(package: Path, working_dir: str | None) -> dict[str, Any]:
    env: dict[str, Any] = {
        "py_modules": [str(package)],
        "excludes": ["__pycache__", "*.pyc"],
        "env_vars": {"PYTHONUNBUFFERED": "1"},
    }
    if working_dir is not None:
        env["working_dir"] = working_dir
    return env


def _job_id(sweep: str) -> str:
    return f"{sweep}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def _submit(address: str, sweep: str, command: str, entrypoint: str, working_dir: str | None) -> SubmittedJob:
    import tempfile

    client = _client(address)
    job_id = _job_id(sweep)
    try:
        with tempfile.TemporaryDirectory(prefix="analog-sweep-job-") as staging:
            client.submit_job(  # uploads the runtime environment before it returns
                entrypoint=entrypoint,
                submission_id=job_id,
                runtime_env=_runtime_env(_assemble_package(Path(staging)), working_dir),
                metadata={METADATA_KEY: command, "sweep": sweep},
            )
    except Exception as exc:  # noqa: BLE001 - whatever the SDK raises, one line
        raise JobsError(f"the jobs server at {address} refused the job: {_line(exc)}") from None
    return SubmittedJob(job_id, sweep, command, entrypoint)


def submit_sweep(
    address: str,
    spec_file: str | os.PathLike[str],
    *,
    overrides: Iterable[str] = (),
    profile: str | None = None,
    storage_path: str | None = None,
    store_url: str | None = None,
    cpu_fallback: bool = False,
    allow_mixed_versions: bool = False,
) -> SubmittedJob:
    """Validate the spec here (``SpecError`` on a bad one), then submit ``analog-sweep run`` of it as a Ray Job.

    The job runs ``run spec.yaml`` with the same ``--set`` overrides and ``--profile``, so the store records them as
    given. ``storage_path``/``store_url`` None: the cluster's ``$ANALOG_SWEEP_STORAGE``/``$ANALOG_SWEEP_STORE``.
    Raises ``JobInputError`` (see ``check_cluster_paths``) and ``JobsError`` (server unreachable, job refused)."""
    overrides = tuple(overrides)
    spec = load_spec(spec_file, overrides, profile=profile)
    check_cluster_paths(storage_path, store_url)
    args = ["run", JOB_SPEC_FILE, *(arg for o in overrides for arg in ("--set", o))]
    if profile is not None:
        args += ["--profile", profile]
    args += _common_args(storage_path, store_url, cpu_fallback, allow_mixed_versions)
    folder = tempfile.mkdtemp(prefix="analog-sweep-job-")
    try:
        shutil.copyfile(spec_file, Path(folder) / JOB_SPEC_FILE)
        return _submit(address, spec.name, "run", _entrypoint(args), folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def submit_resume(
    address: str,
    sweep: str,
    *,
    store_url: str | None = None,
    cpu_fallback: bool = False,
    allow_mixed_versions: bool = False,
) -> SubmittedJob:
    """Submit ``analog-sweep resume SWEEP`` as a Ray Job (a sweep whose job was stopped or whose cluster died).
    The sweep's storage path is the one its store records."""
    check_cluster_paths(None, store_url)
    args = ["resume", sweep, *_common_args(None, store_url, cpu_fallback, allow_mixed_versions)]
    return _submit(address, sweep, "resume", _entrypoint(args), None)


def _when(milliseconds: int | None) -> datetime | None:
    if not milliseconds:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=UTC).replace(microsecond=0)


def list_sweep_jobs(address: str) -> list[dict[str, Any]]:
    """The sweep jobs on the cluster (those this tool submitted), oldest first: ``job``, ``sweep``, ``command``,
    ``status`` (Ray's: PENDING, RUNNING, SUCCEEDED, FAILED, STOPPED), ``started``, ``ended`` (UTC), ``message``."""
    client = _client(address)
    try:
        jobs = client.list_jobs()
    except Exception as exc:  # noqa: BLE001
        raise JobsError(f"cannot list the jobs at {address}: {_line(exc)}") from None
    rows = []
    for job in jobs:
        metadata = job.metadata or {}
        if METADATA_KEY not in metadata:
            continue
        rows.append(
            {
                "job": job.submission_id,
                "sweep": metadata.get("sweep"),
                "command": metadata[METADATA_KEY],
                "status": str(job.status.value if hasattr(job.status, "value") else job.status),
                "started": _when(job.start_time),
                "ended": _when(job.end_time),
                "message": " ".join((job.message or "").split())[:200],
            }
        )
    rows.sort(key=lambda row: (row["started"] is None, row["started"] or datetime.min.replace(tzinfo=UTC)))
    return rows


def wait_for_start(address: str, job_id: str, timeout: float = 60.0, poll: float = 1.0) -> str | None:
    """Wait until a submitted job's entrypoint has found a usable ``python`` on the head, up to ``timeout`` seconds.

    Returns what that line says after its prefix (``python PATH (Python X.Y.Z)``), or None if the job has not got that
    far by then (Ray is still setting up its runtime environment). Raises ``JobsError`` with the job's own one-line
    reason if
    the head's ``python`` lacks the project's dependencies, or if the job ended before that line."""
    client = _client(address)
    deadline = time.monotonic() + timeout
    while True:
        status = _status(client, address, job_id)
        try:
            logs = client.get_job_logs(job_id) if status != "PENDING" else ""
        except Exception:  # noqa: BLE001 - logs not there yet: poll again
            logs = ""
        lines = [line.strip() for line in logs.splitlines() if line.strip().startswith(JOB_LINE)]
        # The check's own line says it all, whatever Ray's status says yet (it marks the job FAILED a moment later).
        failure = next((line for line in lines if not line.startswith(f"{JOB_LINE} python ")), None)
        if failure is not None:
            raise JobsError(f"job {job_id} cannot run on the cluster: {failure}")
        if lines:
            return lines[0].removeprefix(JOB_LINE).strip()
        if status in TERMINAL:
            if status == "SUCCEEDED":
                return None
            raise JobsError(f"job {job_id} {status.lower()} as it started: {_last_log_line(logs, client, job_id)}")
        if time.monotonic() > deadline:
            return None
        time.sleep(poll)


def _last_log_line(logs: str, client: Any, job_id: str) -> str:
    """The job's last line of output (Ray's first log line only repeats the entrypoint), else Ray's message."""
    lines = [
        line.strip() for line in logs.splitlines() if line.strip() and not line.startswith("Running entrypoint for job")
    ]
    if lines:
        return lines[-1][:300]
    info = client.get_job_info(job_id)
    return " ".join((getattr(info, "message", None) or "no output").split())[:300]


def job_status(address: str, job_id: str) -> str:
    """A job's status (Ray's ``JobStatus`` value); an unknown id raises ``JobInputError``."""
    client = _client(address)
    return _status(client, address, job_id)


def _status(client: Any, address: str, job_id: str) -> str:
    try:
        status = client.get_job_status(job_id)
    except Exception as exc:  # noqa: BLE001
        if "does not exist" in str(exc) or "404" in str(exc):
            raise JobInputError(f"no job {job_id!r} at {address}; 'analog-sweep jobs' lists them") from None
        raise JobsError(f"cannot read job {job_id} at {address}: {_line(exc)}") from None
    return str(status.value if hasattr(status, "value") else status)


def job_logs(address: str, job_id: str, echo: Callable[[str], None], *, follow: bool = True) -> str:
    """Print a job's logs with ``echo`` (chunks of lines, as they come with ``follow`` until the job ends, else what
    there is now); return the job's status after. An unknown id raises ``JobInputError``."""
    client = _client(address)
    status = _status(client, address, job_id)

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            echo(chunk)

    try:
        if not follow or status in TERMINAL:
            echo(client.get_job_logs(job_id))
        else:
            asyncio.run(tail())
    except Exception as exc:  # noqa: BLE001
        raise JobsError(f"cannot read the logs of job {job_id} at {address}: {_line(exc)}") from None
    return _status(client, address, job_id)
