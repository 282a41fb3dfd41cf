"""Diverged training: a trial whose loss or weights stop being finite numbers has no result worth keeping.

A learning rate far too large drives the loss to inf or NaN within an epoch or two, while the test error still reads
as a number (a network whose outputs are all NaN predicts one class everywhere: 50 % on two classes). Such a trial
must not count as a result, so ``run_trial`` checks after every epoch, before the epoch is checkpointed or
reported, and raises ``TrainingDiverged``: the sweep records the trial as ``diverged`` (never chosen as a point's
best), and ``analog-sweep trial`` stops with one line.
"""

from __future__ import annotations

import math

import torch

from ._errors import TrainingDiverged


def check_finite(model: torch.nn.Module, train_loss: float, epoch: int, lr: float) -> None:
    """Raise ``TrainingDiverged`` if the epoch's mean training loss, a digital parameter or an analog tile's weight
    is inf or NaN."""
    where = f"training diverged at epoch {epoch} (lr={lr:g})"
    if not math.isfinite(train_loss):
        raise TrainingDiverged(f"{where}: the training loss is {train_loss}")
    for name, parameter in model.named_parameters():
        if not bool(torch.isfinite(parameter.detach()).all()):
            raise TrainingDiverged(f"{where}: parameter {name} holds non-finite values")
    for name, weights in _tile_weights(model):
        if not bool(torch.isfinite(weights).all()):
            raise TrainingDiverged(f"{where}: the weights of analog tile {name} hold non-finite values")


def _tile_weights(model: torch.nn.Module):
    """(name, weights) of every analog tile (none for a digital model)."""
    try:
        from aihwkit.simulator.tiles.rpucuda import RPUCudaSimulatorTileWrapper
    except ImportError:  # pragma: no cover - aihwkit is a dependency; a digital model needs none of it
        return
    for name, module in model.named_modules():
        if isinstance(module, RPUCudaSimulatorTileWrapper):
            yield name, module.tile.get_weights().detach()
