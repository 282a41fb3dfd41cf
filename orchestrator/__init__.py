"""The sweep orchestrator: expands a spec, pretrains once per key, runs the learning-rate searches on Ray Tune.

``run_sweep`` starts a sweep, ``resume_sweep`` continues an interrupted one; both write every report to the results
store as it arrives. The Ray Tune pieces (the per-point Optuna searcher, the pruning scheduler, the trial function,
the store and progress callbacks, the provenance gatherer) each live in their own private module.
"""

from orchestrator._driver import (
    ClusterError,
    PreflightError,
    PretrainingFailed,
    SweepFailed,
    SweepOutcome,
    SweepPaths,
    SweepStateError,
    driver_alive,
    error_summary,
    ray_session,
    resume_sweep,
    run_sweep,
    sweep_paths,
    trial_resources,
)
from orchestrator._provenance import Invocation, gather_environment, version_warnings
from orchestrator._dashboard import dashboard_app, read_only_studies, serve_dashboard, sweep_journal
from orchestrator._jobs import (
    JobInputError,
    JobsError,
    SubmittedJob,
    job_logs,
    job_status,
    list_sweep_jobs,
    submit_resume,
    submit_sweep,
    wait_for_start,
)
from orchestrator._recorder import StoreGaveUp, with_retries
from orchestrator._search import JournalDamaged, LearningRateSearch, repair_journal, trial_id_for

__all__ = [
    "JobInputError",
    "dashboard_app",
    "read_only_studies",
    "serve_dashboard",
    "sweep_journal",
    "JobsError",
    "SubmittedJob",
    "job_logs",
    "job_status",
    "list_sweep_jobs",
    "submit_resume",
    "submit_sweep",
    "wait_for_start",
    "ClusterError",
    "Invocation",
    "JournalDamaged",
    "LearningRateSearch",
    "PreflightError",
    "PretrainingFailed",
    "SweepFailed",
    "StoreGaveUp",
    "SweepOutcome",
    "SweepPaths",
    "SweepStateError",
    "driver_alive",
    "error_summary",
    "gather_environment",
    "ray_session",
    "repair_journal",
    "resume_sweep",
    "run_sweep",
    "sweep_paths",
    "trial_id_for",
    "trial_resources",
    "version_warnings",
    "with_retries",
]
