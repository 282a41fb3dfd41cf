"""A GPU trial continues from its own checkpoint.

aihwkit's tile state only loads into CPU tiles (``workers._tile_state`` refuses a CUDA tile), so ``run_trial`` must
restore the checkpoint into the CPU model and only then move it. A CPU machine cannot move tiles to a GPU; the test
fakes the placement as far as it can: ``place_on_device`` marks every tile as a CUDA tile (what aihwkit's ``cuda()``
sets) and records what the tiles held when it was called. The real move is checked by ``docker/smoke_test.py`` on a
GPU (it runs a trial, then continues it).
"""

from __future__ import annotations

import dataclasses

import torch

from analog_sweep.workers import DataConfig, ModelConfig, PretrainConfig, TrialConfig, run_trial
from analog_sweep.workers import _trial as trial_module
from analog_sweep.workers._tile_state import analog_state, join_static
from analog_sweep.workers._verified_files import load_verified

NANO = ModelConfig(preset="swin_micro", overrides=(("depths", (1, 1)), ("embed_dim", 12)))


def fake_cuda_placement(seen: list[dict]):
    """A stand-in for ``place_on_device`` that does what a CPU machine can: flags each tile as CUDA, as
    ``tile.cuda()`` does, and records the tiles' state at the moment of the move."""

    def place(model: torch.nn.Module, device: str) -> torch.nn.Module:
        assert device == "cuda"
        seen.append(analog_state(model)["tiles"])
        for module in model.modules():
            if hasattr(module, "is_cuda") and hasattr(module, "tile"):
                module.is_cuda = True
        return model

    return place


def test_a_gpu_trial_restores_its_checkpoint_on_the_cpu_before_moving(tmp_path, monkeypatch):
    config = TrialConfig(
        mode="analog_scratch",
        data=DataConfig(classes=("5", "8"), train_limit=16, test_limit=16, source_limit=100),
        model=NANO,
        pretrain=PretrainConfig(epochs=1),
        lr=0.05,
        epochs=1,
        seed=1,
    )
    checkpoints = tmp_path / "ckpt"
    first = run_trial(config, cache_dir=tmp_path / "cache", checkpoint_dir=checkpoints)
    saved = checkpointed_tiles(checkpoints)

    seen: list[dict] = []
    monkeypatch.setattr(trial_module, "place_on_device", fake_cuda_placement(seen))
    # The retry on the "GPU": every epoch is restored (none left to train, so no CUDA tensor is ever needed).
    again = run_trial(
        dataclasses.replace(config), cache_dir=tmp_path / "cache", checkpoint_dir=checkpoints, device="cuda"
    )
    assert again.restored_epochs == 1
    assert [r.to_dict() for r in again.reports] == [r.to_dict() for r in first.reports]
    # The tiles moved were the restored ones: the checkpoint's planes, not a fresh model's (as in test_tile_state:
    # ``hidden_weights_0`` gets fresh write noise, persistent weights past a bound are clipped when set).
    assert len(seen) == 1
    compared = 0
    for name, entry in saved.items():
        planes = entry["planes"]
        for plane, values in planes.items():
            if plane == "hidden_weights_0":
                continue
            if plane.startswith("persistent_weights"):
                k = plane[-1]
                values = values.clamp(planes[f"min_bound_{k}"], planes[f"max_bound_{k}"])
            assert torch.equal(seen[0][name]["planes"][plane], values), (name, plane)
            compared += 1
    assert compared > 100


def checkpointed_tiles(folder) -> dict:
    """The tiles' state as the trial's checkpoint files hold it."""
    state = join_static(load_verified(folder / "static.pt")["state"], load_verified(folder / "latest.pt")["state"])
    return state["tiles"]
