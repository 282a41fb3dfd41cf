"""What the paper reports, number by number, with the figure and section each one comes from.

Source: Fagbohungbe et al., *Assessing the Performance of Analog Training for Transfer Learning*, arXiv 2505.11067v1
(IBM Research, 2025). Only what the paper's text states is here (not values read off its figures): the critical
points of Sec. III.B-C, the mode comparison of Sec. III.A, and the curves the text calls flat. Test errors are in
percent, device axes in the paper's units (``sweeps/README.md``).

A sweep matches a paper value when it fine-tunes on the same CIFAR-100 classes (any order): the report then shows
the paper's value beside its own. The digits tasks of the quickstart match none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

# The paper's two fine-tuning tasks (Sec. II), named as ``sweeps`` names tasks (classes joined by '-').
PAPER_TASKS = {
    "beaver-otter": frozenset({"beaver", "otter"}),
    "apple-man-beetle-tiger-otter": frozenset({"apple", "man", "beetle", "tiger", "otter"}),
}
PAPER_DATASET = "cifar"

CRITICAL_POINT = "critical_point"
DIFFERENCE = "difference"


@dataclass(frozen=True)
class PaperValue:
    """One reported value.

    ``quantity`` is ``critical_point`` (``subject`` is a device axis; ``value`` the axis value where the test error
    starts rising, in the axis's unit, or None with ``elbow`` False: the text calls the curve flat) or ``difference``
    (``subject`` is ``"A - B"`` for two modes; ``value`` is mean test error of A minus that of B in percentage points,
    None where the text gives only the sign, stated in ``claim``). ``source``: figure and section; ``quote``: the
    sentence it rests on.
    """

    task: str
    quantity: str
    subject: str
    value: float | None
    elbow: bool | None
    claim: str
    source: str
    quote: str

    def text(self) -> str:
        """The value as a report cell, e.g. ``15 % (Fig. 3, Sec. III.B)``."""
        return f"{self.claim} ({self.source})"


_FIG3 = "Fig. 3, Sec. III.B"
_FIG4 = "Fig. 4, Sec. III.C"
_FIG5 = "Fig. 5, Sec. III.C"
_FIG2 = "Fig. 2, Sec. III.A"
_TWO, _FIVE = "beaver-otter", "apple-man-beetle-tiger-otter"

PAPER_VALUES: tuple[PaperValue, ...] = (
    PaperValue(
        _TWO,
        CRITICAL_POINT,
        "transfer_noise",
        15.0,
        True,
        "elbow at about 15 %",
        _FIG3,
        "For a 2-class task, the test error is mostly constant until the weight transfer noise exceeds 15 %.",
    ),
    PaperValue(
        _FIVE,
        CRITICAL_POINT,
        "transfer_noise",
        10.0,
        True,
        "elbow at about 10 %",
        _FIG3,
        "Similar behavior is also noticed for the 5-class task, except that the elbow point was 10 %.",
    ),
    # Sec. III.C discusses variability beside Fig. 4, whose caption names the skew; for the skew the text gives no
    # number, only the conclusion's "very tolerant".
    PaperValue(
        _TWO,
        CRITICAL_POINT,
        "sp_variability",
        None,
        False,
        "no elbow (minimal impact)",
        _FIG4,
        "For the 2-class task, the symmetric point variability has minimal impact on the model performance.",
    ),
    PaperValue(
        _FIVE,
        CRITICAL_POINT,
        "sp_variability",
        10.0,
        True,
        "elbow at about 10 %",
        _FIG4,
        "For a 5-class task, the analog model inference performance was not affected until a symmetric value "
        "of about 10 %.",
    ),
    *(
        PaperValue(
            task,
            CRITICAL_POINT,
            axis,
            None,
            False,
            "no elbow (mostly the same)",
            _FIG5,
            "The analog model inference performance remains mostly the same despite the increase in the "
            "value of the mean pulse device-to-device (DtoD) variability and the pulse update noise.",
        )
        for task in (_TWO, _FIVE)
        for axis in ("pulse_noise", "dtod")
    ),
    *(
        PaperValue(
            task,
            DIFFERENCE,
            "analog_tl - analog_scratch",
            None,
            None,
            "below 0 (analog TL better)",
            _FIG2,
            "The performance of the analog TL model is better than the results for regular analog training "
            "for both fine-tuning tasks.",
        )
        for task in (_TWO, _FIVE)
    ),
    *(
        PaperValue(
            task,
            DIFFERENCE,
            "analog_tl - digital_tl",
            2.0,
            None,
            "about +2 points",
            _FIG2,
            "For the 2-class and 5-class fine-tuning tasks, digital TL outperforms the analog TL by about 2 %.",
        )
        for task in (_TWO, _FIVE)
    ),
)


def paper_task(dataset: str | None, classes: Iterable[str]) -> str | None:
    """The paper's name for a task with these fine-tuning ``classes`` on ``dataset`` (``cifar``), or None."""
    if dataset != PAPER_DATASET:
        return None
    wanted = frozenset(classes)
    return next((name for name, task in PAPER_TASKS.items() if task == wanted), None)


def paper_value(task: str | None, quantity: str, subject: str) -> PaperValue | None:
    """The paper's value for ``quantity`` and ``subject`` on the paper task ``task`` (from ``paper_task``), or None."""
    if task is None:
        return None
    return next((v for v in PAPER_VALUES if (v.task, v.quantity, v.subject) == (task, quantity, subject)), None)
