"""What the analog forward pass alone costs a trained model, layer by layer, and which property of the IO does it.

A frozen-tile trial (``algorithm.freeze_analog``) does not measure the forward pass: its new classifier head is an
analog tile too, so it stays at its random initialisation and only biases and norms train. This bench separates the
two. It fine-tunes the pretrained model digitally (digital TL, plain SGD), converts that trained model to analog
exactly as a trial does (``workers._devices``: the c-TTv2 ReRAM preset, its IO, the spec's weight mapping, no transfer
noise) and measures test error without any analog training:

- ``digital``: the fine-tuned digital model;
- ``analog``: every layer converted, the preset's IO (7-bit DAC, 9-bit ADC, output noise 0.1, abs-max noise
  management, iterative bound management; aihwkit ``PresetIOParameters``);
- ``programming only``: every layer's forward pass made perfect (``forward.is_perfect``), so only what programming
  did to the weights (clipping at each device's bounds) remains;
- ``without X``: one IO property removed at a time (output noise, DAC/ADC quantisation, noise management, the
  output bound), to see which one matters;
- ``+ write noise``: a Gaussian of std 56 ``dw_min`` = 0.112 device units (``ReRamSBPresetDevice.write_noise_std``)
  added to every weight, as it is once training has touched every device, in digital units through the weight
  mapping's per-output scale;
- per layer: its fan-in, the relative error of its analog output on the digital model's own inputs
  (||y_analog - y|| / ||y||, one batch of test images), and the test error with only that layer noisy.

The analog error is a mean over ``--repeats`` evaluations (aihwkit's output noise is drawn from the clock).

    .venv/bin/python bench/analog_forward.py --layers                          # the quickstart's model and data
    .venv/bin/python bench/analog_forward.py --image-size 16 --override window_size=4
"""

from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402
from aihwkit.nn.conversion import convert_to_analog  # noqa: E402
from aihwkit.simulator.parameters import BoundManagementType, NoiseManagementType  # noqa: E402

from analog_sweep.orchestrator import pretrain_cache_dir  # noqa: E402
from analog_sweep.workers import (  # noqa: E402
    ANALOG_CONVERSION,
    DEFAULT_DEVICE,
    DataConfig,
    ModelConfig,
    TrialConfig,
    batches,
    build_model,
    build_rpu_config,
    epoch_generator,
    load_target_splits,
    make_optimizer,
    test_error_percent,  # noqa: E402
)

WRITE_NOISE = 56 * 0.002  # ReRamSBPresetDevice: write_noise_std (in dw_min) x dw_min, device units
IO_ABLATIONS = {
    "without output noise": {"out_noise": 0.0},
    "without DAC/ADC quantisation": {"inp_res": 0.0, "out_res": 0.0},
    "without noise management": {"noise_management": NoiseManagementType.NONE},
    "without bound management": {"bound_management": BoundManagementType.NONE},
    "without output bound": {"out_bound": 0.0},
}


def window_overrides(image_size: int) -> dict[str, int]:
    """The quickstart's windows: below 16x16 (4x4 tokens at 8x8) windows of 2x2 tokens; else the preset's."""
    return {"window_size": 2} if image_size < 16 else {}


def parse_override(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    return key, int(value) if value.lstrip("-").isdigit() else float(value)


def fine_tuned(config: TrialConfig, cache_dir: str):
    """The digital TL model after ``config.epochs`` epochs of plain SGD at a constant rate (a trial's optimizer and
    batch order), the target splits and the last batch's loss."""
    splits = load_target_splits(config.data)
    model, _ = build_model(config, len(splits.train.class_names), cache_dir)
    optimizer = make_optimizer(config, model)
    loss_fn = torch.nn.CrossEntropyLoss()
    for epoch in range(1, config.epochs + 1):
        model.train()
        for images, labels in batches(
            splits.train, config.batch_size, shuffle=True, generator=epoch_generator(config, epoch)
        ):
            optimizer.zero_grad()
            loss = loss_fn(model(images), labels)
            loss.backward()
            optimizer.step()
    return model.eval(), splits, float(loss.detach())


def converted(model, rpu_config, noisy: set[str] | None = None, forward: dict | None = None):
    """``model`` converted to analog; layers not in ``noisy`` (when given) get a perfect forward pass."""

    def per_layer(name, module, config):
        config = copy.deepcopy(config)
        if noisy is not None and name not in noisy:
            config.forward.is_perfect = True
        for key, value in (forward or {}).items():
            setattr(config.forward, key, value)
        return config

    return convert_to_analog(
        copy.deepcopy(model), rpu_config, conversion_map=ANALOG_CONVERSION, specific_rpu_config_fun=per_layer
    ).eval()


def with_write_noise(model, omega: float, seed: int):
    """A copy of the digital model with write noise on every weight, in digital units via the per-output scale."""
    noisy = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in noisy.modules():
            if isinstance(module, (torch.nn.Linear, torch.nn.Conv2d)):
                rows = module.weight.reshape(module.weight.shape[0], -1)
                scale = rows.abs().amax(dim=1, keepdim=True) / omega
                rows += WRITE_NOISE * scale * torch.randn(rows.shape, generator=generator)
    return noisy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="swin_micro")
    parser.add_argument(
        "--override",
        action="append",
        default=None,
        help="model override KEY=VALUE (repeatable); default: window_size=2 below 16x16, as the quickstart",
    )
    parser.add_argument("--image-size", type=int, default=8)
    parser.add_argument("--classes", nargs="+", default=["5", "7"])
    parser.add_argument("--train-limit", type=int, default=48)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", action="store_true", help="also the per-layer table")
    parser.add_argument(
        "--cache-dir",
        default=str(pretrain_cache_dir(".")),
        help="pretrained-model cache (default: the one 'analog-sweep run' uses, $ANALOG_SWEEP_CACHE or the user's)",
    )
    options = parser.parse_args()
    if options.override is None:
        options.override = [f"{key}={value}" for key, value in window_overrides(options.image_size).items()]
    torch.set_num_threads(1)
    config = TrialConfig(
        mode="digital_tl",
        data=DataConfig(
            classes=tuple(options.classes),
            image_size=options.image_size,
            train_limit=options.train_limit,
            validation_fraction=0.2,
        ),
        model=ModelConfig(preset=options.preset, overrides=tuple(parse_override(o) for o in options.override)),
        device=DEFAULT_DEVICE,
        lr=options.lr,
        epochs=options.epochs,
        seed=options.seed,
    )
    model, splits, loss = fine_tuned(config, options.cache_dir)
    test = splits.test
    rpu_config = build_rpu_config(config.algorithm, config.device)
    omega = config.algorithm.mapping.weight_scaling_omega

    def error(candidate) -> float:
        return sum(test_error_percent(candidate, test.images, test.labels, 64) for _ in range(options.repeats)) / (
            options.repeats
        )

    print(
        f"{options.preset} {dict(config.model.overrides)} at {options.image_size}x{options.image_size}, classes "
        f"{' '.join(options.classes)}, {len(splits.train)} training / {len(test)} test images, digital TL "
        f"{options.epochs} epochs at lr {options.lr:g} (last batch loss {loss:.3f}); analog: mean of "
        f"{options.repeats} evaluations"
    )
    rows = [
        ("digital (fine-tuned)", test_error_percent(model, test.images, test.labels, 64)),
        ("analog, preset IO", error(converted(model, rpu_config))),
        ("analog, programming only", error(converted(model, rpu_config, noisy=set()))),
    ]
    rows += [
        (f"analog, {label}", error(converted(model, rpu_config, forward=change)))
        for label, change in IO_ABLATIONS.items()
    ]
    noisy_digital = [with_write_noise(model, omega, seed) for seed in range(options.repeats)]
    rows.append(
        (
            f"digital + write noise {WRITE_NOISE:g} (every weight touched once)",
            sum(test_error_percent(m, test.images, test.labels, 64) for m in noisy_digital) / len(noisy_digital),
        )
    )
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"  {label:<{width}}  {value:5.1f} %")
    if not options.layers:
        return
    names = [n for n, m in model.named_modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))]
    modules = dict(model.named_modules())
    seen: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    hooks = [modules[n].register_forward_hook(lambda _m, i, o, n=n: seen.__setitem__(n, (i[0], o))) for n in names]
    with torch.no_grad():
        model(test.images[:64])
    for hook in hooks:
        hook.remove()
    analog = dict(converted(model, rpu_config).named_modules())
    print(f"\n  {'layer':<32} {'fan-in':>6} {'rel out err':>11} {'error, only this layer noisy':>29}")
    for name in names:
        inputs, outputs = seen[name]
        with torch.no_grad():
            relative = float((analog[name](inputs) - outputs).norm() / outputs.norm())
        fan_in = modules[name].weight[0].numel()
        only = error(converted(model, rpu_config, noisy={name}))
        print(f"  {name:<32} {fan_in:>6} {relative:>11.3f} {only:>27.1f} %")


if __name__ == "__main__":
    main()
