"""Checksummed, atomically written torch files, so a crash or a damaged disk never feeds training garbage.

A file is ``MAGIC``, the SHA-256 of the payload in hex, a newline, then a ``torch.save`` payload of tensors and plain
values. It is written to a temporary name, flushed to disk and renamed, so readers see the old file or the new one,
never half of one; it is read back with ``weights_only=True``, so loading never runs code from the file.
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ._errors import CorruptFileError

MAGIC = b"analog-sweep-v1\n"


def save_verified(payload: Any, path: str | os.PathLike) -> None:
    """Write ``payload`` to ``path`` atomically with its checksum."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    data = buffer.getvalue()
    digest = hashlib.sha256(data).hexdigest().encode()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(MAGIC + digest + b"\n" + data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def load_verified(path: str | os.PathLike) -> Any:
    """Read a file written by ``save_verified``; raise ``CorruptFileError`` if it does not check out."""
    path = Path(path)
    blob = path.read_bytes()
    head = len(MAGIC) + 65
    if not blob.startswith(MAGIC) or len(blob) < head or blob[head - 1 : head] != b"\n":
        raise CorruptFileError(f"{path}: not an analog-sweep file or truncated header")
    digest, data = blob[len(MAGIC) : head - 1], blob[head:]
    if hashlib.sha256(data).hexdigest().encode() != digest:
        raise CorruptFileError(f"{path}: checksum mismatch (truncated or altered)")
    try:
        return torch.load(io.BytesIO(data), weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's message is a page of advice; keep the line that names what was refused ("Unsupported global: ...").
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line for line in lines if "Unsupported global" in line), lines[0] if lines else "")
        reason = reason.split(". Please")[0]
        raise CorruptFileError(
            f"{path}: refused content that is not plain tensors and values ({reason[:200]})"
        ) from None
