"""Calibrate the digital-to-analog weight mapping and c-TTv2's time constant on the embedded data, with seeds.

For every (mapping, auto_granularity) setting it runs one analog TL trial per seed at the scale the mapping was
calibrated on (digits
5 vs 8, swin_micro, 96 training images, the ReRAM preset's pulse response) and prints, per setting, the final epoch's
analog activity (head moved %, body moved %, body rel = mean|dW| / mean|W|; ``workers._activity``) and test error,
as mean and standard deviation across seeds. ``--freeze`` adds each setting's ablation (tiles frozen, digital
parameters trained), so the gap says what the tiles themselves learned.

    .venv/bin/python bench/calibrate_mapping.py --seeds 0 1 2 --granularity 10000 1000 300 \\
        --mapping none layer:0.6 column:0.6 --freeze

Trials run two at a time (one CPU thread each); the pretrained model is cached under ``--cache-dir``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analog_sweep.orchestrator import pretrain_cache_dir  # noqa: E402
from analog_sweep.workers import AlgorithmConfig, DataConfig, DevicePoint, MappingConfig, TrialConfig  # noqa: E402

MAPPINGS = {"none": MappingConfig(weight_scaling_omega=0.0, weight_scaling_columnwise=False)}


def mapping_from_text(text: str) -> MappingConfig:
    """``none``, ``layer:OMEGA``, ``column:OMEGA``, optionally ``+learn`` (learned per-output scales)."""
    if text == "none":
        return MAPPINGS["none"]
    kind, _, rest = text.partition(":")
    omega, _, learn = rest.partition("+")
    return MappingConfig(
        weight_scaling_omega=float(omega),
        weight_scaling_columnwise=kind == "column",
        learn_out_scaling=learn == "learn",
        out_scaling_columnwise=learn == "learn",
    )


def run_one(args: tuple) -> dict:
    import torch

    from analog_sweep.workers import run_trial

    config, cache_dir = args
    torch.set_num_threads(1)
    started = time.perf_counter()
    result = run_trial(config, cache_dir=cache_dir)
    last = result.reports[-1]
    return {
        "seconds": time.perf_counter() - started,
        "errors": [r.test_error for r in result.reports],
        **last.to_dict(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--granularity", type=float, nargs="+", default=[10000, 1000])
    parser.add_argument("--mapping", nargs="+", default=["none", "column:0.6"])
    parser.add_argument("--lr", type=float, nargs="+", default=[0.05])
    parser.add_argument("--fast-lr", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--train-limit", type=int, default=96)
    parser.add_argument("--test-limit", type=int, default=None)
    parser.add_argument("--mode", default="analog_tl")
    parser.add_argument("--freeze", action="store_true", help="also run each setting with the tiles frozen")
    parser.add_argument(
        "--cache-dir",
        default=str(pretrain_cache_dir(".")),
        help="pretrained-model cache (default: the one 'analog-sweep run' uses, $ANALOG_SWEEP_CACHE or the user's)",
    )
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()

    base = TrialConfig(
        mode=options.mode,
        data=DataConfig(classes=("5", "8"), train_limit=options.train_limit, test_limit=options.test_limit),
        device=DevicePoint(pulse_noise=3.75, dtod=0.3),
        epochs=options.epochs,
    )
    settings = []
    for mapping_text in options.mapping:
        for granularity in options.granularity:
            for lr in options.lr:
                for frozen in (False, True) if options.freeze else (False,):
                    extra = (("fast_lr", options.fast_lr),) if options.fast_lr is not None else ()
                    algorithm = AlgorithmConfig(
                        settings=(("auto_granularity", granularity), *extra),
                        mapping=mapping_from_text(mapping_text),
                        freeze_analog=frozen,
                    )
                    label = (mapping_text, granularity, lr, frozen)
                    configs = [
                        dataclasses.replace(base, algorithm=algorithm, lr=lr, seed=seed) for seed in options.seeds
                    ]
                    settings.append((label, configs))
    jobs = [(config, options.cache_dir) for _, configs in settings for config in configs]
    # Pretrain once before fanning out, so two workers do not wait on one lock.
    run_one((dataclasses.replace(base, mode="digital_tl", epochs=1), options.cache_dir))
    results = []
    with ProcessPoolExecutor(options.workers) as pool:
        for (config, _), result in zip(jobs, pool.map(run_one, jobs)):
            results.append(result)
            print(
                f"[{len(results)}/{len(jobs)}] {dict(config.algorithm.settings)} {config.algorithm.mapping} "
                f"lr {config.lr:g} seed {config.seed} frozen {config.algorithm.freeze_analog}: "
                f"errors {result['errors']} head {result['head_moved']} body {result['blocks_moved']} "
                f"rel {result['blocks_rel']}",
                file=sys.stderr,
                flush=True,
            )
    print(
        f"analog TL, digits 5 vs 8, {options.train_limit} training images, {options.epochs} epochs, "
        f"seeds {options.seeds}; final epoch; mean (sd) across seeds"
    )
    header = (
        "mapping",
        "auto_gran",
        "lr",
        "tiles",
        "head moved %",
        "body moved %",
        "body rel",
        "test error %",
        "per seed",
        "s/trial",
    )
    rows = []
    index = 0
    for (mapping_text, granularity, lr, frozen), configs in settings:
        chunk = results[index : index + len(configs)]
        index += len(configs)

        def stat(key: str, digits: int = 1, chunk: list[dict] = chunk) -> str:
            values = [r[key] for r in chunk if r[key] is not None]
            if not values:
                return "-"
            sd = statistics.stdev(values) if len(values) > 1 else 0.0
            return f"{statistics.mean(values):.{digits}f} ({sd:.{digits}f})"

        rows.append(
            (
                mapping_text,
                f"{granularity:g}",
                f"{lr:g}",
                "frozen" if frozen else "learn",
                stat("head_moved"),
                stat("blocks_moved"),
                stat("blocks_rel", 2),
                stat("test_error"),
                " ".join(f"{r['test_error']:.1f}" for r in chunk),
                f"{statistics.mean(r['seconds'] for r in chunk):.0f}",
            )
        )
    widths = [max(len(str(c)) for c in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
