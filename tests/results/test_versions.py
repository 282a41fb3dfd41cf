"""Schema versions: an older store is upgraded in place, a newer or foreign one is refused with a clear error."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

import results


def _execute(url: str, *statements: str) -> None:
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(sa.text(statement))
    engine.dispose()


def _scalar(url: str, query: str):
    engine = sa.create_engine(url)
    with engine.connect() as connection:
        value = connection.scalar(sa.text(query))
    engine.dispose()
    return value


def test_version_1_store_is_upgraded_and_keeps_its_data(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        before = count_rows(store)
    # Make it a version-1 store by hand: no trials.best_epoch yet.
    _execute(store_url, "ALTER TABLE trials DROP COLUMN best_epoch", "UPDATE schema_version SET version = 1")

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION == 2
        trials = {t["trial_id"]: t for t in store.list_trials("noise")}
        completed = trials[sample.trial_id("analog_tl", 10.0, 0.05)]
        assert completed["best_epoch"] == sample.epochs  # errors fall every epoch, so the last is best
        assert trials[sample.trial_id("analog_tl", 10.0, 0.1)]["best_epoch"] == 1  # pruned after one
        assert trials[sample.trial_id("digital_tl", 10.0, 0.1)]["best_epoch"] is None  # failed, no epochs
        # The upgraded store takes new writes like a fresh one.
        store.record_epoch(completed["trial_id"], 4, train_loss=0.1, test_error=0.5, test_accuracy=99.5, seconds=1)
        upgraded = {t["trial_id"]: t for t in store.list_trials("noise", completed["point_key"])}
        assert upgraded[completed["trial_id"]]["best_epoch"] == 4


def test_newer_store_is_refused_and_left_alone(store_url):
    results.open_store(store_url).close()
    newer = results.SCHEMA_VERSION + 1
    _execute(store_url, f"UPDATE schema_version SET version = {newer}")
    with pytest.raises(results.SchemaVersionError, match=f"schema version {newer}, newer .*upgrade analog-sweep"):
        results.open_store(store_url)
    assert _scalar(store_url, "SELECT version FROM schema_version") == newer


def test_too_old_store_is_refused(store_url):
    results.open_store(store_url).close()
    _execute(store_url, "UPDATE schema_version SET version = 0")
    with pytest.raises(results.SchemaVersionError, match="too old"):
        results.open_store(store_url)


def test_database_with_foreign_sweeps_table_is_refused(store_url):
    _execute(store_url, "CREATE TABLE sweeps (id INTEGER PRIMARY KEY)")
    with pytest.raises(results.SchemaVersionError, match="not an analog-sweep store"):
        results.open_store(store_url)


def test_readers_do_not_create_a_store(store_url):
    with pytest.raises(results.BadStoreURL, match="no (analog-sweep )?store at"):
        results.open_store(store_url, must_exist=True)
    results.open_store(store_url).close()
    results.open_store(store_url, must_exist=True).close()
