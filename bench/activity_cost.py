"""What measuring analog learning activity costs, as a share of one training epoch.

After every epoch of an analog trial the worker reads every tile's weights and transfer counter and compares them
with the converted weights (``workers._activity.measure``). This bench times that measurement against the epoch it
follows, for an analog TL trial of swin_micro at 16x16 (96 digits images, batch 8) and a larger CPU model
(swin_tiny_cpu), on this machine's threads:

    .venv/bin/python bench/activity_cost.py [--threads 2] [--repeats 5]

Goal: under 5 % of an epoch.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from analog_sweep.orchestrator import pretrain_cache_dir  # noqa: E402
from analog_sweep.workers import (  # noqa: E402
    DataConfig,
    DevicePoint,
    ModelConfig,
    TrialConfig,
    batches,
    build_model,
    load_target,
    make_optimizer,
    measure,
    reference_weights,
)


def one_epoch(config: TrialConfig, model: torch.nn.Module, optimizer: torch.optim.Optimizer, train_set) -> float:
    started = time.perf_counter()
    loss_fn = torch.nn.CrossEntropyLoss()
    generator = torch.Generator().manual_seed(1)
    for images, labels in batches(train_set, config.batch_size, shuffle=True, generator=generator):
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()
        optimizer.step()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5, help="measurements timed per model (median reported)")
    parser.add_argument(
        "--cache-dir",
        default=str(pretrain_cache_dir(".")),
        help="pretrained-model cache (default: the one 'analog-sweep run' uses, $ANALOG_SWEEP_CACHE or the user's)",
    )
    options = parser.parse_args()
    torch.set_num_threads(options.threads)
    print(f"activity measurement vs one training epoch, {options.threads} thread(s), median of {options.repeats}")
    print(f"{'model':<14} {'weights':>9} {'tiles':>6} {'epoch s':>9} {'measure s':>10} {'share':>7}")
    for preset in ("swin_micro", "swin_tiny_cpu"):
        config = TrialConfig(
            mode="analog_tl",
            data=DataConfig(classes=("5", "8"), train_limit=96, test_limit=64),
            model=ModelConfig(preset=preset),
            device=DevicePoint(pulse_noise=3.75, dtod=0.3),
            lr=0.05,
        )
        train_set, _ = load_target(config.data)
        model, _ = build_model(config, len(train_set.class_names), options.cache_dir)
        reference = reference_weights(model)
        optimizer = make_optimizer(config, model)
        epoch = one_epoch(config, model, optimizer, train_set)
        timings = []
        for _ in range(options.repeats):
            started = time.perf_counter()
            measure(model, reference)
            timings.append(time.perf_counter() - started)
        cost = statistics.median(timings)
        weights = sum(w.numel() for w in reference.values())
        print(f"{preset:<14} {weights:>9,} {len(reference):>6} {epoch:>9.2f} {cost:>10.4f} {100 * cost / epoch:>6.2f}%")


if __name__ == "__main__":
    main()
