"""One fine-tuning trial: the unit every sweep is made of.

``run_trial`` takes a plain ``TrialConfig`` and does what the paper does for one mode at one device point and one
learning rate: build the model (pretrained on the source task for the TL modes, fresh for the scratch modes), give it
a head for the target classes, convert it to analog with the point's device settings (analog modes), add the weight
transfer noise once, and fine-tune, measuring validation and test error after every epoch. It checkpoints after
every epoch and,
given the same checkpoint folder again, continues after the last finished epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from ._activity import activity_fields, measure, reference_weights
from ._checkpoint import TrialCheckpoint
from ._config import TrialConfig
from ._data import batches, load_target_splits
from ._devices import (
    analog_optimizer,
    apply_transfer_noise,
    build_rpu_config,
    count_analog_layers,
    parameter_count,
    place_on_device,
    to_analog,
)
from ._divergence import check_finite, check_loss_growth
from ._metrics import EpochReport, test_error_percent
from ._models import create_model, replace_head
from ._pretrain import PretrainedModel, pretrained_model


@dataclass
class TrialResult:
    """What a finished trial reports: every epoch, and what it was built from."""

    reports: list[EpochReport]
    restored_epochs: int
    parameters: int
    analog_layers: int
    pretrained: PretrainedModel | None = field(default=None, repr=False)

    @property
    def final_test_error(self) -> float:
        return self.reports[-1].test_error


def build_model(
    config: TrialConfig, num_classes: int, cache_dir: str | Path, progress: Callable[[str], None] | None = None
) -> tuple[torch.nn.Module, PretrainedModel | None]:
    """The trial's model before training: pretrained or fresh, analog or digital, transfer noise applied."""
    pretrained = None
    overrides = config.model.override_dict()
    if config.is_transfer:
        pretrained = pretrained_model(config.data, config.model, config.pretrain, cache_dir, progress)
        source_classes = pretrained.state_dict["head.fc.weight"].shape[0]
        model = create_model(
            config.model.preset, num_classes=source_classes, img_size=config.data.image_size, **overrides
        )
        model.load_state_dict(pretrained.state_dict)
        torch.manual_seed(config.seed)
        replace_head(model, num_classes)
    else:
        torch.manual_seed(config.seed)
        model = create_model(config.model.preset, num_classes=num_classes, img_size=config.data.image_size, **overrides)
    if config.is_analog:
        model = to_analog(model, build_rpu_config(config.algorithm, config.device))
        apply_transfer_noise(model, config.device.transfer_noise, seed=config.seed)
    return model, pretrained


def make_optimizer(config: TrialConfig, model: torch.nn.Module) -> torch.optim.Optimizer:
    """Analog modes: aihwkit's AnalogSGD drives the tiles' pulsed update. Digital modes: plain SGD (Table I)."""
    if config.is_analog:
        return analog_optimizer(model, config.lr, freeze_analog=config.algorithm.freeze_analog)
    return torch.optim.SGD(model.parameters(), lr=config.lr)


def epoch_generator(config: TrialConfig, epoch: int) -> torch.Generator:
    """The generator of ``epoch``'s batch order: it depends only on (seed, epoch), so a resumed trial sees the same
    batches."""
    return torch.Generator().manual_seed(config.seed * 100_003 + epoch)


def epoch_lr(config: TrialConfig, epoch: int) -> float:
    """The learning rate of ``epoch`` (counted from 1) under ``config.lr_schedule``.

    ``constant``: ``config.lr`` throughout (the paper's Table I gives one rate). ``cosine``: half a cosine from
    ``config.lr`` in the first epoch down towards 0, ``lr * (1 + cos(pi * (epoch - 1) / epochs)) / 2``, one step per
    epoch, so the last epochs take small steps and a trial ends settled rather than wherever its last large step
    left it. The rate depends on the epoch alone, so a resumed trial continues on the same schedule.
    """
    if config.lr_schedule == "constant":
        return config.lr
    return config.lr * (1.0 + math.cos(math.pi * (epoch - 1) / config.epochs)) / 2.0


def set_epoch_lr(config: TrialConfig, optimizer: torch.optim.Optimizer, epoch: int) -> None:
    """Give every parameter group ``epoch``'s rate; a group at 0 (frozen analog tiles) stays at 0."""
    rate = epoch_lr(config, epoch)
    for group in optimizer.param_groups:
        if group["lr"] != 0.0:
            group["lr"] = rate


def _placed(
    config: TrialConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, device: str
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The model moved to ``device`` and an optimizer for the moved model holding the CPU optimizer's state (a GPU
    model gets new tiles, so the optimizer is rebuilt for them; on the CPU both are returned as they are)."""
    placed = place_on_device(model, device)
    if torch.device(device).type == "cpu":
        return placed, optimizer
    moved = make_optimizer(config, placed)
    moved.load_state_dict(optimizer.state_dict())
    return placed, moved


def run_trial(
    config: TrialConfig,
    *,
    cache_dir: str | Path,
    checkpoint_dir: str | Path | None = None,
    device: str = "cpu",
    on_epoch: Callable[[EpochReport], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrialResult:
    """Fine-tune for ``config.epochs`` epochs; resume from ``checkpoint_dir`` if it holds a checkpoint of this config.

    ``on_epoch`` is called after each epoch's checkpoint is safely on disk, so whatever it reports can be recovered.
    On resume it is first called again for every restored epoch (without training them again), so a listener that
    missed them before the interruption gets them now.
    """
    splits = load_target_splits(config.data)
    train_set, validation_set, test_set = splits.train, splits.validation, splits.test
    num_classes = len(train_set.class_names)
    model, pretrained = build_model(config, num_classes, cache_dir, progress)
    reference = reference_weights(model)  # the converted weights (empty for digital): activity is measured from here
    # The checkpoint is read into the CPU model (aihwkit tile state only loads into CPU tiles), then moved.
    optimizer = make_optimizer(config, model)
    checkpoint = TrialCheckpoint(checkpoint_dir, config.checkpoint_key()) if checkpoint_dir is not None else None
    reports: list[EpochReport] = []
    if checkpoint is not None:
        reports = checkpoint.restore(model, optimizer, progress)
        if reports:
            reference = checkpoint.activity_reference
        else:
            checkpoint.start_over(model, reference)
    model, optimizer = _placed(config, model, optimizer, device)
    restored_epochs = len(reports)
    if on_epoch is not None:
        for report in reports:
            on_epoch(report)
    loss_fn = torch.nn.CrossEntropyLoss()
    target = torch.device(device)
    for epoch in range(len(reports) + 1, config.epochs + 1):
        started = time.perf_counter()
        generator = epoch_generator(config, epoch)
        set_epoch_lr(config, optimizer, epoch)
        model.train()
        total_loss, seen = 0.0, 0
        for images, labels in batches(train_set, config.batch_size, shuffle=True, generator=generator):
            images, labels = images.to(target), labels.to(target)
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            total_loss += float(loss.detach()) * len(labels)
            seen += len(labels)
        train_loss = total_loss / max(seen, 1)
        check_finite(model, train_loss, epoch, config.lr)  # these two raise TrainingDiverged
        check_loss_growth(train_loss, [r.train_loss for r in reports], num_classes, epoch, config.lr)
        eval_batch = max(config.batch_size, 64)
        error = test_error_percent(model, test_set.images, test_set.labels, eval_batch)
        validation_error = (
            None
            if validation_set is None
            else test_error_percent(model, validation_set.images, validation_set.labels, eval_batch)
        )
        report = EpochReport(
            epoch=epoch,
            train_loss=train_loss,
            test_error=error,
            test_accuracy=100.0 - error,
            seconds=time.perf_counter() - started,
            validation_error=validation_error,
            **(activity_fields(measure(model, reference)) if reference else {}),
        )
        reports.append(report)
        if checkpoint is not None:
            checkpoint.save(model, optimizer, reports)
        if on_epoch is not None:
            on_epoch(report)
    return TrialResult(
        reports=reports,
        restored_epochs=restored_epochs,
        parameters=parameter_count(model),
        analog_layers=count_analog_layers(model),
        pretrained=pretrained,
    )
