"""Schema versions: an older store is upgraded in place, a newer or foreign one is refused with a clear error."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from analog_sweep import results


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


# What schema version 5 added (honest selection and point labels), by table.
V5_COLUMNS = {
    "epochs": ("validation_error",),
    "trials": ("best_validation_error", "best_validation_epoch"),
    "sweeps": ("selected_on", "selection_per_seed"),
    "points": ("label", "selected_on", "chosen_epoch", "chosen_test_error", "chosen_validation_error"),
}


def _drop_node_environments(url: str) -> None:
    """Make a store look like version 7: no ``node_environments`` table, no ``trials.node_environment_hash``."""
    _execute(
        url,
        "ALTER TABLE trials DROP COLUMN node_environment_hash",
        "DROP TABLE node_environments",
        "UPDATE schema_version SET version = 7",
    )


def _drop_point_algorithm(url: str) -> None:
    """Make a store look like version 6: points have no ``algorithm`` (nor anything newer)."""
    _drop_node_environments(url)
    _execute(url, "ALTER TABLE points DROP COLUMN algorithm", "UPDATE schema_version SET version = 6")


def _unshare_rpu_configs(url: str) -> None:
    """Make a store look like version 5: each trial row holds its rpu config's JSON, no ``rpu_configs`` table."""
    _drop_point_algorithm(url)
    _execute(
        url,
        "ALTER TABLE trials ADD COLUMN rpu_config JSON",
        "UPDATE trials SET rpu_config = (SELECT c.rpu_config FROM rpu_configs c WHERE c.config_hash = rpu_config_hash)",
        "ALTER TABLE trials DROP COLUMN rpu_config_hash",
        "DROP TABLE rpu_configs",
        "UPDATE schema_version SET version = 5",
    )


def _drop_selection_columns(url: str) -> None:
    """Make a store look like version 4: no validation errors, selection rules, labels or stored choices."""
    _unshare_rpu_configs(url)
    _execute(
        url,
        *(f"ALTER TABLE {table} DROP COLUMN {name}" for table, names in V5_COLUMNS.items() for name in names),
        "UPDATE schema_version SET version = 4",
    )


def _drop_provenance(url: str) -> None:
    """Make a store look like version 3: no provenance tables, no trials.rpu_config (nor anything newer)."""
    _drop_selection_columns(url)
    _execute(
        url,
        "DROP TABLE sweep_runs",
        "DROP TABLE pretrained_models",
        "ALTER TABLE trials DROP COLUMN rpu_config",
        "UPDATE schema_version SET version = 3",
    )


def _drop_activity_columns(url: str) -> None:
    """Make a store look like version 2: no activity columns on epochs and trials (nor anything newer)."""
    _drop_provenance(url)
    _execute(
        url,
        *(f"ALTER TABLE epochs DROP COLUMN {name}" for name in results.ACTIVITY_FIELDS),
        *(f"ALTER TABLE trials DROP COLUMN {name}" for name in results.TRIAL_ACTIVITY_FIELDS),
        "UPDATE schema_version SET version = 2",
    )


def test_version_1_store_is_upgraded_and_keeps_its_data(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        before = count_rows(store)
    # Make it a version-1 store by hand: no trials.best_epoch and no activity columns yet.
    _drop_activity_columns(store_url)
    _execute(store_url, "ALTER TABLE trials DROP COLUMN best_epoch", "UPDATE schema_version SET version = 1")

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        trials = {t["trial_id"]: t for t in store.list_trials("noise")}
        completed = trials[sample.trial_id("analog_tl", 10.0, 0.05)]
        assert completed["best_epoch"] == sample.epochs  # errors fall every epoch, so the last is best
        assert trials[sample.trial_id("analog_tl", 10.0, 0.1)]["best_epoch"] == 1  # pruned after one
        assert trials[sample.trial_id("digital_tl", 10.0, 0.1)]["best_epoch"] is None  # failed, no epochs
        # The upgraded store takes new writes like a fresh one.
        store.record_epoch(completed["trial_id"], 4, train_loss=0.1, test_error=0.5, test_accuracy=99.5, seconds=1)
        upgraded = {t["trial_id"]: t for t in store.list_trials("noise", completed["point_key"])}
        assert upgraded[completed["trial_id"]]["best_epoch"] == 4


def test_version_2_store_gains_activity_columns_and_keeps_its_data(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        before = count_rows(store)
        old_trials = {t["trial_id"]: t for t in store.list_trials("noise")}
    _drop_activity_columns(store_url)

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        trials = {t["trial_id"]: t for t in store.list_trials("noise")}
        keep = ("lr", "status", "epochs_done", "final_test_error", "best_test_error", "best_epoch")
        assert {k: {c: t[c] for c in keep} for k, t in trials.items()} == {
            k: {c: t[c] for c in keep} for k, t in old_trials.items()
        }
        # What was recorded before version 3 was not measured: NULL, not 0.
        assert all(t[name] is None for t in trials.values() for name in results.TRIAL_ACTIVITY_FIELDS)
        assert _scalar(store_url, "SELECT count(*) FROM epochs WHERE head_moved IS NOT NULL") == 0
        # New epochs carry activity, and the trial keeps its last epoch's.
        completed = sample.trial_id("analog_tl", 10.0, 0.05)
        store.record_epoch(
            completed,
            sample.epochs + 1,
            train_loss=0.1,
            test_error=1.0,
            test_accuracy=99.0,
            seconds=1.0,
            head_moved=12.5,
            head_rel=0.3,
            head_transfers=40,
            blocks_moved=90.0,
            blocks_rel=0.4,
            blocks_transfers=900,
        )
        trial = {t["trial_id"]: t for t in store.list_trials("noise")}[completed]
        assert (trial["head_moved"], trial["blocks_moved"], trial["blocks_rel"]) == (12.5, 90.0, 0.4)
        assert trial["embed_moved"] is None
        assert (
            _scalar(
                store_url,
                f"SELECT head_transfers FROM epochs WHERE trial_id = '{completed}' AND epoch = {sample.epochs + 1}",
            )
            == 40
        )


def test_version_3_store_gains_provenance_and_keeps_its_data(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        before = count_rows(store)
        old_trials = store.list_trials("noise")
    _drop_provenance(store_url)

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        assert store.list_trials("noise") == old_trials  # rpu_config NULL before and after
        # Nothing was gathered before: no runs, no models, no configs; and the new tables take writes.
        found = store.provenance("noise")
        assert (found["runs"], found["pretrained"], found["rpu_configs"]) == ([], [], [])
        assert found["trials_without_rpu_config"] == len(old_trials)
        store.record_run("noise", {"run_id": "r1", "kind": "resume", "packages": {"torch": "2.10.0"}})
        store.record_pretrained("noise", {"cache_key": "k", "file_hash": "h"})
        trial_id = sample.trial_id("analog_tl", 10.0, 0.05)
        store.set_trial_rpu_config(trial_id, {"__class__": "SingleRPUConfig"})
        found = store.provenance("noise")
        assert [r["kind"] for r in found["runs"]] == ["resume"] and len(found["pretrained"]) == 1
        assert found["rpu_configs"][0]["trial_ids"] == [trial_id]
    assert _scalar(store_url, "SELECT count(*) FROM sweep_runs") == 1


def test_version_4_store_keeps_its_choices_as_made_on_test_and_takes_validation_errors(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        before = count_rows(store)
        old_best = store.best_points("noise")
    _drop_selection_columns(store_url)

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        # Every sweep before version 5 chose on test, each seed alone: so it still does, and says so.
        assert store.selection("noise") == results.PAPER_RULE
        best = store.best_points("noise")
        assert [(r["point_key"], r["trial_id"], r["test_error"]) for r in best] == [
            (r["point_key"], r["trial_id"], r["test_error"]) for r in old_best
        ]
        assert {r["selected_on"] for r in best} == {"test"}
        stored = _scalar(
            store_url,
            "SELECT count(*) FROM points WHERE selected_on = 'test' AND chosen_epoch = 3 "
            "AND chosen_test_error IS NOT NULL",
        )
        assert stored == len(best)
        assert _scalar(store_url, "SELECT count(*) FROM epochs WHERE validation_error IS NOT NULL") == 0
        # Choosing on validation is refused in one line: nothing was measured.
        with pytest.raises(results.StoreInputError, match="recorded no validation error"):
            store.best_points("noise", results.Selection("validation"))
        # New epochs take a validation error, and the trial's summary follows.
        trial_id = sample.trial_id("analog_tl", 10.0, 0.05)
        store.record_epoch(
            trial_id,
            sample.epochs + 1,
            train_loss=0.1,
            test_error=1.0,
            test_accuracy=99.0,
            seconds=1.0,
            validation_error=7.5,
        )
        trial = {t["trial_id"]: t for t in store.list_trials("noise")}[trial_id]
        assert (trial["best_validation_error"], trial["best_validation_epoch"]) == (7.5, sample.epochs + 1)


@pytest.mark.parametrize("algorithm", [None, "agad"])
def test_version_6_points_gain_their_sweeps_algorithm(store_url, sample, algorithm):
    """Every sweep before version 7 ran one algorithm: its spec's ``algorithm.name``, c-TTv2 when the spec left it
    out. Analog points gain it, digital points none; nothing else about a point changes."""
    with results.open_store(store_url) as store:
        sample.write(store)
        before = store.list_points("noise")
    if algorithm is not None:
        _execute(store_url, f"""UPDATE sweeps SET spec = '{{"algorithm": {{"name": "{algorithm}"}}}}'""")
    _drop_point_algorithm(store_url)

    with results.open_store(store_url) as store:
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        after = store.list_points("noise")
    expected = algorithm or "c-ttv2"
    assert [r["algorithm"] for r in after] == [expected if r["mode"].startswith("analog") else None for r in before]
    assert {r["mode"] for r in after} == {"analog_tl", "digital_tl"}
    assert [{**r, "algorithm": None} for r in after] == [{**r, "algorithm": None} for r in before]


def test_version_7_store_keeps_its_rows_and_its_trials_have_no_node(store_url, sample, count_rows):
    """Nothing recorded before version 8 says where a trial ran: NULL, not a guess; new trials record their node."""
    node = {"node_id": "ab" * 28, "host": "gpu-7", "ip": "10.0.0.7", "packages": {"python": "3.11.7", "timm": "0.0.1"}}
    with results.open_store(store_url) as store:
        sample.write(store)
        store.record_run("noise", {"run_id": "r1", "kind": "run", "packages": {"timm": "1.0.31"}})
        before = count_rows(store)
        old_trials = store.list_trials("noise")
        old_provenance = store.provenance("noise")
    _drop_node_environments(store_url)
    assert "node_environment_hash" not in {
        c["name"] for c in sa.inspect(sa.create_engine(store_url)).get_columns("trials")
    }

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        assert store.list_trials("noise") == old_trials
        assert all(t["node_environment_hash"] is None for t in old_trials)
        found = store.provenance("noise")
        assert found == old_provenance
        assert found["nodes"] == [] and found["trials_without_node"] == len(old_trials)
        # The upgraded store takes nodes like a fresh one: one row per distinct environment, trials pointing at it.
        first, second = old_trials[0]["trial_id"], old_trials[1]["trial_id"]
        store.set_trial_node_environment(first, node)
        store.set_trial_node_environment(second, dict(node))
        assert _scalar(store_url, "SELECT count(*) FROM node_environments") == 1
        [listed] = store.provenance("noise")["nodes"]
        assert (listed["ip"], listed["trials"], listed["packages"]) == ("10.0.0.7", 2, node["packages"])
        assert listed["differences"] == {"timm": {"node": "0.0.1", "driver": "1.0.31"}}
        with pytest.raises(results.NotFound, match="unknown trial"):
            store.set_trial_node_environment("no-such-trial", node)
        with pytest.raises(results.StoreInputError, match="unknown node field.*gpu"):
            store.set_trial_node_environment(first, {**node, "gpu": "H100"})


def test_version_5_store_keeps_each_rpu_config_once_and_the_same_provenance(store_url, sample, count_rows):
    with results.open_store(store_url) as store:
        sample.write(store)
        analog = [t["trial_id"] for t in store.list_trials("noise") if t["trial_id"].startswith("analog")]
        configs = [{"__class__": "UnitCellRPUConfig", "device": {"dw_min_dtod": dtod}} for dtod in (0.3, 0.6)]
        for index, trial_id in enumerate(analog):
            store.set_trial_rpu_config(trial_id, configs[index % 2])
        before = count_rows(store)
        old_provenance = store.provenance("noise")
        old_trials = store.list_trials("noise")
    _unshare_rpu_configs(store_url)
    # As a version-5 store holds them: the JSON in every analog trial's row.
    assert _scalar(store_url, "SELECT count(*) FROM trials WHERE rpu_config IS NOT NULL") == len(analog)

    with results.open_store(store_url) as store:
        assert count_rows(store) == before
        assert _scalar(store_url, "SELECT version FROM schema_version") == results.SCHEMA_VERSION
        assert _scalar(store_url, "SELECT count(*) FROM rpu_configs") == 2
        assert store.provenance("noise") == old_provenance
        assert store.list_trials("noise") == old_trials
        # New configs go to the shared table: a third distinct one adds one row, a known one none.
        store.set_trial_rpu_config(analog[0], {"__class__": "SingleRPUConfig"})
        store.set_trial_rpu_config(analog[1], configs[0])
        assert _scalar(store_url, "SELECT count(*) FROM rpu_configs") == 3
        assert "rpu_config" not in {c["name"] for c in sa.inspect(store.engine).get_columns("trials")}


def test_version_5_json_null_rpu_config_stays_a_trial_without_one(store_url, sample):
    """A version-5 store kept "no config" as JSON null in the trial's row; upgraded, it is still none."""
    with results.open_store(store_url) as store:
        sample.write(store)
        trial_id = sample.trial_id("analog_tl", 10.0, 0.05)
        store.set_trial_rpu_config(trial_id, {"__class__": "SingleRPUConfig"})
        without = store.provenance("noise")["trials_without_rpu_config"]
    _unshare_rpu_configs(store_url)
    _execute(store_url, "UPDATE trials SET rpu_config = 'null' WHERE rpu_config IS NULL")
    with results.open_store(store_url) as store:
        found = store.provenance("noise")
        assert found["trials_without_rpu_config"] == without
        assert [g["trial_ids"] for g in found["rpu_configs"]] == [[trial_id]]


def test_unknown_activity_field_is_refused(store_url, sample):
    with results.open_store(store_url) as store:
        sample.write(store)
        with pytest.raises(results.StoreInputError, match="unknown epoch field.*head_mooved"):
            store.record_epoch(
                sample.trial_id("analog_tl", 10.0, 0.05),
                1,
                train_loss=0.1,
                test_error=1.0,
                test_accuracy=99.0,
                seconds=1.0,
                head_mooved=3.0,
            )


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
