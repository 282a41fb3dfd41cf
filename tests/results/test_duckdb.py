"""DuckDB reads the Parquet export as is: the README's query, run on an export, gives the store's numbers."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import pytest

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_query() -> str:
    """The DuckDB query the README shows (so the README and this test cannot drift apart)."""
    match = re.search(r'duckdb\.sql\("""(.*?)"""\)', README.read_text(), re.S)
    assert match, 'README.md has no duckdb.sql("""...""") query'
    return match.group(1)


def test_the_readme_query_reads_the_export_as_is(filled_store, sample, tmp_path):
    path = tmp_path / "quickstart.parquet"
    filled_store.export_trials("noise", path)
    query = _readme_query()
    assert "'quickstart.parquet'" in query
    rows = duckdb.sql(query.replace("'quickstart.parquet'", f"'{path}'")).fetchall()
    # The number 'results best' reports: the chosen trial's test error at its chosen epoch (not its last epoch's).
    best = {(p["mode"], p["transfer_noise"]): p["test_error"] for p in filled_store.best_points("noise")}
    assert [(mode, noise) for mode, noise, _, _ in rows] == sorted(best)
    for mode, noise, seeds, error in rows:
        assert seeds == 1 and error == pytest.approx(best[mode, noise])


def test_duckdb_sees_the_exports_types(filled_store, tmp_path):
    path = tmp_path / "points.parquet"
    filled_store.export_points("noise", path)
    types = {row[0]: row[1] for row in duckdb.sql(f"DESCRIBE SELECT * FROM '{path}'").fetchall()}
    assert types["classes"] == "VARCHAR[]" and types["transfer_noise"] == "DOUBLE"
    count = duckdb.sql(f"SELECT count(*) FROM '{path}' WHERE list_contains(classes, 'otter')").fetchall()[0][0]
    assert count == len(filled_store.best_points("noise"))
