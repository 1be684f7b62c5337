"""``flashlane emulator`` as a process: base URL on the first stdout line; SIGTERM/SIGINT exit 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    return proc, line


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_prints_url_and_stops_cleanly(sig: signal.Signals, tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("rules:\n  - match: {prompt_contains: boom}\n    action: {error: 500}\n")
    projects = tmp_path / "p.json"
    projects.write_text(json.dumps({"projects": {"p": {"keys": ["k"], "rpm": 1}}}))
    proc, url = _start("--scenario", str(scenario), "--projects", str(projects), "--rpm", "100")
    try:
        assert url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(url + "/_emulator/health", timeout=5) as r:
            assert json.load(r) == {"status": "ok"}
        with urllib.request.urlopen(url + "/_emulator/scenario", timeout=5) as r:
            assert json.load(r)["rules"][0]["action"] == {"error": 500}
        proc.send_signal(sig)
        assert proc.wait(timeout=15) == 0  # promptly, and cleanly
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
