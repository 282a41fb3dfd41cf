"""What the store's ``running`` means right now: a sweep whose driver holds no lock is not running.

The store records ``running`` when a driver starts; a driver that is killed (SIGKILL, a lost machine) cannot record
that it stopped. The driver holds an exclusive lock on ``<experiment_path>/driver.lock`` for as long as it lives, so
any command that lists sweeps checks it and says ``stopped`` for a ``running`` sweep whose lock nobody holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from analog_sweep.orchestrator import driver_alive

STOPPED = "stopped"  # shown instead of "running" when no driver holds the sweep's lock


def resume_hint(name: str) -> str:
    return f"continue it with 'analog-sweep resume {name}'"


def live_status(status: str, experiment_path: str | None) -> str:
    """``status`` as the store has it, except ``running`` without a live driver, which is ``stopped``. A sweep whose
    folder is not on this machine (another node's disk) keeps the store's word: this machine cannot tell."""
    if status == "running" and driver_alive(experiment_path) is False:
        return STOPPED
    return status


def with_live_status(rows: Iterable[dict[str, Any]], echo: Callable[[str], None]) -> list[dict[str, Any]]:
    """Sweep rows (``sweep``, ``status``, ``experiment_path``) with the live status, and one line on ``echo`` for
    each sweep that the store calls running but no driver runs, with the next step."""
    checked = []
    for row in rows:
        status = live_status(row["status"], row.get("experiment_path"))
        if status != row["status"]:
            echo(
                f"sweep {row['sweep']}: running in the store, but no driver is running it (it stopped without "
                f"saying so): {resume_hint(row['sweep'])}"
            )
        checked.append({**row, "status": status})
    return checked
