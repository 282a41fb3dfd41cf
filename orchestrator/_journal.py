"""Checks and repairs a sweep's Optuna journal before the learning-rate search opens it (``repair_journal``)."""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend

from analog_sweep.orchestrator._errors import JournalDamaged


def repair_journal(path: str | Path, notice: Callable[[str], None]) -> None:
    """Check a sweep's Optuna journal before it is opened; repair a torn last record, refuse any other damage.

    Optuna appends one JSON record a line. A crash, a power cut or a full disk can leave the last record cut short,
    or a run of NUL bytes where it should be. Optuna skips such a line when it reads, but its next record is then
    appended onto it, and from then on every read of the journal fails. A damaged *last* record is the write that
    did not happen (the search is built to survive a stop between any two of its writes), so it is removed, after
    the file is copied to ``<journal>.damaged-<time>``. A missing journal is left alone.

    Args:
        path: The journal file.
        notice: Called with one line when a torn last record was removed.

    Raises:
        JournalDamaged: If the damage is anywhere else (a line that is not a record, followed by more records), the
            path is not a file, or Optuna cannot replay the records; the file is left as it is.
    """
    path = Path(path)
    if not path.exists():
        return
    if not path.is_file():
        raise JournalDamaged(f"optuna journal {path} is not a file: move it away, then resume")
    data = path.read_bytes()
    lines = data.splitlines(keepends=True)
    good = 0
    for number, line in enumerate(lines, start=1):
        if _is_record(line):
            good += len(line)
        elif number < len(lines):
            raise JournalDamaged(
                f"optuna journal {path} is damaged at line {number} of {len(lines)} ({_describe(line)}), not at its "
                "end, so it cannot be repaired safely; nothing was changed: restore the file from a backup, or run "
                "the sweep again under a new name"
            )
    if good < len(data):
        backup = _backup_name(path)
        shutil.copy2(path, backup)
        with open(backup, "rb+") as handle:
            os.fsync(handle.fileno())
        with open(path, "rb+") as handle:
            handle.truncate(good)
            os.fsync(handle.fileno())
        notice(
            f"optuna journal {path}: removed a torn last record ({len(data) - good} bytes, as a crash or a full "
            f"disk leaves it); the damaged file is kept as {backup}"
        )
    try:
        JournalStorage(JournalFileBackend(str(path)))  # replays every record
    except Exception as exc:  # noqa: BLE001 - whatever Optuna's replay raises, the cause is the file
        reason = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise JournalDamaged(
            f"optuna journal {path} cannot be replayed ({type(exc).__name__}: {reason}); nothing was changed: "
            "restore the file from a backup, or run the sweep again under a new name"
        ) from None


def _is_record(line: bytes) -> bool:
    """Whether ``line`` is a whole journal record: newline-terminated JSON object with an operation code."""
    if not line.endswith(b"\n"):
        return False
    try:
        record = json.loads(line)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return False
    return isinstance(record, dict) and isinstance(record.get("op_code"), int) and "worker_id" in record


def _describe(line: bytes) -> str:
    """A damaged line in words, for the error message."""
    if line.strip(b"\0\n") == b"":
        return f"{len(line)} NUL bytes"
    return f"not a journal record: {line[:40]!r}"


def _backup_name(path: Path) -> Path:
    """A name beside ``path`` for the copy of a damaged journal, stamped with the time and never an existing one."""
    stamp = time.strftime("%Y%m%dT%H%M%S")
    backup = path.with_name(f"{path.name}.damaged-{stamp}")
    n = 1
    while backup.exists():
        n += 1
        backup = path.with_name(f"{path.name}.damaged-{stamp}-{n}")
    return backup
