"""Many client processes, the Python and the Node SDK, through gateways in front of an emulator
with a small per-minute quota (a scaled 3 s minute): every request is answered, no 429 reaches
a client, and the emulator never sees more than its quota in any window.

The Node half runs when ``tests/node/node_modules`` is installed (``FLASHLANE_REQUIRE_NODE=1``
makes it mandatory, as in CI); without it those workers use the Python SDK too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from flashlane.emulator import Emulator

from .conftest import TOKEN, emulator_config, gateway_env, start_gateway

HERE = Path(__file__).parent
NODE_DIR = HERE.parent / "node"
RPM, WINDOW = 40, 3.0  # the emulator's quota per scaled minute (and the gateways' limits): a window well
# above the time a request spends in flight on a loaded machine, which the limiter's margin assumes
LIMITS = f"rpm={RPM},window={WINDOW}"
CONCURRENCY = 8  # requests in flight per client process


def node_available() -> str | None:
    node = shutil.which("node")
    if node and (NODE_DIR / "node_modules" / "@google" / "genai").is_dir():
        return node
    if os.environ.get("FLASHLANE_REQUIRE_NODE") == "1":
        pytest.fail("FLASHLANE_REQUIRE_NODE=1 but node or tests/node/node_modules is missing "
                    "(run: npm install --prefix tests/node)")
    return None


def client_command(kind: str, base_url: str, n: int) -> list[str]:
    if kind == "node":
        node = node_available()
        if node is not None:
            return [node, str(NODE_DIR / "gateway_load.mjs"), base_url, TOKEN, str(n), str(CONCURRENCY)]
    return [sys.executable, str(HERE / "py_worker.py"), base_url, TOKEN, str(n), str(CONCURRENCY)]


def run_clients(plan: list[tuple[str, str, int]], env: dict[str, str]) -> list[dict[str, Any]]:
    procs = [subprocess.Popen(client_command(kind, url, n), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env, cwd=NODE_DIR if kind == "node" else HERE)
             for kind, url, n in plan]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err[-2000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def max_in_window(emu: Emulator) -> int:
    """The most requests the emulator admitted within any WINDOW-long interval."""
    ts = sorted(r["ts"] for r in emu.requests() if r["status"] == 200)
    j = 0
    most = 0
    for i, t in enumerate(ts):
        while ts[j] <= t - WINDOW:
            j += 1
        most = max(most, i - j + 1)
    return most


def check(emu: Emulator, results: list[dict[str, Any]], total: int) -> None:
    assert sum(r["ok"] for r in results) == total, results  # every request answered
    assert all(set(r["codes"]) == {"200"} for r in results), results  # no 429 (or anything else) reached a client
    stats = emu.stats()
    assert stats["by_status"] == {"200": total}, stats["by_status"]  # and none was even tried upstream
    assert max_in_window(emu) <= RPM


@pytest.mark.timeout(180)
def test_200_requests_from_node_and_python_processes_get_no_429(tokens_file: Path, tmp_path: Path) -> None:
    with Emulator(emulator_config(rpm=RPM, window_seconds=WINDOW)).running() as emu:
        gw = start_gateway(emu, tokens_file, limits=LIMITS)
        try:
            plan = [("node", gw.base_url, 50), ("node", gw.base_url, 50),
                    ("python", gw.base_url, 50), ("python", gw.base_url, 50)]
            results = run_clients(plan, gateway_env(tmp_path))
        finally:
            gw.stop()
        check(emu, results, 200)


@pytest.mark.timeout(180)
def test_two_replicas_on_one_redis_keep_the_upstream_under_its_quota(tokens_file: Path, redis_url: str) -> None:
    """Two gateways, each with its own limiter on the one Redis (in this process, to start fast;
    they share nothing else), clients spread over both."""
    import redis
    from google import genai
    from google.genai import errors

    redis.Redis.from_url(redis_url).flushall()
    with Emulator(emulator_config(rpm=RPM, window_seconds=WINDOW)).running() as emu:
        replicas = [start_gateway(emu, tokens_file, limits=LIMITS, redis=redis_url) for _ in range(2)]
        try:
            clients = [genai.Client(api_key=TOKEN, http_options={"base_url": r.base_url}) for r in replicas]
            codes: list[str] = []

            def one(i: int) -> None:
                try:
                    clients[i % 2].models.generate_content(model="gemini-3.1-flash-lite", contents=f"item {i}")
                    codes.append("200")
                except errors.APIError as e:
                    codes.append(str(e.code))

            with ThreadPoolExecutor(2 * CONCURRENCY) as pool:
                list(pool.map(one, range(100)))
        finally:
            for r in replicas:
                r.stop()
        check(emu, [{"ok": codes.count("200"), "codes": {c: codes.count(c) for c in codes}}], 100)
