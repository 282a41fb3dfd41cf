"""Seconds per epoch and per pretraining measured by earlier sweeps, for the dry-run estimate of a new one.

The time model of ``sweeps._cost`` is fitted on one machine kind; the store knows what trials really took. A trial's
epoch time depends on the model (preset, overrides, image size), how many images it trains and tests on, the batch
size, whether it is analog or digital, and whether it ran on a GPU: ``timing_key`` names exactly that, so that a
measurement is used only for trials that would do the same work. The store itself is read by the caller (the
command line): this package never imports ``results`` (data flows spec -> orchestrator -> worker -> store).

A pretraining's time depends on everything its cache key hashes (source data, model, pretraining settings), so a
measured pretraining (``measured_pretraining``) prices exactly the models of that key. Pretraining runs on CPUs
(``workers._pretrain``), so the time applies to CPU and GPU sweeps alike.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from analog_sweep.sweeps._expand import Point, expand
from analog_sweep.sweeps._loader import spec_from_mapping
from analog_sweep.sweeps._schema import SpecError, SweepSpec

TimingKey = tuple[Any, ...]


@dataclass(frozen=True)
class MeasuredEpoch:
    """The median wall-clock seconds of one training epoch (training plus the test-set evaluation, as the worker
    reports it in ``epochs.seconds``) over ``epochs`` recorded epochs from ``sweeps`` earlier sweeps."""

    seconds: float
    epochs: int
    sweeps: tuple[str, ...]


@dataclass(frozen=True)
class MeasuredPretraining:
    """The median wall-clock seconds one pretraining of a cache key took (loading the source data, training, and
    measuring its source errors, as the worker times it), over ``trainings`` recorded trainings by ``sweeps``."""

    seconds: float
    trainings: int
    sweeps: tuple[str, ...]


def timing_key(spec: SweepSpec, point: Point, *, on_gpu: bool | None = None) -> TimingKey:
    """What decides an epoch's time: model preset and overrides, image size, data set, images trained and tested
    per epoch (``train_limit``/``test_limit`` and the task's class count), batch size, the analog algorithm (its
    pulsed update sets the cost: ``c-ttv2``, ``ttv2``, ``agad``, ``sgd``) or digital, and CPU or
    GPU (``resources.gpu`` > 0 unless ``on_gpu`` says otherwise, e.g. a GPU spec run with ``--cpu-fallback``)."""
    gpu = spec.resources.gpu > 0 if on_gpu is None else on_gpu
    return (
        spec.model.preset,
        spec.model.overrides,
        spec.data.image_size,
        spec.data.dataset,
        spec.data.train_limit,
        spec.data.test_limit,
        len(point.classes),
        spec.batch_size,
        point.algorithm_name or "digital",
        "gpu" if gpu else "cpu",
    )


def measured_epochs(stored: Iterable[Mapping[str, Any]]) -> dict[TimingKey, MeasuredEpoch]:
    """Median seconds per epoch by ``timing_key``, from the epochs recorded in the store.

    Rows of a sweep whose stored spec does not validate, and points its spec does not expand to, are skipped. A GPU
    spec's sweep is counted as GPU time: the store does not say whether it ran with ``--cpu-fallback``.

    Args:
        stored: Rows of the store's epochs (``Store.epoch_seconds()``): ``sweep``, ``spec`` (the stored mapping),
            ``point_key``, ``seconds``.

    Returns:
        The measured epoch of every timing key the rows cover.
    """
    by_sweep: dict[str, list[Mapping[str, Any]]] = defaultdict(list)
    for row in stored:
        if row.get("seconds") is not None and row["seconds"] > 0:
            by_sweep[row["sweep"]].append(row)
    samples: dict[TimingKey, list[float]] = defaultdict(list)
    sources: dict[TimingKey, set[str]] = defaultdict(set)
    for sweep, rows in by_sweep.items():
        try:
            spec = spec_from_mapping(rows[0]["spec"], source=f"sweep {sweep!r} in the store")
            points = {point.key: point for point in expand(spec)}
        except SpecError:
            continue
        for row in rows:
            point = points.get(row["point_key"])
            if point is not None:
                key = timing_key(spec, point)
                samples[key].append(float(row["seconds"]))
                sources[key].add(sweep)
    return {
        key: MeasuredEpoch(statistics.median(values), len(values), tuple(sorted(sources[key])))
        for key, values in samples.items()
    }


def measured_pretraining(models: Iterable[Mapping[str, Any]]) -> dict[str, MeasuredPretraining]:
    """Median seconds per pretraining by cache key, from the pretrained models recorded in the store.

    Only models a sweep trained itself count (``trained_now``): a model taken from the cache carries the time of the
    training that made it, which is already counted where that sweep recorded it.

    Args:
        models: Records of the store's pretrained models (``Store.provenance(sweep)["pretrained"]``, each with its
            ``sweep``): ``cache_key``, ``train_seconds``, ``trained_now``, ``sweep``.

    Returns:
        The measured pretraining of every cache key the records cover.
    """
    samples: dict[str, list[float]] = defaultdict(list)
    sources: dict[str, set[str]] = defaultdict(set)
    for model in models:
        seconds = model.get("train_seconds")
        if model.get("trained_now") and isinstance(seconds, (int, float)) and seconds > 0:
            samples[model["cache_key"]].append(float(seconds))
            sources[model["cache_key"]].add(str(model.get("sweep")))
    return {
        key: MeasuredPretraining(statistics.median(values), len(values), tuple(sorted(sources[key])))
        for key, values in samples.items()
    }
