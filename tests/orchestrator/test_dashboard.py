"""The dashboard's studies are read-only: nothing a browser sends can change the journal a driver is writing."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from pathlib import Path
from wsgiref.simple_server import make_server

import optuna
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analog_sweep.orchestrator import dashboard_app, read_only_studies


def _journal(path: Path) -> Path:
    """A journal like a sweep's: two studies named by point key, three finished trials each."""
    storage = JournalStorage(JournalFileBackend(str(path)))
    for key in ("point-a", "point-b"):
        study = optuna.create_study(study_name=key, storage=storage, direction="minimize")
        for lr in (0.01, 0.05, 0.1):
            study.enqueue_trial({"lr": lr})
            study.optimize(lambda trial: 100 * abs(trial.suggest_float("lr", 1e-3, 0.3, log=True) - 0.05), n_trials=1)
    return path


def test_read_only_studies_read_and_never_write(tmp_path):
    journal = _journal(tmp_path / "optuna.journal")
    before = journal.read_bytes()
    storage = read_only_studies(journal)
    assert sorted(s.study_name for s in storage.get_all_studies()) == ["point-a", "point-b"]
    with pytest.raises(PermissionError):
        optuna.create_study(study_name="new", storage=storage)
    assert journal.read_bytes() == before


def test_a_missing_journal_is_not_created(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_only_studies(tmp_path / "optuna.journal")
    assert not (tmp_path / "optuna.journal").exists()


def test_the_app_serves_pages_and_refuses_every_write(tmp_path):
    journal = _journal(tmp_path / "optuna.journal")
    before = journal.read_bytes()
    server = make_server("127.0.0.1", 0, dashboard_app(journal))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with urllib.request.urlopen(f"{base}/api/studies", timeout=30) as response:
            names = sorted(s["study_name"] for s in json.load(response)["study_summaries"])
        assert names == ["point-a", "point-b"]
        with urllib.request.urlopen(f"{base}/dashboard", timeout=30) as response:
            assert response.status == 200 and b"<html" in response.read().lower()
        for method, path in [
            ("DELETE", "/api/studies/0"),
            ("POST", "/api/studies"),
            ("PUT", "/api/studies/0/note"),
            ("POST", "/api/studies/0/trials/0/tell"),
        ]:
            request = urllib.request.Request(f"{base}{path}", data=b"{}", method=method)
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(request, timeout=30)
            assert refused.value.code == 405
    finally:
        server.shutdown()
        server.server_close()
    assert journal.read_bytes() == before
