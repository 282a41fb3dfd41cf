"""The results store of analog-sweep: every number a sweep produces, in one SQLite or PostgreSQL database.

``open_store`` gives a ``Store``; the sweep driver writes sweeps, points, trials and epochs to it with
idempotent upserts, and the ``analog-sweep results`` commands read it back (tables, curves, critical points,
Parquet, SQL). Each run and resume of a sweep also records how it was made (``Store.record_run``,
``record_pretrained``, ``set_trial_rpu_config``), read back as one dict by ``Store.provenance``.
``write_report`` turns a sweep into the study's report (HTML with the paper's figures, findings, provenance).
"""

from results._activity import activity_warnings
from results._best import PAPER_RULE, BestTrial, Candidate, Selection
from results._elbows import Elbow, estimate_elbow, sweep_elbows
from results._engine import STORE_ENV
from results._errors import (
    BadStoreURL,
    NotFound,
    QueryFailed,
    QueryRefused,
    SchemaVersionError,
    SpecConflict,
    StoreError,
    StoreInputError,
    StoreUnavailable,
    TrialConflict,
)
from results._figures import (
    AXIS_LABELS,
    MODE_STYLES,
    Figure,
    axis_figure,
    epochs_figure,
    plot_axis_curve,
    plot_epoch_curves,
)
from results._paper import PAPER_VALUES, PaperValue
from results._provenance import config_hash, redact
from results._labels import matching_points, point_label, point_sort_key, resolve_point, resolve_replicates
from results._readonly import QueryResult
from results._report import REPORT_NAME, build_report, write_report
from results._schema import (
    ACTIVITY_FIELDS,
    AXES,
    POINT_STATUSES,
    RUN_KINDS,
    SCHEMA_VERSION,
    SELECTION_SPLITS,
    SWEEP_STATUSES,
    TRIAL_ACTIVITY_FIELDS,
    TRIAL_STATUSES,
)
from results._store import Store, open_store

__all__ = [
    "ACTIVITY_FIELDS",
    "AXES",
    "AXIS_LABELS",
    "Figure",
    "MODE_STYLES",
    "PAPER_VALUES",
    "PaperValue",
    "REPORT_NAME",
    "BadStoreURL",
    "BestTrial",
    "Candidate",
    "Elbow",
    "NotFound",
    "PAPER_RULE",
    "POINT_STATUSES",
    "QueryFailed",
    "QueryRefused",
    "QueryResult",
    "RUN_KINDS",
    "SCHEMA_VERSION",
    "SELECTION_SPLITS",
    "STORE_ENV",
    "SWEEP_STATUSES",
    "SchemaVersionError",
    "Selection",
    "SpecConflict",
    "Store",
    "StoreError",
    "StoreInputError",
    "StoreUnavailable",
    "TRIAL_ACTIVITY_FIELDS",
    "TRIAL_STATUSES",
    "TrialConflict",
    "activity_warnings",
    "axis_figure",
    "build_report",
    "config_hash",
    "epochs_figure",
    "estimate_elbow",
    "matching_points",
    "open_store",
    "plot_axis_curve",
    "plot_epoch_curves",
    "point_label",
    "point_sort_key",
    "redact",
    "resolve_point",
    "resolve_replicates",
    "sweep_elbows",
    "write_report",
]
