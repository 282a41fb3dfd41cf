"""Diverged training: a trial whose loss explodes, or whose loss or weights stop being finite numbers, has no result
worth keeping.

A learning rate far too large drives the loss up by orders of magnitude within a few epochs, then to inf or NaN,
while the test error still reads as a number (a network whose outputs are all huge or NaN predicts one class
everywhere: 50 % on two classes). Such a trial must not count as a result, so ``run_trial`` checks after every
epoch, before the epoch is checkpointed or reported, and raises ``TrainingDiverged``: the sweep records the trial as
``diverged`` (never chosen as a point's best), and ``analog-sweep trial`` stops with one line that says which rule
fired.

Three rules, on the epoch's mean training loss (cross-entropy) and the weights:

- not finite: the loss, a digital parameter or an analog tile's weight is inf or NaN;
- growth: the loss exceeds ``GROWTH_FACTOR`` (1000) times the lowest loss of the trial's earlier epochs, and
  ``GROWTH_FLOOR`` (30) times ``ln(num_classes)``, the loss of a uniform guess: the loss blew up from where training
  had brought it, to far worse than guessing;
- bound: the loss exceeds ``CHANCE_FACTOR`` (100) times ``ln(num_classes)``: the network puts on average a
  probability below ``num_classes ** -100`` on the right class, which only weights that have blown up do (this also
  catches an explosion within the first epoch, which has no earlier loss).

The factors leave a wide margin to what training that recovers shows, measured on 19 real trials of the embedded
digits (the quickstart's 5 vs 7 at its rates 0.1 and 0.4 with its cosine schedule, all four modes, c-TTv2, 20
epochs; the nano model on 5 vs 8 at a constant 0.4). The highest loss was 12.7 x ln(2), the first epoch of digital
TL at rate 0.4 (2.7-8.8 over seven seeds), 7.9 x below the bound; after the first epoch 8.3 x ln(2), 3.6 x below the
growth rule's floor. The largest rise over a trial's lowest earlier loss was 12 x (digital TL's noisy tail: 0.03
after 0.0026, far better than guessing), and no epoch came within 1/190 of meeting both growth conditions. A digital
rate of 1, past the useful ones, rose to 6 x ln(2) (5.7 x its lowest) and came back down. Rates that diverge cross a
rule in the epoch they leave that range: 7 then 7.7e5 (lr 20), 2.0 then 1.1e6, 1.5 then 120 (173 x ln(2)), on the way
to NaN or to a finite 1e11-1e20 at 50 % error. A c-TTv2 tile's weights are bounded by its devices, so a huge analog
rate makes the loss large but level rather than exploding (lr 50: 7-20, at most 29 x ln(2) and 5 x its lowest; lr
1000: 70-390, over the bound).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from ._errors import TrainingDiverged

# Growth: the epoch's loss over the lowest loss of the earlier epochs, and the loss it must also exceed, as a
# multiple of ln(num_classes) (far worse than a uniform guess, so a noisy tail near 0 never counts).
GROWTH_FACTOR = 1000.0
GROWTH_FLOOR = 30.0
# Bound: the epoch's loss as a multiple of ln(num_classes), a uniform guess's cross-entropy.
CHANCE_FACTOR = 100.0


def check_finite(model: torch.nn.Module, train_loss: float, epoch: int, lr: float) -> None:
    """Raise ``TrainingDiverged`` if the epoch's mean training loss, a digital parameter or an analog tile's weight
    is inf or NaN."""
    where = _where(epoch, lr)
    if not math.isfinite(train_loss):
        raise TrainingDiverged(f"{where}: the training loss is {train_loss}")
    for name, parameter in model.named_parameters():
        if not bool(torch.isfinite(parameter.detach()).all()):
            raise TrainingDiverged(f"{where}: parameter {name} holds non-finite values")
    for name, weights in _tile_weights(model):
        if not bool(torch.isfinite(weights).all()):
            raise TrainingDiverged(f"{where}: the weights of analog tile {name} hold non-finite values")


def loss_divergence(train_loss: float, earlier: Sequence[float], num_classes: int) -> str | None:
    """Why the finite mean training loss ``train_loss`` of an epoch, after the earlier epochs' ``earlier``, counts
    as diverged (the growth rule, then the bound; see the module's docstring); None if it does not."""
    chance = math.log(num_classes)
    finite = [loss for loss in earlier if math.isfinite(loss)]
    if finite:
        lowest = min(finite)
        at = finite.index(lowest) + 1
        if train_loss > GROWTH_FLOOR * chance and train_loss > GROWTH_FACTOR * lowest:
            times = train_loss / lowest if lowest > 0 else math.inf
            return (
                f"the training loss grew to {train_loss:.3g}, {times:.2g}x its lowest {lowest:.3g} at epoch {at} "
                f"(growth rule: over {GROWTH_FACTOR:g}x the lowest and over {GROWTH_FLOOR:g} x ln({num_classes}) = "
                f"{GROWTH_FLOOR * chance:.3g})"
            )
    if num_classes > 1 and train_loss > CHANCE_FACTOR * chance:
        return (
            f"the training loss is {train_loss:.3g}, {train_loss / chance:.3g}x a uniform guess's ln({num_classes}) "
            f"= {chance:.3g} (bound rule: over {CHANCE_FACTOR:g}x)"
        )
    return None


def check_loss_growth(train_loss: float, earlier: Sequence[float], num_classes: int, epoch: int, lr: float) -> None:
    """Raise ``TrainingDiverged`` if the epoch's finite mean training loss has exploded (``loss_divergence``)."""
    reason = loss_divergence(train_loss, earlier, num_classes)
    if reason is not None:
        raise TrainingDiverged(f"{_where(epoch, lr)}: {reason}")


def _where(epoch: int, lr: float) -> str:
    return f"training diverged at epoch {epoch} (lr={lr:g})"


def _tile_weights(model: torch.nn.Module):
    """(name, weights) of every analog tile (none for a digital model)."""
    try:
        from aihwkit.simulator.tiles.rpucuda import RPUCudaSimulatorTileWrapper
    except ImportError:  # pragma: no cover - aihwkit is a dependency; a digital model needs none of it
        return
    for name, module in model.named_modules():
        if isinstance(module, RPUCudaSimulatorTileWrapper):
            yield name, module.tile.get_weights().detach()
