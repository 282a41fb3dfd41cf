"""Analog c-TTv2 training speed on a GPU against the CPU, and how many trials one GPU holds.

Times the training steps of one analog trial as a sweep's worker runs them (``workers``' model, conversion and rpu
config: the paper's Swin at 32x32 with Table I's c-TTv2 on the ReRAM preset, batch 8, from scratch so that no
pretraining is needed; the embedded digits, upsampled, stand in for CIFAR since only the shapes matter here), first
on the CPU, then on the GPU with 1, 2, 4 ... trials at once (one process each, as Ray runs trials that share a GPU at
``resources.gpu`` 0.25). Prints, per setting, each trial's analog steps per second, their sum, the GPU memory in use
at the peak, and the speed-up over the CPU. aihwkit's CUDA tiles allocate outside torch's allocator, so the memory is
the device's (``torch.cuda.mem_get_info``), sampled while the trials run.

    python bench/gpu_share.py [--concurrent 1 2 4 8] [--steps 30] [--cpu-steps 3] [--preset swin_paper]

Needs aihwkit built with CUDA (``docker/build_aihwkit_cuda.sh``) and a GPU; ``--no-gpu`` times the CPU only.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import sys
import threading
import time

import torch


def _steps_per_second(
    preset: str, image_size: int, batch_size: int, steps: int, device: str, seed: int, ready: mp.Barrier | None = None
) -> float:
    """Analog training steps per second of one trial after two warm-up steps (the first builds CUDA kernels). The
    model, its placement and its optimizer come from ``workers._trial`` and ``workers._devices``, as in a trial."""
    import tempfile

    from analog_sweep.workers import (
        DataConfig,
        ModelConfig,
        TrialConfig,
        batches,
        build_model,
        load_target,
        make_optimizer,
        place_on_device,
    )

    config = TrialConfig(
        mode="analog_scratch",  # no pretraining: the shapes and the pulsed update are what is timed
        data=DataConfig(classes=("5", "8"), image_size=image_size, train_limit=batch_size * (steps + 2)),
        model=ModelConfig(preset=preset),
        lr=0.05,
        batch_size=batch_size,
        seed=seed,
    )
    train_set, _ = load_target(config.data)
    with tempfile.TemporaryDirectory() as cache:
        model, _ = build_model(config, num_classes=2, cache_dir=cache)
    model = place_on_device(model, device)
    optimizer = make_optimizer(config, model)
    loss_fn = torch.nn.CrossEntropyLoss()
    model.train()
    timed = 0
    started = 0.0
    for index, (images, labels) in enumerate(batches(train_set, batch_size, shuffle=False)):
        if index == 2:
            if device == "cuda":
                torch.cuda.synchronize()
            if ready is not None:
                ready.wait()  # every trial times the same stretch of sharing
            started = time.perf_counter()
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss_fn(model(images), labels).backward()
        optimizer.step()
        timed += index >= 2
    if device == "cuda":
        torch.cuda.synchronize()
    return timed / (time.perf_counter() - started)


def _worker(args: tuple, ready: mp.Barrier, results: mp.Queue) -> None:
    try:
        results.put(_steps_per_second(*args, ready=ready))
    except Exception as exc:  # noqa: BLE001 - reported by the parent, with the others' results
        ready.abort()
        results.put(f"{type(exc).__name__}: {exc}")


def shared_gpu(preset: str, image_size: int, batch_size: int, steps: int, trials: int) -> tuple[list, float]:
    """Each of ``trials`` processes' steps per second on one GPU, and the peak device memory in use (GiB)."""
    context = mp.get_context("spawn")
    ready, results = context.Barrier(trials), context.Queue()
    processes = [
        context.Process(target=_worker, args=((preset, image_size, batch_size, steps, "cuda", seed), ready, results))
        for seed in range(trials)
    ]
    total = torch.cuda.mem_get_info()[1]
    peak = [0.0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], total - torch.cuda.mem_get_info()[0])
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    for process in processes:
        process.start()
    speeds = [results.get() for _ in processes]
    for process in processes:
        process.join()
    done.set()
    sampler.join()
    return speeds, peak[0] / 2**30


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="\n".join(__doc__.splitlines()[2:]),
    )
    parser.add_argument("--preset", default="swin_paper", help="model preset (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=32, help="input pixels (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=8, help="images per step (default: %(default)s, Table I)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per GPU trial (default: %(default)s)")
    parser.add_argument("--cpu-steps", type=int, default=3, help="timed steps on the CPU (default: %(default)s)")
    parser.add_argument(
        "--concurrent", type=int, nargs="+", default=[1, 2, 4, 8], help="trials at once on the GPU (default: 1 2 4 8)"
    )
    parser.add_argument("--no-gpu", action="store_true", help="time the CPU only")
    args = parser.parse_args()

    from aihwkit.simulator.rpu_base import cuda

    print(
        f"torch {torch.__version__}, CUDA {torch.version.cuda}, GPU available: {torch.cuda.is_available()}, "
        f"aihwkit CUDA: {cuda.is_compiled()}; {args.preset} at {args.image_size}x{args.image_size}, batch "
        f"{args.batch_size}, c-TTv2 (Table I) on the ReRAM preset",
        flush=True,
    )
    cpu = _steps_per_second(args.preset, args.image_size, args.batch_size, args.cpu_steps, "cpu", 0)
    print(f"cpu ({torch.get_num_threads()} threads): {cpu:.3f} analog steps/s", flush=True)
    if args.no_gpu:
        return 0
    if not (torch.cuda.is_available() and cuda.is_compiled()):
        print("gpu_share.py: no GPU, or aihwkit without CUDA: only the CPU was timed", file=sys.stderr)
        return 1
    print(f"gpu: {torch.cuda.get_device_name(0)}")
    print(f"{'trials':>6}  {'steps/s each (median)':>21}  {'steps/s total':>13}  {'x cpu':>7}  {'GPU memory GiB':>14}")
    for trials in args.concurrent:
        speeds, memory = shared_gpu(args.preset, args.image_size, args.batch_size, args.steps, trials)
        failed = [s for s in speeds if isinstance(s, str)]
        if failed:
            print(f"{trials:>6}  failed: {failed[0]}", flush=True)
            break
        total = sum(speeds)
        print(
            f"{trials:>6}  {statistics.median(speeds):>21.2f}  {total:>13.2f}  {total / cpu:>7.1f}  {memory:>14.2f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
