"""The sweep orchestrator: expands a spec, pretrains once per key, runs the learning-rate searches on Ray Tune.

``run_sweep`` starts a sweep, ``resume_sweep`` continues an interrupted one; both write every report to the results
store as it arrives. The Ray Tune pieces (the per-point Optuna searcher, the pruning scheduler, the trial function,
the store and progress callbacks, the provenance gatherer) each live in their own private module.
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_cluster": ("ray_session", "trial_resources"),
    "_dashboard": ("dashboard_app", "read_only_studies", "serve_dashboard", "sweep_journal"),
    "_driver": ("SweepOutcome", "resume_sweep", "run_sweep"),
    "_environmental": ("environmental_cause", "is_lasting"),
    "_errors": (
        "ClusterError",
        "JournalDamaged",
        "JobInputError",
        "JobsError",
        "PreflightError",
        "PretrainingFailed",
        "StoreGaveUp",
        "SweepFailed",
        "SweepStateError",
        "error_summary",
    ),
    "_jobs": (
        "SubmittedJob",
        "job_logs",
        "job_status",
        "list_sweep_jobs",
        "submit_resume",
        "submit_sweep",
        "wait_for_start",
    ),
    "_journal": ("repair_journal",),
    "_paths": (
        "CACHE_ENV",
        "SweepPaths",
        "driver_alive",
        "models_in_cache",
        "pretrain_cache_dir",
        "pretraining_lines",
        "sweep_paths",
    ),
    "_provenance": ("Invocation", "gather_environment", "version_warnings"),
    "_retrying_store": ("RETRIES_ENV", "RETRY_DELAY_ENV", "RetryingStore", "retry_policy", "with_retries"),
    "_search": ("LearningRateSearch", "trial_id_for"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
