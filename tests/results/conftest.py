"""Every store test runs twice: on a SQLite file and on the PostgreSQL server at 127.0.0.1:5432 (database test).

Each PostgreSQL test gets its own schema (via ``search_path`` in the URL), dropped afterwards, so reruns
start clean. PostgreSQL being unreachable skips those tests, or fails them when ``CI`` is set.
Set ``ANALOG_SWEEP_TEST_POSTGRES`` to use another server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa

import results

from ..conftest import fresh_schema, require_postgres, schema_url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path, postgres_admin) -> Iterator[str]:
    """A URL for an empty store: a SQLite file in tmp_path, or a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'results.db'}"
        return
    admin = require_postgres(postgres_admin)
    schema = fresh_schema(admin, "results_test")
    try:
        yield schema_url(schema)
    finally:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


@pytest.fixture
def store(store_url: str) -> Iterator[results.Store]:
    with results.open_store(store_url) as opened:
        yield opened


class SampleSweep:
    """A small sweep as the driver would report it: 2 modes x 3 transfer noises x 3 learning rates.

    lr 0.1 is pruned after one epoch on analog_tl and fails before any epoch on digital_tl; the others
    complete 3 epochs, their test error falling to ``final_error``.
    """

    modes = ("analog_tl", "digital_tl")
    noises = (1.0, 10.0, 100.0)
    lrs = (0.01, 0.05, 0.1)
    epochs = 3
    axes_at_rest = {"sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 0.0, "dtod": 0.0}

    @staticmethod
    def point_key(mode: str, noise: float) -> str:
        return f"{mode}-tn{noise:g}"

    def trial_id(self, mode: str, noise: float, lr: float) -> str:
        return f"{self.point_key(mode, noise)}-lr{lr:g}"

    @staticmethod
    def final_error(mode: str, noise: float, lr: float) -> float:
        """Made up but distinct: grows with noise, lowest at lr 0.05, digital a little better."""
        return 5.0 + noise / 2 + 100 * abs(lr - 0.05) - (1.0 if mode == "digital_tl" else 0.0)

    def epoch_error(self, mode: str, noise: float, lr: float, epoch: int) -> float:
        return self.final_error(mode, noise, lr) + 5.0 * (self.epochs - epoch)

    @staticmethod
    def activity(mode: str, noise: float, epoch: int) -> dict[str, float | int]:
        """Made up analog activity: moves grow with the epoch; the noisiest point's head never moves. Digital: none."""
        if not mode.startswith("analog"):
            return {}
        head = 0.0 if noise == 100.0 else 10.0 * epoch
        return {"embed_moved": 5.0 * epoch, "embed_rel": 0.1 * epoch, "embed_transfers": 7 * epoch,
                "blocks_moved": 20.0 * epoch, "blocks_rel": 0.2 * epoch, "blocks_transfers": 100 * epoch,
                "head_moved": head, "head_rel": head / 100, "head_transfers": 3 * epoch}

    def write(self, store: results.Store, name: str = "noise") -> None:
        spec = {"name": name, "axes": {"transfer_noise": list(self.noises)}}
        store.record_sweep(name, spec, "hash-1", "running", "/ray/exp")
        for mode in self.modes:
            for noise in self.noises:
                key = self.point_key(mode, noise)
                axes = {"transfer_noise": noise, **self.axes_at_rest}
                store.record_point(name, key, mode=mode, task="2-class", classes=["beaver", "otter"], seed=0, axes=axes)
                store.set_point_status(name, key, "running")
                for lr in self.lrs:
                    self._write_trial(store, name, mode, noise, lr)
                store.choose_best(name, key)
        store.set_sweep_status(name, "finished")

    def _write_trial(self, store: results.Store, name: str, mode: str, noise: float, lr: float) -> None:
        key, tid = self.point_key(mode, noise), self.trial_id(mode, noise, lr)
        store.record_trial(tid, name, key, lr=lr, status="running", ray_trial_id=f"ray-{tid}")
        if lr == 0.1 and mode == "digital_tl":
            store.record_trial(tid, name, key, lr=lr, status="failed", error="NaN loss at step 3")
            return
        for epoch in range(1, (1 if lr == 0.1 else self.epochs) + 1):
            error = self.epoch_error(mode, noise, lr, epoch)
            store.record_epoch(tid, epoch, train_loss=1.0 / epoch, test_error=error, test_accuracy=100.0 - error,
                               seconds=2.5, **self.activity(mode, noise, epoch))
        store.record_trial(tid, name, key, lr=lr, status="pruned" if lr == 0.1 else "completed")


@pytest.fixture
def sample() -> SampleSweep:
    return SampleSweep()


@pytest.fixture
def filled_store(store: results.Store, sample: SampleSweep) -> results.Store:
    sample.write(store)
    return store


def table_counts(store: results.Store) -> dict[str, int]:
    with store.engine.connect() as connection:
        return {
            table: connection.scalar(sa.text(f"SELECT count(*) FROM {table}"))
            for table in ("schema_version", "sweeps", "points", "trials", "epochs")
        }


@pytest.fixture
def count_rows() -> Callable[[results.Store], dict[str, int]]:
    """Rows per table, to show that something did not write."""
    return table_counts
