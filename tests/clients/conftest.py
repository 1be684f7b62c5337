"""The conformance suite's servers and clients (issue 25): one ``flashlane emulator`` and one
``flashlane gateway`` in front of it per session (per xdist worker), both real subprocesses, and the
third-party clients' own venv (scripts/clients-venv: pinned, cached, rebuilt only when
tests/clients/requirements.txt changes) and Node modules (tests/node, with a lockfile).

The suite skips when the clients are not installed, unless ``FLASHLANE_REQUIRE_CLIENTS=1`` (CI sets it,
and scripts/test builds the venv first), where that is a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gateway.conftest import GatewayProcess, gateway_env

ROOT = Path(__file__).resolve().parents[2]
NODE_DIR = ROOT / "tests" / "node"
DRIVER = Path(__file__).with_name("drive.py")
TARGETS = ("direct", "gateway")
CLIENT_TIMEOUT_S = 300.0  # one client's features, imports included, on a loaded 2-core machine


def _missing(what: str) -> None:
    if os.environ.get("FLASHLANE_REQUIRE_CLIENTS") == "1":
        pytest.fail(f"FLASHLANE_REQUIRE_CLIENTS=1 but {what}")
    pytest.skip(what)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """{"direct": the emulator's URL, "gateway": the gateway's, forwarding the clients' keys}."""
    tmp = tmp_path_factory.mktemp("clients")
    env = gateway_env(tmp)
    emulator = GatewayProcess(["--latency-scale", "0"], env, tmp / "emulator.log", command="emulator")
    try:
        gateway = GatewayProcess(["--pass-keys"], {**env, "GOOGLE_GEMINI_BASE_URL": emulator.base_url},
                                 tmp / "gateway.log")
        try:
            yield {"direct": emulator.base_url, "gateway": gateway.base_url}
        finally:
            gateway.stop()
    finally:
        emulator.stop()


@pytest.fixture(scope="session")
def clients_python() -> str:
    """The clients' venv python (built by scripts/clients-venv when its requirements changed)."""
    proc = subprocess.run([str(ROOT / "scripts" / "clients-venv")], capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        _missing(f"the clients' venv could not be built: {proc.stderr[-500:]}")
    return proc.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def node() -> str:
    found = shutil.which("node")
    if not (found and (NODE_DIR / "node_modules" / "@ai-sdk" / "google").is_dir()):
        _missing("node or tests/node/node_modules is missing (run: npm ci --prefix tests/node)")
    assert found is not None
    return found


def run_json(cmd: list[str], cwd: Path) -> dict[str, Any]:
    """Run a client driver; its last stdout line is {feature: {"ok", "detail"}}."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_", "LLM_", "PYTHONPATH"))}
    env["LLM_USER_PATH"] = str(cwd / ".llm")  # llm's keys and logs: never the user's own
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, cwd=cwd, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def failed(results: dict[str, Any]) -> dict[str, Any]:
    return {k: v["detail"] for k, v in results.items() if not v["ok"]}
