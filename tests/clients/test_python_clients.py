"""Third-party Python clients, pinned (requirements.txt), against ``flashlane emulator`` and through
``flashlane gateway``: generate, stream, structured output and a tool call each, plus what each client
offers of embeddings, caches, files and batches (drive.py says how each is used). The matrix is in
docs/emulator.md (Other clients)."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import DRIVER, TARGETS, failed, run_json

pytestmark = pytest.mark.clients

CORE = {"generate", "stream", "structured", "tool"}
# Beyond the four every client is driven for: what the client itself offers.
EXTRA = {
    "google-genai": {"caches", "files", "batches", "embed"},
    "google-genai-aio": {"aiohttp"},
    "litellm": {"embed", "batches"},
    "pydantic-ai": set(),
    "langchain-google-genai": {"embed"},
    "llm-gemini": {"embed"},
}


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", sorted(EXTRA))
def test_client(client: str, target: str, servers: dict[str, str], clients_python: str, tmp_path: Path) -> None:
    results = run_json([clients_python, str(DRIVER), client, servers[target]], tmp_path)
    assert set(results) == CORE | EXTRA[client]
    assert not failed(results), failed(results)
