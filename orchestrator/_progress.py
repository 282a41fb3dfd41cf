"""Progress of a running sweep, as a line every few seconds: points done, trials by state, best so far, time left."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ray import tune

from analog_sweep.orchestrator._search import ENDED_AS, LearningRateSearch


def format_duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class ProgressLine(tune.Callback):
    """Prints a status line when a trial ends (at most every ``min_interval`` seconds) and at most every ``interval``
    seconds otherwise.

    A line counts every point's trials, so a study's thousands of points would make one per trial end cost the driver
    more than the trials' bookkeeping; ``min_interval`` keeps it to one a second.
    """

    def __init__(
        self,
        search: LearningRateSearch,
        slots: int,
        echo: Callable[[str], None],
        interval: float = 15.0,
        min_interval: float = 1.0,
    ) -> None:
        self.search = search
        self.slots = max(1, slots)
        self.echo = echo
        self.interval = interval
        self.min_interval = min(min_interval, interval)
        self.started = time.monotonic()
        self._last = 0.0
        self._last_line = ""
        self._trial_seconds: list[float] = []
        # Each trial's lowest error so far on the split points are chosen on (validation, or test by the paper's
        # rule); a trial that ends in an error (failed, diverged) leaves, so it is never shown as the best.
        self._trial_best: dict[str, tuple[float, str]] = {}
        self._labels = {point.key: point.label for point in search.points}

    @property
    def _best(self) -> tuple[float, str] | None:
        return min(self._trial_best.values(), default=None)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict, **info: Any) -> None:
        if result.get(ENDED_AS):  # it ended without a result (diverged, failed): its errors so far do not count
            self._trial_best.pop(trial.trial_id, None)
            self._maybe_print(force=True)
            return
        error = result.get(self.search.metric_name)
        known = self._trial_best.get(trial.trial_id)
        if error is not None and (known is None or error < known[0]):
            label = self._labels.get(trial.config.get("point_key"), "?")
            self._trial_best[trial.trial_id] = (float(error), f"{label} lr={trial.config['lr']:.3g}")
        self._maybe_print(force=False)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self._trial_best.pop(trial.trial_id, None)
        self._maybe_print(force=True)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        result = trial.last_result or {}
        if "time_total_s" in result:
            self._trial_seconds.append(float(result["time_total_s"]))
        self._maybe_print(force=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self._maybe_print(force=False)

    def _maybe_print(self, force: bool) -> None:
        now = time.monotonic()
        if now - self._last < (self.min_interval if force else self.interval):
            return
        self._last = now
        self.print_if_changed()

    def print_if_changed(self) -> None:
        line = self.line()
        if line.split("] ", 1)[-1] != self._last_line.split("] ", 1)[-1]:
            self.echo(line)
        self._last_line = line

    def line(self) -> str:
        counts = self.search.counts()
        total = self.search.planned_trials()  # shrinks as points stop early (lr_search.patience)
        of = (
            f"of at most {total}"
            if self.search.may_stop_early and counts["points_done"] < len(self.search.points)
            else f"of {total}"
        )
        ended = counts["complete"] + counts["pruned"] + counts["failed"] + counts["diverged"]
        diverged = f", {counts['diverged']} diverged" if counts["diverged"] else ""
        elapsed = time.monotonic() - self.started
        left = "?"
        if self._trial_seconds:
            mean = sum(self._trial_seconds) / len(self._trial_seconds)
            left = "~" + format_duration(max(0, total - ended) * mean / self.slots)
        split = "validation" if self.search.metric_name == "validation_error" else "test"
        best = f"{self._best[0]:.2f} % {split} ({self._best[1]})" if self._best else "-"
        # A grid tries every point's first rate before any point's second, so points finish late: the points with
        # trials ended show that the sweep is moving.
        begun = f", {counts['points_begun']} with trials in" if counts.get("points_begun") else ""
        return (
            f"[{format_duration(elapsed)}] points {counts['points_done']}/{len(self.search.points)} done{begun} | "
            f"trials {counts['running']} running, {counts['complete']} done, {counts['pruned']} pruned, "
            f"{counts['failed']} failed{diverged} {of} | best so far {best} | left {left}"
        )
