"""The pytest plugin's fixtures as a user's test would use them (the README shows the same)."""

from __future__ import annotations


def test_retries_after_503(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 2, "action": {"error": 503}}])
    assert flashlane_lane.generate("hi").text
    assert len(flashlane_lane.clock.sleeps) == 2  # the backoff ran on the virtual clock
    assert flashlane_lane.stats.retries == 2
