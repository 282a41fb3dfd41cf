"""Every store test runs twice: on a SQLite file and on the PostgreSQL server at 127.0.0.1:5432 (database test).

Each PostgreSQL test gets its own schema (via ``search_path`` in the URL), dropped afterwards, so reruns
start clean. PostgreSQL being unreachable skips those tests, or fails them when ``CI`` is set.
Set ``ANALOG_SWEEP_TEST_POSTGRES`` to use another server.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import matplotlib.colors
import matplotlib.image
import numpy as np
import pytest
import sqlalchemy as sa

from analog_sweep import results

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
        return {
            "embed_moved": 5.0 * epoch,
            "embed_rel": 0.1 * epoch,
            "embed_transfers": 7 * epoch,
            "blocks_moved": 20.0 * epoch,
            "blocks_rel": 0.2 * epoch,
            "blocks_transfers": 100 * epoch,
            "head_moved": head,
            "head_rel": head / 100,
            "head_transfers": 3 * epoch,
        }

    def write(self, store: results.Store, name: str = "noise") -> None:
        spec = {"name": name, "axes": {"transfer_noise": list(self.noises)}}
        store.record_sweep(name, spec, "hash-1", "running", "/ray/exp")
        for mode in self.modes:
            for noise in self.noises:
                key = self.point_key(mode, noise)
                axes = {"transfer_noise": noise, **self.axes_at_rest}
                algorithm = "c-ttv2" if mode.startswith("analog") else None
                store.record_point(
                    name,
                    key,
                    mode=mode,
                    task="2-class",
                    classes=["beaver", "otter"],
                    seed=0,
                    axes=axes,
                    algorithm=algorithm,
                )
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
            store.record_epoch(
                tid,
                epoch,
                train_loss=1.0 / epoch,
                test_error=error,
                test_accuracy=100.0 - error,
                seconds=2.5,
                **self.activity(mode, noise, epoch),
            )
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


class StudySweep:
    """A synthetic study as the driver would report it: the four modes on two tasks, three seeds, analog TL swept
    over transfer noise with an elbow at ``ELBOW`` %, one learning rate per point, ``epochs`` epochs.

    Errors are made up but shaped like the paper's: digital TL best (it reaches 0 % test error on the first task by
    its last epoch, to exercise log axes), then analog TL, analog scratch, digital scratch; analog TL flat up to the
    elbow and rising after it. Seeds add a deterministic spread of up to +-``SPREAD`` points.
    """

    name = "study"
    tasks = {"beaver-otter": ["beaver", "otter"], "5-8": ["5", "8"]}
    modes = ("analog_tl", "analog_scratch", "digital_tl", "digital_scratch")
    noises = (0.0, 1.0, 5.0, 10.0, 20.0, 50.0)
    seeds = (0, 1, 2)
    epochs = 4
    ELBOW = 10.0
    SPREAD = 1.5
    base = {"transfer_noise": 0.0, "sp_skew": 0.0, "sp_variability": 0.0, "pulse_noise": 3.75, "dtod": 0.3}
    level = {"digital_tl": 4.0, "analog_tl": 10.0, "analog_scratch": 25.0, "digital_scratch": 30.0}
    profile: str | None = None  # the spec's profile: "smoke" for a smoke run

    def final_error(self, task: str, mode: str, noise: float, seed: int) -> float:
        if mode == "digital_tl" and task == "beaver-otter":
            return 0.0
        rise = 0.8 * max(0.0, noise - self.ELBOW)
        return self.level[mode] + rise + self.SPREAD * (seed - 1)

    def points(self):
        for task in self.tasks:
            for mode in self.modes:
                for noise in self.noises if mode == "analog_tl" else (0.0,):
                    for seed in self.seeds:
                        yield task, mode, noise, seed

    @staticmethod
    def key(task: str, mode: str, noise: float, seed: int) -> str:
        return f"{mode}/{task}/tn{noise:g}/seed{seed}"

    def write(self, store: results.Store, *, dataset: str = "cifar") -> None:
        spec = {
            "name": self.name,
            "data": {"dataset": dataset, "classes": list(self.tasks.values())},
            "modes": list(self.modes),
            "seeds": list(self.seeds),
            "axes": {"transfer_noise": list(self.noises)},
            **({"profile": self.profile} if self.profile else {}),
        }
        store.record_sweep(self.name, spec, "hash-study", "running")
        for task, mode, noise, seed in self.points():
            key = self.key(task, mode, noise, seed)
            store.record_point(
                self.name,
                key,
                mode=mode,
                task=task,
                classes=self.tasks[task],
                seed=seed,
                axes={**self.base, "transfer_noise": noise},
                algorithm="c-ttv2" if mode.startswith("analog") else None,
            )
            trial = f"{key}/lr0.05"
            store.record_trial(trial, self.name, key, lr=0.05, status="running")
            final = self.final_error(task, mode, noise, seed)
            for epoch in range(1, self.epochs + 1):
                error = final + 8.0 * (self.epochs - epoch)
                activity = {}
                if mode.startswith("analog"):
                    activity = {
                        "head_moved": 40.0 + seed,
                        "head_rel": 0.3,
                        "head_transfers": 10 * epoch,
                        "blocks_moved": 0.5 if noise == 50.0 else 90.0,
                        "blocks_rel": 0.4 + 0.01 * seed,
                        "blocks_transfers": 100 * epoch,
                        "embed_moved": 80.0,
                        "embed_rel": 0.2,
                        "embed_transfers": 5 * epoch,
                    }
                store.record_epoch(
                    trial,
                    epoch,
                    train_loss=1.0 / epoch,
                    test_error=error,
                    test_accuracy=100.0 - error,
                    seconds=1.0,
                    **activity,
                )
            store.record_trial(trial, self.name, key, lr=0.05, status="completed")
            store.choose_best(self.name, key)
        store.set_sweep_status(self.name, "finished")


@pytest.fixture
def study() -> StudySweep:
    return StudySweep()


@pytest.fixture
def study_store(store: results.Store, study: StudySweep) -> results.Store:
    study.write(store)
    return store


@dataclass(frozen=True)
class PngStats:
    """What a PNG shows: its size in pixels, the share of pixels that are not (near) white, and how many pixels have
    each of the given colours (within a small tolerance, so anti-aliased edges do not count)."""

    width: int
    height: int
    ink: float
    colours: dict[str, int]


def png_stats(data: bytes, colours: Iterable[str] = ()) -> PngStats:
    assert data.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    pixels = matplotlib.image.imread(io.BytesIO(data), format="png")[..., :3]
    ink = float((pixels.min(axis=2) < 0.9).mean())
    counts = {}
    for colour in colours:
        rgb = np.array(matplotlib.colors.to_rgb(colour))
        counts[colour] = int((np.abs(pixels - rgb).max(axis=2) < 0.04).sum())
    return PngStats(pixels.shape[1], pixels.shape[0], ink, counts)
