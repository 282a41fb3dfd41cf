"""A study's reads without its epochs: closed points answer from the choice stored on them, the same choice the rule
makes from every epoch; open points and other rules are chosen from the epochs; an export streams its rows."""

from __future__ import annotations

import random

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from analog_sweep import results
from analog_sweep.results import _export, _queries

SHARED = results.Selection("validation", per_seed=False)
NOISES = (0.0, 10.0, 30.0)
SEEDS = (0, 1, 2)
LRS = (0.01, 0.05, 0.2)


def key(noise: float, seed: int) -> str:
    return f"analog_tl-tn{noise:g}-s{seed}"


def write_study(store: results.Store, rng: random.Random, selection: results.Selection | None) -> list[str]:
    """Three noises x three seeds x three rates, four epochs of random errors; seed 2 at noise 10 diverges at lr
    0.2 and a trial at noise 30 is pruned. Points are left running; returns their keys."""
    store.record_sweep("s", {"name": "s"}, "h", status="running", selection=selection)
    keys = []
    for noise in NOISES:
        for seed in SEEDS:
            point = key(noise, seed)
            keys.append(point)
            store.record_point(
                "s",
                point,
                mode="analog_tl",
                task="5-8",
                classes=["5", "8"],
                seed=seed,
                axes={"transfer_noise": noise, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3},
                status="running",
                label=f"analog_tl/5-8/transfer_noise={noise:g}/seed{seed}",
            )
            for lr in LRS:
                trial = f"{point}-lr{lr:g}"
                store.record_trial(trial, "s", point, lr=lr, status="running")
                epochs = 1 if (noise == 30.0 and lr == 0.05 and seed == 0) else 4
                for epoch in range(1, epochs + 1):
                    test = rng.uniform(5, 60)
                    store.record_epoch(
                        trial,
                        epoch,
                        train_loss=1.0 / epoch,
                        test_error=test,
                        test_accuracy=100 - test,
                        seconds=1.0,
                        validation_error=rng.uniform(5, 60),
                    )
                status = "completed"
                if noise == 10.0 and seed == 2 and lr == 0.2:
                    status = "diverged"
                elif epochs == 1:
                    status = "pruned"
                store.record_trial(trial, "s", point, lr=lr, status=status)
    return keys


def both_ways(store: results.Store) -> tuple[list[dict], list[dict]]:
    with store.transaction() as connection:
        stored = _queries.best_points(connection, "s")
        live = _queries.best_points(connection, "s", stored_choices=False)
    return stored, live


@pytest.mark.parametrize(
    "selection", [SHARED, results.Selection("validation", per_seed=True), results.PAPER_RULE], ids=str
)
def test_stored_choices_agree_with_choosing_from_the_epochs_as_points_close(store, selection):
    rng = random.Random(7)
    keys = write_study(store, rng, selection)
    rng.shuffle(keys)  # points close in any order, seeds of one device point apart
    for closed, point in enumerate(keys, start=1):
        store.choose_best("s", point)
        stored, live = both_ways(store)
        assert stored == live, f"after closing {closed} points"
    assert {row["status"] for row in stored} == {"done"}
    # The study is not degenerate: the seeds of a device point share a rate where they share a choice.
    if selection == SHARED:
        for noise in NOISES:
            assert len({row["lr"] for row in stored if row["transfer_noise"] == noise}) == 1


def statements_reading(store: results.Store, table: str, read) -> list[str]:
    """The SQL statements ``read()`` sent that name ``table``."""
    seen: list[str] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    sa.event.listen(store.engine, "before_cursor_execute", remember)
    try:
        read()
    finally:
        sa.event.remove(store.engine, "before_cursor_execute", remember)
    assert seen, "the listener saw no statement"
    return [s for s in seen if f" {table}" in s or f'"{table}"' in s]


def test_a_closed_study_is_read_without_its_epochs_and_an_open_point_with_them(store):
    keys = write_study(store, random.Random(3), SHARED)
    for point in keys:
        store.choose_best("s", point)
    assert statements_reading(store, "epochs", lambda: store.best_points("s")) == []
    assert statements_reading(store, "epochs", lambda: store.elbows("s")) == []
    # Another rule than the sweep's own is chosen from the epochs.
    assert statements_reading(store, "epochs", lambda: store.best_points("s", results.PAPER_RULE))
    # A seed that runs again (a resume) makes its device point live again, and only that one is read.
    store.set_point_status("s", key(10.0, 1), "running")
    read = statements_reading(store, "epochs", lambda: store.best_points("s"))
    assert read and all("IN" in statement.upper() for statement in read)
    stored, live = both_ways(store)
    assert stored == live


def test_export_streams_in_batches_and_keeps_the_order_of_the_points(store, tmp_path, monkeypatch):
    write_study(store, random.Random(5), SHARED)
    for point in [key(n, s) for n in NOISES for s in SEEDS]:
        store.choose_best("s", point)
    whole = tmp_path / "whole.parquet"
    count = store.export_trials("s", whole)
    monkeypatch.setattr(_export, "_BATCH", 7)
    batched = tmp_path / "batched.parquet"
    assert store.export_trials("s", batched) == count == 3 * 3 * 3 * 4 - 3
    file = pq.ParquetFile(batched)
    assert file.metadata.num_row_groups == -(-count // 7)  # written 7 rows at a time
    table = file.read()
    assert table.equals(pq.read_table(whole))
    rows = table.to_pylist()
    order = [(r["transfer_noise"], r["seed"], r["lr"], r["epoch"]) for r in rows]
    assert order == sorted(order)
    chosen = {(r["point_key"], r["trial_id"]) for r in rows if r["chosen"]}
    assert chosen == {(r["point_key"], r["trial_id"]) for r in store.best_points("s")}


def test_a_new_selection_rule_drops_the_stored_choices_until_points_close_again(store):
    keys = write_study(store, random.Random(11), SHARED)
    for point in keys:
        store.choose_best("s", point)
    alone = results.Selection("validation", per_seed=True)
    store.record_sweep("s", {"name": "s"}, "h", status="running", selection=alone)
    stored, live = both_ways(store)
    assert stored == live  # chosen per seed, from the epochs, not the shared choices stored before
    assert statements_reading(store, "epochs", lambda: store.best_points("s"))
    for point in keys:
        store.choose_best("s", point)
    assert statements_reading(store, "epochs", lambda: store.best_points("s")) == []
    assert both_ways(store)[0] == both_ways(store)[1]
