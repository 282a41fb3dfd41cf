"""How long epochs took: every recorded epoch's wall-clock seconds with its sweep's spec, for cost estimates."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from analog_sweep.results._schema import epochs, sweeps, trials


def epoch_seconds(connection: sa.Connection) -> list[dict[str, Any]]:
    """One row per recorded epoch with a time: ``sweep``, ``spec`` (the sweep's stored mapping), ``point_key``,
    ``trial_id``, ``epoch`` and ``seconds`` (wall-clock seconds of training plus evaluation, as the
    worker measured them). Diverged and failed trials count too: their epochs took the time they took."""
    specs = dict(connection.execute(sa.select(sweeps.c.name, sweeps.c.spec)).all())
    query = (
        sa.select(trials.c.sweep, trials.c.point_key, trials.c.trial_id, epochs.c.epoch, epochs.c.seconds)
        .select_from(trials.join(epochs, epochs.c.trial_id == trials.c.trial_id))
        .where(epochs.c.seconds.is_not(None))
        .order_by(trials.c.sweep, trials.c.trial_id, epochs.c.epoch)
    )
    return [
        {**row, "spec": specs[row["sweep"]]} for row in connection.execute(query).mappings() if row["sweep"] in specs
    ]
