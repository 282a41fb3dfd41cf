"""A dashboard whose port is taken says which port is busy and suggests one that is free, in one line."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.orchestrator import serve_dashboard, sweep_journal
from analog_sweep.orchestrator._dashboard import NEARBY_PORTS, PortInUse
from analog_sweep.results import open_store


@contextmanager
def held_ports(count: int) -> Iterator[int]:
    """``count`` consecutive ports on 127.0.0.1, each held by a listening socket; yields the first."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            first = probe.getsockname()[1]
        if first + count > 65535:
            continue
        sockets = []
        try:
            for port in range(first, first + count):
                sock = socket.socket()
                sock.bind(("127.0.0.1", port))
                sock.listen()
                sockets.append(sock)
        except OSError:
            for sock in sockets:
                sock.close()
            continue
        try:
            yield first
        finally:
            for sock in sockets:
                sock.close()
        return
    pytest.skip("no run of free consecutive ports on this machine")


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _journal(tmp_path):
    experiment = tmp_path / "sweep"
    journal = sweep_journal(experiment)
    journal.parent.mkdir(parents=True)
    journal.touch()
    return experiment, journal


def test_a_busy_port_is_named_with_the_next_free_one(tmp_path):
    _, journal = _journal(tmp_path)
    with held_ports(3) as busy:  # the port and the two above it
        with pytest.raises(PortInUse) as caught:
            serve_dashboard(journal, host="127.0.0.1", port=busy, echo=lambda line: None)
        pattern = rf"port {busy} on 127\.0\.0\.1 is already in use; try --port (\d+) \(free now\)"
        suggested = int(re.fullmatch(pattern, str(caught.value)).group(1))
        assert _bindable(suggested)  # really free
        first_free = next(port for port in range(busy + 3, busy + NEARBY_PORTS + 1) if _bindable(port))
        assert suggested == first_free  # the nearest above the busy ones
    assert isinstance(caught.value, OSError)


def test_with_every_nearby_port_busy_the_system_picks_one(tmp_path):
    _, journal = _journal(tmp_path)
    with held_ports(NEARBY_PORTS + 1) as busy:
        with pytest.raises(PortInUse) as caught:
            serve_dashboard(journal, host="127.0.0.1", port=busy, echo=lambda line: None)
        suggested = int(re.search(r"try --port (\d+) \(free now\)", str(caught.value)).group(1))
        assert not busy <= suggested <= busy + NEARBY_PORTS and _bindable(suggested)


def test_the_command_says_it_in_one_line_and_exits_1(tmp_path):
    experiment, _ = _journal(tmp_path)
    url = f"sqlite:///{tmp_path / 'results.db'}"
    with open_store(url) as store:
        store.record_sweep("s", {"name": "s"}, "hash", "finished", str(experiment))
    with held_ports(1) as busy:
        result = CliRunner().invoke(cli, ["dashboard", "s", "--store", url, "--port", str(busy)])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.exit_code == 1 and len(lines) == 1, result.output
    assert re.fullmatch(rf"Error: port {busy} on 127\.0\.0\.1 is already in use; try --port \d+ \(free now\)", lines[0])
    assert "Traceback" not in result.output and "Errno" not in result.output
