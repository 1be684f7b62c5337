"""The ``flashlane`` console script. Commands live one group per module."""

from __future__ import annotations

from .main import main

__all__ = ["main"]
