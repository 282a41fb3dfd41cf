"""The store's tables, written once with SQLAlchemy Core types that mean the same on SQLite and PostgreSQL.

Natural keys are the primary keys (a sweep's name, a point's ``(sweep, point_key)``, a trial's id, a trial's
``(trial_id, epoch)``), so every write can be an upsert and a replay can never add a row.
Times are UTC. Test errors are stored as the worker reports them (the paper reports percent).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

# Bump when the tables change, and add the step from the previous version to ``_versions.UPGRADES``.
SCHEMA_VERSION = 8

# The five device axes a sweep varies, stored as REAL columns on each point.
AXES = ("transfer_noise", "sp_skew", "sp_variability", "pulse_noise", "dtod")
# What follows an axis value in text: percent for transfer noise and the symmetry-point axes, nothing for the ratios.
AXIS_UNITS = {"transfer_noise": " %", "sp_skew": " %", "sp_variability": " %", "pulse_noise": "", "dtod": ""}

# The modes that train analog tiles, and so have an algorithm (``points.algorithm``); the digital modes have none.
ANALOG_MODES = ("analog_tl", "analog_scratch")
# The analog training algorithms in the order tables and legends list them: the paper's c-TTv2, then TTv2 and AGAD
# (aihwkit's presets; Rasch et al. 2024), then plain SGD on one device per weight. Others follow by name.
ALGORITHM_ORDER = ("c-ttv2", "ttv2", "agad", "sgd")

# Analog learning activity per layer group (``workers._activity``), added in schema version 3. Each epoch row has all
# of them (NULL for digital trials): ``*_moved`` percent of the group's analog weights changed since conversion,
# ``*_rel`` mean|dW| / mean|W| since conversion, ``*_transfers`` c-TTv2 transfer events so far.
ACTIVITY_GROUPS = ("embed", "blocks", "head")
ACTIVITY_FIELDS = tuple(f"{g}_{m}" for g in ACTIVITY_GROUPS for m in ("moved", "rel", "transfers"))
# The trial keeps its last epoch's moved and rel per group (refreshed with the other summaries).
TRIAL_ACTIVITY_FIELDS = tuple(f for f in ACTIVITY_FIELDS if not f.endswith("_transfers"))


def _activity_columns(names: tuple[str, ...]) -> list[sa.Column]:
    return [sa.Column(n, sa.Integer if n.endswith("_transfers") else sa.Float) for n in names]


# Where a point's learning rate and epoch were chosen (schema version 5): ``validation`` (the held-out split) or
# ``test`` (the paper's rule; every sweep recorded before version 5 chose so).
SELECTION_SPLITS = ("validation", "test")

SWEEP_STATUSES = ("pending", "running", "interrupted", "finished", "failed")
POINT_STATUSES = ("pending", "running", "done", "failed")
# ``diverged``: training produced a non-finite loss or weight (``workers._divergence``); never chosen as best.
TRIAL_STATUSES = ("running", "completed", "pruned", "failed", "diverged")

# Statuses after which a sweep or trial has an end time.
SWEEP_ENDED = ("interrupted", "finished", "failed")
TRIAL_ENDED = ("completed", "pruned", "failed", "diverged")

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
)

sweeps = sa.Table(
    "sweeps",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("spec", sa.JSON, nullable=False),
    sa.Column("spec_hash", sa.String(128), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("experiment_path", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True)),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    # How the sweep chooses each point's trial (added in schema version 5; older sweeps: test, per seed).
    sa.Column("selected_on", sa.String(20), nullable=False, server_default="test"),
    sa.Column("selection_per_seed", sa.Boolean, nullable=False, server_default=sa.true()),
)

points = sa.Table(
    "points",
    metadata,
    sa.Column("sweep", sa.String(200), sa.ForeignKey("sweeps.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("point_key", sa.String(200), primary_key=True),
    sa.Column("mode", sa.String(50), nullable=False),
    sa.Column("task", sa.String(100), nullable=False),
    sa.Column("classes", sa.JSON, nullable=False),
    sa.Column("seed", sa.Integer, nullable=False),
    *(sa.Column(axis, sa.Float, nullable=False) for axis in AXES),
    sa.Column("status", sa.String(20), nullable=False),
    # Written by ``Store.choose_best``; no foreign key, since trials already point at points.
    sa.Column("chosen_trial_id", sa.String(200)),
    # Added in schema version 5: the readable label (``analog_tl/5-8/transfer_noise=10/seed0``) and the choice:
    # the split it was made on, the chosen epoch, and the chosen trial's test and validation error at that epoch.
    sa.Column("label", sa.String(300)),
    sa.Column("selected_on", sa.String(20)),
    sa.Column("chosen_epoch", sa.Integer),
    sa.Column("chosen_test_error", sa.Float),
    sa.Column("chosen_validation_error", sa.Float),
    # Added in schema version 7: the analog training algorithm of an analog point (``c-ttv2``, ``ttv2``, ``agad``,
    # ``sgd``; the spec's ``algorithm.name`` or one of its ``algorithms``), NULL for a digital point.
    sa.Column("algorithm", sa.String(50)),
)

trials = sa.Table(
    "trials",
    metadata,
    sa.Column("trial_id", sa.String(200), primary_key=True),
    sa.Column("sweep", sa.String(200), nullable=False),
    sa.Column("point_key", sa.String(200), nullable=False),
    sa.Column("lr", sa.Float, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("ray_trial_id", sa.String(200)),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended_at", sa.DateTime(timezone=True)),
    sa.Column("epochs_done", sa.Integer, nullable=False, server_default="0"),
    sa.Column("final_test_error", sa.Float),
    sa.Column("best_test_error", sa.Float),
    sa.Column("best_epoch", sa.Integer),  # added in schema version 2
    sa.Column("error", sa.Text),
    *_activity_columns(TRIAL_ACTIVITY_FIELDS),  # added in schema version 3
    sa.Column("best_validation_error", sa.Float),  # added in schema version 5
    sa.Column("best_validation_epoch", sa.Integer),  # added in schema version 5
    # The resolved aihwkit rpu config the trial ran with: its ``config_hash`` in ``rpu_configs`` (schema version 6;
    # version 4 and 5 kept the JSON in each trial row). NULL for digital trials and trials recorded before version 4.
    sa.Column("rpu_config_hash", sa.String(64)),
    # The Ray node the trial ran on, with its package versions: its ``environment_hash`` in ``node_environments``
    # (schema version 8; a trial moved to another node points at the node of its last run). NULL for trials recorded
    # before version 8, and for a trial none of whose reports reached the driver.
    sa.Column("node_environment_hash", sa.String(64)),
    sa.ForeignKeyConstraint(["sweep", "point_key"], ["points.sweep", "points.point_key"], ondelete="CASCADE"),
    sa.Index("ix_trials_point", "sweep", "point_key"),
)

epochs = sa.Table(
    "epochs",
    metadata,
    sa.Column("trial_id", sa.String(200), sa.ForeignKey("trials.trial_id", ondelete="CASCADE"), primary_key=True),
    sa.Column("epoch", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("train_loss", sa.Float),
    sa.Column("test_error", sa.Float),
    sa.Column("test_accuracy", sa.Float),
    sa.Column("seconds", sa.Float),
    *_activity_columns(ACTIVITY_FIELDS),  # added in schema version 3
    sa.Column("validation_error", sa.Float),  # added in schema version 5
)

# Each distinct resolved aihwkit rpu config (``workers._rpu_json``), once, by the first 16 hex digits of the SHA-256
# of its canonical JSON (``_provenance.config_hash``); trials point at it (schema version 6). A study runs thousands
# of trials on a few dozen configs of about 7 kB each.
rpu_configs = sa.Table(
    "rpu_configs",
    metadata,
    sa.Column("config_hash", sa.String(64), primary_key=True),
    sa.Column("rpu_config", sa.JSON, nullable=False),
)

# Each Ray node trials ran on, with the versions of the packages that decide a trial's numbers as installed there
# (``orchestrator._node_versions``: python, analog-sweep, torch, torchvision, aihwkit, timm, numpy; None for one not
# installed), once, by the first 16 hex digits of the SHA-256 of the canonical JSON of the row's other columns
# (``_provenance.config_hash``); trials point at it (schema version 8). A node of other versions than the driver's
# produces other numbers: this keeps which trials ran where, and with what.
node_environments = sa.Table(
    "node_environments",
    metadata,
    sa.Column("environment_hash", sa.String(64), primary_key=True),
    sa.Column("node_id", sa.String(64)),  # Ray's node id (hex); a node that restarts gets a new one
    sa.Column("host", sa.String(255)),
    sa.Column("ip", sa.String(64)),
    sa.Column("packages", sa.JSON, nullable=False),  # name -> version (None: not installed there)
)

# Provenance (schema version 4): one row per ``run`` or ``resume`` of a sweep, with the environment it ran in.
RUN_KINDS = ("run", "resume")
sweep_runs = sa.Table(
    "sweep_runs",
    metadata,
    sa.Column("run_id", sa.String(64), primary_key=True),  # chosen by the driver, so a retried write is an upsert
    sa.Column("sweep", sa.String(200), sa.ForeignKey("sweeps.name", ondelete="CASCADE"), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("command", sa.Text),  # the command line, any store password replaced by ***
    sa.Column(
        "options", sa.JSON, nullable=False
    ),  # what changed how the sweep ran: --set overrides, --cpu-fallback, ...
    sa.Column("packages", sa.JSON, nullable=False),  # name -> version
    sa.Column("aihwkit_cuda", sa.Boolean),
    sa.Column("project_version", sa.String(50)),
    sa.Column("project_commit", sa.String(64)),
    sa.Column("project_dirty", sa.Boolean),
    sa.Column("host", sa.String(255)),
    sa.Column("platform", sa.String(255)),
    sa.Column("cpu", sa.JSON),  # {"model": ..., "count": ...}
    sa.Column("gpus", sa.JSON),  # {"model": ..., "count": ...}
    # What Ray offered: {"nodes", "cpus", "gpus", "accelerator_types"}, and from schema version 8 "node_environments":
    # the hashes (``node_environments``) of the nodes the driver checked before the first trial.
    sa.Column("cluster", sa.JSON),
    sa.Index("ix_sweep_runs_sweep", "sweep", "started_at"),
)

# Provenance (schema version 4): each pretrained model a sweep used, by its cache key and the hash of its file.
pretrained_models = sa.Table(
    "pretrained_models",
    metadata,
    sa.Column("sweep", sa.String(200), sa.ForeignKey("sweeps.name", ondelete="CASCADE"), primary_key=True),
    sa.Column("cache_key", sa.String(64), primary_key=True),
    sa.Column("file_hash", sa.String(64), primary_key=True),  # SHA-256 of the cache file, hex
    sa.Column("run_id", sa.String(64)),  # the run that first used it
    sa.Column("source_error", sa.Float),  # percent, on the source task's test split
    sa.Column("source_train_error", sa.Float),  # percent
    sa.Column("train_seconds", sa.Float),  # how long pretraining took when the file was made
    sa.Column("trained_now", sa.Boolean),  # trained by this sweep (else taken from the cache)
    sa.Column("path", sa.Text),
    sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=False),
)

# The tables users may read with ``results query``, in dependency order.
DATA_TABLES = (sweeps, points, trials, epochs, rpu_configs, node_environments, sweep_runs, pretrained_models)


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every time in the store is UTC, so say so."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def utc_row(row: Mapping[Any, Any]) -> dict[str, Any]:
    """A result row as a dict, its datetimes in UTC."""
    return {key: as_utc(value) if isinstance(value, datetime) else value for key, value in row.items()}
