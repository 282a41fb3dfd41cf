"""No secret from a store URL lands in a file the product or Ray writes, nor in what the
commands print.

A sweep runs through the real command line, in its own process, against PostgreSQL with a password in
``--store`` (the test server trusts local connections, so any password is accepted). Afterwards every file under
the storage path, the working folder and Ray's own temp folder (its session logs, the GCS and worker logs) is
searched for the password, in plain text and URL-quoted, and so is every row of the store (the provenance records
each command line). The pickled callback state of a Ray experiment (``tuner.pkl``) is where a password would
hide first.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import uuid
from pathlib import Path
from urllib.parse import quote

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from analog_sweep.cli import cli
from analog_sweep.results import open_store

from ..orchestrator.faults import kill_session
from .conftest import QUICKSTART, SMALL_SWEEP, SWEEP_NAME, assert_complete, cli_process, set_args


def with_password(url: str, password: str) -> str:
    return sa.make_url(url).set(password=password).render_as_string(hide_password=False)


def files_holding(secret: str, *roots: Path) -> list[str]:
    """Every file under ``roots`` whose bytes hold ``secret`` (plain or URL-quoted)."""
    needles = {secret.encode(), quote(secret, safe="").encode()}
    found = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and not path.is_symlink():
                try:
                    data = path.read_bytes()
                except OSError:
                    continue
                if any(needle in data for needle in needles):
                    found.append(str(path))
    return found


@pytest.mark.slow
def test_a_store_password_is_in_no_file_the_sweep_or_ray_writes_nor_in_any_output(tmp_path, postgres_store):
    secret = f"Pw-{uuid.uuid4().hex}"
    url = with_password(postgres_store.url, secret)
    storage, work = tmp_path / "storage", tmp_path / "work"
    work.mkdir()
    ray_temp = Path(tempfile.mkdtemp(prefix="rs", dir="/tmp"))  # short: Ray's socket paths must stay < 108 chars
    try:
        outputs = []
        # ``run`` with the password in --store; then ``resume`` (real work again: Ray, the search, the store) with
        # it in $ANALOG_SWEEP_STORE, which Ray's processes inherit.
        for args, env in (
            (["run", QUICKSTART, *set_args(SMALL_SWEEP), "--store", url, "--storage-path", str(storage)], {}),
            (["resume", SWEEP_NAME], {"ANALOG_SWEEP_STORE": url}),
        ):
            driver = cli_process(*args, env={"RAY_TMPDIR": str(ray_temp), **env}, cwd=work)
            try:
                outputs.extend(driver.communicate(timeout=600))
            finally:
                kill_session(driver)
            assert driver.returncode == 0, outputs[-1]
            if args[0] == "run":
                with open_store(url) as store:
                    store.set_sweep_status(SWEEP_NAME, "interrupted")  # so that the resume has a sweep to continue
        later = [
            CliRunner().invoke(cli, [*args, "--store", url])
            for args in (
                ["status", SWEEP_NAME],
                ["results", "trials", SWEEP_NAME],
                ["results", "provenance", SWEEP_NAME, "--format", "json"],
            )
        ]
        assert [r.exit_code for r in later] == [0, 0, 0], [r.output for r in later]
        # The provenance has both command lines, the password in --store hidden; no row of the store holds it.
        runs = json.loads(later[2].stdout)["runs"]
        assert [r["kind"] for r in runs] == ["run", "resume"]
        assert "--store" in runs[0]["command"] and "***@" in runs[0]["command"], runs[0]["command"]
        assert runs[0]["options"]["overrides"] == SMALL_SWEEP and runs[0]["options"]["store"].count("***") == 1
        assert runs[0]["options"]["storage_path"] == str(storage.resolve())
        with open_store(url) as store, store.engine.connect() as connection:
            for table in ("sweeps", "points", "trials", "epochs", "sweep_runs", "pretrained_models"):
                rows = [dict(row) for row in connection.execute(sa.text(f"SELECT * FROM {table}")).mappings()]
                assert secret not in json.dumps(rows, default=str), table
        assert_complete(url, SMALL_SWEEP, storage)
        assert list(storage.rglob("tuner.pkl")), "Ray's experiment state was not written where expected"
        assert list(ray_temp.rglob("*.log")) or list(ray_temp.rglob("*.out")), "no Ray logs to search"
        assert files_holding(secret, storage, work, ray_temp) == []
        for text in (*outputs, *(r.output for r in later)):
            assert secret not in text and quote(secret, safe="") not in text
        assert "***" in outputs[1]  # the store is named, its password hidden
    finally:
        shutil.rmtree(ray_temp, ignore_errors=True)


@pytest.mark.parametrize("command", [["results", "sweeps"], ["status"], ["resume", "nope"]])
def test_a_password_is_not_printed_when_the_server_cannot_be_reached(command):
    secret = f"Pw-{uuid.uuid4().hex}"
    url = f"postgresql+psycopg://someone:{secret}@127.0.0.1:9/test?connect_timeout=2"
    result = CliRunner().invoke(cli, [*command, "--store", url])
    assert result.exit_code == 1, result.output
    assert secret not in result.output and "***" in result.stderr
