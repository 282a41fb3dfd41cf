"""Digital pretraining on the source task, trained once per key and reused from a content-addressed cache.

The key hashes everything that decides the pretrained weights: the source data (data set, image size, source limit,
split seed), the model preset and overrides, and the pretraining settings with their seed. The cache file is named by
the key and a fingerprint of the source data's bytes (``workers._data.source_fingerprint``), so moved, replaced or
edited data files are trained on again, never answered with weights learned on other data. A second trial with the
same key and data loads the file; a file lock makes concurrent trials and sweeps on one machine (or on one shared
folder) wait for the first to finish training instead of training twice. A damaged cache file fails its checksum and
is trained again, never used. A good copy found in another folder (``also_in``: another cache folder, such as a
storage path's own) is copied into the cache instead of training again.

While it trains, the holder of the lock keeps a small JSON file beside the cache entry (``<entry>.progress.json``,
replaced atomically after every epoch, removed when the model is saved): the epoch, the epoch's mean training loss
and the time left, extrapolated from the epochs done. Whoever waits for the model (the sweep's driver, or another
sweep's) reads it with ``read_progress``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from analog_sweep._files import probe_lock, replace_text

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


@dataclass(frozen=True)
class CacheEntry:
    """Where one pretrained model lives in a cache folder: ``model`` (the weights, ``.pt``), ``lock`` (held while
    the model is looked up or trained) and ``progress`` (the training's progress while it runs, JSON)."""

    folder: Path
    stem: str

    @property
    def model(self) -> Path:
        return self.folder / f"{self.stem}.pt"

    @property
    def lock(self) -> Path:
        return self.folder / f"{self.stem}.lock"

    @property
    def progress(self) -> Path:
        return self.folder / f"{self.stem}.progress.json"


def cache_entry(data: DataConfig, model: ModelConfig, pretrain: PretrainConfig, cache_dir: str | Path) -> CacheEntry:
    """The cache entry of this key and source data in ``cache_dir`` (nothing is read there or made).

    Raises:
        DataError: If the source data's files are missing (their bytes name the entry).
    """
    key = pretrain_key(data, model, pretrain)
    return CacheEntry(Path(cache_dir), f"pretrain-{key}-data-{source_fingerprint(data)[:16]}")


def find_cached(
    data: DataConfig, model: ModelConfig, pretrain: PretrainConfig, cache_dirs: Iterable[str | Path]
) -> Path | None:
    """The model file of this key and source data in the first of ``cache_dirs`` that holds one, or None.

    Only looks whether the file is there (its checksum is checked when it is loaded): for estimates, not for use.

    Raises:
        DataError: If the source data's files are missing.
    """
    for folder in cache_dirs:
        path = cache_entry(data, model, pretrain, folder).model
        if path.is_file():
            return path
    return None


def read_progress(path: str | Path) -> dict[str, Any] | None:
    """A progress file's record (see ``pretrained_model``), or None if there is none or it cannot be read."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def lock_held(path: str | Path) -> bool:
    """Whether some process holds the lock file ``path`` now (its model is being looked up or trained). Takes a
    shared lock for an instant without waiting, and nothing if the file is missing."""
    return bool(probe_lock(path))


def pretrained_model(
    data: DataConfig,
    model: ModelConfig,
    pretrain: PretrainConfig,
    cache_dir: str | Path,
    progress: Callable[[str], None] | None = None,
    *,
    also_in: Iterable[str | Path] = (),
    tag: Mapping[str, Any] | None = None,
) -> PretrainedModel:
    """Return the pretrained weights for this key, training them only if no good cached copy exists.

    Args:
        data: The source task's data settings.
        model: The model preset and overrides.
        pretrain: The pretraining settings.
        cache_dir: The cache folder (made if missing).
        progress: Told what happens in words (a damaged cache file, a copy from ``also_in``, every 10th epoch).
        also_in: Other folders that may hold the model (another cache folder, such as a storage path's own); a good
            copy there is copied into ``cache_dir`` and used, never trained again.
        tag: Written into the progress file while this call trains (e.g. who trains: a sweep's name and a token), so
            that a reader can tell its own training from another's.

    Returns:
        The weights, with ``trained_now`` False when they came from a file.

    Raises:
        OSError: If ``cache_dir`` cannot be made or written.
        DataError, ModelError, ValueError: As loading the data, making the model and training raise them.
    """
    key = pretrain_key(data, model, pretrain)
    entry = cache_entry(data, model, pretrain, cache_dir)
    entry.folder.mkdir(parents=True, exist_ok=True)
    path = entry.model
    with open(entry.lock, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Whoever held the lock before is done: a progress file left now is from a process that died training.
        with contextlib.suppress(FileNotFoundError):
            entry.progress.unlink()
        # The lock is held while hashing: the file cannot be replaced between reading and hashing it.
        cached = _load_cached(path, key, progress)
        if cached is None:
            cached = _adopt(entry, key, also_in, progress)
        if cached is not None:
            return dataclasses.replace(cached, file_hash=file_sha256(path))
        try:
            result = _train(data, model, pretrain, progress, _ProgressFile(entry.progress, key, pretrain.epochs, tag))
            save_verified({"key": key, **result}, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                entry.progress.unlink()
        return PretrainedModel(key=key, path=path, trained_now=True, file_hash=file_sha256(path), **result)


def _adopt(
    entry: CacheEntry, key: str, folders: Iterable[str | Path], progress: Callable[[str], None] | None
) -> PretrainedModel | None:
    """Copy a good copy of the entry's model from one of ``folders`` into the entry (the same bytes, so the same
    file hash), and return it as loaded from there; None if no folder has one."""
    for folder in folders:
        other = CacheEntry(Path(folder), entry.stem).model
        if other.resolve() == entry.model.resolve() or not other.is_file():
            continue
        if _load_cached(other, key, progress) is None:
            continue
        copy = entry.model.with_name(f".{entry.model.name}.{os.getpid()}.tmp")
        shutil.copyfile(other, copy)
        os.replace(copy, entry.model)
        if progress:
            progress(f"pretrained model {key} copied into the cache {entry.folder} from {other.parent}")
        return _load_cached(entry.model, key, progress)
    return None


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


class _ProgressFile:
    """The training's progress, written atomically to ``path`` at the start and after every epoch.

    The record: ``key``, ``epoch`` (epochs done), ``epochs``, ``loss`` (the last epoch's mean training loss per
    image; None before the first), ``elapsed_s`` (seconds since training started), ``left_s`` (seconds left,
    extrapolated from the epochs done; None before the first), ``updated_at`` (Unix time of the write), ``pid``, and
    the caller's ``tag``. Time counts from the first epoch's start. A file that cannot be written is skipped: progress
    never stops training.
    """

    def __init__(self, path: Path, key: str, epochs: int, tag: Mapping[str, Any] | None) -> None:
        self.path, self.key, self.epochs, self.tag = path, key, epochs, dict(tag or {})
        self.start()
        self.write(0, None)

    def start(self) -> None:
        """Count time from now: the first epoch begins (loading the data and making the model come before)."""
        self.started = time.perf_counter()

    def write(self, epoch: int, loss: float | None) -> None:
        elapsed = time.perf_counter() - self.started
        record = {
            **self.tag,
            "key": self.key,
            "epoch": epoch,
            "epochs": self.epochs,
            "loss": loss,
            "elapsed_s": elapsed,
            "left_s": elapsed / epoch * (self.epochs - epoch) if epoch else None,
            "updated_at": time.time(),
            "pid": os.getpid(),
        }
        with contextlib.suppress(OSError):
            replace_text(self.path, json.dumps(record))


def _train(
    data: DataConfig,
    model_config: ModelConfig,
    pretrain: PretrainConfig,
    progress: Callable[[str], None] | None,
    progress_file: _ProgressFile | None = None,
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
    if progress_file is not None:
        progress_file.start()
    for epoch in range(1, pretrain.epochs + 1):
        total, seen = 0.0, 0
        for images, labels in batches(
            train_set, pretrain.batch_size, shuffle=True, generator=generator, augment=pretrain.augment
        ):
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
            total += loss.item() * len(labels)
            seen += len(labels)
        schedule.step()
        if progress_file is not None:
            progress_file.write(epoch, total / max(seen, 1))
        if progress and (epoch == pretrain.epochs or epoch % 10 == 0):
            progress(f"pretraining epoch {epoch}/{pretrain.epochs}")
    batch = max(pretrain.batch_size, 64)
    return {
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "source_train_error": test_error_percent(model, train_set.images, train_set.labels, batch),
        "source_test_error": test_error_percent(model, test_set.images, test_set.labels, batch),
        "seconds": time.perf_counter() - started,
    }
