"""pytest fixtures for projects that use flashlane (registered as a ``pytest11`` entry point).

- ``gemini_emulator`` / ``gemini_emulator_server``: a running Gemini API emulator (see
  ``flashlane.emulator.pytest_plugin``);
- ``flashlane_lane``: a ``flashlane.Lane`` on that emulator with a virtual clock
  (``flashlane.clock.TestClock``): retry backoff and limiter waits advance the clock instead
  of sleeping, so a test of a retry path runs in milliseconds and can assert the waits::

    def test_retries_after_503(gemini_emulator, flashlane_lane):
        gemini_emulator.load_scenario([{"times": 2, "action": {"error": 503}}])
        assert flashlane_lane.generate("hi").text
        assert len(flashlane_lane.clock.sleeps) == 2

pytest loads this module in every project that has flashlane installed, so it imports
nothing heavy at load time: the Lane (and with it google-genai) is imported inside the
fixture, the emulator inside its fixtures.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from .emulator.pytest_plugin import gemini_emulator, gemini_emulator_server

if TYPE_CHECKING:
    from .emulator.server import Emulator

__all__ = ["flashlane_lane", "gemini_emulator", "gemini_emulator_server"]


@pytest.fixture
def flashlane_lane(gemini_emulator: Emulator) -> Iterator[Any]:
    """A ``flashlane.Lane`` on the emulator, on a virtual clock (no real sleeps), limits off."""
    from .clock import TestClock
    from .lane import Lane

    lane = Lane(backend="emulator", base_url=gemini_emulator.base_url, clock=TestClock(), limits="off", cache=False)
    try:
        yield lane
    finally:
        lane.close()
