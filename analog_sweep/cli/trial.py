"""``analog-sweep trial``: run one fine-tuning trial from the command line."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from analog_sweep.cli.output import ACTIVITY_COLUMNS, BadInput, json_line, one_line_errors, progress
from analog_sweep.sweeps import SpecError, algorithm_from_mapping, parse_yaml
from analog_sweep.workers import (
    ALGORITHM_SETTINGS,
    ALGORITHMS,
    DEFAULT_DEVICE,
    LR_SCHEDULES,
    MODES,
    PRESETS,
    ConfigError,
    DataConfig,
    DataError,
    DevicePoint,
    ModelConfig,
    ModelError,
    PretrainConfig,
    TileBackendError,
    TrainingDiverged,
    TrialConfig,
)

if TYPE_CHECKING:
    from analog_sweep.workers import EpochReport

_COLUMNS = ("epoch", "train_loss", "test_error", "test_accuracy", "seconds")


def _key_values(option: str, pairs: tuple[str, ...]) -> dict[str, object]:
    """Parse ``KEY=VALUE`` options, reading values as a sweep file's YAML does (``10``, ``0.5``, ``true``, ``[2,2]``;
    values YAML 1.1 and 1.2 read differently, such as ``010`` or ``on``, are refused: sweeps/README.md)."""
    parsed = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise BadInput(f"{option}: expected KEY=VALUE, got {pair!r}")
        parsed[key.strip()] = parse_yaml(value, source=f"{option} {key.strip()}")
    return parsed


@click.command()
@click.option("--mode", type=click.Choice(MODES), default="analog_tl", show_default=True)
@click.option(
    "--dataset",
    type=click.Choice(["digits", "cifar"]),
    default="digits",
    show_default=True,
    help="digits: embedded (scikit-learn), no download. cifar: CIFAR-10 source, CIFAR-100 target.",
)
@click.option(
    "--classes",
    default="5,8",
    show_default=True,
    help="Target classes, comma-separated (CIFAR-100 fine labels for cifar).",
)
@click.option(
    "--data-root",
    envvar="ANALOG_SWEEP_DATA",
    type=click.Path(file_okay=False),
    help="Folder with cifar-10-batches-py/ and cifar-100-python/ [env: ANALOG_SWEEP_DATA].",
)
@click.option("--download", is_flag=True, help="Download CIFAR into --data-root first (needs internet).")
@click.option("--image-size", type=click.IntRange(4), default=16, show_default=True)
@click.option("--train-limit", type=click.IntRange(1), help="Use at most this many target training images.")
@click.option("--test-limit", type=click.IntRange(1), help="Use at most this many target test images.")
@click.option(
    "--validation-fraction",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="Hold out this fraction of the training images (stratified, seeded) and report their error too.",
)
@click.option("--preset", type=click.Choice(list(PRESETS)), default="swin_micro", show_default=True)
@click.option(
    "--model-set", "model_set", multiple=True, metavar="KEY=VALUE", help="Override a preset setting, e.g. embed_dim=32."
)
@click.option("--algorithm", type=click.Choice(ALGORITHMS), default="c-ttv2", show_default=True)
@click.option(
    "--algo-set",
    "algo_set",
    multiple=True,
    metavar="KEY=VALUE",
    help=f"Override a c-TTv2 setting ({', '.join(ALGORITHM_SETTINGS)}).",
)
@click.option(
    "--mapping-set",
    "mapping_set",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override the weight mapping (weight_scaling_omega, weight_scaling_columnwise, learn_out_scaling, "
    "out_scaling_columnwise); defaults: omega 0.6 per output, fixed output scales.",
)
@click.option(
    "--freeze-analog",
    is_flag=True,
    help="Diagnostic ablation: never update the analog tiles (digital parameters still train).",
)
@click.option(
    "--transfer-noise",
    type=click.FloatRange(0),
    default=DEFAULT_DEVICE.transfer_noise,
    show_default=True,
    help="Weight transfer noise, percent of max|W|.",
)
@click.option(
    "--sp-skew",
    type=click.FloatRange(0),
    default=DEFAULT_DEVICE.sp_skew,
    show_default=True,
    help="Symmetry-point skew, percent of the weight range.",
)
@click.option(
    "--sp-variability",
    type=click.FloatRange(0),
    default=DEFAULT_DEVICE.sp_variability,
    show_default=True,
    help="Symmetry-point spread, percent of the weight range.",
)
@click.option(
    "--pulse-noise",
    type=click.FloatRange(0),
    default=DEFAULT_DEVICE.pulse_noise,
    show_default=True,
    help="Cycle-to-cycle pulse-size std, as a fraction of the pulse size (aihwkit's ReRAM preset).",
)
@click.option(
    "--dtod",
    type=click.FloatRange(0),
    default=DEFAULT_DEVICE.dtod,
    show_default=True,
    help="Device-to-device std of the mean pulse size, as a fraction (aihwkit's ReRAM preset).",
)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=0.01, show_default=True)
@click.option(
    "--lr-schedule",
    type=click.Choice(LR_SCHEDULES),
    default="constant",
    show_default=True,
    help="constant: --lr throughout; cosine: decays from --lr towards 0 over the epochs.",
)
@click.option("--batch-size", type=click.IntRange(1), default=8, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=2, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--pretrain-epochs", type=click.IntRange(1), default=PretrainConfig.epochs, show_default=True)
@click.option(
    "--pretrain-optimizer", type=click.Choice(["adamw", "sgd"]), default=PretrainConfig.optimizer, show_default=True
)
@click.option("--pretrain-lr", type=click.FloatRange(0, min_open=True), default=PretrainConfig.lr, show_default=True)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False),
    help="Where pretrained models are cached, shared with sweeps (default: $ANALOG_SWEEP_CACHE, else "
    "~/.cache/analog-sweep/pretrained).",
)
@click.option(
    "--checkpoint-dir", type=click.Path(file_okay=False), help="Checkpoint every epoch here; rerun to continue."
)
@click.option(
    "--device", default="cpu", show_default=True, help="cpu or cuda[:N] (cuda needs a CUDA build of aihwkit)."
)
@click.option("--threads", type=click.IntRange(1), help="Torch CPU threads (default: torch's choice).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per epoch instead of a table.")
@one_line_errors(ConfigError, DataError, ModelError, TileBackendError, SpecError, failure=(TrainingDiverged,))
def trial(**options: object) -> None:
    """Run one trial: pretrain once (cached), convert, fine-tune, report test error per epoch.

    Without device options the device is the default one (workers._config.DEFAULT_DEVICE), the same as in a sweep
    spec without a device section: aihwkit's ReRAM preset pulse response, no transfer noise or symmetry-point offset.

    \b
    Example:
        analog-sweep trial --mode analog_tl --classes 5,8 --transfer-noise 10 --epochs 2
        analog-sweep trial --mode digital_scratch --json
    """
    import torch  # with the trial's own modules: a command's --help does not load them

    from analog_sweep.workers import run_trial

    if options["threads"]:
        torch.set_num_threads(int(options["threads"]))
    if options["download"]:
        from analog_sweep.workers import download_cifar

        if not options["data_root"]:
            raise BadInput("--download needs --data-root")
        download_cifar(options["data_root"])
    config = TrialConfig(
        mode=options["mode"],
        data=DataConfig(
            dataset=options["dataset"],
            classes=tuple(c.strip() for c in str(options["classes"]).split(",") if c.strip()),
            data_root=options["data_root"],
            image_size=options["image_size"],
            train_limit=options["train_limit"],
            test_limit=options["test_limit"],
            validation_fraction=options["validation_fraction"],
        ),
        model=ModelConfig(
            preset=options["preset"], overrides=tuple(_key_values("--model-set", options["model_set"]).items())
        ),
        pretrain=PretrainConfig(
            optimizer=options["pretrain_optimizer"], lr=options["pretrain_lr"], epochs=options["pretrain_epochs"]
        ),
        # Checked exactly as a spec's algorithm section is (one-line SpecError naming the field).
        algorithm=algorithm_from_mapping(
            {
                "name": options["algorithm"],
                "settings": _key_values("--algo-set", options["algo_set"]),
                "mapping": _key_values("--mapping-set", options["mapping_set"]),
                "freeze_analog": bool(options["freeze_analog"]),
            },
            source="--algo-set/--mapping-set",
        ),
        device=DevicePoint(
            transfer_noise=options["transfer_noise"],
            sp_skew=options["sp_skew"],
            sp_variability=options["sp_variability"],
            pulse_noise=options["pulse_noise"],
            dtod=options["dtod"],
        ),
        lr=options["lr"],
        lr_schedule=options["lr_schedule"],
        batch_size=options["batch_size"],
        epochs=options["epochs"],
        seed=options["seed"],
    )
    as_json = bool(options["as_json"])
    columns = (
        _COLUMNS
        + (("validation_error",) if config.data.validation_fraction > 0 else ())
        + (ACTIVITY_COLUMNS if config.is_analog else ())
    )
    if not as_json:
        click.echo("  ".join(f"{c:>13}" for c in columns))

    def show(report: EpochReport) -> None:
        row = report.to_dict()
        if as_json:
            click.echo(json_line({"mode": config.mode, **row}))
        else:
            click.echo(f"{row['epoch']:>13d}  " + "  ".join(f"{row[c]:>13.4f}" for c in columns[1:]))

    result = run_trial(
        config,
        cache_dir=_cache_dir(options["cache_dir"]),
        checkpoint_dir=options["checkpoint_dir"],
        device=str(options["device"]),
        on_epoch=show,
        progress=progress,
    )
    progress(
        f"{config.mode}: final test error {result.final_test_error:.2f} % after {len(result.reports)} epochs "
        f"({result.parameters:,} parameters, {result.analog_layers} analog layers)"
    )


def _cache_dir(asked: str | None) -> str:
    """The pretrained-model cache a sweep on this machine uses (``orchestrator._paths.pretrain_cache_dir``), so a trial
    and the sweeps share their models; ``asked`` (``--cache-dir``) wins."""
    import os

    from analog_sweep.orchestrator import pretrain_cache_dir

    # ``{storage}`` in $ANALOG_SWEEP_CACHE stands for the storage path the sweep commands default to.
    return str(pretrain_cache_dir(os.environ.get("ANALOG_SWEEP_STORAGE") or "sweep-store", asked))
