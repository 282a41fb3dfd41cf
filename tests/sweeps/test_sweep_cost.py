"""Cost estimate and dry-run report: sizes, the time model against FACTS.md, and warnings that never fail."""

from __future__ import annotations

import pytest

from sweeps import (
    Environment,
    detect_environment,
    dry_run_report,
    estimate_cost,
    expand,
    load_spec,
    shipped_specs,
    work_units,
)
from sweeps._cost import (
    ANALOG_TRAIN_SECONDS,
    DIGITAL_STEP_SECONDS,
    DIGITAL_TRAIN_SECONDS,
)

LAPTOP = Environment(cpus=2, gpus=0, aihwkit_cuda=False)


def load(name, *overrides):
    return load_spec(shipped_specs()[name], overrides=overrides)


def test_quickstart_cost_is_small():
    spec = load("quickstart")
    cost = estimate_cost(spec, expand(spec))
    assert (cost.points, cost.trials, cost.trial_epochs, cost.pretrain_jobs) == (18, 36, 108, 1)
    assert 0 < cost.wall_seconds(2) < 10 * 60


@pytest.mark.parametrize(
    ("overrides", "measured_step"),  # FACTS.md: seconds per analog step of batch 8 on 2 cores
    [
        (("model.preset=swin_micro", "data.image_size=16"), 0.523),
        (("model.preset=swin_tiny_cpu", "data.image_size=16"), 2.456),
        (("model.preset=swin_tiny_cpu", "data.image_size=32"), 8.5),
        (("model.preset=swin_paper", "model.overrides.depths=[2, 2, 6]", "model.overrides.num_heads=[3, 6, 12]",
          "data.image_size=32"), 84.7),
    ],
)
def test_the_analog_time_model_matches_the_measurements(overrides, measured_step):
    spec = load("quickstart", *overrides)
    assert ANALOG_TRAIN_SECONDS * work_units(spec) * 8 == pytest.approx(measured_step, rel=0.2)


@pytest.mark.parametrize(("image_size", "embed", "measured_step"), [(32, 48, 0.052), (32, 96, 0.225)])
def test_the_digital_time_model_matches_the_measurements(image_size, embed, measured_step):
    depths, heads = ("[2, 2]", "[2, 4]") if embed == 48 else ("[2, 2, 6]", "[3, 6, 12]")  # a model that builds
    spec = load("quickstart", f"data.image_size={image_size}", f"model.overrides.embed_dim={embed}",
                f"model.overrides.depths={depths}", f"model.overrides.num_heads={heads}")  # fmt: skip
    assert DIGITAL_STEP_SECONDS + DIGITAL_TRAIN_SECONDS * work_units(spec) * 8 == pytest.approx(measured_step, rel=0.2)


def test_report_lists_points_trials_and_cost():
    spec = load("quickstart", "epochs=1", "seeds=[0]")
    report = dry_run_report(spec, expand(spec), environment=LAPTOP)
    assert "analog_tl/5-8/transfer_noise=10/seed0" in report
    assert "Trials: 12 (6 points x 2)" in report and "12 trial-epochs" in report
    assert "Overrides: --set epochs=1" in report
    assert "Warnings" not in report


def test_report_warns_about_missing_data_and_gpus_without_failing():
    spec = load("paper_fig3_transfer_noise")
    report = dry_run_report(spec, expand(spec), environment=LAPTOP)
    assert "$ANALOG_SWEEP_DATA is unset" in report
    assert "no GPU is visible" in report
    assert "built without CUDA" in report
    assert "cannot run" in report


def test_report_checks_the_cifar_files(tmp_path):
    spec = load("paper_fig2_modes", f"data.data_root={tmp_path}")
    gpu_box = Environment(cpus=16, gpus=1, aihwkit_cuda=True)
    assert "10 of 10 files missing" in dry_run_report(spec, expand(spec), environment=gpu_box)
    for folder, names in {
        "cifar-10-batches-py": [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"],
        "cifar-100-python": ["train", "test", "meta"],
    }.items():
        (tmp_path / folder).mkdir()
        for name in names:
            (tmp_path / folder / name).write_bytes(b"")
    report = dry_run_report(spec, expand(spec), environment=gpu_box)
    assert "Warnings" not in report
    assert "with 4 trial(s) at a time" in report


def test_report_notes_what_could_not_be_detected():
    spec = load("quickstart")
    odd = Environment(cpus=1, gpus=0, aihwkit_cuda=None, notes=("torch could not be checked (ImportError: x)",))
    report = dry_run_report(spec, expand(spec), environment=odd)
    assert "torch could not be checked" in report
    assert "aihwkit cannot be imported" in report


def test_detect_environment_describes_this_machine():
    environment = detect_environment()
    assert environment.cpus >= 1 and environment.gpus >= 0
