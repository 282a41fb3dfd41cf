"""Fixtures shared across the test tree: the PostgreSQL server the store tests run against, and headless Chromium.

PostgreSQL at 127.0.0.1:5432 (database ``test``; ``ANALOG_SWEEP_TEST_POSTGRES`` names another). Being unreachable
skips the PostgreSQL tests, or fails them when ``CI`` is set.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import sqlalchemy as sa

POSTGRES_URL = os.environ.get("ANALOG_SWEEP_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
# A sweep run by a test (in this process or a command it starts) caches its pretrained models under its own storage
# path, as if each test had a cache of its own, and never in the user's cache; a test of the shared cache sets its own.
os.environ["ANALOG_SWEEP_CACHE"] = "{storage}/cache"


@pytest.fixture(scope="session")
def postgres_admin() -> Iterator[psycopg.Connection | str]:
    """An autocommit connection to the test server, or the reason there is none."""
    url = sa.make_url(POSTGRES_URL)
    try:
        connection = psycopg.connect(
            host=url.host,
            port=url.port or 5432,
            user=url.username,
            password=url.password,
            dbname=url.database,
            autocommit=True,
            connect_timeout=3,
        )
    except psycopg.Error as exc:
        yield f"PostgreSQL at {url.render_as_string(hide_password=True)} unreachable: {str(exc).splitlines()[0]}"
        return
    yield connection
    connection.close()


def require_postgres(postgres_admin: psycopg.Connection | str) -> psycopg.Connection:
    """The admin connection; skip the test without one, or fail it when ``CI`` is set."""
    if isinstance(postgres_admin, str):
        if os.environ.get("CI"):
            pytest.fail(f"{postgres_admin} (CI is set, so this fails instead of skipping)")
        pytest.skip(postgres_admin)
    return postgres_admin


def fresh_schema(admin: psycopg.Connection, prefix: str) -> str:
    """Create an empty schema with a unique name; the caller drops it."""
    schema = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin.execute(f"CREATE SCHEMA {schema}")
    return schema


def schema_url(schema: str, **query: str) -> str:
    """The test server's URL with ``search_path`` set to ``schema`` (plus any extra query parameters)."""
    url = sa.make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}", **query})
    return url.render_as_string(hide_password=False)


def chromium_screenshot(page: Path, screenshot: Path, *, width: int = 1280, height: int = 4000) -> list[str]:
    """Open ``page`` in headless Chromium (Debian's ``chromium``, installed by ``.ci/run``), save a screenshot of the
    top ``width`` x ``height`` CSS pixels, and return the page's console messages (Chromium logs each one to stderr
    as ``INFO:CONSOLE``; a page without scripts should log none). Skips without Chromium, or fails when ``CI`` is set.
    """
    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    if binary is None:
        message = "headless Chromium not installed (apt-get install chromium; .ci/run does)"
        if os.environ.get("CI"):
            pytest.fail(f"{message} (CI is set, so this fails instead of skipping)")
        pytest.skip(message)
    profile = screenshot.parent / f".{screenshot.stem}-chromium-profile"
    done = subprocess.run(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--no-first-run",
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={screenshot}",
            "--enable-logging=stderr",
            "--v=0",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    shutil.rmtree(profile, ignore_errors=True)
    assert done.returncode == 0 and screenshot.is_file(), done.stderr[-2000:]
    return [line for line in done.stderr.splitlines() if ":CONSOLE" in line]


SUBPACKAGES = ("orchestrator", "workers", "results", "sweeps")


def subpackage_files(folder: Path) -> list[str]:
    """Where a fresh interpreter with ``folder`` first on sys.path imports each ``analog_sweep`` subpackage from
    (``SUBPACKAGES`` order): the ``__init__.py`` files. It runs with ``-S``, so no installed copy and no editable
    import hook can answer instead. Raises ``AssertionError`` with the interpreter's stderr if an import fails."""
    modules = ", ".join(f"analog_sweep.{name}" for name in SUBPACKAGES)
    probe = f"import sys; sys.path.insert(0, sys.argv[1]); import {modules}; print(*(m.__file__ for m in ({modules},)))"
    done = subprocess.run([sys.executable, "-S", "-c", probe, str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.split()
