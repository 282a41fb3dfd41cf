"""Sweep specs: one YAML file describes a whole robustness study; this package validates it and expands it.

A spec is loaded (``load_spec``: strict YAML, ``--set`` overrides, validation), expanded into points (``expand``),
priced (``estimate_cost``, ``dry_run_report``), and each point turned into worker configs (``trial_config``).
Data flows spec -> orchestrator -> worker -> store, so this package imports only ``workers``. The schema is in
``sweeps/README.md``; the shipped specs are ``sweeps/*.yaml`` (``shipped_specs``).
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_cost": ("CostEstimate", "estimate_cost", "refinement_cost", "work_units"),
    "_dry_run": ("dry_run_report",),
    "_environment": ("Environment", "Preflight", "detect_environment", "preflight_problems"),
    "_errors": ("SpecError",),
    "_expand": (
        "ANALOG_MODES",
        "MODE_AXES",
        "Point",
        "PretrainJob",
        "count_points",
        "expand",
        "format_value",
        "line_points",
        "mode_algorithms",
        "pretrain_keys",
        "refine_modes",
        "refinement_budget",
        "trial_config",
    ),
    "_loader": ("load_spec", "shipped_specs", "spec_as_recorded", "spec_from_mapping", "spec_hash"),
    "_measured": ("MeasuredPretraining", "measured_epochs", "measured_pretraining", "timing_key"),
    "_neighbours": ("Neighbourhood", "neighbourhood"),
    "_overrides": ("apply_overrides", "parse_override"),
    "_profiles": ("PROFILES", "profile_overrides"),
    "_schema": (
        "algorithm_from_mapping",
        "AxesSpec",
        "DataSpec",
        "LrSearchSpec",
        "PretrainSpec",
        "RefineSpec",
        "ResourcesSpec",
        "SelectionSpec",
        "SweepSpec",
    ),
    "_scheduling": (
        "COMPLETE",
        "FAILED",
        "PRUNED",
        "RUNNING",
        "BreadthFirst",
        "TrialRecord",
        "bracket_pending",
        "has_finished",
        "has_settled",
        "is_ready",
        "may_ask",
        "may_warm_start",
        "seed_leaders",
        "seeds_share_search",
        "start_up_count",
        "stops_by_patience",
        "warm_starts",
    ),
    "_yaml": ("parse_yaml",),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
