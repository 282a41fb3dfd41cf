"""A real Ray head with its dashboard (the jobs server) on 127.0.0.1, for the submit and help-example tests.

Started with ``ray start --head --block`` in a session of its own, every port chosen free and a temporary folder of
its own, so it never meets another Ray on this machine. ``ray stop`` has no way to stop one head (it stops every
Ray process of the machine, other people's too), so the head is stopped by its session: SIGTERM to every process
whose session id is the head's, then SIGKILL to any left.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import venv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

HEAD_START_SECONDS = 240  # measured 15-110 s on the shared 2-core machine


def free_port() -> int:
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports (each socket stays bound until all are chosen, so none is given twice)."""
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def answers(url: str, timeout: float = 3.0) -> bool:
    """Whether an HTTP server answers at ``url`` (any status: a Ray head with tokens answers 401 without one)."""
    try:
        urllib.request.urlopen(url, timeout=timeout).close()
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False
    return True


def session_processes(session: int) -> list[int]:
    """The ids of the live processes in session ``session``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            found.append(int(entry))
    return found


def stop_session(session: int, grace: float = 20.0) -> None:
    """SIGTERM every process of ``session``, wait up to ``grace`` seconds, SIGKILL what is left."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_processes(session):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while session_processes(session) and time.monotonic() < deadline:
            time.sleep(0.5)
        if not session_processes(session):
            return


@dataclass(frozen=True)
class RayHead:
    address: str  # the jobs server (dashboard), http://127.0.0.1:PORT
    temp_dir: Path
    log: Path
    store_url: str  # the cluster's $ANALOG_SWEEP_STORE, as the KubeRay head sets it (a job without --store uses it)
    storage_path: Path  # the cluster's $ANALOG_SWEEP_STORAGE


@contextlib.contextmanager
def start_ray_head(python_dir: Path) -> Iterator[RayHead]:
    """A Ray head started from this environment's ``ray``, with ``python_dir`` first on its PATH: a job's entrypoint
    runs the ``python`` found there."""
    temp_dir = Path(tempfile.mkdtemp(prefix="rayhead-", dir="/tmp"))  # short: Ray's socket paths have a limit
    options = (
        "--port",
        "--dashboard-port",
        "--ray-client-server-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
        "--node-manager-port",
        "--object-manager-port",
    )
    ports = dict(zip(options, free_ports(len(options)), strict=True))
    dashboard_port = ports["--dashboard-port"]
    args = [
        str(Path(sys.executable).parent / "ray"),
        "start",
        "--head",
        "--block",
        "--num-cpus",
        "2",
        "--dashboard-host",
        "127.0.0.1",
        "--include-dashboard",
        "true",
        "--temp-dir",
        str(temp_dir),
    ]
    for option, port in ports.items():
        args += [option, str(port)]
    env = dict(os.environ)
    env["PATH"] = f"{python_dir}{os.pathsep}{env.get('PATH', '')}"
    store_url, storage_path = f"sqlite:///{temp_dir / 'results.db'}", temp_dir / "sweep-store"
    env.update(ANALOG_SWEEP_STORE=store_url, ANALOG_SWEEP_STORAGE=str(storage_path))
    log = temp_dir / "head.log"
    with log.open("w") as out:
        head = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard_port}"
    try:
        deadline = time.monotonic() + HEAD_START_SECONDS
        while not answers(f"{address}/api/version"):
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the Ray head did not start (exit {head.poll()}): {log.read_text()[-2000:]}")
            time.sleep(1)
        yield RayHead(address, temp_dir, log, store_url, storage_path)
    finally:
        stop_session(head.pid)
        head.wait(timeout=30)
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_head() -> Iterator[RayHead]:
    """A head whose PATH finds this interpreter first, which has the project's dependencies."""
    with start_ray_head(Path(sys.executable).parent) as head:
        yield head


@pytest.fixture
def bare_ray_head(tmp_path: Path) -> Iterator[RayHead]:
    """A head started from this environment's ``ray`` without activating it, on a machine whose ``python`` is a bare
    interpreter (a new virtual environment with nothing installed): what a head started as ``.venv/bin/ray start``
    on a plain machine gives a job."""
    bare = tmp_path / "bare"
    venv.create(bare, with_pip=False)
    with start_ray_head(bare / "bin") as head:
        yield head
