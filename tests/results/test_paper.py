"""The paper's reported values: which sweeps they match, and that each names where it comes from."""

from __future__ import annotations

import pytest

from analog_sweep.results import AXES, PAPER_VALUES
from analog_sweep.results._paper import CRITICAL_POINT, DIFFERENCE, PAPER_TASKS, paper_task, paper_value


def test_a_sweep_matches_a_paper_task_by_its_cifar_classes_in_any_order():
    assert paper_task("cifar", ["otter", "beaver"]) == "beaver-otter"
    assert paper_task("cifar", ["tiger", "apple", "otter", "man", "beetle"]) == "apple-man-beetle-tiger-otter"
    assert paper_task("cifar", ["beaver", "otter", "apple"]) is None
    assert paper_task("digits", ["5", "8"]) is None
    assert paper_task("digits", ["beaver", "otter"]) is None  # same names on another data set are not the paper's task


@pytest.mark.parametrize(
    "task, axis, value, elbow",
    [
        ("beaver-otter", "transfer_noise", 15.0, True),  # Sec. III.B
        ("apple-man-beetle-tiger-otter", "transfer_noise", 10.0, True),
        ("apple-man-beetle-tiger-otter", "sp_variability", 10.0, True),  # Sec. III.C
        ("beaver-otter", "sp_variability", None, False),
        ("beaver-otter", "pulse_noise", None, False),  # Fig. 5: mostly the same
        ("apple-man-beetle-tiger-otter", "dtod", None, False),
    ],
)
def test_critical_points_as_the_text_states_them(task, axis, value, elbow):
    found = paper_value(task, CRITICAL_POINT, axis)
    assert (found.value, found.elbow) == (value, elbow)
    assert found.source.startswith(("Fig. 3", "Fig. 4", "Fig. 5"))


def test_every_value_names_its_figure_section_and_words():
    for value in PAPER_VALUES:
        assert value.task in PAPER_TASKS
        assert value.source.startswith("Fig. ") and ", Sec. III." in value.source
        assert len(value.quote) > 40 and value.claim
        if value.quantity == CRITICAL_POINT:
            assert value.subject in AXES and (value.value is not None) == value.elbow
        else:
            assert value.quantity == DIFFERENCE and " - " in value.subject
    # digital TL beats analog TL by about 2 points on both tasks (Sec. III.A)
    assert {paper_value(t, DIFFERENCE, "analog_tl - digital_tl").value for t in PAPER_TASKS} == {2.0}
    assert paper_value(None, DIFFERENCE, "analog_tl - digital_tl") is None
