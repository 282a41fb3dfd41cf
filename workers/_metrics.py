"""What a trial reports each epoch, and how test error is measured."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class EpochReport:
    """One epoch of one trial; ``epoch`` counts from 1, errors are percent.

    ``validation_error`` is measured on the held-out validation split (``DataConfig.validation_fraction``), None
    when the trial has none; a sweep chooses learning rate and epoch on it (``sweeps/README.md``, ``selection``).

    The activity fields (analog trials only, None otherwise; see ``workers._activity``) are per layer group
    (``embed``, ``blocks``, ``head``): ``*_moved`` percent of the group's analog weights changed since conversion,
    ``*_rel`` mean|dW| / mean|W| since conversion, ``*_transfers`` c-TTv2 transfer events so far.
    """

    epoch: int
    train_loss: float
    test_error: float
    test_accuracy: float
    seconds: float
    validation_error: float | None = None
    embed_moved: float | None = None
    embed_rel: float | None = None
    embed_transfers: int | None = None
    blocks_moved: float | None = None
    blocks_rel: float | None = None
    blocks_transfers: int | None = None
    head_moved: float | None = None
    head_rel: float | None = None
    head_transfers: int | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return dataclasses.asdict(self)


@torch.no_grad()
def test_error_percent(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> float:
    """Percent of ``images`` misclassified, in eval mode (no dropout, no stochastic depth)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    wrong = 0
    for start in range(0, len(labels), batch_size):
        logits = model(images[start : start + batch_size].to(device))
        wrong += int((logits.argmax(dim=1).cpu() != labels[start : start + batch_size]).sum())
    model.train(was_training)
    return 100.0 * wrong / max(len(labels), 1)
