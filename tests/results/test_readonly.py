"""``run_readonly_query`` cannot write: every kind of write is refused by the database, and nothing changes."""

from __future__ import annotations

import pytest

from analog_sweep import results
from analog_sweep.results import ACTIVITY_FIELDS

# Statements refused on both databases. The ones starting with a reading keyword get past the first,
# text-only check, so the database itself must refuse them.
REFUSED_EVERYWHERE = [
    "INSERT INTO sweeps (name, spec, spec_hash, status, created_at) VALUES ('x', '{}', 'h', 'pending', '2024-01-01')",
    "UPDATE trials SET lr = 1",
    "DELETE FROM epochs",
    "DROP TABLE epochs",
    "CREATE TABLE loot (x INTEGER)",
    "ALTER TABLE trials ADD COLUMN loot INTEGER",
    "  /* hide */ -- and seek\n DELETE FROM epochs",
    "SELECT 1; DROP TABLE epochs",
    "SELECT count(*) FROM epochs; DELETE FROM epochs",
    "SELECT 1; COMMIT; DELETE FROM epochs",
    "WITH doomed AS (SELECT trial_id FROM trials) DELETE FROM epochs WHERE trial_id IN (SELECT trial_id FROM doomed)",
    "WITH x AS (SELECT 1) INSERT INTO schema_version (version) SELECT 99 FROM x",
    "WITH x AS (SELECT 1) UPDATE schema_version SET version = 99",
]
REFUSED_ON = {
    "sqlite": [
        "ATTACH DATABASE ':memory:' AS loot",
        "PRAGMA user_version = 7",
        "PRAGMA journal_mode = DELETE",
        "PRAGMA query_only = OFF",
        "PRAGMA foreign_keys = OFF",
        "VACUUM",
        "REINDEX",
    ],
    "postgresql": [
        "WITH d AS (DELETE FROM epochs RETURNING 1) SELECT count(*) FROM d",
        "SELECT * INTO loot FROM sweeps",
        "SELECT * FROM trials FOR UPDATE",
        "SELECT set_config('transaction_read_only', 'off', false)",
        "TRUNCATE epochs",
        "GRANT ALL ON sweeps TO PUBLIC",
        "SET default_transaction_read_only = off",
        "COPY (SELECT 1) TO '/tmp/analog-sweep-loot.csv'",
    ],
}


def _dialect(store: results.Store) -> str:
    return store.engine.dialect.name


def test_writes_are_refused_and_row_counts_do_not_change(filled_store, count_rows):
    before = count_rows(filled_store)
    for sql in REFUSED_EVERYWHERE + REFUSED_ON[_dialect(filled_store)]:
        with pytest.raises(results.QueryRefused, match="refused"):
            filled_store.run_readonly_query(sql)
    assert count_rows(filled_store) == before
    # Still a read-write store for its writer afterwards, and still read-only for queries.
    filled_store.record_sweep("after", {}, "h")
    assert count_rows(filled_store)["sweeps"] == before["sweeps"] + 1
    with pytest.raises(results.QueryRefused):
        filled_store.run_readonly_query("DELETE FROM epochs")


def test_reads_work(filled_store, sample):
    result = filled_store.run_readonly_query(
        "WITH best AS (SELECT point_key, min(final_test_error) AS err FROM trials WHERE status = 'completed' "
        "GROUP BY point_key) SELECT p.mode, count(*) AS n FROM best JOIN points p USING (point_key) "
        "GROUP BY p.mode ORDER BY p.mode"
    )
    assert result.columns == ("mode", "n")
    assert result.rows == [(m, len(sample.noises)) for m in sample.modes]
    assert filled_store.run_readonly_query("SELECT 'a%' AS pattern -- a comment;").rows == [("a%",)]


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_schema_lookups_are_allowed_on_sqlite(filled_store):
    columns = [row[1] for row in filled_store.run_readonly_query("PRAGMA table_info(epochs)").rows]
    assert columns == [
        "trial_id",
        "epoch",
        "train_loss",
        "test_error",
        "test_accuracy",
        "seconds",
        *ACTIVITY_FIELDS,
        "validation_error",
    ]


def test_max_rows_truncates(filled_store):
    result = filled_store.run_readonly_query("SELECT epoch FROM epochs ORDER BY trial_id, epoch", max_rows=2)
    assert (len(result.rows), result.truncated) == (2, True)
    assert filled_store.run_readonly_query("SELECT 1", max_rows=2).truncated is False


@pytest.mark.parametrize("sql", ["SELECT nope FROM epochs", "SELECT * FROM nowhere", "SELEC 1"])
def test_invalid_sql_is_an_input_error(store, sql):
    with pytest.raises((results.QueryFailed, results.QueryRefused)) as raised:
        store.run_readonly_query(sql)
    assert isinstance(raised.value, results.StoreInputError)
