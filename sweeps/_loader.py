"""Reading a sweep spec: YAML text, then ``--set`` overrides on the raw mapping, then validation."""

from __future__ import annotations

import copy
import dataclasses
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from analog_sweep.sweeps._expand import count_points, refinement_budget
from analog_sweep.sweeps._overrides import apply_overrides
from analog_sweep.sweeps._profiles import profile_overrides
from analog_sweep.sweeps._schema import DEFAULT_PATIENCE, DEFAULT_WARM_START, SpecError, SweepSpec, build_spec
from analog_sweep.sweeps._yaml import parse_yaml
from analog_sweep.workers import content_hash

# Larger files are not sweep specs; refusing them early keeps a wrong path from being read whole.
MAX_FILE_BYTES = 1_000_000


def load_spec(path: str | os.PathLike[str], overrides: Iterable[str] = (), *, profile: str | None = None) -> SweepSpec:
    """Read, override and validate the sweep spec at ``path``; any problem raises a one-line ``SpecError``.

    ``profile`` (``sweeps.PROFILES``, e.g. ``"smoke"``) adds that profile's overrides before ``overrides``, so the
    caller's own still win; ``spec.overrides`` then holds both, the profile's first. Only ``profile`` sets the spec's
    ``profile`` field: the field in the file or in ``overrides`` is refused."""
    source = os.fspath(path)
    if "\0" in source:
        raise SpecError(f"{source!r}: cannot read: the path contains a NUL byte")
    try:
        # O_NONBLOCK: a FIFO or device given by mistake is refused below instead of blocking the open.
        descriptor = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
        try:
            if not stat.S_ISREG(os.fstat(descriptor).st_mode):
                raise SpecError(f"{source}: not a regular file")
            with os.fdopen(os.dup(descriptor), "rb") as handle:
                text = handle.read(MAX_FILE_BYTES + 1)
        finally:
            os.close(descriptor)
    except OSError as error:
        raise SpecError(f"{source}: cannot read: {error.strerror or error}") from None
    if len(text) > MAX_FILE_BYTES:
        raise SpecError(f"{source}: larger than {MAX_FILE_BYTES} bytes; not a sweep spec")
    raw = parse_yaml(text, source=source)
    # ``profile`` records what ``--profile`` did to the spec: set by hand, it would label a full run a smoke run (or
    # take the label off one), so only the profile sets it.
    if isinstance(raw, dict) and "profile" in raw:
        raise SpecError(f"{source}: profile: set by --profile, not in the spec file")
    for override in overrides:
        if isinstance(override, str) and override.partition("=")[0].strip().split(".")[0] == "profile":
            raise SpecError(f"{source}: --set {override!r}: profile is set by --profile, not by --set")
    if profile is not None:
        overrides = [*profile_overrides(raw, profile, source=source), *overrides]
    return spec_from_mapping(raw, source=source, overrides=overrides)


def spec_from_mapping(raw: Any, *, source: str = "<mapping>", overrides: Iterable[str] = ()) -> SweepSpec:
    """Validate an already parsed mapping (a copy is kept as ``raw``), after applying ``overrides``."""
    overrides = tuple(overrides)
    submitted = copy.deepcopy(raw)
    set_by = apply_overrides(submitted, overrides, source=source)
    spec = build_spec(submitted, source=source, set_by=set_by)
    points = count_points(spec)
    budget = refinement_budget(spec)
    if points + budget > spec.max_points:
        refined = f" (and refinement may add {budget})" if budget else ""
        raise SpecError(
            f"{source}: max_points: the sweep expands to {points} points{refined}, more than "
            f"max_points={spec.max_points}; sweep fewer values or raise max_points"
        )
    return dataclasses.replace(spec, overrides=overrides)


def spec_as_recorded(raw: Any, *, selected_on: str, per_seed: bool, source: str) -> SweepSpec:
    """The spec of a sweep as the store recorded it, read the way it ran.

    Sweeps recorded before selection existed (store schema < 5) have no ``selection`` in their mapping and are
    recorded as chosen on test (``selected_on``); they ran without a validation split. Read with today's defaults
    (``data.validation_fraction`` 0.1, selection on validation) they would expand to other points, so a resume would
    start another sweep under the old name: they are read with ``validation_fraction`` 0 (unless they set one) and
    their recorded rule instead, which gives the points they ran. Every other mapping is validated as it is.
    """
    if isinstance(raw, dict) and "selection" not in raw and selected_on == "test":
        raw = copy.deepcopy(raw)
        data = raw.setdefault("data", {})
        if isinstance(data, dict):
            data.setdefault("validation_fraction", 0)
        raw["selection"] = {"split": "test", "per_seed": per_seed}
    return spec_from_mapping(raw, source=source)


def spec_hash(spec: SweepSpec) -> str:
    """A content hash of the validated spec (defaults filled in), independent of file name, layout and spelling."""
    content = _plain({f.name: getattr(spec, f.name) for f in dataclasses.fields(spec) if f.compare})
    if not content["axes"]["refine"]:
        del content["axes"]["refine"]  # a spec without refinement hashes as it did before axes.refine existed
    if content["lr_search"]["warm_start"] == DEFAULT_WARM_START:
        del content["lr_search"]["warm_start"]  # likewise the default warm start: sweeps recorded before it resume
    if content["lr_search"]["patience"] == DEFAULT_PATIENCE:
        del content["lr_search"]["patience"]  # and the default patience
    if content["profile"] is None:
        del content["profile"]  # a spec made without a profile hashes as it did before profiles were recorded
    algorithms = content.pop("algorithms")
    if len(algorithms) == 1:
        content["algorithm"] = algorithms[0]  # one algorithm hashes as the algorithm section did before lists existed
    else:
        content["algorithms"] = algorithms
    return content_hash(content)


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def shipped_specs() -> dict[str, Path]:
    """The YAML specs shipped in this package, by name (file stem)."""
    return {path.stem: path for path in sorted(Path(__file__).parent.glob("*.yaml"))}
