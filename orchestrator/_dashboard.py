"""A live, read-only view of a sweep's learning-rate searches in optuna-dashboard.

Every point of a sweep has its own Optuna study in the sweep's journal, ``<storage>/<sweep>/optuna.journal``
(``orchestrator._search``), named by the point's key (a content hash, the same on every run and resume) and holding the
point's label and its objective's name (``POINT_LABEL``, ``study.metric_names``). optuna-dashboard lists studies by
name only, so the dashboard shows each one as ``LABEL [KEY]`` (``shown_name``): the list reads as the sweep's points,
its search box finds them by label, and the key still says which study it is. Studies of a journal written without
these attributes take the label and the objective's name from the results store (``fallback_labels``,
``selected_on``).

The dashboard reads the journal as it grows, so a running sweep shows its trials as they end. It is read-only twice
over: the journal is opened through a backend that cannot append (and does not create the file), and every HTTP request
other than GET or HEAD is refused with 405, so nothing in the browser (notes, deleting a study, telling a trial) can
change the search a driver is running. optuna-dashboard has no read-only mode of its own, so the page it serves gets a
small style sheet (``READ_ONLY_STYLE``) that hides the controls that would only fail (Create, Rename and Delete study,
note editing, Fail Trial) and says on the page that it is read-only.
"""

from __future__ import annotations

import errno
import os
import socket
import socketserver
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.study._frozen import FrozenStudy

from analog_sweep.orchestrator._paths import SweepPaths

READ_METHODS = ("GET", "HEAD")
# The study attribute holding the label of the point a study searches (written by ``orchestrator._search``).
POINT_LABEL = "point_label"
# The name and unit of the studies' objective by the split the sweep chooses on (``selection.split``): the error the
# studies minimise (``orchestrator._search``), in percent.
OBJECTIVE_NAMES = {"test": "test error (%)", "validation": "validation error (%)"}
# Where Optuna keeps a study's metric names (``Study.set_metric_names``); optuna-dashboard titles its axes with them.
METRIC_NAMES_ATTR = "study:metric_names"

# What the page hides: the buttons whose requests the server refuses (optuna-dashboard marks them only by their
# aria-label or their Material icon's data-testid), and a line at the foot of the page that says why. A study's name
# in the list breaks at its space, keeping the point key whole.
READ_ONLY_STYLE = """<style id="analog-sweep-read-only">
button[aria-label="rename study"], button[aria-label="delete study"],
button:has(svg[data-testid="AddBoxIcon"]),
button:has(svg[data-testid="EditIcon"]),
button:has(svg[data-testid="StopCircleIcon"]) { display: none !important; }
.MuiCard-root .MuiTypography-h5 { word-break: normal !important; overflow-wrap: anywhere; font-size: 1.3rem; }
body::after {
  content: "read-only: the sweep's driver writes these studies (analog-sweep dashboard)";
  position: fixed; left: 0; bottom: 0; z-index: 2000; padding: 2px 10px;
  font: 12px sans-serif; color: #555; background: rgba(255, 255, 255, 0.85); border-top-right-radius: 4px;
}
</style>"""


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


def shown_name(study_name: str, label: str | None) -> str:
    """How the dashboard names a study: its point's label first, then the study's own name (the point key)."""
    return f"{label} [{study_name}]" if label else study_name


class LabelledStudies(JournalStorage):
    """The sweep's studies, read-only (``read_only_studies``), each listed under ``shown_name``.

    Only the listing is renamed (optuna-dashboard's study list and study pages); a study looked up by name
    (``get_study_id_from_name``, ``optuna.load_study``) keeps its own. A study without a ``POINT_LABEL`` takes its
    label from ``fallback_labels`` (point key -> label), and one without metric names takes ``objective_name``.

    Args:
        journal: The sweep's Optuna journal.
        fallback_labels: Labels by point key, for studies that do not hold one.
        objective_name: The objective's name and unit, for studies that hold none (``OBJECTIVE_NAMES``).

    Raises:
        FileNotFoundError: If there is no journal.
    """

    def __init__(
        self,
        journal: str | os.PathLike[str],
        fallback_labels: Mapping[str, str] | None = None,
        objective_name: str | None = None,
    ) -> None:
        super().__init__(ReadOnlyJournal(journal))
        self._fallback_labels = dict(fallback_labels or {})
        self._objective_name = objective_name

    def get_all_studies(self) -> list[FrozenStudy]:
        return [self._shown(study) for study in super().get_all_studies()]

    def _shown(self, study: FrozenStudy) -> FrozenStudy:
        user_attrs, system_attrs = dict(study.user_attrs), dict(study.system_attrs)
        label = user_attrs.get(POINT_LABEL) or self._fallback_labels.get(study.study_name)
        if label:
            user_attrs.setdefault(POINT_LABEL, label)
        if self._objective_name and not system_attrs.get(METRIC_NAMES_ATTR):
            system_attrs[METRIC_NAMES_ATTR] = [self._objective_name] * len(study.directions)
        name = shown_name(study.study_name, label)
        return FrozenStudy(name, None, user_attrs, system_attrs, study._study_id, directions=study.directions)


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


def mark_read_only(app: Callable[..., Iterable[bytes]]) -> Callable[..., Iterable[bytes]]:
    """WSGI middleware: the dashboard's HTML page (``/dashboard...``) gets ``READ_ONLY_STYLE`` at the end of its
    head. The page is always sent whole (its conditional-request headers are dropped, so no browser keeps a page
    without the style sheet); every other response passes through untouched."""

    def marked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not environ.get("PATH_INFO", "").startswith("/dashboard"):
            return app(environ, start_response)
        head = environ.get("REQUEST_METHOD", "GET").upper() == "HEAD"  # answered as GET is, without the body
        environ = {k: v for k, v in environ.items() if k not in ("HTTP_IF_MODIFIED_SINCE", "HTTP_IF_NONE_MATCH")}
        environ["REQUEST_METHOD"] = "GET" if head else environ.get("REQUEST_METHOD", "GET")
        answer: dict[str, Any] = {}

        def hold(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer.update(status=status, headers=headers, exc_info=exc_info)
            return lambda data: None  # the app's write(): unused by optuna-dashboard's bottle app

        parts = app(environ, hold)
        try:
            body = b"".join(parts)
        finally:
            if hasattr(parts, "close"):
                parts.close()
        headers = answer["headers"]
        html = any(k.lower() == "content-type" and v.startswith("text/html") for k, v in headers)
        if html and answer["status"].startswith("200") and b"</head>" in body:
            body = body.replace(b"</head>", READ_ONLY_STYLE.encode() + b"\n</head>", 1)
            headers = [(k, v) for k, v in headers if k.lower() not in ("content-length", "etag", "last-modified")]
            headers.append(("Content-Length", str(len(body))))
            headers.append(("Cache-Control", "no-cache"))
        start_response(answer["status"], headers, answer["exc_info"])
        return [b""] if head else [body]

    return marked


def dashboard_app(
    journal: str | os.PathLike[str],
    *,
    fallback_labels: Mapping[str, str] | None = None,
    selected_on: str | None = None,
) -> Callable[..., Iterable[bytes]]:
    """optuna-dashboard's WSGI app on the sweep's journal, read-only, its studies listed by label (``LabelledStudies``).

    Args:
        journal: The sweep's Optuna journal.
        fallback_labels: Labels by point key, for studies that do not hold one (the results store's).
        selected_on: The split the sweep chooses on (``validation`` or ``test``), naming the objective of studies
            that do not name it.

    Raises:
        FileNotFoundError: If there is no journal.
    """
    import optuna_dashboard

    studies = LabelledStudies(journal, fallback_labels, OBJECTIVE_NAMES.get(selected_on or ""))
    return refuse_writes(mark_read_only(optuna_dashboard.wsgi(studies)))


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass


class _ThreadedServer(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = True  # the page loads its parts in parallel


# How many ports above a busy one are tried for a free one to suggest, before any free port the system gives.
NEARBY_PORTS = 20


class PortInUse(OSError):
    """The dashboard's port is taken; the message names it and a port that was free a moment ago."""

    def __init__(self, host: str, port: int, suggestion: int | None) -> None:
        hint = f"; try --port {suggestion} (free now)" if suggestion else "; choose another with --port (0: any free)"
        super().__init__(errno.EADDRINUSE, f"port {port} on {host} is already in use{hint}")

    def __str__(self) -> str:
        return str(self.strerror)


def free_port_near(host: str, port: int) -> int | None:
    """A port the dashboard could listen on at ``host`` now: the first free one of the ``NEARBY_PORTS`` above
    ``port``, else one the system picks; None if none can be bound. Each is tried by binding it as the server binds
    (``SO_REUSEADDR``, as ``http.server`` sets), then released: another program may take it in between."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    for candidate in [*range(port + 1, min(port + NEARBY_PORTS, 65535) + 1), 0]:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((host, candidate))
            except OSError:
                continue
            return probe.getsockname()[1]
    return None


def serve_dashboard(
    journal: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = 8080,
    echo: Callable[[str], None] = print,
    fallback_labels: Mapping[str, str] | None = None,
    selected_on: str | None = None,
) -> None:
    """Serve the read-only dashboard (``dashboard_app``) at http://HOST:PORT until interrupted (``echo`` says where,
    once listening). Raises ``FileNotFoundError`` without a journal, ``PortInUse`` (an ``OSError`` naming a free
    port to use instead) if the port is taken, and ``OSError`` if it cannot listen there otherwise."""
    app = dashboard_app(journal, fallback_labels=fallback_labels, selected_on=selected_on)
    try:
        server = make_server(host, port, app, server_class=_ThreadedServer, handler_class=_QuietHandler)
    except OSError as error:
        if error.errno != errno.EADDRINUSE:
            raise
        raise PortInUse(host, port, free_port_near(host, port)) from None
    with server:
        echo(f"optuna-dashboard (read-only) on http://{host}:{server.server_port}/dashboard  (Ctrl-C stops it)")
        server.serve_forever()
