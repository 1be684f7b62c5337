"""``python -m flashlane.emulator`` runs the emulator command directly."""

from __future__ import annotations

from .cli import emulator_command

emulator_command(prog_name="flashlane emulator")
