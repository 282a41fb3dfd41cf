"""The shipped specs validate, and every file of the broken corpus is refused with a one-line, field-naming error."""

from __future__ import annotations

from pathlib import Path

import pytest

from analog_sweep.sweeps import (
    SelectionSpec,
    SpecError,
    count_points,
    expand,
    load_spec,
    shipped_specs,
    spec_from_mapping,
    spec_hash,
    trial_config,
)
from analog_sweep.workers import TrialConfig, build_rpu_config

BROKEN = sorted((Path(__file__).parent / "broken").glob("*.yaml"))
SHIPPED_COUNTS = {  # name: (points, trials)
    "quickstart": (42, 84),
    "embedded_fig3_transfer_noise": (35, 70),
    "embedded_algorithms_sp_skew": (55, 110),
    "paper_fig2_modes": (8, 64),
    "paper_fig3_transfer_noise": (20, 160),
    "paper_fig4_symmetry_point": (22, 176),
    "paper_fig4_algorithms": (44, 352),
    "paper_fig5_pulse_noise_dtod": (24, 192),
}


def test_the_expected_specs_are_shipped():
    assert set(shipped_specs()) == set(SHIPPED_COUNTS)


@pytest.mark.parametrize("name", sorted(SHIPPED_COUNTS))
def test_shipped_spec_validates_and_expands(name):
    spec = load_spec(shipped_specs()[name])
    points = expand(spec)
    assert spec.name == name
    assert (len(points), len(points) * spec.lr_search.trials_per_point) == SHIPPED_COUNTS[name]
    assert count_points(spec) == len(points)
    assert len({point.key for point in points}) == len(points)
    assert isinstance(trial_config(points[0], lr=0.01), TrialConfig)


def test_quickstart_stays_small():
    spec = load_spec(shipped_specs()["quickstart"])
    assert spec.data.dataset == "digits" and spec.model.preset == "swin_micro"
    assert set(spec.modes) == {"analog_tl", "digital_tl", "analog_scratch", "digital_scratch"}
    assert len(expand(spec)) * spec.lr_search.trials_per_point <= 84
    assert len(spec.seeds) >= 3 and spec.pretrain.seed is not None  # replicates of one pretrained model


# What an embedded study keeps of the quickstart: its miniature (sweeps/README.md, "The embedded miniature").
MINIATURE = ("data", "model", "pretrain", "device", "epochs", "batch_size", "lr_schedule", "selection", "lr_search")


def assert_same(study, reference, *more: str) -> None:
    for field in (*MINIATURE, *more):
        assert getattr(study, field) == getattr(reference, field), field


def test_the_embedded_fig3_study_is_the_quickstarts_miniature_along_transfer_noise():
    quickstart = load_spec(shipped_specs()["quickstart"])
    study = load_spec(shipped_specs()["embedded_fig3_transfer_noise"])
    assert study.modes == ("analog_tl",) and study.axes.refine
    assert dict(study.axes.values)["transfer_noise"][0] == 0 and len(dict(study.axes.values)["transfer_noise"]) >= 5
    assert_same(study, quickstart, "algorithm")
    # Five of the quickstart's seeds: enough for the elbow fit's interval, and the study stays within 30 minutes.
    assert set(study.seeds) <= set(quickstart.seeds) and len(study.seeds) >= 5


def test_the_embedded_comparison_is_the_quickstarts_miniature_with_c_ttv2_and_ttv2_along_skew():
    quickstart = load_spec(shipped_specs()["quickstart"])
    study = load_spec(shipped_specs()["embedded_algorithms_sp_skew"])
    assert [a.name for a in study.algorithms] == ["c-ttv2", "ttv2"]
    c_ttv2, ttv2 = (build_rpu_config(a, study.device).device for a in study.algorithms)
    assert (c_ttv2.in_chop_prob, ttv2.in_chop_prob) == (0.1, 0.0)  # the one difference: the chopper
    assert c_ttv2.auto_granularity == ttv2.auto_granularity == 480
    assert study.algorithms[0] == quickstart.algorithm
    assert dict(study.axes.values) == {"sp_skew": (0.0, 10.0, 20.0, 30.0, 40.0)}
    assert_same(study, quickstart)
    assert set(study.seeds) <= set(quickstart.seeds) and len(study.seeds) >= 5


def test_the_gpu_comparison_is_fig4_with_c_ttv2_and_agad_side_by_side():
    fig4 = load_spec(shipped_specs()["paper_fig4_symmetry_point"])
    comparison = load_spec(shipped_specs()["paper_fig4_algorithms"])
    assert [a.name for a in comparison.algorithms] == ["c-ttv2", "agad"]
    # Each algorithm with Table I and Fig. 4's mapping; the rest of the study is Fig. 4's own.
    assert all(
        (a.settings, a.mapping) == (fig4.algorithm.settings, fig4.algorithm.mapping) for a in comparison.algorithms
    )
    for field in ("data", "model", "pretrain", "modes", "device", "axes", "lr_search", "epochs", "batch_size", "seeds"):
        assert getattr(comparison, field) == getattr(fig4, field), field
    assert {p.pretrain_key for p in expand(comparison)} == {p.pretrain_key for p in expand(fig4)}


@pytest.mark.parametrize("name", [n for n in sorted(SHIPPED_COUNTS) if n.startswith("paper_")])
def test_paper_specs_run_at_paper_scale(name):
    spec = load_spec(shipped_specs()[name])
    assert spec.data.dataset == "cifar" and spec.model.preset == "swin_paper"
    assert spec.data.tasks == (("beaver", "otter"), ("apple", "man", "beetle", "tiger", "otter"))
    assert (spec.epochs, spec.batch_size) == (100, 8)
    assert spec.resources.gpu > 0


def test_the_corpus_covers_the_kinds_of_mistake():
    assert len(BROKEN) >= 60


@pytest.mark.parametrize("path", BROKEN, ids=[p.stem for p in BROKEN])
def test_broken_spec_is_refused_with_a_one_line_message(path):
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert expected in message


def test_a_missing_file_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match=r"nope\.yaml: cannot read"):
        load_spec(tmp_path / "nope.yaml")


def test_spec_error_is_a_value_error():
    with pytest.raises(ValueError, match=r"^<mapping>: name: required"):
        spec_from_mapping({"data": {"classes": [["5", "8"]]}})


def test_selection_defaults_to_a_validation_split_shared_by_the_seeds():
    spec = spec_from_mapping({"name": "s", "data": {"classes": [["5", "8"]]}})
    assert spec.data.validation_fraction == 0.1
    assert spec.selection == SelectionSpec(split="validation", per_seed=False)
    point = expand(spec)[0]
    assert trial_config(point, 0.1).data.validation_fraction == 0.1
    # The split decides the trials, so it is part of the point key; the selection rule is not (same trials).
    wider = spec_from_mapping({"name": "s", "data": {"classes": [["5", "8"]], "validation_fraction": 0.2}})
    assert expand(wider)[0].key != point.key
    paper = spec_from_mapping(
        {"name": "s", "data": {"classes": [["5", "8"]]}, "selection": {"split": "test", "per_seed": True}}
    )
    assert paper.selection == SelectionSpec(split="test", per_seed=True)
    assert expand(paper)[0].key == point.key and spec_hash(paper) != spec_hash(spec)


@pytest.mark.parametrize("name", sorted(SHIPPED_COUNTS))
def test_every_shipped_spec_states_its_selection(name):
    raw = load_spec(shipped_specs()[name]).raw
    assert raw["selection"]["split"] == "validation" and raw["data"]["validation_fraction"] > 0
