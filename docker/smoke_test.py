"""GPU worker smoke test: the CUDA build of aihwkit is present and one analog c-TTv2 trial runs on the GPU.

    python docker/smoke_test.py            # exits 0 and prints the epoch results on success
"""

from __future__ import annotations

import sys
import tempfile
import time

import torch
from aihwkit.simulator.rpu_base import cuda

from workers.config import DataConfig, PretrainConfig, TrialConfig
from workers.trial import run_trial


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
        result = run_trial(config, cache_dir=folder, checkpoint_dir=f"{folder}/ckpt", device="cuda",
                           on_epoch=lambda r: print(r.to_dict()))
    print(f"OK: {len(result.reports)} epochs, {result.analog_layers} analog layers on cuda, "
          f"{time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
