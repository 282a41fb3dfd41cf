"""Smoke runs: a sweep made by a profile such as ``smoke`` (``sweeps.PROFILES``) checks that every stage runs, on a
tiny model, a few images and one epoch; its numbers are not results.

A smoke sweep's stored spec carries ``profile: smoke``. Every table, report and figure asks ``smoke_run`` and labels
such a sweep (``SMOKE_NOTE``), and the report sets none of its numbers beside the paper's.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

SMOKE = "smoke"
# What a smoke run is for; the line tables print on stderr and the report's banner (``SMOKE_NOTE``); the figures'
# title suffix (``SMOKE_TITLE``).
SMOKE_PURPOSE = "checks that every stage runs; its numbers are not results"
SMOKE_NOTE = f"Smoke run (--profile smoke): {SMOKE_PURPOSE}"
SMOKE_TITLE = "smoke run: not results"


def run_profile(spec: Mapping[str, Any] | None) -> str | None:
    """The profile a sweep was made with (``spec["profile"]``, e.g. ``"smoke"``), or None for a full run or a spec
    that is not a mapping."""
    if not isinstance(spec, Mapping):
        return None
    profile = spec.get("profile")
    return profile if isinstance(profile, str) and profile else None


def smoke_run(spec: Mapping[str, Any] | None) -> bool:
    """Whether the sweep of this stored spec (``Store.get_sweep(name)["spec"]``) is a smoke run."""
    return run_profile(spec) == SMOKE


def profile_note(spec: Mapping[str, Any] | None) -> str | None:
    """The line to print beside a table of this sweep (``SMOKE_NOTE``), or None for a full run."""
    return SMOKE_NOTE if smoke_run(spec) else None
