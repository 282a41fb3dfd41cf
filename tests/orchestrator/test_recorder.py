"""The store recorder: a trial that fails through Ray Tune while the store is away keeps its error in the sweep's
journal, so the resume knows the failure was environmental and runs the trial again."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import sqlalchemy as sa
from ray.exceptions import ActorDiedError
from ray.train._internal.storage import StorageContext
from ray.tune.experiment import Trial

from analog_sweep.orchestrator import LearningRateSearch
from analog_sweep.orchestrator._driver import _rerun_environmental
from analog_sweep.orchestrator._recorder import StoreRecorder
from analog_sweep.orchestrator._retrying_store import RetryingStore, RetryPolicy
from analog_sweep.results import Store, open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP

SWEEP = [*NANO_SWEEP, "modes=[digital_tl]", "axes=null"]


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.usefixtures("local_ray")
def test_a_failure_through_ray_while_the_store_is_away_is_rerun_at_the_resume(tmp_path: Path) -> None:
    spec = load_spec(shipped_specs()["quickstart"], SWEEP)
    settings = {"trials_dir": str(tmp_path / "trials"), "cache_dir": str(tmp_path / "cache"), "threads": 1, "gpu": 0}

    def search() -> LearningRateSearch:
        return LearningRateSearch(spec.name, expand(spec), spec.lr_search, tmp_path / "optuna.journal", settings)

    first = search()
    config = first.suggest("ray0")
    # Ray Tune's own trial, failed the way a lost worker fails it: its error file is what the recorder reads.
    storage = StorageContext(storage_path=str(tmp_path / "ray"), experiment_dir_name="run-1", trial_dir_name="t0")
    trial = Trial("fine_tune", config=config, trial_id="ray0", storage=storage, stub=True)
    Path(trial.local_path).mkdir(parents=True, exist_ok=True)
    trial.handle_error(ActorDiedError())
    first.on_trial_complete("ray0", error=True)  # what Ray Tune tells the search: failed, no reason

    away = Store(sa.create_engine(f"postgresql+psycopg://postgres@127.0.0.1:{_closed_port()}/test"))
    recorder = StoreRecorder(RetryingStore(away, policy=RetryPolicy(1, 0.05), notice=None), spec.name, first)
    recorder.on_trial_error(0, [trial], trial)
    assert recorder.gave_up is not None  # the store could not record the failure

    with open_store(f"sqlite:///{tmp_path / 'results.db'}") as store:  # the store back, without the trial's row
        store.record_sweep(spec.name, {}, "h")
        resumed, said = search(), []
        _rerun_environmental(RetryingStore(store), spec.name, resumed, said.append)
    assert said == ["rerunning 1 trial that failed on environmental causes (lost node or worker)"]
    again = resumed.suggest("ray1")
    assert (again["trial_id"], again["lr"]) == (config["trial_id"], config["lr"])
