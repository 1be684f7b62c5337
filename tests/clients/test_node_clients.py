"""Third-party Node clients, locked in tests/node/package-lock.json: @google/genai and the Vercel AI
SDK (``ai`` + ``@ai-sdk/google``), against ``flashlane emulator`` and through ``flashlane gateway``:
generate, stream, structured output and a tool call (tests/node/clients.mjs). The official Node SDK's
caches, files and batches flows run in tests/emulator/test_node_*.py."""

from __future__ import annotations

import pytest

from .conftest import NODE_DIR, TARGETS, failed, run_json

pytestmark = pytest.mark.clients


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("client", ["genai", "ai-sdk"])
def test_client(client: str, target: str, servers: dict[str, str], node: str) -> None:
    results = run_json([node, str(NODE_DIR / "clients.mjs"), client, servers[target]], NODE_DIR)
    assert set(results) == {"generate", "stream", "structured", "tool"}
    assert not failed(results), failed(results)
