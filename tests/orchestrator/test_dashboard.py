"""The dashboard's studies are read-only: nothing a browser sends can change the journal a driver is writing, and
the page hides the controls that would try. Studies are listed by their point's label, then key, and their objective
is named with its unit."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from wsgiref.simple_server import make_server

import optuna
import optuna_dashboard
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analog_sweep.orchestrator import LearningRateSearch, dashboard_app, read_only_studies
from analog_sweep.orchestrator._dashboard import READ_ONLY_STYLE
from analog_sweep.sweeps import expand, load_spec, shipped_specs


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


def _sweep_journal(path: Path) -> list:
    """A journal as a sweep's driver writes it (the quickstart's points, validation split, one trial each ended and
    a second trial of the first point running); returns the points."""
    spec = load_spec(shipped_specs()["quickstart"], ["data.train_limit=16", "epochs=2", "seeds=[0]"])
    settings = {"trials_dir": "unused", "cache_dir": "unused", "threads": 1, "gpu": 0}
    search = LearningRateSearch(spec.name, expand(spec), spec.lr_search, path, settings, selection=spec.selection)
    for number, _ in enumerate(search.points):
        search.suggest(f"r{number}")
        search.on_trial_complete(f"r{number}", {"validation_error": 10.0 + number, "test_error": 11.0, "epoch": 2})
    search.suggest("running")  # the first point's second trial, still running
    return search.points


@contextmanager
def _serving(app) -> Iterator[str]:
    server = make_server("127.0.0.1", 0, app)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def _get(url: str, method: str = "GET", headers: dict | None = None):
    request = urllib.request.Request(url, method=method, headers=headers or {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, dict(response.headers), response.read()


def test_studies_are_listed_by_label_then_key_with_their_objective_named(tmp_path):
    journal = tmp_path / "optuna.journal"
    points = _sweep_journal(journal)
    with _serving(dashboard_app(journal)) as base:
        studies = json.loads(_get(f"{base}/api/studies")[2])["study_summaries"]
        assert sorted(s["study_name"] for s in studies) == sorted(f"{p.label} [{p.key}]" for p in points)
        for study in studies:
            detail = json.loads(_get(f"{base}/api/studies/{study['study_id']}")[2])
            assert detail["name"] == study["study_name"] and detail["objective_names"] == ["validation error (%)"]
            # What looks a study up by its own name (a CSV download) still finds it: only the listing is renamed.
            status, _, csv = _get(f"{base}/csv/{study['study_id']}")
            assert status == 200 and b"validation error (%)" in csv
    assert sorted(s.study_name for s in read_only_studies(journal).get_all_studies()) == sorted(p.key for p in points)


def test_studies_that_hold_no_label_take_the_stores(tmp_path):
    journal = _journal(tmp_path / "optuna.journal")  # as written before studies held their label
    app = dashboard_app(journal, fallback_labels={"point-a": "analog_tl/5-7/base/seed0"}, selected_on="test")
    with _serving(app) as base:
        studies = json.loads(_get(f"{base}/api/studies")[2])["study_summaries"]
        by_id = {s["study_id"]: s["study_name"] for s in studies}
        assert sorted(by_id.values()) == ["analog_tl/5-7/base/seed0 [point-a]", "point-b"]  # point-b: none known
        for study_id in by_id:
            assert json.loads(_get(f"{base}/api/studies/{study_id}")[2])["objective_names"] == ["test error (%)"]


def test_the_page_carries_the_read_only_style_and_nothing_else_changes(tmp_path):
    journal = _journal(tmp_path / "optuna.journal")
    with _serving(dashboard_app(journal)) as base:
        status, headers, page = _get(f"{base}/dashboard")
        assert status == 200 and page.count(READ_ONLY_STYLE.encode()) == 1
        assert int(headers["Content-Length"]) == len(page) and page.index(b"<style id") < page.index(b"</head>")
        # A browser holding an older copy still gets the page whole, with the style sheet.
        status, _, again = _get(
            f"{base}/dashboard/studies/0", headers={"If-Modified-Since": "Fri, 1 Jan 2100 0:0:0 GMT"}
        )
        assert status == 200 and again == page
        status, headers, body = _get(f"{base}/dashboard", method="HEAD")
        assert status == 200 and body == b"" and int(headers["Content-Length"]) == len(page)
        bundle = Path(optuna_dashboard.__file__).parent / "public" / "bundle.js"
        assert _get(f"{base}/static/bundle.js")[2] == bundle.read_bytes()


def _chromium_dom(url: str) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.fail("chromium is not installed (apt-get install -y chromium; .ci/run installs it)")
    done = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000", "--dump-dom", url],
        check=True,
        capture_output=True,
        text=True,
        timeout=180,
    )
    return done.stdout


def _buttons_with(dom: str, marker: str) -> list[str]:
    """The rendered <button> elements that hold ``marker`` (an attribute as the style sheet selects it)."""
    return [b for b in re.findall(r"<button\b.*?</button>", dom, flags=re.DOTALL) if marker in b]


def test_in_chromium_the_hidden_controls_are_those_the_style_sheet_selects(tmp_path):
    """optuna-dashboard marks its buttons only by aria-label or icon: the style sheet's selectors must match the
    buttons of the page Chromium renders (Create study, Rename and Delete study, Edit note, Fail Trial), and the list
    must show the points' labels."""
    journal = tmp_path / "optuna.journal"
    points = _sweep_journal(journal)
    with _serving(dashboard_app(journal)) as base:
        listing = _chromium_dom(f"{base}/dashboard")
        note = _chromium_dom(f"{base}/dashboard/studies/0/note")
        trials = _chromium_dom(f"{base}/dashboard/studies/0/trials?numbers=1")
    for point in points:
        assert f"{point.label} [{point.key}]" in listing
    [create] = _buttons_with(listing, 'data-testid="AddBoxIcon"')
    assert ">Create<" in create
    assert len(_buttons_with(listing, 'aria-label="rename study"')) == len(points)
    assert len(_buttons_with(listing, 'aria-label="delete study"')) == len(points)
    assert len(_buttons_with(note, 'data-testid="EditIcon"')) == 1
    [fail] = _buttons_with(trials, 'data-testid="StopCircleIcon"')
    assert "Fail Trial" in fail
    for selector in ('aria-label="rename study"', 'aria-label="delete study"', "AddBoxIcon", "EditIcon", "StopCircle"):
        assert selector in READ_ONLY_STYLE
