"""Model presets by name, with overrides, and the paper-scale parameter count."""

import pytest

from analog_sweep.workers import PRESETS, ModelError, create_model
from analog_sweep.workers._devices import parameter_count
from analog_sweep.workers._models import replace_head


def test_paper_preset_matches_the_documented_parameter_counts():
    # Documented in workers/_models.py beside the paper's 26,591,906 (2-class) and 26,594,213 (5-class).
    two = create_model("swin_paper", num_classes=2, img_size=32)
    assert parameter_count(two) == 27_498_956
    replace_head(two, 5)
    assert parameter_count(two) == 27_501_263
    assert 27_501_263 - 27_498_956 == 26_594_213 - 26_591_906  # same 768-wide head as the paper


def test_micro_preset_is_small_and_overrides_win():
    micro = create_model("swin_micro", num_classes=2, img_size=16)
    assert parameter_count(micro) == 76_934
    wider = create_model("swin_micro", num_classes=2, img_size=16, embed_dim=48)
    assert parameter_count(wider) > 3 * parameter_count(micro)
    assert set(PRESETS) >= {"swin_paper", "swin_micro", "swin_tiny_cpu"}


@pytest.mark.parametrize(
    "preset, overrides, field",
    [
        ("swin_huge", {}, "model.preset"),
        ("swin_micro", {"colour": 3}, "model.overrides"),
        ("swin_micro", {"num_heads": (2,)}, "model"),
    ],
)
def test_bad_presets_and_overrides_name_the_field(preset, overrides, field):
    with pytest.raises(ModelError, match=rf"^{field}"):
        create_model(preset, num_classes=2, img_size=16, **overrides)
