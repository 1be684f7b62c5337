"""The official Node SDK (@google/genai) against the emulator: context caching and a function round
trip whose thought signature is echoed, then dropped (the live 400). Skips like test_node_interop."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flashlane.emulator import Emulator
from flashlane.models import estimate_tokens

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def test_node_sdk_caches_and_tools(emu: Emulator) -> None:
    node = shutil.which("node")
    if not (node and (NODE_DIR / "node_modules" / "@google" / "genai").is_dir()):
        if os.environ.get("FLASHLANE_REQUIRE_NODE") == "1":
            pytest.fail("FLASHLANE_REQUIRE_NODE=1 but node or tests/node/node_modules is missing")
        pytest.skip("Node SDK not installed (npm install --prefix tests/node)")
    proc = subprocess.run([node, str(NODE_DIR / "caches_tools.mjs"), emu.base_url],
                          capture_output=True, text=True, timeout=60, cwd=NODE_DIR)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    tokens = estimate_tokens("Label reviews by sentiment. " * 200)
    assert out["cacheName"].startswith("cachedContents/") and out["cacheTokens"] == tokens
    assert out["cachedUsage"]["cachedContentTokenCount"] == tokens
    assert out["cachedUsage"]["promptTokenCount"] == tokens + estimate_tokens("Great phone.")
    assert out["listed"] == [out["cacheName"]] and out["updatedExpire"]
    assert out["calls"][0]["name"] == "get_weather" and isinstance(out["calls"][0]["args"]["city"], str)
    assert out["signature"] and out["finalText"]
    assert out["droppedError"]["status"] == 400 and out["droppedError"]["isApiError"]
    assert "missing a thought_signature" in out["droppedError"]["message"]
    stats = emu.caches()
    assert (stats["created"], stats["deleted"], stats["references"]) == (1, 1, {out["cacheName"]: 1})
