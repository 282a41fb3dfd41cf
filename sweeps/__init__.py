"""Sweep specs: one YAML file describes a whole robustness study; this package validates it and expands it.

A spec is loaded (``load_spec``: strict YAML, ``--set`` overrides, validation), expanded into points (``expand``),
priced (``estimate_cost``, ``dry_run_report``), and each point turned into worker configs (``trial_config``).
Data flows spec -> orchestrator -> worker -> store, so this package imports only ``workers``. The schema is in
``sweeps/README.md``; the shipped specs are ``sweeps/*.yaml`` (``shipped_specs``).
"""

from pathlib import Path

from sweeps._cost import (
    CostEstimate,
    Environment,
    Preflight,
    detect_environment,
    dry_run_report,
    estimate_cost,
    preflight_problems,
    refinement_cost,
    work_units,
)
from sweeps._expand import (
    MODE_AXES,
    Point,
    PretrainJob,
    count_points,
    expand,
    format_value,
    line_points,
    pretrain_keys,
    refine_modes,
    refinement_budget,
    trial_config,
)
from sweeps._loader import load_spec, spec_as_recorded, spec_from_mapping, spec_hash
from sweeps._overrides import apply_overrides, parse_override
from sweeps._profiles import PROFILES, profile_overrides
from sweeps._schema import (
    AxesSpec,
    DataSpec,
    LrSearchSpec,
    PretrainSpec,
    RefineSpec,
    ResourcesSpec,
    SelectionSpec,
    SpecError,
    SweepSpec,
)


def shipped_specs() -> dict[str, Path]:
    """The YAML specs shipped in this package, by name (file stem)."""
    return {path.stem: path for path in sorted(Path(__file__).parent.glob("*.yaml"))}


__all__ = [
    "MODE_AXES",
    "PROFILES",
    "AxesSpec",
    "CostEstimate",
    "DataSpec",
    "Environment",
    "LrSearchSpec",
    "Point",
    "Preflight",
    "PretrainJob",
    "PretrainSpec",
    "RefineSpec",
    "ResourcesSpec",
    "SelectionSpec",
    "SpecError",
    "SweepSpec",
    "apply_overrides",
    "count_points",
    "detect_environment",
    "dry_run_report",
    "estimate_cost",
    "expand",
    "format_value",
    "line_points",
    "load_spec",
    "parse_override",
    "preflight_problems",
    "pretrain_keys",
    "refine_modes",
    "refinement_budget",
    "refinement_cost",
    "profile_overrides",
    "shipped_specs",
    "spec_as_recorded",
    "spec_from_mapping",
    "spec_hash",
    "trial_config",
    "work_units",
]
