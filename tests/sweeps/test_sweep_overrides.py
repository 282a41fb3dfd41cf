"""``--set`` overrides, applied to the raw mapping before validation, the way Hydra users expect."""

from __future__ import annotations

import re

import pytest

from analog_sweep.sweeps import SpecError, expand, load_spec, shipped_specs, trial_config
from analog_sweep.workers import MappingConfig

QUICKSTART = shipped_specs()["quickstart"]


def test_overrides_set_scalars_lists_and_presets():
    spec = load_spec(
        QUICKSTART,
        overrides=[
            "epochs=1",
            "data.train_limit=null",
            "data.limit=64",
            "model.preset=swin_tiny_cpu",
            "axes.transfer_noise=[0, 5]",
            "axes.expand=grid",
            "lr_search.values=[0.1]",
            "resources.gpu=0.5",
            "algorithm.settings.in_chop_prob=0.2",
            "model.overrides.embed_dim=32",
        ],
    )
    assert spec.epochs == 1
    assert spec.data.train_limit == 64
    assert spec.model.preset == "swin_tiny_cpu" and spec.model.override_dict() == {"embed_dim": 32, "window_size": 2}
    assert spec.axes.expand == "grid" and dict(spec.axes.values)["transfer_noise"] == (0.0, 5.0)
    assert spec.lr_search.values == (0.1,) and spec.lr_search.trials_per_point == 1
    assert spec.resources.gpu == 0.5
    assert spec.algorithm.settings_dict()["in_chop_prob"] == 0.2


def test_an_override_creates_a_missing_section(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text('name: s\ndata: {classes: [["5", "8"]]}\n')
    assert load_spec(path, overrides=["axes.dtod=[0.1]"]).axes.values == (("dtod", (0.1,)),)
    assert load_spec(path, overrides=["lr_search.low=1e-3", "lr_search.high=1e-1"]).lr_search.low == 0.001


def test_the_last_override_wins():
    assert load_spec(QUICKSTART, overrides=["epochs=1", "epochs=4"]).epochs == 4


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("data.limt=64", "--set 'data.limt=64': unknown field 'data.limt'; data has dataset, classes"),
        ("epoch=2", "unknown field 'epoch'; top-level fields are name"),
        ("epochs.value=2", "unknown field 'epochs.value'; epochs has no sub-fields"),
        ("data.classes.x=1", "data.classes has no sub-fields"),
        ("algorithm.settings.chop=1", "algorithm.settings has transfer_every"),
        ("axes.temperature=[1]", "unknown field 'axes.temperature'"),
        ("epochs", "expected path=value"),
        ("data..limit=3", "is not a dotted field path"),
        ("axes.transfer_noise=[0, 10", "--set axes.transfer_noise:1:"),
        (
            "axes.transfer_noise=[0, -10]",
            "axes.transfer_noise[1]: must be a non-negative number, got -10 "
            "(from --set 'axes.transfer_noise=[0, -10]')",
        ),
        ("epochs=-1", "epochs: must be an integer from 1 to 2147483647, got -1 (from --set 'epochs=-1')"),
        ("model.preset=resnet", "model.preset: unknown model preset 'resnet'"),
        ("data.classes=[[beaver, otter]]", "data.classes[0]: unknown digits class 'beaver'"),
        ("data.limit=64", "data.limit: is shorthand for data.train_limit"),  # quickstart sets train_limit
        ("data.dataset.x=1", "data.dataset has no sub-fields"),
    ],
)
def test_bad_overrides_are_refused_naming_the_field(override, expected):
    with pytest.raises(SpecError) as caught:
        load_spec(QUICKSTART, overrides=[override])
    message = str(caught.value)
    assert "\n" not in message and message.startswith(str(QUICKSTART))
    assert expected in message


def test_an_override_into_a_scalar_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text('name: s\ndata: {classes: [["5", "8"]]}\nresources: 4\n')
    with pytest.raises(SpecError, match=r"--set 'resources.gpu=1': resources is 4, not a mapping"):
        load_spec(path, overrides=["resources.gpu=1"])


def test_the_weight_mapping_and_fast_lr_are_spec_settings():
    spec = load_spec(
        QUICKSTART,
        overrides=[
            "algorithm.mapping.weight_scaling_omega=0.3",
            "algorithm.mapping.weight_scaling_columnwise=false",
            "algorithm.mapping.learn_out_scaling=true",
            "algorithm.settings.fast_lr=0.1",
        ],
    )
    mapping = spec.algorithm.mapping
    assert (mapping.weight_scaling_omega, mapping.weight_scaling_columnwise, mapping.learn_out_scaling) == (
        0.3,
        False,
        True,
    )
    assert spec.algorithm.settings_dict()["fast_lr"] == 0.1
    # The mapping decides the trials, so it is part of the point keys.
    assert {p.key for p in expand(spec)}.isdisjoint({p.key for p in expand(load_spec(QUICKSTART))})
    # Left out, the mapping is the documented default.
    assert load_spec(QUICKSTART, overrides=["algorithm.mapping=null"]).algorithm.mapping == MappingConfig()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("algorithm.mapping.weight_scaling_omega=-1", "algorithm.mapping.weight_scaling_omega: must be a non-negative"),
        ("algorithm.mapping.weight_scaling_omega=3", "algorithm.mapping.weight_scaling_omega: must be at most 2"),
        ("algorithm.mapping.weight_scaling_columnwise=1", "weight_scaling_columnwise: must be true or false"),
        ("algorithm.mapping.out_scaling_columnwise=true", "out_scaling_columnwise: needs learn_out_scaling: true"),
        ("algorithm.mapping.omega=0.5", "algorithm.mapping has weight_scaling_omega"),
        ("algorithm.settings.fast_lr=0", "algorithm.settings.fast_lr: must be a positive number"),
    ],
)
def test_bad_mapping_settings_are_refused_naming_the_field(override, expected):
    with pytest.raises(SpecError, match=re.escape(expected)):
        load_spec(QUICKSTART, overrides=[override])


def test_the_frozen_tile_ablation_is_a_spec_setting_that_reaches_every_analog_trial():
    spec = load_spec(QUICKSTART, overrides=["algorithm.freeze_analog=true"])
    configs = [trial_config(point, 0.05) for point in expand(spec)]
    assert all(config.algorithm.freeze_analog for config in configs)
    assert not load_spec(QUICKSTART).algorithm.freeze_analog
    with pytest.raises(SpecError, match="algorithm.freeze_analog: must be true or false"):
        load_spec(QUICKSTART, overrides=["algorithm.freeze_analog=1"])


def test_a_model_torch_cannot_build_is_refused_in_one_line():
    """Torch's own message for a fractional depth lists every overload of
    ``linspace`` on further lines; the refusal keeps the first."""
    with pytest.raises(SpecError) as refused:
        load_spec(shipped_specs()["quickstart"], ["model.overrides.depths=[1.5, 2]"])
    message = str(refused.value)
    assert "\n" not in message.strip()
    assert (
        "model: preset 'swin_micro' cannot be built at img_size 8: linspace() received an invalid combination"
        in message
    )
