"""Exceptions of the sweep orchestrator, one line each, split by whose fault it is so callers can map exit codes.

The ``ValueError`` ones (``SweepStateError``, ``PreflightError``, ``JobInputError``) are bad input: the same request
fails again until the caller changes it. The ``RuntimeError`` ones are failures along the way; the sweep they stop can
be resumed once the cause is gone. ``error_summary`` turns any of them, or anything else a sweep raises, into one
line. The journal's ``JournalDamaged`` lives with the journal code.
"""

from __future__ import annotations

import sys


class SweepStateError(ValueError):
    """The sweep cannot be run or resumed in its present state; the message says what to do instead."""


class PreflightError(ValueError):
    """The sweep cannot succeed as specified (its data files are missing, ...): found before Ray starts or anything
    is written; the message says what to fix."""


class ClusterError(RuntimeError):
    """The Ray cluster cannot give the sweep what its spec asks for; the message lists what it has."""


class PretrainingFailed(RuntimeError):
    """A pretraining job raised; the message names its key and the cause in one line."""


class SweepFailed(RuntimeError):
    """The sweep stopped on an error after it was marked running; it is now marked ``failed`` and the message says
    why and how to continue it."""


class LastingFailure(RuntimeError):
    """A trial failed on a cause that lasts for the rest of the run (a full disk), so the sweep stopped; once the
    cause is gone, ``resume`` runs the trial again.

    Args:
        trial_id: The trial.
        error: Its one-line error.
        log: The file holding its traceback (the worker's log), or None.
    """

    def __init__(self, trial_id: str, error: str, log: str | None = None) -> None:
        where = f" (traceback in {log})" if log else ""
        super().__init__(f"trial {trial_id} failed: {error}{where}")
        self.trial_id, self.error, self.log = trial_id, error, log


class StoreGaveUp(RuntimeError):
    """The store stayed unavailable through every retry; the sweep stops and can be resumed."""


class JobsError(RuntimeError):
    """The jobs server could not be reached or refused a request; the message says which and why."""


class JobInputError(ValueError):
    """Bad input for a job (an unknown job id, a store URL that would leak a password or land nowhere)."""


def error_summary(exc: BaseException) -> str:
    """One line, at most 400 characters, for an error of any kind.

    Args:
        exc: The error. A Ray task error is shown by its cause; a multi-line text (a traceback that Ray Tune wraps)
            by its last line.

    Returns:
        ``"TypeName: message"``, or the bare message for the orchestrator's own one-line errors (``SweepFailed``,
        ``PretrainingFailed``, ``LastingFailure``), whose messages already say what happened.
    """
    # Only a process that imported Ray can hold a Ray task error; one that did not is not made to import it.
    ray_exceptions = sys.modules.get("ray.exceptions")
    cause = getattr(exc, "cause", None)
    if ray_exceptions is not None and isinstance(exc, ray_exceptions.RayTaskError) and isinstance(cause, BaseException):
        exc = cause
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[-1] if len(lines) > 1 and "Traceback" in str(exc) else " ".join(lines)
    if not text:
        return type(exc).__name__
    if isinstance(exc, (SweepFailed, PretrainingFailed, LastingFailure)):
        return text[:400]
    return f"{type(exc).__name__}: {text}"[:400]


class JournalDamaged(RuntimeError):
    """The Optuna journal is damaged in a way that cannot be repaired safely.

    The message names the file and what to do; nothing was written to it.
    """
