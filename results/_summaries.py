"""Per-trial summaries (epochs done, final, best and best epoch; best validation error and its epoch) derived from
the epochs table in SQL.

They are recomputed from all of a trial's epochs on every epoch write, never incremented, so replaying
epochs cannot skew them.
"""

from __future__ import annotations

import sqlalchemy as sa

from analog_sweep.results._schema import TRIAL_ACTIVITY_FIELDS, epochs, trials

_of_trial = epochs.c.trial_id == trials.c.trial_id


def best_epoch_subquery() -> sa.ScalarSelect:
    """The epoch with the lowest test error (earliest on ties) of the trial in the enclosing statement."""
    return _best_epoch_by(epochs.c.test_error)


def best_validation_epoch_subquery() -> sa.ScalarSelect:
    """The epoch with the lowest validation error (earliest on ties) of the trial in the enclosing statement."""
    return _best_epoch_by(epochs.c.validation_error)


def _best_epoch_by(error: sa.Column) -> sa.ScalarSelect:
    return (
        sa.select(epochs.c.epoch)
        .where(_of_trial, error.is_not(None))
        .order_by(error, epochs.c.epoch)
        .limit(1)
        .scalar_subquery()
    )


def _last_epoch(column: sa.Column) -> sa.ScalarSelect:
    return sa.select(column).where(_of_trial).order_by(epochs.c.epoch.desc()).limit(1).scalar_subquery()


def refresh_trial_summary(connection: sa.Connection, trial_id: str) -> None:
    """Recompute one trial's summary columns from its epochs (the activity columns: its last epoch's)."""
    connection.execute(
        sa.update(trials)
        .where(trials.c.trial_id == trial_id)
        .values(
            epochs_done=sa.select(sa.func.count()).where(_of_trial).scalar_subquery(),
            final_test_error=_last_epoch(epochs.c.test_error),
            **{name: _last_epoch(epochs.c[name]) for name in TRIAL_ACTIVITY_FIELDS},
            best_test_error=sa.select(sa.func.min(epochs.c.test_error)).where(_of_trial).scalar_subquery(),
            best_epoch=best_epoch_subquery(),
            best_validation_error=sa.select(sa.func.min(epochs.c.validation_error)).where(_of_trial).scalar_subquery(),
            best_validation_epoch=best_validation_epoch_subquery(),
        )
    )
