"""Fault injection on real processes: local Ray clusters, a real results store, drivers started through the CLI, and
SIGKILL. Shared pieces: the clusters, the drivers, the sweep they run, and the check that a sweep ended with
nothing lost, nothing doubled and nothing run twice.

Every process a test starts is killed by PID or process group (never by name: other people run Ray on the same
machine), also when the test fails. The clusters use a private Ray temp folder, so that their address never becomes
the default of a ``ray.init()`` anywhere else on the machine.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState
from ray._common.utils import reset_ray_address
from ray.cluster_utils import Cluster

from analog_sweep.orchestrator import sweep_paths, trial_id_for
from analog_sweep.results import open_store
from analog_sweep.sweeps import SweepSpec, expand, load_spec, shipped_specs, trial_config
from analog_sweep.workers import TrialCheckpoint

from ..orchestrator.conftest import NANO_SWEEP
from ..orchestrator.faults import (
    analog_sweep,
    descendants,
    holders_of,
    kill_group,
    kill_pids,
    snapshot,
    tail,
    try_snapshot,
)

SPEC_FILE = shipped_specs()["quickstart"]
NAME = "quickstart"
# Analog TL only (the slow, pulsed update: epochs of about a second, long enough to land a fault inside one), two
# device points, the quickstart's two learning rates: 4 trials of 2 epochs. Variants below set the rest.
FAULT_SWEEP = [*NANO_SWEEP, "data.train_limit=32", "modes=[analog_tl]", "axes.transfer_noise=[0,10]"]
ONE_POINT = ["axes.transfer_noise=[0]"]  # the base point only: 2 trials
ONE_AT_A_TIME = ["resources.cpu=2"]  # each trial takes both CPUs: trials run one after another


def spec_for(overrides: list[str]) -> SweepSpec:
    return load_spec(SPEC_FILE, overrides)


def set_args(overrides: list[str]) -> list[str]:
    return [arg for item in overrides for arg in ("--set", item)]


# --- Ray clusters -----------------------------------------------------------------------------------------------------


class Clusters:
    """Starts local multi-node Ray clusters (each node its own raylet, as on separate machines) and takes them down."""

    def __init__(self, temp_dir: str) -> None:
        self.temp_dir = temp_dir
        self.started: list[Cluster] = []

    def start(self, head_cpus: int, worker_cpus: tuple[int, ...] = ()) -> Cluster:
        # Node death is noticed in about 3 s instead of Ray's default of about 30 s (health checks).
        config = {
            "health_check_initial_delay_ms": 0,
            "health_check_period_ms": 1000,
            "health_check_failure_threshold": 3,
            "health_check_timeout_ms": 1000,
        }
        cluster = Cluster()
        self.started.append(cluster)  # taken down at teardown even if a node fails to start
        cluster.add_node(num_cpus=head_cpus, include_dashboard=False, _system_config=config)
        for cpus in worker_cpus:
            cluster.add_node(num_cpus=cpus)
        cluster.wait_for_nodes()
        reset_ray_address()  # no ray.init() without an address may find this cluster: drivers get --address
        return cluster

    @staticmethod
    def processes(cluster: Cluster) -> set[int]:
        """Every process of the cluster: its nodes' own processes and what they started (the workers)."""
        pids: set[int] = set()
        for node in cluster.list_all_nodes():
            for infos in node.all_processes.values():
                for info in infos:
                    pids.add(info.process.pid)
                    pids |= descendants(info.process.pid)
        return pids

    def lose(self, cluster: Cluster) -> None:
        """The whole cluster goes away at once: every node process and every worker is SIGKILLed."""
        pids = self.processes(cluster)
        kill_pids(pids)
        for node in cluster.list_all_nodes():
            for infos in node.all_processes.values():
                for info in infos:
                    info.process.wait()
        self._forget(cluster)

    def lose_node(self, cluster: Cluster, node) -> None:
        """One worker node goes away: its raylet and its workers are SIGKILLed; the rest of the cluster stays."""
        pids = {info.process.pid for infos in node.all_processes.values() for info in infos}
        pids |= {child for pid in pids for child in descendants(pid)}
        cluster.remove_node(node, allow_graceful=False)
        kill_pids(pids)  # workers the raylet leaves behind

    def stop(self, cluster: Cluster) -> None:
        pids = self.processes(cluster)
        try:
            cluster.shutdown()
        finally:
            kill_pids(pids)
            self._forget(cluster)

    def _forget(self, cluster: Cluster) -> None:
        cluster.head_node = None
        cluster.worker_nodes = set()
        if cluster in self.started:
            self.started.remove(cluster)

    def stop_all(self) -> None:
        for cluster in list(self.started):
            self.stop(cluster)


@pytest.fixture(scope="module")
def ray_temp_dir() -> Iterator[str]:
    """A private Ray temp folder (short: Ray's socket paths must stay under 107 characters); ``RAY_TMPDIR`` points
    there while the module's tests run, so the address file a cluster writes stays private too."""
    folder = tempfile.mkdtemp(prefix="rf", dir="/tmp")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RAY_TMPDIR", folder)
        yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def module_clusters(ray_temp_dir: str) -> Iterator[Clusters]:
    clusters = Clusters(ray_temp_dir)
    try:
        yield clusters
    finally:
        clusters.stop_all()


@pytest.fixture
def clusters(ray_temp_dir: str) -> Iterator[Clusters]:
    clusters = Clusters(ray_temp_dir)
    try:
        yield clusters
    finally:
        clusters.stop_all()


@pytest.fixture(scope="module")
def shared_cluster(module_clusters: Clusters) -> Cluster:
    """One 2-CPU Ray node for a module's tests; each driver joins it with ``--address`` (seconds saved per start)."""
    return module_clusters.start(head_cpus=2)


# --- drivers -----------------------------------------------------------------------------------------------------


class Driver:
    """An ``analog-sweep`` command in its own process group, its output in a log file."""

    def __init__(self, args: list[str], log: Path, cwd: Path) -> None:
        self.log = log
        self._handle = open(log, "w")  # noqa: SIM115 - closed in finish/kill
        self.process: subprocess.Popen = analog_sweep(*args, cwd=cwd, stdout=self._handle, stderr=subprocess.STDOUT)
        self.started = time.monotonic()

    def kill(self) -> None:
        """SIGKILL the driver and everything in its process group."""
        kill_group(self.process)
        self._handle.close()

    def finish(self, timeout: float) -> str:
        """Wait for the command to end by itself; fail (after killing it) if it does not within ``timeout``."""
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"driver did not finish within {timeout:g} s\n{tail(self.log)}") from None
        kill_group(self.process)  # anything it left behind in its group
        self._handle.close()
        return self.log.read_text(errors="replace")


class Drivers:
    def __init__(self, root: Path, store_url: str) -> None:
        self.root = root
        self.url = store_url
        self.started: list[Driver] = []

    def start(self, *args: str, address: str | None = None) -> Driver:
        extra = ["--address", address] if address else []
        log = self.root / f"driver-{len(self.started) + 1}-{args[0]}.log"
        driver = Driver([*args, "--store", self.url, *extra], log, self.root)
        self.started.append(driver)
        return driver

    def run(self, overrides: list[str], storage: Path, address: str | None = None) -> Driver:
        return self.start("run", str(SPEC_FILE), *set_args(overrides), "--storage-path", str(storage), address=address)

    def resume(self, address: str | None = None) -> Driver:
        return self.start("resume", NAME, address=address)

    def kill_all(self) -> None:
        for driver in self.started:
            driver.kill()  # a no-op for one that has ended


@pytest.fixture
def drivers(tmp_path: Path, ray_temp_dir: str) -> Iterator[Drivers]:
    made = Drivers(tmp_path, f"sqlite:///{tmp_path}/results.db")
    try:
        yield made
    finally:
        made.kill_all()


# --- what a sweep must look like after any fault --------------------------------------------------------------------


def checkpoint_stamps(storage: Path, trial_ids: list[str]) -> dict[str, int]:
    """When each trial's newest checkpoint was written (nanoseconds): a trial that trains again rewrites it."""
    trials = sweep_paths(storage, NAME).trials
    return {t: (trials / t / "latest.pt").stat().st_mtime_ns for t in trial_ids}


def fully_reported(state: dict, epochs: int) -> list[str]:
    """The trials whose every epoch is in the store."""
    return [t for t in state["trials"] if all((t, e) in state["epochs"] for e in range(1, epochs + 1))]


def assert_sweep_complete(url: str, spec: SweepSpec, storage: Path, before: dict, stamps: dict[str, int]) -> dict:
    """After the faults and the resume(s): every expected row present exactly once, the studies and the checkpoints
    agree with the store, and nothing that had finished before a fault was run again."""
    after = snapshot(url)
    points = expand(spec)
    budget = spec.lr_search.trials_per_point
    with open_store(url) as store:
        assert store.get_sweep(spec.name)["status"] == "finished"
        best = store.best_points(spec.name)
        trials = {row["trial_id"]: row for row in store.list_trials(spec.name)}
    # Every point has a chosen trial.
    assert sorted(row["point_key"] for row in best) == sorted(p.key for p in points)
    assert all(row["status"] == "done" and row["trial_id"] in trials for row in best), best
    # Exactly the budgeted trials, under the searcher's own ids (no trial asked anew for an interrupted one), all
    # completed; one row per trial and epoch (the epochs table's key forbids a second row for the same epoch).
    expected = {trial_id_for(spec.name, p.key, n) for p in points for n in range(budget)}
    assert set(trials) == expected, f"trials {sorted(trials)} instead of {sorted(expected)}"
    assert {t: row["status"] for t, row in trials.items()} == dict.fromkeys(expected, "completed")
    assert sorted(after["epochs"]) == sorted((t, e) for t in expected for e in range(1, spec.epochs + 1))
    # The studies say the same: per point exactly the budget, every trial complete.
    storage_ = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_paths(storage, spec.name).journal))
    )
    for point in points:
        states = [t.state for t in optuna.load_study(study_name=point.key, storage=storage_).trials]
        assert states == [TrialState.COMPLETE] * budget, (point.key, states)
    # The store holds what each trial's own checkpoint holds: no epoch lost, none changed on the way.
    for point in points:
        for number in range(budget):
            trial_id = trial_id_for(spec.name, point.key, number)
            lr = trials[trial_id]["lr"]
            reports = TrialCheckpoint(
                sweep_paths(storage, spec.name).trials / trial_id, trial_config(point, lr).checkpoint_key()
            ).reports()
            assert {(trial_id, r.epoch): r.seconds for r in reports} == {
                k: v for k, v in after["epochs"].items() if k[0] == trial_id
            }, trial_id
            assert trials[trial_id]["epochs_done"] == spec.epochs
            assert trials[trial_id]["final_test_error"] == reports[-1].test_error
    # Nothing finished before a fault ran again: every epoch row is unchanged (seconds included), and the
    # checkpoints of trials that had reported every epoch were not rewritten.
    changed = {k: (v, after["epochs"].get(k)) for k, v in before["epochs"].items() if after["epochs"].get(k) != v}
    assert not changed, f"epoch rows changed after the fault (before, after): {changed}"
    assert checkpoint_stamps(storage, list(stamps)) == stamps, "a trial that had finished was trained again"
    return after


def trial_worker(url: str, storage, epochs_done: int = 1):
    """A probe: (trial id, PIDs training it) once a running trial has exactly ``epochs_done`` epochs in the store."""
    trials = sweep_paths(storage, NAME).trials

    def probe() -> tuple[str, list[int]] | None:
        state = try_snapshot(url)
        if not state:
            return None
        for trial_id, status in state["trials"].items():
            done = sorted(e for t, e in state["epochs"] if t == trial_id)
            if status == "running" and done == list(range(1, epochs_done + 1)):
                pids = holders_of(trials / trial_id / "lock", descendants(os.getpid()))
                if pids:
                    return trial_id, pids
        return None

    return probe


def pretraining_in_progress(storage: Path) -> bool:
    """A pretraining job holds its cache lock and has not written its model yet."""
    cache = sweep_paths(storage, NAME).cache
    return any(cache.glob("pretrain-*.lock")) and not any(cache.glob("pretrain-*.pt"))


@contextmanager
def store_write_lock(url: str) -> Iterator[None]:
    """Hold the SQLite store's write lock: the driver's next write waits (up to the store's busy timeout) inside the
    store call, so a kill meanwhile lands while it is writing, deterministically."""
    connection = sqlite3.connect(url.removeprefix("sqlite:///"), timeout=30, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        yield
    finally:
        connection.execute("ROLLBACK")
        connection.close()


def study_has_step(storage: Path, trial_id: str, step: int) -> bool:
    """Whether the trial's Optuna study trial holds the test error of epoch ``step`` (written by the driver just
    before it records the epoch in the store)."""
    sweep_and_point, number = trial_id.rsplit("-lr", 1)
    point_key = sweep_and_point.rsplit("-", 1)[1]
    journal = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(sweep_paths(storage, NAME).journal))
    )
    trials = optuna.load_study(study_name=point_key, storage=journal).trials
    return int(number) < len(trials) and step in trials[int(number)].intermediate_values
