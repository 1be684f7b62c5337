"""The official Node SDK (@google/genai) against the emulator: text, stream, and a 429.

Skipped only when ``tests/node/node_modules`` is missing and ``FLASHLANE_REQUIRE_NODE`` is not
``1``; CI sets it, so there a missing ``npm install --prefix tests/node`` is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flashlane.emulator import Emulator

NODE_DIR = Path(__file__).resolve().parents[1] / "node"


def _node_or_skip() -> str:
    required = os.environ.get("FLASHLANE_REQUIRE_NODE") == "1"
    node = shutil.which("node")
    installed = (NODE_DIR / "node_modules" / "@google" / "genai").is_dir()
    if not (installed and node):
        if required:
            pytest.fail(
                "FLASHLANE_REQUIRE_NODE=1 but node or tests/node/node_modules is missing "
                "(run: npm install --prefix tests/node)"
            )
        pytest.skip("Node SDK not installed (npm install --prefix tests/node)")
    assert node is not None
    return node


def test_node_sdk_interop(emu: Emulator) -> None:
    node = _node_or_skip()
    proc = subprocess.run(
        [node, str(NODE_DIR / "interop.mjs"), emu.base_url],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=NODE_DIR,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["text"]
    assert out["usage"]["promptTokenCount"] > 0
    assert out["streamChunks"] > 1 and out["streamText"]
    err = out["error"]
    assert err and err["isApiError"] and err["status"] == 429
    retry = err["body"]["error"]["details"][-1]
    assert retry["retryDelay"] == "7s"


def test_node_sdk_batches_and_files(emu: Emulator) -> None:
    """``ai.batches.create/get/list/cancel/delete`` and ``ai.files.upload`` (Node sends the key on
    byte uploads, Python does not; both work)."""
    node = _node_or_skip()
    proc = subprocess.run([node, str(NODE_DIR / "batches.mjs"), emu.base_url], capture_output=True, text=True,
                          timeout=60, cwd=NODE_DIR)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["created"]["name"].startswith("batches/") and out["created"]["state"] == "JOB_STATE_PENDING"
    assert out["inline"]["state"] == "JOB_STATE_SUCCEEDED" and out["inline"]["keys"] == ["n-1", "n-2"]
    assert all(out["inline"]["texts"])
    assert out["file"]["name"].startswith("files/") and int(out["file"]["sizeBytes"]) > 0
    assert out["fileJob"]["state"] == "JOB_STATE_SUCCEEDED" and out["fileJob"]["responsesFile"].startswith("files/batch-")
    assert len(out["listed"]) == 2
    stats = emu.batches()
    assert stats["jobs_created"] == {"default/gemini-3.1-flash-lite": 2} and stats["keys_answered"] == 4
