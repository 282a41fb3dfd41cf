"""``analog-sweep dashboard``: a sweep's learning-rate searches, live and read-only, in optuna-dashboard."""

from __future__ import annotations

import click

from analog_sweep.cli.output import BadInput, one_line_errors, progress, store_option
from analog_sweep.results import AXES, StoreError, StoreInputError, open_store, point_label

DEFAULT_PORT = 8080  # optuna-dashboard's own default


@click.command()
@click.argument("sweep")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (0.0.0.0 shows the studies to your whole network).",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DEFAULT_PORT,
    show_default=True,
    help="Port to listen on (0: any free port; the line on stderr says which). A busy port is refused, naming a free "
    "one to use instead.",
)
@store_option
@one_line_errors(StoreInputError, failure=(StoreError, OSError))
def dashboard(sweep: str, host: str, port: int, store_url: str | None) -> None:
    """Open a sweep's learning-rate searches (one Optuna study per point) in optuna-dashboard, read-only.

    The studies are read from the sweep's Optuna journal under its storage path (the store says where), as it
    grows: a running sweep shows its trials as they end. Each study is listed as its point's label and key
    (analog_tl/5-7/transfer_noise=10/seed0 [74b173eaecdce5a6]), its objective named with its unit ("validation
    error (%)" or "test error (%)", by the split the sweep chooses on). Nothing can be changed from the browser:
    the buttons that would (create, rename or delete a study, edit a note) are hidden. Stop with Ctrl-C.

    \b
    Example:
        analog-sweep dashboard quickstart
        analog-sweep dashboard quickstart --port 8081
    """
    from analog_sweep.orchestrator import serve_dashboard, sweep_journal  # Optuna and its dashboard, on use

    with open_store(store_url, read_only=True) as store:
        known = store.get_sweep(sweep)
        points = store.list_points(sweep)
        selected_on = store.selection(sweep).split
    # The store's labels, for studies of a journal written before the studies held their own.
    varied = [axis for axis in AXES if len({point[axis] for point in points}) > 1]
    labels = {point["point_key"]: point_label(point, varied) for point in points}
    journal = sweep_journal(known["experiment_path"])
    if journal is None or not journal.is_file():
        raise BadInput(
            f"sweep {sweep}: no Optuna journal at {journal or '(no storage path recorded)'}; run the "
            "dashboard where the sweep's storage path is mounted"
        )
    try:
        serve_dashboard(journal, host=host, port=port, echo=progress, fallback_labels=labels, selected_on=selected_on)
    except KeyboardInterrupt:
        progress("dashboard stopped")
