"""Small files shared by the driver and the workers: advisory locks asked about, and state files replaced whole.

The sweep's driver lock (``orchestrator._paths``) and the pretrained-model cache's entry locks (``workers._pretrain``)
are both read with ``probe_lock``: ``status`` asks whether a driver is alive, the driver whether a model is being
trained. The pretraining progress files (the worker's beside its cache entry, the driver's ``pretraining.json``) are
written with ``replace_text``, so a reader never sees half a file.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path


def probe_lock(path: str | os.PathLike[str]) -> bool | None:
    """Whether some process holds the lock on ``path`` now: takes a shared lock for an instant, without waiting.

    Returns:
        True (held) or False (free); None when the file is missing or cannot be opened or locked (this process cannot
        tell).
    """
    try:
        handle = open(path)
    except OSError:
        return None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        except OSError:
            return None
        fcntl.flock(handle, fcntl.LOCK_UN)
        return False


def replace_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file beside it and ``os.replace``: the old content or the new,
    never a part.

    Raises:
        OSError: If the folder cannot be written.
    """
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    os.replace(temporary, path)
