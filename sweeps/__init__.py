"""Sweep specs: one YAML file describes a whole robustness study; this package validates it and expands it.

A spec is loaded (``load_spec``: strict YAML, ``--set`` overrides, validation), expanded into points (``expand``),
priced (``estimate_cost``, ``dry_run_report``), and each point turned into worker configs (``trial_config``).
Data flows spec -> orchestrator -> worker -> store, so this package imports only ``workers``. The schema is in
``sweeps/README.md``; the shipped specs are ``sweeps/*.yaml`` (``shipped_specs``).
"""

from analog_sweep._exports import lazy_exports

_EXPORTS = {
    "_cost": (
        "CostEstimate",
        "Environment",
        "Preflight",
        "detect_environment",
        "dry_run_report",
        "estimate_cost",
        "preflight_problems",
        "refinement_cost",
        "work_units",
    ),
    "_expand": (
        "MODE_AXES",
        "Point",
        "PretrainJob",
        "count_points",
        "expand",
        "format_value",
        "line_points",
        "pretrain_keys",
        "refine_modes",
        "refinement_budget",
        "trial_config",
    ),
    "_loader": ("load_spec", "shipped_specs", "spec_as_recorded", "spec_from_mapping", "spec_hash"),
    "_overrides": ("apply_overrides", "parse_override"),
    "_profiles": ("PROFILES", "profile_overrides"),
    "_schema": (
        "AxesSpec",
        "DataSpec",
        "LrSearchSpec",
        "PretrainSpec",
        "RefineSpec",
        "ResourcesSpec",
        "SelectionSpec",
        "SpecError",
        "SweepSpec",
    ),
}
__all__, __getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
