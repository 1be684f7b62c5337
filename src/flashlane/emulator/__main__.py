"""``python -m flashlane.emulator`` runs the emulator command directly.

Usage errors print one line and exit 2, as ``flashlane emulator`` does (click's standalone mode
would print a usage block); the emulator imports nothing from the rest of flashlane.
"""

from __future__ import annotations

import sys

import click

from .cli import emulator_command

try:
    emulator_command.main(prog_name="flashlane emulator", standalone_mode=False)
except click.UsageError as e:
    click.echo(f"error: {e.format_message()}", err=True)
    sys.exit(2)
except click.ClickException as e:
    click.echo(f"error: {e.format_message()}", err=True)
    sys.exit(e.exit_code or 1)
except click.Abort:
    sys.exit(130)
