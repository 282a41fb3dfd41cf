"""Calibrate the embedded miniature: model width, input size (tokens), data and epochs -> the paper's quantities.

For every setting (``--widths`` x ``--image-sizes``) it runs, per seed, analog TL, digital TL and, with ``--frozen``,
analog TL with the tiles frozen, each at every learning rate of its mode, and keeps per seed the learning rate and
epoch with the lowest validation error (a sweep's ``selection: {split: validation, per_seed: true}``). Printed per
setting, as mean (sd) across seeds of the test error at the chosen epoch:

- ``forward``: a digital TL model (seed 0, plain SGD at the first digital rate, constant) converted to analog without
  any analog training (``bench/analog_forward.py``): what the analog forward pass alone costs a trained model;
- ``frozen``: analog TL with frozen tiles; its new head is an analog tile too and stays random, so this measures a
  random head on converted features, not the forward pass;
- ``analog TL`` and ``digital TL``, their seed sds, and F2 = analog TL - digital TL with its Welch 95 % interval;
- ``conv``: the change of each mode's mean test error over the last third of the epochs (negative: still falling);
- seconds per analog trial (two trials at a time, one thread each).

Everything else is the quickstart's (``sweeps/quickstart.yaml``, overridable with ``--set``): the data, c-TTv2 on the
ReRAM preset with its weight mapping, ``auto_granularity``, the schedule and the base device.

    .venv/bin/python bench/miniature.py --widths 16 24 48 --image-sizes 8 --seeds 0 1 2 --frozen
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
from analog_sweep.results import difference  # noqa: E402
from analog_sweep.sweeps import expand, load_spec, shipped_specs, trial_config  # noqa: E402
from analog_sweep.workers import (
    TrialConfig,  # noqa: E402
    create_model,  # noqa: E402
)
from bench.analog_forward import window_overrides  # noqa: E402


def run_one(args: tuple[TrialConfig, str]) -> dict:
    import torch

    from analog_sweep.workers import run_trial

    config, cache_dir = args
    torch.set_num_threads(1)
    started = time.perf_counter()
    reports = run_trial(config, cache_dir=cache_dir).reports
    return {"seconds": time.perf_counter() - started, "reports": [r.to_dict() for r in reports]}


def forward_error(config: TrialConfig, cache_dir: str) -> float:
    """Test error of the digital TL model after ``config``'s epochs, converted to analog (mean of 3 evaluations)."""
    import torch

    from analog_sweep.workers import build_rpu_config, test_error_percent
    from bench.analog_forward import converted, fine_tuned

    torch.set_num_threads(1)
    model, splits, _ = fine_tuned(dataclasses.replace(config, mode="digital_tl"), cache_dir)
    analog = converted(model, build_rpu_config(config.algorithm, config.device))
    test = splits.test
    return statistics.fmean(test_error_percent(analog, test.images, test.labels, 64) for _ in range(3))


def chosen(runs: list[dict]) -> tuple[float, list[float]]:
    """The test error at the (learning rate, epoch) with the lowest validation error, and that rate's curve."""
    best = min(
        ((r["validation_error"], i, r["test_error"]) for i, run in enumerate(runs) for r in run["reports"]),
        key=lambda t: (t[0], t[1]),
    )
    return best[2], [r["test_error"] for r in runs[best[1]]["reports"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="+", default=[24], help="embed_dim (heads stay the preset's)")
    parser.add_argument("--image-sizes", type=int, nargs="+", default=[8])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--set", action="append", default=[], help="spec override PATH=VALUE, as `run --set`")
    parser.add_argument("--analog-lr", type=float, nargs="+", default=None, help="default: the spec's values")
    parser.add_argument("--digital-lr", type=float, nargs="+", default=None, help="default: the spec's values")
    parser.add_argument("--frozen", action="store_true", help="also analog TL with the tiles frozen")
    parser.add_argument(
        "--cache-dir",
        default=str(pretrain_cache_dir(".")),
        help="pretrained-model cache (default: the one 'analog-sweep run' uses, $ANALOG_SWEEP_CACHE or the user's)",
    )
    parser.add_argument("--workers", type=int, default=2)
    options = parser.parse_args()

    spec = load_spec(shipped_specs()["quickstart"], options.set)
    base = {p.mode: p for p in expand(spec) if p.seed == spec.seeds[0] and p.device.transfer_noise == 0}
    lrs = {
        "analog": options.analog_lr or list(spec.lr_search.values),
        "digital": options.digital_lr or list(spec.lr_search.values),
    }
    settings, jobs = [], []
    for size in options.image_sizes:
        for width in options.widths:
            overrides = {**spec.model.override_dict(), "embed_dim": width}
            overrides.pop("window_size", None)
            overrides.update(window_overrides(size))
            model = dataclasses.replace(spec.model, overrides=tuple(sorted(overrides.items())))
            data = dataclasses.replace(base["analog_tl"].data, image_size=size)
            kinds = ["analog", "digital"] + (["frozen"] if options.frozen else [])
            for kind in kinds:
                mode = "digital_tl" if kind == "digital" else "analog_tl"
                for seed in options.seeds:
                    for lr in lrs["digital" if kind == "digital" else "analog"]:
                        config = dataclasses.replace(trial_config(base[mode], lr), model=model, data=data, seed=seed)
                        if kind == "frozen":
                            config = dataclasses.replace(
                                config, algorithm=dataclasses.replace(config.algorithm, freeze_analog=True)
                            )
                        jobs.append(((size, width, kind, seed), config))
            settings.append((size, width, model, data))
    for _size, _width, model, data in settings:  # pretrain each model once before fanning out
        probe = dataclasses.replace(trial_config(base["digital_tl"], 0.05), model=model, data=data, epochs=1)
        run_one((probe, options.cache_dir))
    results: dict[tuple, list[dict]] = {}
    with ProcessPoolExecutor(options.workers) as pool:
        for (key, config), result in zip(jobs, pool.map(run_one, [(c, options.cache_dir) for _, c in jobs])):
            results.setdefault(key, []).append(result)
            final = result["reports"][-1]
            print(
                f"[{sum(map(len, results.values()))}/{len(jobs)}] {key} lr {config.lr:g}: test error "
                f"{final['test_error']:.1f} % after {config.epochs} epochs, {result['seconds']:.0f} s",
                file=sys.stderr,
                flush=True,
            )
    epochs = spec.epochs
    print(
        f"digits {'-'.join(base['analog_tl'].classes)}: {spec.data.train_limit or 'all'} training images, "
        f"{epochs} epochs ({spec.lr_schedule} learning rate), seeds {options.seeds}; analog lr {lrs['analog']}, "
        f"digital lr {lrs['digital']}; test error % at the epoch and rate chosen on validation, mean (sd)"
    )
    header = [
        "size",
        "tokens",
        "width",
        "params",
        "forward",
        "frozen",
        "analog TL",
        "digital TL",
        "F2 (95 % CI)",
        "conv analog",
        "conv digital",
        "s/analog trial",
    ]
    rows = []
    for size, width, model, data in settings:

        def summary(kind: str, size: int = size, width: int = width) -> tuple[list[float], list[list[float]]]:
            picks = [chosen(results[size, width, kind, seed]) for seed in options.seeds]
            return [p[0] for p in picks], [p[1] for p in picks]

        def text(values: list[float]) -> str:
            return (
                f"{statistics.fmean(values):.1f} ({statistics.stdev(values):.1f})"
                if len(values) > 1
                else (f"{values[0]:.1f}")
            )

        def settling(curves: list[list[float]]) -> str:
            if epochs < 2:
                return "-"
            third = max(1, epochs // 3)
            mean = [statistics.fmean(c[i] for c in curves) for i in range(epochs)]
            return f"{mean[-1] - mean[-1 - third]:+.1f}"

        analog, analog_curves = summary("analog")
        digital, digital_curves = summary("digital")
        frozen = text(summary("frozen")[0]) if options.frozen else "-"
        config = dataclasses.replace(trial_config(base["analog_tl"], lrs["digital"][0]), model=model, data=data)
        seconds = statistics.fmean(r["seconds"] for s in options.seeds for r in results[size, width, "analog", s])
        params = sum(
            p.numel()
            for p in create_model(
                model.preset, num_classes=len(base["analog_tl"].classes), img_size=size, **model.override_dict()
            ).parameters()
        )
        patch = model.override_dict().get("patch_size", 2)
        rows.append(
            [
                f"{size}x{size}",
                str((size // patch) ** 2),
                str(width),
                f"{params / 1000:.0f} K",
                f"{forward_error(config, options.cache_dir):.1f}",
                frozen,
                text(analog),
                text(digital),
                str(difference(analog, digital)),
                settling(analog_curves),
                settling(digital_curves),
                f"{seconds:.0f}",
            ]
        )
    widths = [max(len(c) for c in column) for column in zip(header, *rows)]
    for row in (header, *rows):
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)))


if __name__ == "__main__":
    main()
