"""Tier tests: the pipeline's helpers (emulator fixtures, CLI runs, input files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.pipeline.conftest import AIOHTTP_SUBCLASS_WARNING, cli_env, emu, lane  # noqa: F401 - fixtures

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.filterwarnings(AIOHTTP_SUBCLASS_WARNING))
