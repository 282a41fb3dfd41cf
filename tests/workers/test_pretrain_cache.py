"""The pretraining cache's files: progress beside the entry while a model trains, and models found in another folder
(an older cache location) copied, not trained again. Real training of a nano Swin on the embedded digits."""

from __future__ import annotations

import hashlib
import math
import threading
import time

from analog_sweep.sweeps import load_spec, pretrain_keys, shipped_specs
from analog_sweep.workers import cache_entry, find_cached, lock_held, pretrained_model, read_progress

NANO = [
    "data.image_size=16",
    "model.overrides.window_size=4",
    "model.overrides.depths=[1,1]",
    "model.overrides.embed_dim=12",
    "modes=[digital_tl]",
    "axes=null",
]


def _job(*overrides: str):
    spec = load_spec(shipped_specs()["quickstart"], [*NANO, *overrides])
    (job,) = pretrain_keys(spec).values()
    return job


def _sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_training_keeps_its_progress_beside_the_cache_entry_until_the_model_is_saved(tmp_path):
    job = _job("data.source_limit=300", "pretrain.epochs=40")  # about 3 s on one core
    entry = cache_entry(job.data, job.model, job.pretrain, tmp_path)
    done = []
    worker = threading.Thread(
        target=lambda: done.append(
            pretrained_model(job.data, job.model, job.pretrain, tmp_path, tag={"sweep": "mine", "token": "t1"})
        )
    )
    worker.start()
    seen = {}
    held = []
    while worker.is_alive():
        record = read_progress(entry.progress)
        if record is not None:
            seen[record["epoch"]] = record
            held.append(lock_held(entry.lock))
        time.sleep(0.02)
    worker.join()

    assert done and done[0].trained_now and entry.model.is_file()
    assert not entry.progress.exists() and not lock_held(entry.lock)  # removed once saved; the lock is free
    assert held and all(held)  # whoever reads the file while it trains finds the lock held
    epochs = sorted(seen)
    assert len(epochs) >= 5 and epochs[-1] >= 30, epochs  # written after every epoch (some may be missed by polling)
    first = seen[epochs[0]]
    assert first["sweep"] == "mine" and first["token"] == "t1" and first["key"] == job.key and first["epochs"] == 40
    trained = [seen[epoch] for epoch in epochs if epoch > 0]
    assert all(math.isfinite(r["loss"]) and r["loss"] > 0 for r in trained)
    # Cross-entropy on 5 classes starts near ln 5 = 1.61 and falls as the model learns the source task.
    assert trained[-1]["loss"] < trained[0]["loss"]
    # Time left is extrapolated from the epochs done: elapsed / epoch x epochs left.
    for record in trained:
        expected = record["elapsed_s"] / record["epoch"] * (40 - record["epoch"])
        assert math.isclose(record["left_s"], expected, rel_tol=1e-9)
    assert trained[-1]["left_s"] < trained[0]["left_s"]


def test_a_model_in_another_folder_is_copied_into_the_cache_not_trained_again(tmp_path):
    job = _job("data.source_limit=100", "pretrain.epochs=2")
    old, shared = tmp_path / "storage" / "cache", tmp_path / "shared"
    first = pretrained_model(job.data, job.model, job.pretrain, old)
    made = first.path.stat().st_mtime_ns
    said = []

    again = pretrained_model(job.data, job.model, job.pretrain, shared, said.append, also_in=[old])

    assert first.trained_now and not again.trained_now
    assert again.path.parent == shared and again.path.name == first.path.name
    # The same bytes: the provenance's file hash is the old file's, and the old file is left as it was.
    assert again.file_hash == first.file_hash == _sha256(again.path) == _sha256(first.path)
    assert first.path.stat().st_mtime_ns == made
    assert any("copied into the cache" in line for line in said), said
    assert find_cached(job.data, job.model, job.pretrain, [tmp_path / "nowhere", shared]) == again.path


def test_a_damaged_copy_in_another_folder_is_not_used(tmp_path):
    job = _job("data.source_limit=100", "pretrain.epochs=2")
    old, shared = tmp_path / "old", tmp_path / "shared"
    first = pretrained_model(job.data, job.model, job.pretrain, old)
    first.path.write_bytes(first.path.read_bytes()[:-100])  # truncated
    said = []

    again = pretrained_model(job.data, job.model, job.pretrain, shared, said.append, also_in=[old])

    assert again.trained_now and again.path.parent == shared
    assert any("pretraining cache unusable" in line for line in said), said
