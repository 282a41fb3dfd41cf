"""In-memory data for pretraining (the source task) and fine-tuning (the target task).

Two data sets, chosen by ``DataConfig.dataset``:

- ``digits``: scikit-learn's embedded 8x8 handwritten digits (works offline). Source task: digits 0-4 (901 images);
  target: a subset of 5-9, named ``"5"``..``"9"`` or ``"five"``..``"nine"``. Each task gets a seeded, stratified 70/30
  train/test split (``split_seed``).
- ``cifar``: CIFAR-10 (source, all 10 classes) and CIFAR-100 fine-label classes by name (target), read from the
  python-pickle files under ``data_root`` (or ``$ANALOG_SWEEP_DATA``), with their official train/test splits.

Normalisation: every image, target included, is normalised per channel with fixed constants of its *source* data set
(CIFAR-10's mean/std; for digits the pixel mean/std of the 901 source digits), so the pretrained model sees target
images on the scale it was pretrained on, and the transform depends on neither the split seed nor the limits.

Validation: ``validation_fraction`` of the target task's *whole* training set (before ``train_limit``) is held out,
stratified by class and seeded by ``split_seed`` (``load_target_splits``), so ``train_limit`` still counts training
images and every trial of a sweep is validated on the same images. Train, validation and test are disjoint.

Images are resized (bilinear) to ``image_size`` once, when loaded, after the limits are applied. A whole set is then
held at that size: CIFAR-10's 50,000 training images take 0.6 GB at 32 pixels but 30 GB at 224.
"""

from __future__ import annotations

import difflib
import hashlib
import math
import os
import pickle
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ._config import DataConfig
from ._errors import DataError

DATA_ROOT_ENV = "ANALOG_SWEEP_DATA"

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
CIFAR100_CLASSES = (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle", "bowl", "boy",
    "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle", "chair", "chimpanzee", "clock",
    "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur", "dolphin", "elephant", "flatfish",
    "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard", "lamp", "lawn_mower", "leopard", "lion",
    "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain", "mouse", "mushroom", "oak_tree", "orange",
    "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree", "plain", "plate", "poppy", "porcupine",
    "possum", "rabbit", "raccoon", "ray", "road", "rocket", "rose", "sea", "seal", "shark", "shrew", "skunk",
    "skyscraper", "snail", "snake", "spider", "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank",
    "telephone", "television", "tiger", "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale",
    "willow_tree", "wolf", "woman", "worm",
)  # fmt: skip
# Per-channel mean and standard deviation of the CIFAR-10 training images on the 0..1 scale.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)

SOURCE_DIGITS = ("0", "1", "2", "3", "4")
TARGET_DIGITS = ("5", "6", "7", "8", "9")
DIGIT_WORDS = {"five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9"}
# Pixel mean and standard deviation of the 901 source digits (0-4) on sklearn's 0..16 scale.
DIGITS_MEAN = 4.880
DIGITS_STD = 6.052
DIGITS_TEST_FRACTION = 0.3

CIFAR10_FOLDER = "cifar-10-batches-py"
CIFAR100_FOLDER = "cifar-100-python"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))


@dataclass(frozen=True)
class TensorSet:
    """A labelled image set held as tensors, so batching is indexing rather than per-sample Python work.

    ``images`` are normalised float32 [N, 3, S, S] with S = ``DataConfig.image_size``; ``labels`` are int64 [N] in
    0..k-1, indexing ``class_names``. ``mirrorable`` says whether a mirror image is still the same class (photos:
    yes; handwritten digits: no, a mirrored 2 is no 2), so augmentation flips only where that holds.
    """

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    mirrorable: bool = True

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, indices: torch.Tensor) -> TensorSet:
        """The images at ``indices``, same classes."""
        return TensorSet(self.images[indices], self.labels[indices], self.class_names, self.mirrorable)

    def resized(self, size: int) -> TensorSet:
        """The same set with images resized to ``size`` (bilinear, antialiased when shrinking)."""
        if size < 2:
            raise DataError(f"image_size: must be at least 2 pixels, got {size}")
        stored = self.images.shape[-1]
        if stored == size:
            return self
        images = F.interpolate(
            self.images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < stored
        )
        return TensorSet(images, self.labels, self.class_names, self.mirrorable)


def batches(
    tensor_set: TensorSet,
    batch_size: int,
    *,
    shuffle: bool,
    generator: torch.Generator | None = None,
    augment: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Yield ``(images [B, 3, S, S], labels [B])`` batches; the last batch may be smaller.

    Shuffling and augmentation draw only from ``generator``, so a generator seeded the same way gives the same batches.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if (shuffle or augment) and generator is None:
        raise ValueError("shuffle and augment draw from a seeded torch.Generator; pass generator=")
    count = len(tensor_set)
    order = torch.randperm(count, generator=generator) if shuffle else torch.arange(count)
    for start in range(0, count, batch_size):
        indices = order[start : start + batch_size]
        images = tensor_set.images[indices]
        if augment and generator is not None:
            images = random_crop_flip(images, generator, flip=tensor_set.mirrorable)
        yield images, tensor_set.labels[indices]


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, flip: bool = True) -> torch.Tensor:
    """Pretraining augmentation: a random crop of the reflect-padded image (pad = size // 8, at least 1) and, if
    ``flip``, a random horizontal flip, each drawn per image from ``generator`` and applied to the whole batch at
    once."""
    count, _, height, width = images.shape
    pad = max(1, min(height, width) // 8)
    padded = F.pad(images, (pad, pad, pad, pad), mode="reflect")
    top = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    left = torch.randint(0, 2 * pad + 1, (count,), generator=generator)
    flipped = torch.rand(count, generator=generator) < 0.5
    flipped &= flip
    rows = (top[:, None] + torch.arange(height))[:, :, None]  # [B, H, 1]
    cols = left[:, None] + torch.arange(width)  # [B, W]
    cols = torch.where(flipped[:, None], cols.flip(1), cols)[:, None, :]  # [B, 1, W]
    batch = torch.arange(count)[:, None, None]
    # Advanced indices around the channel slice put the indexed dimensions first: [B, H, W, C].
    return padded[batch, :, rows, cols].permute(0, 3, 1, 2).contiguous()


def load_source(data: DataConfig) -> tuple[TensorSet, TensorSet]:
    """The source task's (train, test) sets for pretraining; ``source_limit`` caps the training set."""
    if data.dataset == "digits":
        train, test = _digits_split(SOURCE_DIGITS, data)
    elif data.dataset == "cifar":
        train, test = _cifar10(data)
    else:
        raise DataError(_unknown_dataset(data.dataset))
    train = _limited(train, data.source_limit, "source_limit", data.split_seed)
    return train.resized(data.image_size), test.resized(data.image_size)


def source_fingerprint(data: DataConfig) -> str:
    """A SHA-256 (hex, 64 characters) of the bytes the source task is read from: the CIFAR-10 files under the data
    root (train batches, test batch, meta), or the embedded digits' pixels and labels. Pretraining is cached under
    it, so the same settings on different or changed data train again instead of reusing weights learned elsewhere.

    Raises DataError as ``load_source`` does when the files are missing. A file's hash is kept per process for as long
    as its size and modification time do not change (170 MB of CIFAR-10 take about a second to hash).
    """
    if data.dataset == "digits":
        images, labels = _all_digits()
        digest = hashlib.sha256(images.numpy().tobytes())
        digest.update(labels.numpy().tobytes())
        return digest.hexdigest()
    if data.dataset == "cifar":
        paths = _cifar_files(data, "CIFAR-10", CIFAR10_FOLDER, (*CIFAR10_TRAIN_FILES, "test_batch", "batches.meta"))
        digest = hashlib.sha256()
        for path in paths:
            stat = path.stat()
            digest.update(_file_sha256(str(path.resolve()), stat.st_size, stat.st_mtime_ns).encode())
        return digest.hexdigest()
    raise DataError(_unknown_dataset(data.dataset))


@lru_cache(maxsize=64)
def _file_sha256(path: str, size: int, mtime_ns: int) -> str:
    """The file's SHA-256; size and mtime are part of the cache key so that a rewritten file is hashed again."""
    return file_sha256(path)


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, hex."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


@dataclass(frozen=True)
class TargetSplits:
    """The target task's three disjoint sets; ``validation`` is None when ``validation_fraction`` is 0."""

    train: TensorSet
    validation: TensorSet | None
    test: TensorSet


def load_target(data: DataConfig) -> tuple[TensorSet, TensorSet]:
    """The target task's (train, test) sets for fine-tuning: the classes ``data.classes``, labelled 0..k-1 in that
    order; ``train_limit`` and ``test_limit`` cap the two sets. The training set excludes the validation images
    (``load_target_splits``)."""
    splits = load_target_splits(data)
    return splits.train, splits.test


def load_target_splits(data: DataConfig) -> TargetSplits:
    """The target task's train, validation and test sets.

    The validation set is ``validation_count(n, fraction, k)`` images of the task's whole training set of n images
    (k classes), drawn stratified by class with a seed derived from ``split_seed``; ``train_limit`` then caps what
    is left. Raises ``DataError`` when the fraction leaves no training image of some class.
    """
    classes = target_classes(data)
    if data.dataset == "digits":
        train, test = _digits_split(classes, data)
    else:
        train, test = _cifar100(classes, data)
    train, validation = _hold_out_validation(train, data.validation_fraction, data.split_seed)
    train = _limited(train, data.train_limit, "train_limit", data.split_seed)
    test = _limited(test, data.test_limit, "test_limit", data.split_seed)
    return TargetSplits(
        train=train.resized(data.image_size),
        validation=None if validation is None else validation.resized(data.image_size),
        test=test.resized(data.image_size),
    )


def validation_count(size: int, fraction: float, classes: int) -> int:
    """How many of ``size`` training images a ``fraction`` holds out: round(fraction x size), at least one per class
    (0 when the fraction is 0)."""
    if fraction <= 0:
        return 0
    return max(classes, round(fraction * size))


# Mixed into ``split_seed`` so the validation draw is not the same permutation as the limits' draws.
_VALIDATION_SEED_OFFSET = 7_919


def _hold_out_validation(train: TensorSet, fraction: float, seed: int) -> tuple[TensorSet, TensorSet | None]:
    if not 0 <= fraction < 1:
        raise DataError(f"validation_fraction: must be a number from 0 to below 1, got {fraction!r}")
    classes = len(train.labels.unique())
    count = validation_count(len(train), fraction, classes)
    if count == 0:
        return train, None
    held = torch.zeros(len(train), dtype=torch.bool)
    held[stratified_pick(train.labels, count, seed + _VALIDATION_SEED_OFFSET)] = True
    rest = train.select(torch.nonzero(~held).flatten())
    if len(rest.labels.unique()) < classes:
        raise DataError(
            f"validation_fraction: {fraction:g} of {len(train)} training images leaves no training image of some "
            "class; lower it"
        )
    return rest, train.select(torch.nonzero(held).flatten())


def target_classes(data: DataConfig) -> tuple[str, ...]:
    """The target class names in canonical spelling, checked without reading any data file, so a sweep can be
    validated before it runs."""
    if data.dataset == "digits":
        names = tuple(_digit_class(name) for name in data.classes)
    elif data.dataset == "cifar":
        names = tuple(_cifar100_class(name) for name in data.classes)
    else:
        raise DataError(_unknown_dataset(data.dataset))
    if len(names) < 2:
        raise DataError(f"classes: a target task needs at least two classes, got {list(data.classes)}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise DataError(f"classes: {', '.join(duplicates)} named more than once in {list(data.classes)}")
    return names


def download_cifar(root: str | os.PathLike[str], which: tuple[str, ...] = ("cifar10", "cifar100")) -> None:
    """Download and MD5-check the official CIFAR python archives into ``root``; only on explicit request (needs
    internet). Files already there and intact are kept."""
    # torchvision is imported here: only this opt-in download needs it.
    from torchvision.datasets import CIFAR10, CIFAR100

    sources = {"cifar10": (CIFAR10, "CIFAR-10", CIFAR10_FOLDER), "cifar100": (CIFAR100, "CIFAR-100", CIFAR100_FOLDER)}
    unknown = [name for name in which if name not in sources]
    if unknown:
        raise DataError(f"cannot download {', '.join(unknown)}: choose from {', '.join(sources)}")
    root = Path(root).expanduser()
    for name in which:
        dataset_class, title, folder = sources[name]
        try:
            dataset_class(root=str(root), train=False, download=True)
        except (OSError, RuntimeError) as exc:
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise DataError(
                f"could not download {title} into {root} ({reason}); without internet, copy the python version's "
                f"{folder} folder there by hand"
            ) from exc


def _unknown_dataset(name: str) -> str:
    return f"dataset: unknown data set {name!r}; choose digits or cifar"


# --- digits -----------------------------------------------------------------------------------------------------------


def _digit_class(name: str) -> str:
    canonical = DIGIT_WORDS.get(name.strip().lower(), name.strip())
    if canonical in SOURCE_DIGITS:
        raise DataError(
            f"digits class {name!r} belongs to the source task (digits 0-4); choose target classes from 5-9"
        )
    if canonical not in TARGET_DIGITS:
        raise DataError(f"unknown digits class {name!r}; choose from {', '.join(TARGET_DIGITS)} (or five..nine)")
    return canonical


@lru_cache(maxsize=1)
def _all_digits() -> tuple[torch.Tensor, torch.Tensor]:
    """All 1,797 digits as normalised 3-channel 8x8 images and their digit labels (cached: read once per process)."""
    digits = load_digits()
    gray = torch.as_tensor(digits.images, dtype=torch.float32)
    images = ((gray - DIGITS_MEAN) / DIGITS_STD)[:, None].expand(-1, 3, -1, -1).contiguous()
    return images, torch.as_tensor(digits.target, dtype=torch.int64)


def _digits_split(classes: tuple[str, ...], data: DataConfig) -> tuple[TensorSet, TensorSet]:
    """The digits of ``classes`` (labelled by position), split stratified 70/30 with ``split_seed``."""
    images, digit_labels = _all_digits()
    wanted = torch.tensor([int(name) for name in classes])
    keep = torch.nonzero(torch.isin(digit_labels, wanted)).flatten()
    labels = torch.nonzero(digit_labels[keep, None] == wanted[None, :])[:, 1]
    pool = TensorSet(images[keep], labels, classes, mirrorable=False)
    test_count = math.ceil(DIGITS_TEST_FRACTION * len(pool))
    test_mask = torch.zeros(len(pool), dtype=torch.bool)
    test_mask[stratified_pick(pool.labels, test_count, data.split_seed)] = True
    return pool.select(torch.nonzero(~test_mask).flatten()), pool.select(torch.nonzero(test_mask).flatten())


# --- limits -------------------------------------------------------------------------------------------------------


def stratified_pick(labels: torch.Tensor, count: int, seed: int) -> torch.Tensor:
    """Sorted indices of ``count`` items drawn at random (seeded) with each class kept near its share of ``labels``.

    Each item's key is its (rank + 1/2) / class size in a seeded shuffle; the ``count`` smallest keys take about
    count/N of every class.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(labels), generator=generator)
    shuffled = labels[order]
    key = torch.empty(len(labels), dtype=torch.float64)
    for label in shuffled.unique():
        members = shuffled == label
        size = int(members.sum())
        key[members] = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    return order[torch.argsort(key, stable=True)[:count]].sort().values


def _limited(tensor_set: TensorSet, limit: int | None, field: str, seed: int) -> TensorSet:
    if limit is None or limit >= len(tensor_set):
        return tensor_set
    if limit < 1:
        raise DataError(f"{field}: must be at least 1 (or unset for no limit), got {limit}")
    return tensor_set.select(stratified_pick(tensor_set.labels, limit, seed))


# --- CIFAR --------------------------------------------------------------------------------------------------------


def _cifar100_class(name: str) -> str:
    canonical = name.strip().lower().replace(" ", "_").replace("-", "_")
    if canonical in CIFAR100_CLASSES:
        return canonical
    close = difflib.get_close_matches(canonical, CIFAR100_CLASSES, n=3)
    quoted = [repr(c) for c in close]
    suggestion = " or ".join([", ".join(quoted[:-1]), quoted[-1]] if len(quoted) > 1 else quoted)
    hint = f"did you mean {suggestion}?" if close else "no close match among its 100 names"
    raise DataError(f"unknown CIFAR-100 class {name!r} ({hint})")


def _data_root(data: DataConfig) -> Path:
    root = data.data_root or os.environ.get(DATA_ROOT_ENV)
    if not root:
        raise DataError(
            f"no CIFAR data root: set data_root or ${DATA_ROOT_ENV} to the folder holding {CIFAR10_FOLDER} and "
            f"{CIFAR100_FOLDER}"
        )
    return Path(root).expanduser()


def _cifar_files(data: DataConfig, title: str, folder: str, names: tuple[str, ...]) -> list[Path]:
    """The paths of ``names`` in ``folder`` under the data root, or a DataError naming the first one missing."""
    root = _data_root(data)
    paths = [root / folder / name for name in names]
    for path in paths:
        if not path.is_file():
            raise DataError(
                f"{title} not found under {root}: expected {path}; put the python version there or pass --download"
            )
    return paths


class _CifarUnpickler(pickle.Unpickler):
    """Loads CIFAR pickles but refuses any global beyond numpy arrays and byte strings, so a file in the data folder
    cannot run code."""

    allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str) -> object:
        if (module, name) not in self.allowed:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _read_pickle(path: Path, keys: tuple[str, ...]) -> dict[str, Any]:
    """A CIFAR pickle (Python 2, protocol 2) as a dict with str keys; checks that ``keys`` are present."""
    try:
        with path.open("rb") as file:
            raw = _CifarUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise DataError(f"{path} is not a CIFAR python-pickle file ({' '.join(str(exc).split())})") from exc
    if not isinstance(raw, dict):
        raise DataError(f"{path} is not a CIFAR python-pickle file (holds a {type(raw).__name__}, not a dict)")
    entry = {key.decode() if isinstance(key, bytes) else key: value for key, value in raw.items()}
    missing = [key for key in keys if key not in entry]
    if missing:
        raise DataError(f"{path} is not a CIFAR python-pickle file (no {', '.join(missing)} entry)")
    return entry


def _names(path: Path, key: str) -> tuple[str, ...]:
    return tuple(n.decode() if isinstance(n, bytes) else str(n) for n in _read_pickle(path, (key,))[key])


def _images_and_labels(paths: list[Path], label_key: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 [N, 3072] rows and int64 labels of the given CIFAR batch files, concatenated."""
    rows, labels = [], []
    for path in paths:
        entry = _read_pickle(path, ("data", label_key))
        batch = np.asarray(entry["data"], dtype=np.uint8)
        batch_labels = np.asarray(entry[label_key], dtype=np.int64)
        if batch.ndim != 2 or batch.shape[1] != 3 * 32 * 32 or len(batch) != len(batch_labels):
            raise DataError(
                f"{path} is not a CIFAR python-pickle file (data {batch.shape} for {len(batch_labels)} labels, "
                f"expected [N, 3072])"
            )
        rows.append(batch)
        labels.append(batch_labels)
    return np.concatenate(rows), np.concatenate(labels)


def _cifar_images(rows: np.ndarray) -> torch.Tensor:
    """Row-major RGB uint8 rows [N, 3072] as float [N, 3, 32, 32], normalised with the CIFAR-10 constants."""
    images = torch.from_numpy(rows).reshape(-1, 3, 32, 32).to(torch.float32).div_(255)
    mean = torch.tensor(CIFAR10_MEAN)[:, None, None]
    std = torch.tensor(CIFAR10_STD)[:, None, None]
    return images.sub_(mean).div_(std)


def _cifar10(data: DataConfig) -> tuple[TensorSet, TensorSet]:
    paths = _cifar_files(data, "CIFAR-10", CIFAR10_FOLDER, (*CIFAR10_TRAIN_FILES, "test_batch", "batches.meta"))
    class_names = _names(paths[-1], "label_names")
    sets = []
    for split in (paths[:5], paths[5:6]):
        rows, labels = _images_and_labels(split, "labels")
        if len(labels) and not 0 <= labels.min() <= labels.max() < len(class_names):
            raise DataError(f"{split[0]} has labels outside 0..{len(class_names) - 1} of {paths[-1]}")
        sets.append(TensorSet(_cifar_images(rows), torch.from_numpy(labels), class_names))
    return sets[0], sets[1]


def _cifar100(classes: tuple[str, ...], data: DataConfig) -> tuple[TensorSet, TensorSet]:
    train_path, test_path, meta_path = _cifar_files(data, "CIFAR-100", CIFAR100_FOLDER, ("train", "test", "meta"))
    fine_names = _names(meta_path, "fine_label_names")
    absent = [name for name in classes if name not in fine_names]
    if absent:
        raise DataError(f"{meta_path} lists no class {', '.join(absent)}; is it CIFAR-100's meta file?")
    wanted = torch.tensor([fine_names.index(name) for name in classes])
    sets = []
    for path in (train_path, test_path):
        rows, fine_labels = _images_and_labels([path], "fine_labels")
        matches = torch.nonzero(torch.from_numpy(fine_labels)[:, None] == wanted[None, :])
        keep, labels = matches[:, 0], matches[:, 1]
        sets.append(TensorSet(_cifar_images(rows[keep.numpy()]), labels, classes))
    return sets[0], sets[1]
