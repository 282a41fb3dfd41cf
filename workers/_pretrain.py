"""Digital pretraining on the source task, trained once per key and reused from a content-addressed cache.

The key hashes everything that decides the pretrained weights: the source data (data set, image size, source limit,
split seed), the model preset and overrides, and the pretraining settings with their seed. The cache file is named by
the key and a fingerprint of the source data's bytes (``workers._data.source_fingerprint``), so moved, replaced or
edited data files are trained on again, never answered with weights learned on other data. A second trial with the
same key and data loads the file; a file lock makes concurrent trials on one machine wait for the first to finish
training
instead of training twice. A damaged cache file fails its checksum and is trained again, never used.
"""

from __future__ import annotations

import dataclasses
import fcntl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ._config import PRETRAIN_OPTIMIZERS, DataConfig, ModelConfig, PretrainConfig, pretrain_key
from ._data import batches, file_sha256, load_source, source_fingerprint
from ._metrics import test_error_percent
from ._models import create_model
from ._verified_files import CorruptFileError, load_verified, save_verified


@dataclass(frozen=True)
class PretrainedModel:
    """A cached pretraining result: the digital weights and how well they learned the source task.

    ``source_train_error`` and ``source_test_error`` are percent; ``seconds`` is how long training took when the
    file was made; ``file_hash`` is the SHA-256 (hex) of the cache file these weights were read from or written to
    (``sha256sum`` of ``path`` gives the same while the file is unchanged).
    """

    key: str
    path: Path
    state_dict: dict[str, torch.Tensor]
    source_train_error: float
    source_test_error: float
    seconds: float
    trained_now: bool
    file_hash: str = ""


def pretrained_model(
    data: DataConfig,
    model: ModelConfig,
    pretrain: PretrainConfig,
    cache_dir: str | Path,
    progress: Callable[[str], None] | None = None,
) -> PretrainedModel:
    """Return the pretrained weights for this key, training them only if no good cached copy exists."""
    key = pretrain_key(data, model, pretrain)
    stem = f"pretrain-{key}-data-{source_fingerprint(data)[:16]}"
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{stem}.pt"
    with open(cache_dir / f"{stem}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # The lock is held while hashing: the file cannot be replaced between reading and hashing it.
        cached = _load_cached(path, key, progress)
        if cached is not None:
            return dataclasses.replace(cached, file_hash=file_sha256(path))
        result = _train(data, model, pretrain, progress)
        save_verified({"key": key, **result}, path)
        return PretrainedModel(key=key, path=path, trained_now=True, file_hash=file_sha256(path), **result)


def _load_cached(path: Path, key: str, progress: Callable[[str], None] | None) -> PretrainedModel | None:
    if not path.exists():
        return None
    try:
        stored = load_verified(path)
    except CorruptFileError as exc:
        if progress:
            progress(f"pretraining cache unusable ({exc}); training again")
        return None
    if not isinstance(stored, dict) or stored.get("key") != key:
        return None
    stored.pop("key")
    fields = {"state_dict", "source_train_error", "source_test_error", "seconds"}
    weights = stored.get("state_dict")
    if (
        set(stored) != fields
        or not isinstance(weights, dict)
        or not all(isinstance(v, torch.Tensor) for v in weights.values())
    ):
        if progress:
            progress(f"pretraining cache unusable ({path}: not a pretraining result); training again")
        return None
    return PretrainedModel(key=key, path=path, trained_now=False, **stored)


def _train(
    data: DataConfig, model_config: ModelConfig, pretrain: PretrainConfig, progress: Callable[[str], None] | None
) -> dict:
    if pretrain.optimizer not in PRETRAIN_OPTIMIZERS:
        choices = ", ".join(PRETRAIN_OPTIMIZERS)
        raise ValueError(f"pretrain.optimizer: unknown optimizer {pretrain.optimizer!r}; choose one of {choices}")
    started = time.perf_counter()
    train_set, test_set = load_source(data)
    torch.manual_seed(pretrain.seed)
    model = create_model(
        model_config.preset,
        num_classes=len(train_set.class_names),
        img_size=data.image_size,
        **model_config.override_dict(),
    )
    if pretrain.optimizer == "adamw":
        optimizer = torch.optim.AdamW(model.parameters(), lr=pretrain.lr, weight_decay=pretrain.weight_decay)
    else:
        optimizer = torch.optim.SGD(
            model.parameters(), lr=pretrain.lr, momentum=pretrain.momentum, weight_decay=pretrain.weight_decay
        )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=pretrain.epochs)
    generator = torch.Generator().manual_seed(pretrain.seed)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    for epoch in range(1, pretrain.epochs + 1):
        for images, labels in batches(
            train_set, pretrain.batch_size, shuffle=True, generator=generator, augment=pretrain.augment
        ):
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
        schedule.step()
        if progress and (epoch == pretrain.epochs or epoch % 10 == 0):
            progress(f"pretraining epoch {epoch}/{pretrain.epochs}")
    batch = max(pretrain.batch_size, 64)
    return {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "source_train_error": test_error_percent(model, train_set.images, train_set.labels, batch),
        "source_test_error": test_error_percent(model, test_set.images, test_set.labels, batch),
        "seconds": time.perf_counter() - started,
    }
