"""The ``analog-sweep`` command line: a thin click layer over the library, one module a command group."""

from __future__ import annotations

import importlib
import sys

import click

from analog_sweep import __version__

ARGV_KEY = "analog_sweep.argv"  # where the root command keeps the command line in ``click.Context.meta``

# Each command is imported only when used: ``results`` needs no torch, Ray or aihwkit, and starts in a second.
COMMANDS = {
    "run": "analog_sweep.cli.run:run",
    "resume": "analog_sweep.cli.run:resume",
    "status": "analog_sweep.cli.run:status",
    "results": "analog_sweep.cli.results:results",
    "report": "analog_sweep.cli.report:report",
    "trial": "analog_sweep.cli.trial:trial",
    "submit": "analog_sweep.cli.submit:submit",
    "jobs": "analog_sweep.cli.submit:jobs",
    "logs": "analog_sweep.cli.submit:logs",
    "dashboard": "analog_sweep.cli.dashboard:dashboard",
    "store": "analog_sweep.cli.store:store",
}


class OneLineErrors(click.Group):
    """A group whose errors, usage errors included, are one line on stderr: ``Error: ...`` and the exit code.

    Its commands are loaded lazily from ``COMMANDS``.
    """

    def make_context(
        self, info_name: str | None, args: list[str], parent: click.Context | None = None, **extra
    ) -> click.Context:
        """The context, which keeps the command line as typed (``ctx.meta[ARGV_KEY]``) for the sweep's provenance."""
        argv = [info_name or "analog-sweep", *args]
        ctx = super().make_context(info_name, args, parent=parent, **extra)
        ctx.meta[ARGV_KEY] = argv
        return ctx

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(importlib.import_module(module), attribute)

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


def main() -> None:
    cli()
