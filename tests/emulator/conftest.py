"""Fixtures for the emulator tests: real google-genai clients pointed at a real emulator.

``gemini_emulator`` comes from flashlane's own pytest plugin (``flashlane.emulator.pytest_plugin``),
so these tests also exercise what users get.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types

from flashlane.emulator import Emulator

HERE = Path(__file__).parent
SHARED_SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "wire-samples"
LOCAL_SAMPLES = HERE / "wire_samples"
MODEL = "gemini-3.1-flash-lite"
# google-genai's async client subclasses aiohttp.ClientSession, which aiohttp 3.14 deprecates;
# pyproject turns warnings into errors, so async tests opt out of this one (not ours to fix).
AIOHTTP_SUBCLASS_WARNING = "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"


def load_sample(name_prefix: str) -> dict[str, Any]:
    """A wire sample, from ../shared/wire-samples when present, else the copy in this package."""
    for base in (SHARED_SAMPLES, LOCAL_SAMPLES):
        if base.is_dir():
            found = sorted(base.glob(f"{name_prefix}_*.json"))
            if found:
                return json.loads(found[0].read_text())
    raise FileNotFoundError(name_prefix)


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "GOOGLE_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GENAI_USE_VERTEXAI",
        "GOOGLE_GENAI_USE_ENTERPRISE",
        "GOOGLE_CLOUD_PROJECT",
        "GOOGLE_CLOUD_LOCATION",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_VERTEX_BASE_URL",
        "GOOGLE_GENAI_API_VERSION",
    ):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def emu(gemini_emulator: Emulator) -> Emulator:
    return gemini_emulator


def make_client(emu: Emulator, api_key: str = "test-key", **http: Any) -> genai.Client:
    return genai.Client(api_key=api_key, http_options=types.HttpOptions(base_url=emu.base_url, **http))


@pytest.fixture
def client(emu: Emulator) -> Iterator[genai.Client]:
    c = make_client(emu)
    yield c
    c.close()


@pytest.fixture
async def aclient(emu: Emulator) -> AsyncIterator[genai.client.AsyncClient]:
    c = make_client(emu)
    yield c.aio
    await c.aio.aclose()
    c.close()
