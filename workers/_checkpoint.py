"""Per-epoch trial checkpoints in a folder: everything needed to continue a trial after the last finished epoch.

``static.pt`` holds what never changes during training (the tiles' device-to-device planes: bounds, pulse sizes,
references), written once per trial; ``latest.pt`` holds the rest (the changing tile planes and weights, digital
parameters, optimizer and RNG state, and the epoch reports so far), replaced atomically after every epoch. Both are
checksummed (``workers._verified_files``): a damaged ``latest.pt`` falls back to the previous epoch's copy
(``previous.pt``), and a damaged ``static.pt`` means starting the trial over, never training from garbage.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from ._metrics import EpochReport
from ._tile_state import (
    TileStateError,
    join_static,
    load_model_state,
    model_state,
    split_static,
)
from ._verified_files import CorruptFileError, load_verified, save_verified


class TrialCheckpoint:
    """The checkpoint folder of one trial, bound to its config key so a folder is never reused by another config."""

    def __init__(self, folder: str | os.PathLike, config_key: str) -> None:
        self.folder = Path(folder)
        self.config_key = config_key
        self.folder.mkdir(parents=True, exist_ok=True)
        # The tiles' weights right after conversion (``workers._activity.reference_weights``), set by ``start_over``
        # and by a successful ``restore``: what the activity of later epochs is measured against.
        self.activity_reference: dict[str, torch.Tensor] = {}

    @property
    def static_path(self) -> Path:
        return self.folder / "static.pt"

    @property
    def latest_path(self) -> Path:
        return self.folder / "latest.pt"

    @property
    def previous_path(self) -> Path:
        return self.folder / "previous.pt"

    def start_over(self, model: torch.nn.Module, activity_reference: dict[str, torch.Tensor] | None = None) -> None:
        """Begin the trial afresh: drop any epoch checkpoints and store the static planes of this new model, with the
        weights its analog activity is measured against (written once per trial, like the static planes)."""
        for path in (self.latest_path, self.previous_path):
            path.unlink(missing_ok=True)
        static, _ = split_static(model_state(model))
        self.activity_reference = dict(activity_reference or {})
        save_verified(
            {"config_key": self.config_key, "state": static, "activity_reference": self.activity_reference},
            self.static_path,
        )

    def save(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, reports: list[EpochReport]) -> None:
        _, dynamic = split_static(model_state(model))
        payload = {
            "config_key": self.config_key,
            "state": dynamic,
            "optimizer": optimizer.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "reports": [r.to_dict() for r in reports],
        }
        if self.latest_path.exists():
            os.replace(self.latest_path, self.previous_path)
        save_verified(payload, self.latest_path)

    def restore(
        self,
        model: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        progress: Callable[[str], None] | None = None,
    ) -> list[EpochReport]:
        """Load the newest good checkpoint into ``model`` and ``optimizer``; return its reports ([] if none)."""
        static = self._load(self.static_path, progress)
        if static is None:
            return []
        for path in (self.latest_path, self.previous_path):
            payload = self._load(path, progress)
            if payload is None:
                continue
            try:
                state = join_static(static["state"], payload["state"])
            except TileStateError as exc:
                if progress:
                    progress(f"checkpoint not used: {path}: {exc}")
                continue
            load_model_state(model, state)
            optimizer.load_state_dict(payload["optimizer"])
            torch.set_rng_state(payload["torch_rng"])
            self.activity_reference = dict(static["activity_reference"])
            return [EpochReport(**r) for r in payload["reports"]]
        return []

    def reports(self) -> list[EpochReport]:
        """The epoch reports of the newest good checkpoint, without loading any model ([] if none)."""
        for path in (self.latest_path, self.previous_path):
            payload = self._load(path, None)
            if payload is not None:
                return [EpochReport(**r) for r in payload["reports"]]
        return []

    def _load(self, path: Path, progress: Callable[[str], None] | None) -> dict | None:
        if not path.exists():
            return None
        try:
            payload = load_verified(path)
        except CorruptFileError as exc:
            if progress:
                progress(f"checkpoint not used: {exc}")
            return None
        if not isinstance(payload, dict) or payload.get("config_key") != self.config_key:
            if progress:
                progress(f"checkpoint not used: {path} belongs to another trial config")
            return None
        problem = _malformed(payload, static=path == self.static_path)
        if problem:
            if progress:
                progress(f"checkpoint not used: {path}: {problem}")
            return None
        return payload


def _malformed(payload: dict, *, static: bool) -> str | None:
    """Why a payload that passed its checksum still cannot be used (written by another version, or by hand), or
    None. Checked before anything is loaded, so a bad file never leaves a model or optimizer half restored."""
    if not isinstance(payload.get("state"), dict):
        return "no model state"
    if static:
        reference = payload.get("activity_reference")
        if not isinstance(reference, dict) or not all(isinstance(v, torch.Tensor) for v in reference.values()):
            return "no activity reference weights"
        return None
    optimizer = payload.get("optimizer")
    if (
        not isinstance(optimizer, dict)
        or not isinstance(optimizer.get("state"), dict)
        or not isinstance(optimizer.get("param_groups"), list)
    ):
        return "no optimizer state"
    rng = payload.get("torch_rng")
    if not isinstance(rng, torch.Tensor) or rng.dtype != torch.uint8:
        return "no random number generator state"
    reports = payload.get("reports")
    try:
        epochs = [EpochReport(**r).epoch for r in reports]
    except TypeError:
        return "unreadable epoch reports"
    if epochs != list(range(1, len(epochs) + 1)):
        return f"epoch reports out of order ({epochs})"
    return None
