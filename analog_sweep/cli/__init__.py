"""The ``analog-sweep`` command line: a thin click layer over the library, one module a command group."""

from __future__ import annotations

import sys

import click

from analog_sweep import __version__
from analog_sweep.cli.results import results
from analog_sweep.cli.trial import trial


class OneLineErrors(click.Group):
    """A group whose errors, usage errors included, are one line on stderr: ``Error: ...`` and the exit code."""

    def main(self, *args, standalone_mode: bool = True, **kwargs):  # type: ignore[override]
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)
        try:
            result = super().main(*args, standalone_mode=False, **kwargs)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            click.echo(f"Error: {exc.format_message()}{hint}", err=True)
            sys.exit(exc.exit_code)
        except click.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(130)
        sys.exit(result if isinstance(result, int) else 0)


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="analog-sweep")
def cli() -> None:
    """Robustness sweeps of analog in-memory transfer learning (c-TTv2 on IBM aihwkit).

    \b
    Example:
        analog-sweep trial --mode analog_tl --epochs 2
    """


cli.add_command(trial)
cli.add_command(results)


def main() -> None:
    cli()
