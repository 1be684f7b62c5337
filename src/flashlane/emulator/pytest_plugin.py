"""pytest fixtures that give a test a running Gemini API emulator (usage: docs/emulator.md, In
your own tests); registered as a ``pytest11`` entry point.

``gemini_emulator`` is function-scoped: one server per session (``gemini_emulator_server``),
reset before each test (stats, quota windows, scenario rules, request log, clock), latency 0.
``flashlane.pytest_plugin`` (the registered entry point) adds a Lane fixture on top.

Imports are lazy (inside the fixtures) so that loading this plugin, which pytest does in
every project that has flashlane installed, costs nothing for tests that do not use it.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from .server import Emulator


@pytest.fixture(scope="session")
def gemini_emulator_server() -> Iterator[Emulator]:
    """One emulator for the whole session (latency 0, no quotas)."""
    from .config import EmulatorConfig
    from .server import Emulator

    emu = Emulator(EmulatorConfig(latency_scale=0.0))
    emu.start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def gemini_emulator(gemini_emulator_server: Emulator) -> Iterator[Emulator]:
    """A running emulator with fresh state for this test."""
    gemini_emulator_server.reset(config=True)
    yield gemini_emulator_server
    gemini_emulator_server.reset(config=True)

