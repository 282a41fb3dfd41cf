"""Expansion: grid against one-at-a-time, which modes the device axes multiply, keys, pretraining keys, hashes."""

from __future__ import annotations

import pytest

from analog_sweep.sweeps import (
    MODE_AXES,
    count_points,
    expand,
    pretrain_keys,
    spec_from_mapping,
    spec_hash,
    trial_config,
)
from analog_sweep.workers import DevicePoint


def make(**fields):
    raw = {"name": "t", "data": {"dataset": "digits", "classes": [["5", "8"]]}, "modes": ["analog_tl"]}
    raw.update(fields)
    return spec_from_mapping(raw)


AXES = {"transfer_noise": [0, 10, 30], "sp_skew": [0, 5]}


@pytest.mark.parametrize(
    ("expand_as", "modes", "count"),
    [
        ("grid", ["analog_tl"], 6),  # 3 x 2
        ("one_at_a_time", ["analog_tl"], 4),  # base + 2 transfer noise + 1 skew
        ("grid", ["analog_scratch"], 2),  # skew only: scratch ignores transfer noise
        ("one_at_a_time", ["analog_scratch"], 2),
        ("grid", ["digital_tl", "digital_scratch"], 2),  # the base point only
        ("one_at_a_time", list(MODE_AXES), 4 + 2 + 1 + 1),
        ("grid", list(MODE_AXES), 6 + 2 + 1 + 1),
    ],
)
def test_point_counts(expand_as, modes, count):
    spec = make(modes=modes, axes={"expand": expand_as, **AXES})
    assert len(expand(spec)) == count_points(spec) == count
    tasks_and_seeds = make(
        modes=modes,
        axes={"expand": expand_as, **AXES},
        data={"classes": [["5", "8"], ["6", "7", "9"]]},
        seeds=[0, 1, 2],
    )
    assert len(expand(tasks_and_seeds)) == count_points(tasks_and_seeds) == count * 2 * 3


def test_grid_makes_every_combination():
    points = expand(make(axes={"expand": "grid", **AXES}))
    assert {p.axes for p in points} == {
        (("transfer_noise", t), ("sp_skew", s)) for t in (0.0, 10.0, 30.0) for s in (0.0, 5.0)
    }


def test_one_at_a_time_varies_one_axis_and_keeps_the_base_point_once():
    spec = make(device={"transfer_noise": 10, "pulse_noise": 3.75}, axes=AXES)
    points = expand(spec)
    assert [p.label for p in points] == [
        "analog_tl/5-8/base/seed0",
        "analog_tl/5-8/transfer_noise=0/seed0",
        "analog_tl/5-8/transfer_noise=30/seed0",
        "analog_tl/5-8/sp_skew=5/seed0",
    ]
    assert points[3].device == DevicePoint(
        transfer_noise=10.0, sp_skew=5.0, pulse_noise=3.75, dtod=0.3
    )  # dtod: default
    assert points[3].axes_dict == {"transfer_noise": 10.0, "sp_skew": 5.0}


def test_digital_and_scratch_points_stay_at_the_base_for_axes_they_ignore():
    spec = make(modes=list(MODE_AXES), device={"transfer_noise": 5}, axes={"transfer_noise": [5, 50]})
    by_mode = {}
    for point in expand(spec):
        by_mode.setdefault(point.mode, []).append(point)
    assert len(by_mode["analog_tl"]) == 2
    for mode in ("analog_scratch", "digital_tl", "digital_scratch"):
        (point,) = by_mode[mode]
        assert point.label == f"{mode}/5-8/base/seed0"
        assert point.device.transfer_noise == 5.0


def test_points_carry_task_classes_seed_and_a_trial_config():
    spec = make(data={"dataset": "cifar", "classes": [["Beaver", "otter"]], "train_limit": 10}, seeds=[3], epochs=4)
    (point,) = expand(spec)
    assert (point.task, point.classes, point.seed) == ("beaver-otter", ("beaver", "otter"), 3)
    config = trial_config(point, lr=0.05)
    assert (config.mode, config.lr, config.seed, config.epochs) == ("analog_tl", 0.05, 3, 4)
    assert config.data.classes == ("beaver", "otter") and config.data.train_limit == 10
    assert config.pretrain.seed == 3  # pretrain.seed unset: follows the point's seed


def test_keys_are_stable_and_ignore_only_the_lr_and_the_data_folder():
    points = expand(make(axes=AXES))
    assert [p.key for p in points] == [p.key for p in expand(make(axes=AXES))]
    assert all(len(p.key) == 16 for p in points)
    moved = expand(make(axes=AXES, data={"classes": [["5", "8"]], "data_root": "/elsewhere"}))
    assert [p.key for p in moved] == [p.key for p in points]
    longer = expand(make(axes=AXES, epochs=5))
    assert not {p.key for p in longer} & {p.key for p in points}


def test_pretrain_keys_one_per_source_model_settings_and_seed():
    two_tasks = {"classes": [["5", "8"], ["6", "7"]]}
    assert len(pretrain_keys(make(modes=["analog_tl", "digital_tl"], data=two_tasks))) == 1
    assert len(pretrain_keys(make(seeds=[0, 1]))) == 2
    assert len(pretrain_keys(make(seeds=[0, 1], pretrain={"seed": 7}))) == 1
    assert len(pretrain_keys(make(modes=["analog_tl"], axes=AXES))) == 1
    assert pretrain_keys(make(modes=["analog_scratch", "digital_scratch"])) == {}
    (job,) = pretrain_keys(make(pretrain={"epochs": 5})).values()
    assert job.pretrain.epochs == 5 and job.key == expand(make(pretrain={"epochs": 5}))[0].pretrain_key


def test_spec_hash_ignores_spelling_and_sees_content():
    plain = make()
    spelled_out = make(epochs=3, batch_size=8, seeds=[0], device={"dtod": 0.3})
    assert spec_hash(plain) == spec_hash(spelled_out)
    assert spec_hash(plain) != spec_hash(make(epochs=4))


def test_raw_keeps_the_mapping_as_submitted():
    raw = {"name": "t", "data": {"classes": [[5, 8]]}}
    spec = spec_from_mapping(raw, overrides=["epochs=2"])
    assert spec.raw == {"name": "t", "data": {"classes": [[5, 8]]}, "epochs": 2}
    assert raw == {"name": "t", "data": {"classes": [[5, 8]]}}  # the caller's mapping is untouched
    assert spec.overrides == ("epochs=2",)
