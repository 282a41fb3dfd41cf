"""The sweep orchestrator: expands a spec, pretrains once per key, runs the learning-rate searches on Ray Tune.

``run_sweep`` starts a sweep, ``resume_sweep`` continues an interrupted one; both write every report to the results
store as it arrives. The Ray Tune pieces (the per-point Optuna searcher, the pruning scheduler, the trial function,
the store and progress callbacks, the provenance gatherer) each live in their own private module.
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_dashboard": ("dashboard_app", "read_only_studies", "serve_dashboard", "sweep_journal"),
    "_driver": (
        "ClusterError",
        "PreflightError",
        "PretrainingFailed",
        "SweepFailed",
        "SweepOutcome",
        "SweepPaths",
        "SweepStateError",
        "driver_alive",
        "error_summary",
        "ray_session",
        "resume_sweep",
        "run_sweep",
        "sweep_paths",
        "trial_resources",
    ),
    "_jobs": (
        "JobInputError",
        "JobsError",
        "SubmittedJob",
        "job_logs",
        "job_status",
        "list_sweep_jobs",
        "submit_resume",
        "submit_sweep",
        "wait_for_start",
    ),
    "_provenance": ("Invocation", "gather_environment", "version_warnings"),
    "_recorder": ("StoreGaveUp", "with_retries"),
    "_search": ("JournalDamaged", "LearningRateSearch", "repair_journal", "trial_id_for"),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
