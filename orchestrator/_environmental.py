"""Why a trial failed: its environment (a full disk, memory, a lost node, the store away) or the trial itself.

A trial that failed on its environment succeeds once the cause is gone, so ``resume`` runs it again; one that failed
on bad data or config, diverged, or raised anything not known to be environmental would only fail the same way
again, and is kept as failed. Some environmental causes last for the rest of a run (a full disk is not emptied by
waiting): retrying such a trial, or starting others, only repeats the error, so the sweep stops on the first
(``LASTING``).

The cause is read from the one-line error a trial's failure leaves (``error_summary``, the last line of Ray Tune's
error file, or the worker's own report), so the same rules apply to a trial that failed in this run and to one read
back from the store or the journal at a resume.
"""

from __future__ import annotations

import errno
import re

DISK_FULL = "No space left on device"
QUOTA = "Disk quota exceeded"
STORE_FULL = "database or disk is full"
MEMORY = "out of memory"
LOST = "lost node or worker"
STORE_AWAY = "store unavailable"

# Causes that do not go away while the sweep runs: the sweep stops on the first instead of failing trial after trial.
LASTING = frozenset({DISK_FULL, QUOTA, STORE_FULL})

# Failures of the trial itself, whatever the message goes on to say: the worker's own errors for bad data, config
# or model (``workers``), and divergence.
_DETERMINISTIC = re.compile(r"^\s*(?:[\w.]+\.)?(?:DataError|ConfigError|ModelError|TrainingDiverged)\b")

# Each cause by what its one-line error says, first match wins.
_CAUSES = (
    (DISK_FULL, re.compile(r"no space left on device|\[errno 28\]|\bENOSPC\b", re.IGNORECASE)),
    (QUOTA, re.compile(r"disk quota exceeded|\[errno 122\]|\bEDQUOT\b", re.IGNORECASE)),
    (STORE_FULL, re.compile(r"database or disk is full", re.IGNORECASE)),
    (
        MEMORY,
        re.compile(
            r"\bMemoryError\b|OutOfMemoryError|out of memory|cannot allocate memory|\[errno 12\]|"
            r"running low on memory",
            re.IGNORECASE,
        ),
    ),
    (
        LOST,
        re.compile(
            r"NodeDiedError|ActorDiedError|WorkerCrashedError|ActorUnavailableError|OwnerDiedError|ObjectLostError|"
            r"RaySystemError|node (?:\S+ )?(?:died|dying|was removed)|actor died|worker died",
            re.IGNORECASE,
        ),
    ),
    (STORE_AWAY, re.compile(r"StoreUnavailable|StoreGaveUp|results store unavailable", re.IGNORECASE)),
)

_ERRNOS = {errno.ENOSPC: DISK_FULL, errno.EDQUOT: QUOTA, errno.ENOMEM: MEMORY}


def environmental_cause(error: str | None) -> str | None:
    """The environmental cause a trial's one-line error names, or None for a failure of the trial itself.

    Args:
        error: The error as the trial's failure left it (``"OSError: [Errno 28] No space left on device"``); None or
            empty when none was recorded, which is not known to be environmental.

    Returns:
        One of ``DISK_FULL``, ``QUOTA``, ``STORE_FULL``, ``MEMORY``, ``LOST``, ``STORE_AWAY``; None for bad data or
        config, divergence, and anything else.
    """
    if not error or _DETERMINISTIC.match(error):
        return None
    for cause, pattern in _CAUSES:
        if pattern.search(error):
            return cause
    return None


def exception_cause(exc: BaseException) -> str | None:
    """The environmental cause of an exception (or of one it was raised from), for a failure as it happens.

    An ``OSError`` is read by its errno (a full disk raises ENOSPC whatever its message says), anything else by its
    one-line text (``environmental_cause``).
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _ERRNOS:
            return _ERRNOS[current.errno]
        cause = environmental_cause(f"{type(current).__name__}: {current}")
        if cause is not None:
            return cause
        current = current.__cause__ or current.__context__
    return None


def is_lasting(cause: str | None) -> bool:
    """Whether a cause stays for the rest of a run (``LASTING``): the sweep stops instead of retrying."""
    return cause in LASTING


def summarise_causes(causes: list[str]) -> str:
    """The distinct causes in first-seen order, joined for a message: ``"No space left on device, out of memory"``."""
    return ", ".join(dict.fromkeys(causes))
