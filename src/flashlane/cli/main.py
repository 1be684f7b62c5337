"""Entry point: the click group, error rendering and exit codes.

Exit codes: 0 success, 1 the work failed, 2 usage or configuration error.
Errors are one line (plus at most one hint line) on stderr; tracebacks only with
FLASHLANE_DEBUG=1.
"""

from __future__ import annotations

import os
import sys

import click

from .. import __version__


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, package_name="flashlane")
@click.option("--emulator", is_flag=True, default=False, help="Run every command against the built-in emulator.")
def cli(emulator: bool) -> None:
    """Run cheap, high-volume LLM work on Gemini Flash-Lite, correctly by default."""


def _register() -> None:
    from ..emulator.cli import emulator_command
    from .ask import ask_command
    from .doctor import doctor_command
    from .gateway import gateway_command
    from .models import models_command
    from .tasks import classify_command, extract_command, summarize_command, translate_command

    for command in (ask_command, classify_command, extract_command, translate_command, summarize_command,
                    models_command, doctor_command, emulator_command, gateway_command):
        cli.add_command(command)
    try:
        from .run import report_command, run_command
    except ImportError:  # the pipeline is optional while it is being built
        return
    cli.add_command(run_command)
    cli.add_command(report_command)
    from .batch import batch_group

    cli.add_command(batch_group)
    from .evaluate import eval_command

    cli.add_command(eval_command)


def main(argv: list[str] | None = None) -> None:
    _register()
    debug = os.environ.get("FLASHLANE_DEBUG") == "1"
    try:
        from .. import telemetry

        telemetry.setup_from_env()  # OTEL_* export variables: traces and metrics (docs/telemetry.md)
        cli.main(args=argv, standalone_mode=False, prog_name="flashlane")
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except SystemExit:
        raise
    except click.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:
        if debug:
            raise
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(2)
    except click.ClickException as e:
        if debug:
            raise
        click.echo(f"error: {e.format_message()}", err=True)
        sys.exit(e.exit_code or 1)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 - the one place errors become exit codes
        if debug:
            raise
        from ..errors import FlashlaneError

        if isinstance(e, FlashlaneError):
            click.echo(f"error: {e.message}", err=True)
            if e.hint:
                click.echo(f"hint: {e.hint}", err=True)
            sys.exit(e.exit_code)
        first = " ".join(str(e).split())[:300]  # one line, whatever the exception's message looks like
        click.echo(f"error: {type(e).__name__}: {first} (set FLASHLANE_DEBUG=1 for a traceback)", err=True)
        sys.exit(1)
