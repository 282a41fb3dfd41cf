"""The results store of analog-sweep: every number a sweep produces, in one SQLite or PostgreSQL database.

``open_store`` gives a ``Store``; the sweep driver writes sweeps, points, trials and epochs to it with
idempotent upserts, and the ``analog-sweep results`` commands read it back (tables, curves, critical points,
Parquet, SQL). Each run and resume of a sweep also records how it was made (``Store.record_run``,
``record_pretrained``, ``set_trial_rpu_config``), read back as one dict by ``Store.provenance``.
``write_report`` turns a sweep into the study's report (HTML with the paper's figures, findings, provenance).
``smoke_run`` / ``profile_note`` tell a smoke run (its numbers are not results) from a full one, for every table.
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_activity": ("activity_warnings", "frozen_tiles", "sweep_activity_warnings"),
    "_design": ("design_warnings",),
    "_algorithms": ("ALGORITHM_LABELS", "algorithm_differences", "algorithm_label", "compared_algorithms"),
    "_best": ("BestTrial", "Candidate", "PAPER_RULE", "Selection"),
    "_elbows": (
        "Elbow",
        "MIN_AXIS_VALUES",
        "elbow_outcome",
        "estimate_elbow",
        "sweep_elbows",
        "untested_note",
        "few_seeds_elbows_note",
        "elbow_few_seeds",
    ),
    "_engine": ("SQLITE_BUSY_ENV", "STORE_ENV", "without_secrets"),
    "_errors": (
        "BadStoreURL",
        "NotFound",
        "QueryFailed",
        "QueryRefused",
        "SchemaVersionError",
        "SpecConflict",
        "StoreDamaged",
        "StoreError",
        "StoreInputError",
        "StoreMissing",
        "StoreOutdated",
        "StoreUnavailable",
        "TrialConflict",
    ),
    "_figures": (
        "ALGORITHM_COLOURS",
        "AXIS_LABELS",
        "Figure",
        "MODE_STYLES",
        "axis_figure",
        "epochs_figure",
        "plot_axis_curve",
        "plot_epoch_curves",
    ),
    "_integrity": (
        "BACKUPS_ENV",
        "Backup",
        "Check",
        "Restored",
        "backup_before_run",
        "backup_folder",
        "backup_store",
        "check_store",
        "list_backups",
        "restore_store",
        "salvage_store",
        "Salvaged",
        "sqlite_store_path",
        "sweeps_a_restore_touches",
    ),
    "_labels": ("matching_points", "point_label", "point_sort_key", "resolve_point", "resolve_replicates"),
    "_paper": ("PAPER_VALUES", "PaperValue"),
    "_profile": ("SMOKE_NOTE", "profile_note", "run_profile", "smoke_run"),
    "_provenance": (
        "config_hash",
        "differences_text",
        "driver_packages",
        "node_label",
        "nodes_summary",
        "package_differences",
        "redact",
    ),
    "_replicates": ("MIN_REPLICATES", "difference", "few_seeds_note", "replicate_rows"),
    "_readonly": ("QueryResult",),
    "_report": ("REPORT_NAME", "build_report", "write_report"),
    "_schema": (
        "ACTIVITY_FIELDS",
        "AXES",
        "POINT_STATUSES",
        "RUN_KINDS",
        "SCHEMA_VERSION",
        "SELECTION_SPLITS",
        "SWEEP_STATUSES",
        "TRIAL_ACTIVITY_FIELDS",
        "TRIAL_STATUSES",
    ),
    "_store": ("Store", "open_store", "upgrade_store"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
