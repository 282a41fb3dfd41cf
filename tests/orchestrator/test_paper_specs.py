"""Every shipped paper-figure spec runs end to end on CPU, shrunk through overrides, so the files never rot."""

from __future__ import annotations

import pytest

from analog_sweep.orchestrator import run_sweep
from analog_sweep.results import open_store
from analog_sweep.sweeps import expand, load_spec, shipped_specs

from .conftest import NANO_SWEEP

# Digits instead of CIFAR, the nano Swin, one epoch, one learning rate per point, no GPU: the rest of each file
# (modes, axes and their values, algorithm, Table I, base device) runs as written.
ON_CPU = [
    "data.dataset=digits",
    'data.classes=[["5","8"]]',
    "data.data_root=null",
    "data.image_size=16",
    "model.preset=swin_micro",
    "pretrain.batch_size=32",
    *NANO_SWEEP,
    "epochs=1",
    "lr_search.trials_per_point=1",
    "lr_search.pruner=none",
    "lr_search.pruner_options=null",
    "resources.cpu=1",
    "resources.gpu=0",
]
PAPER_SPECS = sorted(name for name in shipped_specs() if name.startswith("paper_"))


def test_every_paper_figure_has_a_spec():
    assert PAPER_SPECS == [
        "paper_fig2_modes",
        "paper_fig3_transfer_noise",
        "paper_fig4_algorithms",
        "paper_fig4_symmetry_point",
        "paper_fig5_pulse_noise_dtod",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("name", PAPER_SPECS)
def test_paper_spec_runs_end_to_end_on_cpu(name, tmp_path, local_ray):
    spec = load_spec(shipped_specs()[name], ON_CPU)
    points = expand(spec)
    with open_store(f"sqlite:///{tmp_path}/results.db") as store:
        outcome = run_sweep(spec, store, storage_root=tmp_path / "storage", echo=lambda line: None)
        best = store.best_points(spec.name)
    assert outcome.status == "finished" and outcome.points_done == len(points) > 1
    assert len(best) == len(points) and all(row["status"] == "done" and row["trial_id"] for row in best)
    swept = {axis for axis, values in spec.axes.values if len(values) > 1}
    assert all(len({row[axis] for row in best}) > 1 for axis in swept)  # every swept axis really varied
