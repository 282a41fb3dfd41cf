"""Tests for workers._data: digits counts and splits, CIFAR loading from files in the exact python-pickle layout,
class selection, limits, errors, and seeded batching and augmentation."""

from __future__ import annotations

import pickle
import urllib.error
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from analog_sweep.workers import (
    DataConfig,
    DataError,
    batches,
    download_cifar,
    load_target,
    load_target_splits,
    target_classes,
)
from analog_sweep.workers import _data as data
from analog_sweep.workers._data import (
    CIFAR10_CLASSES,
    CIFAR10_MEAN,
    CIFAR10_STD,
    CIFAR100_CLASSES,
    TensorSet,
    load_source,
    random_crop_flip,
    stratified_pick,
)

CIFAR100_COARSE = (
    "aquatic_mammals", "fish", "flowers", "food_containers", "fruit_and_vegetables", "household_electrical_devices",
    "household_furniture", "insects", "large_carnivores", "large_man-made_outdoor_things",
    "large_natural_outdoor_scenes", "large_omnivores_and_herbivores", "medium_mammals", "non-insect_invertebrates",
    "people", "reptiles", "small_mammals", "trees", "vehicles_1", "vehicles_2",
)  # fmt: skip

CIFAR10_PER_CLASS_PER_BATCH = 2  # 5 batches: 10 training images a class
CIFAR10_TEST_PER_CLASS = 3
CIFAR100_TRAIN_PER_CLASS = 6
CIFAR100_TEST_PER_CLASS = 2


def _rows(labels: list[int], serial_start: int) -> np.ndarray:
    """CIFAR rows (uint8 [N, 3072], R then G then B planes, each row-major) that carry their label in pixel (0, 0) of
    the red plane and a serial number in pixel (0, 1) of the green plane, so tests can tell which image is which."""
    rng = np.random.default_rng(serial_start)
    rows = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
    rows[:, 0] = labels
    rows[:, 1024 + 1] = np.arange(serial_start, serial_start + len(labels)) % 256
    return rows


def _dump(path: Path, entry: dict[bytes, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as file:
        pickle.dump(entry, file, protocol=2)


def _write_cifar10(root: Path) -> None:
    folder = root / "cifar-10-batches-py"
    serial = 0
    for number in range(1, 6):
        labels = [label for label in range(10) for _ in range(CIFAR10_PER_CLASS_PER_BATCH)]
        _dump(
            folder / f"data_batch_{number}",
            {
                b"batch_label": f"training batch {number} of 5".encode(),
                b"labels": labels,
                b"data": _rows(labels, serial),
                b"filenames": [f"img_{serial + i}.png".encode() for i in range(len(labels))],
            },
        )
        serial += len(labels)
    labels = [label for label in range(10) for _ in range(CIFAR10_TEST_PER_CLASS)]
    _dump(
        folder / "test_batch",
        {
            b"batch_label": b"testing batch 1 of 1",
            b"labels": labels,
            b"data": _rows(labels, serial),
            b"filenames": [f"test_{i}.png".encode() for i in range(len(labels))],
        },
    )
    _dump(
        folder / "batches.meta",
        {b"num_cases_per_batch": 10000, b"label_names": [n.encode() for n in CIFAR10_CLASSES], b"num_vis": 3072},
    )


def _write_cifar100(root: Path) -> None:
    folder = root / "cifar-100-python"
    for split, per_class, serial in (("train", CIFAR100_TRAIN_PER_CLASS, 0), ("test", CIFAR100_TEST_PER_CLASS, 1000)):
        fine = [label for _ in range(per_class) for label in range(100)]
        _dump(
            folder / split,
            {
                b"filenames": [f"{split}_{i}.png".encode() for i in range(len(fine))],
                b"batch_label": f"{'training' if split == 'train' else 'testing'} batch 1 of 1".encode(),
                b"fine_labels": fine,
                b"coarse_labels": [label // 5 for label in fine],
                b"data": _rows(fine, serial),
            },
        )
    _dump(
        folder / "meta",
        {
            b"fine_label_names": [n.encode() for n in CIFAR100_CLASSES],
            b"coarse_label_names": [n.encode() for n in CIFAR100_COARSE],
        },
    )


@pytest.fixture(scope="module")
def cifar_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cifar")
    _write_cifar10(root)
    _write_cifar100(root)
    return root


def _cifar(root: Path, **fields: Any) -> DataConfig:
    fields.setdefault("classes", ("beaver", "otter"))
    fields.setdefault("image_size", 32)
    return DataConfig(dataset="cifar", data_root=str(root), **fields)


def _raw_pixel(images: torch.Tensor, channel: int, row: int, col: int) -> torch.Tensor:
    """Undo the normalisation of one pixel back to the stored 0..255 value."""
    value = images[:, channel, row, col] * CIFAR10_STD[channel] + CIFAR10_MEAN[channel]
    return torch.round(value * 255).to(torch.int64)


def _serials(tensor_set: TensorSet) -> list[int]:
    return _raw_pixel(tensor_set.images, 1, 0, 1).tolist()


def _one_line_error(excinfo: pytest.ExceptionInfo[DataError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    return message


# --- constants ----------------------------------------------------------------------------------------------------


def test_class_name_constants_are_the_real_lists() -> None:
    assert len(CIFAR10_CLASSES) == 10 and CIFAR10_CLASSES[0] == "airplane" and CIFAR10_CLASSES[-1] == "truck"
    # The real fine label names are 100 distinct names in alphabetical order.
    assert len(set(CIFAR100_CLASSES)) == 100 and list(CIFAR100_CLASSES) == sorted(CIFAR100_CLASSES)
    assert {"beaver", "otter", "apple", "man", "beetle", "tiger", "maple_tree"} <= set(CIFAR100_CLASSES)


# --- digits -------------------------------------------------------------------------------------------------------


def test_digits_source_is_the_901_digits_zero_to_four() -> None:
    train, test = load_source(DataConfig())
    assert len(train) + len(test) == 901
    assert train.class_names == ("0", "1", "2", "3", "4")
    assert set(train.labels.tolist()) == set(test.labels.tolist()) == {0, 1, 2, 3, 4}
    assert train.images.shape == (len(train), 3, 16, 16) and train.images.dtype == torch.float32
    assert train.labels.dtype == torch.int64
    # Normalised with the source digits' fixed constants: about mean 0 and std 1 at the native 8x8 size.
    native, _ = load_source(DataConfig(image_size=8))
    assert abs(native.images.mean().item()) < 0.05 and abs(native.images.std().item() - 1) < 0.05
    assert torch.equal(train.images[:, 0], train.images[:, 2])  # gray replicated to 3 channels


def test_digits_target_five_eight_splits_249_107_stratified() -> None:
    train, test = load_target(DataConfig(classes=("5", "8")))
    assert (len(train), len(test)) == (249, 107)
    assert train.class_names == ("5", "8")
    # 182 fives and 174 eights, each split about 70/30.
    assert torch.bincount(test.labels).tolist() == [55, 52]
    assert torch.bincount(train.labels).tolist() == [127, 122]


def test_digits_labels_follow_the_order_of_classes_and_accept_words() -> None:
    forward, _ = load_target(DataConfig(classes=("5", "8")))
    backward, _ = load_target(DataConfig(classes=("eight", "Five")))
    assert backward.class_names == ("8", "5")
    assert torch.bincount(backward.labels).tolist() == [122, 127]
    # Same images (same seed, same pool order), labels swapped.
    assert torch.equal(forward.images, backward.images)
    assert torch.equal(forward.labels, 1 - backward.labels)


def test_digits_split_is_reproducible_and_depends_on_the_seed() -> None:
    first, _ = load_target(DataConfig(split_seed=3))
    again, _ = load_target(DataConfig(split_seed=3))
    other, _ = load_target(DataConfig(split_seed=4))
    assert torch.equal(first.images, again.images) and torch.equal(first.labels, again.labels)
    assert not torch.equal(first.images, other.images)


def _image_counts(tensor_set: TensorSet) -> Counter[bytes]:
    """Each image's bytes, counted (digits holds a few identical images, so a multiset, not a set)."""
    return Counter(image.numpy().tobytes() for image in tensor_set.images)


def test_validation_split_partitions_the_training_set_stratified_and_seeded() -> None:
    whole = load_target_splits(DataConfig(classes=("5", "8")))
    assert whole.validation is None  # fraction 0: nothing held out
    splits = load_target_splits(DataConfig(classes=("5", "8"), validation_fraction=0.2))
    # round(0.2 x 249) = 50 held out; the 127 fives and 122 eights keep their shares (25.5 and 24.5) within one.
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (199, 50, 107)
    fives, eights = torch.bincount(splits.validation.labels).tolist()
    assert fives + eights == 50 and abs(fives - 25.5) <= 1 and abs(eights - 24.5) <= 1
    # Train and validation together are exactly the whole training set (so disjoint), and test is untouched.
    assert _image_counts(splits.train) + _image_counts(splits.validation) == _image_counts(whole.train)
    assert torch.equal(splits.test.images, whole.test.images)
    assert not set(_image_counts(splits.validation)) & set(_image_counts(splits.test))
    again = load_target_splits(DataConfig(classes=("5", "8"), validation_fraction=0.2))
    other = load_target_splits(DataConfig(classes=("5", "8"), validation_fraction=0.2, split_seed=1))
    assert torch.equal(again.validation.images, splits.validation.images)
    assert not torch.equal(other.validation.images, splits.validation.images)
    # load_target hands out the same training set, without the validation images.
    train, _ = load_target(DataConfig(classes=("5", "8"), validation_fraction=0.2))
    assert torch.equal(train.images, splits.train.images)


def test_train_limit_applies_after_the_validation_split() -> None:
    free = load_target_splits(DataConfig(classes=("5", "8"), validation_fraction=0.2))
    limited = load_target_splits(DataConfig(classes=("5", "8"), validation_fraction=0.2, train_limit=96))
    assert (len(limited.train), len(limited.validation)) == (96, 50)
    assert torch.equal(limited.validation.images, free.validation.images)  # the limit does not move the split
    assert not set(_image_counts(limited.train)) - set(_image_counts(free.train))


@pytest.mark.parametrize(
    ("classes", "expected"),
    [
        (("3", "8"), "belongs to the source task"),
        (("5", "x"), "unknown digits class 'x'"),
        (("5", "five"), "5 named more than once"),
        (("5",), "at least two classes"),
    ],
)
def test_digits_bad_target_classes_raise_one_line(classes: tuple[str, ...], expected: str) -> None:
    with pytest.raises(DataError) as excinfo:
        load_target(DataConfig(classes=classes))
    assert expected in _one_line_error(excinfo)


def test_image_size_below_two_raises() -> None:
    with pytest.raises(DataError, match="image_size: must be at least 2"):
        load_source(DataConfig(image_size=1))


def test_unknown_dataset_raises() -> None:
    with pytest.raises(DataError, match="unknown data set 'mnist'"):
        load_source(DataConfig(dataset="mnist"))


# --- CIFAR --------------------------------------------------------------------------------------------------------


def test_cifar_source_reads_all_ten_classes(cifar_root: Path) -> None:
    train, test = load_source(_cifar(cifar_root))
    assert train.images.shape == (100, 3, 32, 32) and test.images.shape == (30, 3, 32, 32)
    assert train.class_names == CIFAR10_CLASSES
    assert torch.bincount(train.labels).tolist() == [10] * 10
    assert torch.equal(_raw_pixel(train.images, 0, 0, 0), train.labels)
    assert _serials(train) == list(range(100))


def test_cifar_layout_is_row_major_rgb_normalised_with_cifar10_constants(cifar_root: Path) -> None:
    with (cifar_root / "cifar-10-batches-py" / "data_batch_1").open("rb") as file:
        rows = pickle.load(file, encoding="bytes")[b"data"]
    train, _ = load_source(_cifar(cifar_root))
    first = rows[0].astype(np.float64) / 255
    for channel in range(3):
        plane = first[channel * 1024 : (channel + 1) * 1024].reshape(32, 32)
        expected = (plane - CIFAR10_MEAN[channel]) / CIFAR10_STD[channel]
        np.testing.assert_allclose(train.images[0, channel].numpy(), expected, atol=1e-5)


def test_cifar_target_selects_classes_by_name_in_the_given_order(cifar_root: Path) -> None:
    train, test = load_target(_cifar(cifar_root, classes=("otter", "beaver")))
    assert train.class_names == ("otter", "beaver")
    assert train.images.shape == (2 * CIFAR100_TRAIN_PER_CLASS, 3, 32, 32)
    assert len(test) == 2 * CIFAR100_TEST_PER_CLASS
    fine = {"otter": CIFAR100_CLASSES.index("otter"), "beaver": CIFAR100_CLASSES.index("beaver")}
    for tensor_set in (train, test):
        expected = torch.tensor([fine["otter"] if label == 0 else fine["beaver"] for label in tensor_set.labels])
        assert torch.equal(_raw_pixel(tensor_set.images, 0, 0, 0), expected)


def test_cifar_five_class_target_and_name_spelling(cifar_root: Path) -> None:
    classes = ("apple", "man", "beetle", "tiger", "Maple Tree")
    train, _ = load_target(_cifar(cifar_root, classes=classes))
    assert train.class_names == ("apple", "man", "beetle", "tiger", "maple_tree")
    assert torch.bincount(train.labels).tolist() == [CIFAR100_TRAIN_PER_CLASS] * 5


def test_cifar_images_are_resized_to_image_size(cifar_root: Path) -> None:
    native, _ = load_target(_cifar(cifar_root))
    small, small_test = load_target(_cifar(cifar_root, image_size=16))
    assert small.images.shape == (12, 3, 16, 16) and small_test.images.shape == (4, 3, 16, 16)
    shrunk = torch.nn.functional.interpolate(native.images, size=(16, 16), mode="bilinear", antialias=True)
    torch.testing.assert_close(small.images, shrunk)
    shapes = [images.shape for images, _ in batches(small, 5, shuffle=False)]
    assert shapes == [(5, 3, 16, 16), (5, 3, 16, 16), (2, 3, 16, 16)]


def test_cifar_limits_cap_splits_stratified_and_seeded(cifar_root: Path) -> None:
    config = _cifar(cifar_root, classes=("apple", "man"), train_limit=6, test_limit=2, source_limit=40, split_seed=1)
    train, test = load_target(config)
    assert torch.bincount(train.labels).tolist() == [3, 3]
    assert torch.bincount(test.labels).tolist() == [1, 1]
    source_train, source_test = load_source(config)
    assert torch.bincount(source_train.labels).tolist() == [4] * 10
    assert len(source_test) == 30  # source_limit caps only the source training set
    again, _ = load_target(config)
    other, _ = load_target(_cifar(cifar_root, classes=("apple", "man"), train_limit=6, split_seed=2))
    assert _serials(again) == _serials(train)
    assert _serials(other) != _serials(train)


def test_cifar_validation_is_held_out_of_the_training_file_by_class(cifar_root: Path) -> None:
    config = _cifar(cifar_root, classes=("apple", "man"), validation_fraction=0.5)
    splits = load_target_splits(config)
    assert torch.bincount(splits.validation.labels).tolist() == [3, 3]
    assert torch.bincount(splits.train.labels).tolist() == [3, 3]
    whole, _ = load_target(_cifar(cifar_root, classes=("apple", "man")))
    assert sorted(_serials(splits.train) + _serials(splits.validation)) == sorted(_serials(whole))
    assert not set(_serials(splits.train)) & set(_serials(splits.validation))


def test_validation_fraction_that_leaves_a_class_without_training_images_raises(cifar_root: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_target_splits(_cifar(cifar_root, classes=("apple", "man"), validation_fraction=0.95))
    assert "validation_fraction: 0.95 of 12 training images leaves no training image" in _one_line_error(excinfo)


def test_limit_below_one_raises(cifar_root: Path) -> None:
    with pytest.raises(DataError, match="train_limit: must be at least 1"):
        load_target(_cifar(cifar_root, train_limit=0))


def test_missing_cifar_file_names_the_path_and_the_fix(tmp_path: Path) -> None:
    _write_cifar10(tmp_path)
    with pytest.raises(DataError) as excinfo:
        load_target(_cifar(tmp_path))
    message = _one_line_error(excinfo)
    assert f"CIFAR-100 not found under {tmp_path}" in message
    assert str(tmp_path / "cifar-100-python" / "train") in message and "--download" in message
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(DataError, match="expected .*data_batch_3"):
        load_source(_cifar(tmp_path))


def test_data_root_comes_from_the_environment(cifar_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(data.DATA_ROOT_ENV, raising=False)
    with pytest.raises(DataError, match="ANALOG_SWEEP_DATA"):
        load_target(DataConfig(dataset="cifar", classes=("beaver", "otter")))
    monkeypatch.setenv(data.DATA_ROOT_ENV, str(cifar_root))
    train, _ = load_target(DataConfig(dataset="cifar", classes=("beaver", "otter")))
    assert len(train) == 2 * CIFAR100_TRAIN_PER_CLASS


def test_unknown_cifar_class_suggests_close_names(cifar_root: Path) -> None:
    with pytest.raises(DataError) as excinfo:
        load_target(_cifar(cifar_root, classes=("bever", "otter")))
    assert _one_line_error(excinfo) == "unknown CIFAR-100 class 'bever' (did you mean 'beaver', 'bee' or 'bear'?)"
    with pytest.raises(DataError, match=r"'otterr' \(did you mean 'otter'"):
        target_classes(_cifar(cifar_root, classes=("beaver", "otterr")))
    with pytest.raises(DataError, match="no close match"):
        target_classes(_cifar(cifar_root, classes=("beaver", "zzzzqx")))


def test_duplicate_cifar_class_raises(cifar_root: Path) -> None:
    with pytest.raises(DataError, match="beaver named more than once"):
        load_target(_cifar(cifar_root, classes=("beaver", "otter", "Beaver")))


def test_file_that_is_not_a_cifar_pickle_raises(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    (tmp_path / "cifar-100-python" / "test").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="is not a CIFAR python-pickle file"):
        load_target(_cifar(tmp_path))
    _dump(tmp_path / "cifar-100-python" / "test", {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
    with pytest.raises(DataError, match="no fine_labels entry"):
        load_target(_cifar(tmp_path))


def test_pickle_that_would_run_code_is_refused(tmp_path: Path) -> None:
    _write_cifar100(tmp_path)
    with (tmp_path / "cifar-100-python" / "meta").open("wb") as file:
        pickle.dump({b"fine_label_names": Path("x")}, file, protocol=2)
    with pytest.raises(DataError, match="unexpected object pathlib"):
        load_target(_cifar(tmp_path))


def test_download_failure_offline_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import torchvision.datasets

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("[Errno -3] Temporary failure\nin name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DataError) as excinfo:
        download_cifar(tmp_path, which=("cifar10",))
    message = _one_line_error(excinfo)
    assert message.startswith(f"could not download CIFAR-10 into {tmp_path}")
    assert "copy the python version's cifar-10-batches-py folder there by hand" in message
    with pytest.raises(DataError, match="cannot download mnist"):
        download_cifar(tmp_path, which=("mnist",))


# --- batching and augmentation ------------------------------------------------------------------------------------


def _small_set() -> TensorSet:
    images = torch.randn(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    return TensorSet(images, torch.arange(10) % 2, ("a", "b"))


def test_batches_cover_every_item_once_in_order_without_shuffle() -> None:
    tensor_set = _small_set()
    got = list(batches(tensor_set, 4, shuffle=False))
    assert [len(labels) for _, labels in got] == [4, 4, 2]
    assert torch.equal(torch.cat([images for images, _ in got]), tensor_set.images)


def test_shuffled_batches_are_a_seeded_permutation() -> None:
    tensor_set = _small_set()

    def run(seed: int) -> torch.Tensor:
        got = batches(tensor_set, 3, shuffle=True, generator=torch.Generator().manual_seed(seed))
        return torch.cat([images for images, _ in got])

    first = run(0)
    assert torch.equal(first, run(0))
    assert not torch.equal(first, run(1))
    assert not torch.equal(first, tensor_set.images)
    by_first_pixel = first[:, 0, 0, 0].argsort()
    assert torch.equal(first[by_first_pixel], tensor_set.images[tensor_set.images[:, 0, 0, 0].argsort()])


def test_shuffle_or_augment_without_generator_raises() -> None:
    with pytest.raises(ValueError, match="generator"):
        next(batches(_small_set(), 4, shuffle=True))
    with pytest.raises(ValueError, match="generator"):
        next(batches(_small_set(), 4, shuffle=False, augment=True))


def test_augmentation_changes_images_keeps_shape_and_is_reproducible() -> None:
    images = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    first = random_crop_flip(images, torch.Generator().manual_seed(5))
    again = random_crop_flip(images, torch.Generator().manual_seed(5))
    other = random_crop_flip(images, torch.Generator().manual_seed(6))
    assert first.shape == images.shape
    assert torch.equal(first, again) and not torch.equal(first, other)
    changed = (first != images).flatten(1).any(1)
    assert changed.float().mean() > 0.5  # 5x5 offsets times a flip: almost every image moves


def test_augmentation_is_a_shifted_and_flipped_crop() -> None:
    """Each output is the padded image shifted by at most pad pixels, possibly mirrored left-right."""
    images = torch.randn(32, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    output = random_crop_flip(images, torch.Generator().manual_seed(2))
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="reflect")
    for image, result in zip(padded, output, strict=True):
        crops = [image[:, top : top + 16, left : left + 16] for top in range(5) for left in range(5)]
        assert any(torch.equal(result, crop) or torch.equal(result, crop.flip(2)) for crop in crops)


@pytest.mark.parametrize("flip", [True, False])
def test_augmentation_mirrors_only_when_asked(flip: bool) -> None:
    """Without ``flip`` every output is an unmirrored crop; with it, some are mirrored."""
    images = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    output = random_crop_flip(images, torch.Generator().manual_seed(2), flip=flip)
    padded = torch.nn.functional.pad(images, (2, 2, 2, 2), mode="reflect")
    mirrored = 0
    for image, result in zip(padded, output, strict=True):
        crops = [image[:, top : top + 16, left : left + 16] for top in range(5) for left in range(5)]
        if not any(torch.equal(result, crop) for crop in crops):
            assert any(torch.equal(result, crop.flip(2)) for crop in crops)
            mirrored += 1
    assert (mirrored > 10) if flip else (mirrored == 0)


def test_digits_are_never_mirrored_but_cifar_images_are_mirrorable(cifar_root: Path) -> None:
    digits_train, digits_test = load_source(DataConfig(dataset="digits"))
    cifar_train, _ = load_target(DataConfig(dataset="cifar", classes=("beaver", "otter"), data_root=str(cifar_root)))
    assert not digits_train.mirrorable and not digits_test.mirrorable
    assert not digits_train.select(torch.arange(4)).resized(8).mirrorable
    assert cifar_train.mirrorable


def test_augmented_batches_have_the_model_size_and_repeat_with_the_seed() -> None:
    train, _ = load_target(DataConfig(image_size=16))

    def run() -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(0)
        return [images for images, _ in batches(train, 64, shuffle=True, generator=generator, augment=True)]

    first, again = run(), run()
    assert [images.shape[1:] for images in first] == [(3, 16, 16)] * 4
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))


def test_stratified_pick_keeps_class_shares() -> None:
    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    picked = stratified_pick(labels, 20, seed=0)
    assert len(set(picked.tolist())) == 20
    assert torch.bincount(labels[picked]).tolist() == [12, 6, 2]
    assert torch.equal(picked, stratified_pick(labels, 20, seed=0))
