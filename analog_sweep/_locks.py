"""Whether another process holds an advisory file lock (``fcntl.flock``), asked without waiting and without keeping it.

The sweep's driver lock (``orchestrator._paths``) and the pretrained-model cache's entry locks (``workers._pretrain``)
are both read this way: ``status`` asks whether a driver is alive, the driver whether a model is being trained.
"""

from __future__ import annotations

import fcntl
import os


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
