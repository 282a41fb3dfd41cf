"""The paper's first finding at micro scale: analog transfer learning beats analog training from scratch."""

from __future__ import annotations

import pytest

from workers.config import DataConfig, DevicePoint, TrialConfig
from workers.trial import run_trial


@pytest.mark.slow
def test_analog_tl_stays_below_analog_scratch_over_the_same_epochs(tmp_path):
    """Same data (digits 5 vs 8), model (swin_micro), c-TTv2 device (aihwkit's ReRAM preset pulse response), lr and
    epochs; only the starting point differs: the digitally pretrained body (TL) or a random one (scratch).
    aihwkit's tile noise cannot be seeded and one epoch's error on 107 test images swings by 10 points, so the
    test compares the whole trace (mean test error over the epochs, the paper's Fig. 2 view), not one epoch. Measured
    means over 4 epochs, TL against scratch: 44.1 vs 51.9, 45.6 vs 51.2 and 40.0 vs 47.7 %; final epochs once went
    the other way (48.6 vs 46.7 %)."""
    base = dict(
        data=DataConfig(classes=("5", "8"), train_limit=160),
        device=DevicePoint(pulse_noise=3.75, dtod=0.3),
        lr=0.05,
        epochs=4,
        seed=0,
    )
    tl = run_trial(TrialConfig(mode="analog_tl", **base), cache_dir=tmp_path)
    scratch = run_trial(TrialConfig(mode="analog_scratch", **base), cache_dir=tmp_path)
    assert tl.pretrained is not None and tl.pretrained.source_train_error < 10.0  # a pretraining worth transferring
    tl_errors, scratch_errors = [r.test_error for r in tl.reports], [r.test_error for r in scratch.reports]
    assert sum(tl_errors) / len(tl_errors) < sum(scratch_errors) / len(scratch_errors), (tl_errors, scratch_errors)
