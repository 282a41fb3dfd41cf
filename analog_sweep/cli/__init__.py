"""The ``analog-sweep`` command line: a thin click layer over the library, one module a command group."""

from __future__ import annotations

import click

from analog_sweep import __version__
from analog_sweep.cli.trial import trial


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="analog-sweep")
def cli() -> None:
    """Robustness sweeps of analog in-memory transfer learning (c-TTv2 on IBM aihwkit).

    \b
    Example:
        analog-sweep trial --mode analog_tl --epochs 2
    """


cli.add_command(trial)


def main() -> None:
    cli()
