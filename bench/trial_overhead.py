"""Time ``run_trial`` against a bare hand-written aihwkit training loop doing the same work; print the ratio.

Both train the same analog c-TTv2 micro Swin from scratch on the same embedded-digits tensors, with the same batches,
epochs and per-epoch test evaluation. The bare loop has no config objects, no checkpoints and no reports; the
difference is what the product costs on top of aihwkit. Runs alternate (bare, ours, ours with checkpoints) to share
any drift of the machine, and the median of each is compared. Target: ratio at most 1.05.

    .venv/bin/python bench/trial_overhead.py [--repeats 3] [--epochs 2] [--train-limit 64]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from aihwkit.nn.conversion import convert_to_analog
from aihwkit.optim import AnalogSGD

from analog_sweep.workers import (
    DataConfig,
    TrialConfig,
    batches,
    build_rpu_config,
    create_model,
    load_target,
    run_trial,
    test_error_percent,
)


def bare_loop(config: TrialConfig) -> float:
    """The hand-written baseline: seconds for the same fine-tuning with aihwkit and torch only."""
    started = time.perf_counter()
    train_set, test_set = load_target(config.data)
    torch.manual_seed(config.seed)
    model = create_model(config.model.preset, num_classes=len(train_set.class_names), img_size=config.data.image_size)
    model = convert_to_analog(model, build_rpu_config(config.algorithm, config.device))
    optimizer = AnalogSGD(model.parameters(), lr=config.lr)
    optimizer.regroup_param_groups(model)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(1, config.epochs + 1):
        generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
        model.train()
        for images, labels in batches(train_set, config.batch_size, shuffle=True, generator=generator):
            optimizer.zero_grad()
            loss_fn(model(images), labels).backward()
            optimizer.step()
        test_error_percent(model, test_set.images, test_set.labels, 64)
    return time.perf_counter() - started


def ours(config: TrialConfig, checkpoints: bool) -> float:
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        run_trial(config, cache_dir=folder, checkpoint_dir=f"{folder}/ckpt" if checkpoints else None)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--train-limit", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = TrialConfig(
        mode="analog_scratch",
        data=DataConfig(classes=("5", "8"), train_limit=args.train_limit, test_limit=64),
        epochs=args.epochs,
    )
    times: dict[str, list[float]] = {"bare aihwkit loop": [], "run_trial": [], "run_trial + checkpoints": []}
    bare_loop(config)  # warm-up: imports, allocator, data caches
    for _ in range(args.repeats):
        times["bare aihwkit loop"].append(bare_loop(config))
        times["run_trial"].append(ours(config, checkpoints=False))
        times["run_trial + checkpoints"].append(ours(config, checkpoints=True))
    base = statistics.median(times["bare aihwkit loop"])
    print(
        f"analog c-TTv2 swin_micro, {args.train_limit} images x {args.epochs} epochs, batch 8, {args.threads} threads, "
        f"median of {args.repeats}"
    )
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"{name:<26} {median:8.2f} s   ratio {median / base:5.3f}   runs: {', '.join(f'{v:.2f}' for v in values)}"
        )


if __name__ == "__main__":
    main()
