"""A live, read-only view of a sweep's learning-rate searches in optuna-dashboard.

Every point of a sweep has its own Optuna study (named by the point key) in the sweep's journal,
``<storage>/<sweep>/optuna.journal`` (``orchestrator._search``). The dashboard reads that file as it grows, so a
running sweep shows its trials as they end. It is read-only twice over: the journal is opened through a backend that
cannot append (and does not create the file), and every HTTP request other than GET or HEAD is refused with 405, so
nothing in the browser (notes, deleting a study, telling a trial) can change the search a driver is running.
"""

from __future__ import annotations

import os
import socketserver
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analog_sweep.orchestrator._paths import SweepPaths

READ_METHODS = ("GET", "HEAD")


class ReadOnlyJournal(JournalFileBackend):
    """An Optuna journal file opened for reading only: it must exist, and ``append_logs`` raises ``PermissionError``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if not Path(path).is_file():
            raise FileNotFoundError(f"no Optuna journal at {path}")
        self._file_path = os.fspath(path)
        self._log_number_offset = {0: 0}

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        raise PermissionError(f"{self._file_path} is open read-only (the sweep's driver is its only writer)")


def sweep_journal(experiment_path: str | os.PathLike[str] | None) -> Path | None:
    """The Optuna journal of the sweep whose folder (the store's ``experiment_path``) is given; None without one."""
    return SweepPaths(Path(experiment_path)).journal if experiment_path else None


def read_only_studies(journal: str | os.PathLike[str]) -> JournalStorage:
    """The sweep's studies, read-only, re-read as the file grows. Raises ``FileNotFoundError`` if there is none."""
    return JournalStorage(ReadOnlyJournal(journal))


def refuse_writes(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: requests other than GET and HEAD get 405 and never reach ``app``."""

    def guarded(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD", "GET").upper() not in READ_METHODS:
            body = b"read-only: analog-sweep dashboard shows the studies; the sweep's driver writes them\n"
            headers = [
                ("Content-Type", "text/plain"),
                ("Allow", ", ".join(READ_METHODS)),
                ("Content-Length", str(len(body))),
            ]
            start_response("405 Method Not Allowed", headers)
            return [body]
        return app(environ, start_response)

    return guarded


def dashboard_app(journal: str | os.PathLike[str]) -> Callable[..., Iterable[bytes]]:
    """optuna-dashboard's WSGI app on the sweep's journal, read-only."""
    import optuna_dashboard

    return refuse_writes(optuna_dashboard.wsgi(read_only_studies(journal)))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class _ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # the page loads its parts in parallel


def serve_dashboard(
    journal: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve the read-only dashboard at http://HOST:PORT until interrupted (``echo`` says where, once listening).
    Raises ``FileNotFoundError`` without a journal and ``OSError`` if the port is taken."""
    app = dashboard_app(journal)
    with make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler) as server:
        echo(f"optuna-dashboard (read-only) on http://{host}:{server.server_port}/dashboard  (Ctrl-C stops it)")
        server.serve_forever()
