"""GPU worker smoke test: the CUDA build of aihwkit is present, one analog c-TTv2 trial runs on the GPU, and a
longer run of the same trial continues from its checkpoint on the GPU (what every retry and resume does).

    python docker/smoke_test.py            # exits 0 and prints the epoch results on success
"""

from __future__ import annotations

import dataclasses
import sys
import tempfile
import time

import torch
from aihwkit.simulator.rpu_base import cuda

from analog_sweep.workers import DataConfig, PretrainConfig, TrialConfig, run_trial


def main() -> int:
    print(f"torch {torch.__version__}, CUDA available: {torch.cuda.is_available()}, aihwkit CUDA: {cuda.is_compiled()}")
    if not (torch.cuda.is_available() and cuda.is_compiled()):
        print("FAIL: this image needs a GPU and aihwkit compiled with CUDA", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name(0)}")
    config = TrialConfig(
        mode="analog_tl",
        data=DataConfig(classes=("5", "8"), train_limit=64, test_limit=64),
        pretrain=PretrainConfig(epochs=5),
        epochs=2,
        lr=0.05,
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        result = run_trial(
            config,
            cache_dir=folder,
            checkpoint_dir=f"{folder}/ckpt",
            device="cuda",
            on_epoch=lambda r: print(r.to_dict()),
        )
        # Continue the same trial for one more epoch: the checkpoint is restored on the CPU, then moved.
        longer = dataclasses.replace(config, epochs=config.epochs + 1)
        continued = run_trial(
            longer,
            cache_dir=folder,
            checkpoint_dir=f"{folder}/ckpt",
            device="cuda",
            on_epoch=lambda r: print(r.to_dict()),
        )
    if continued.restored_epochs != config.epochs or len(continued.reports) != longer.epochs:
        print(
            f"FAIL: the continued trial restored {continued.restored_epochs} epochs and ended with "
            f"{len(continued.reports)}; expected {config.epochs} and {longer.epochs}",
            file=sys.stderr,
        )
        return 1
    if [r.to_dict() for r in continued.reports[: config.epochs]] != [r.to_dict() for r in result.reports]:
        print("FAIL: the continued trial's restored epochs differ from the first run's", file=sys.stderr)
        return 1
    print(
        f"OK: {len(result.reports)} epochs, then continued to {len(continued.reports)} from the checkpoint, "
        f"{result.analog_layers} analog layers on cuda, {time.perf_counter() - started:.1f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
