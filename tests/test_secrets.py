"""API keys never reach outputs, errors, run databases, caches or the emulator's logs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import control

SECRET = "AIzaSy-flashlane-test-secret-0123456789"


def test_key_never_leaks(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    csv = tmp_path / "in.csv"
    csv.write_text("text\nFast shipping\nBroke quickly\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_"))}
    env.update({"GEMINI_API_KEY": SECRET, "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url,
                "FLASHLANE_STATE_DIR": str(tmp_path / "state")})
    outputs = []
    # Each command must have done its work (exit code), or a leak check on its output means nothing.
    for args, code in ((["ask", "hi", "--json"], 0), (["doctor"], 0), (["models", "--json"], 0),
                       (["run", "classify", str(csv), "--column", "text", "--labels", "a,b", "-o",
                         str(tmp_path / "o.jsonl")], 0),
                       (["report", str(tmp_path / "o.jsonl.flashlane.db"), "--json"], 0),
                       (["ask", "hi", "--model", "gemini-3.1-flash-lite-preview"], 1)):
        p = subprocess.run([sys.executable, "-m", "flashlane", *args], capture_output=True, text=True, env=env,
                           cwd=tmp_path, timeout=60)
        assert p.returncode == code, (args, p.stdout, p.stderr)
        outputs.append(p.stdout + p.stderr)
    assert "label" in outputs[3] + (tmp_path / "o.jsonl").read_text()
    env["GEMINI_API_KEY"] = "invalid"  # the emulator's API_KEY_INVALID trigger
    p = subprocess.run([sys.executable, "-m", "flashlane", "ask", "hi"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=60)
    assert p.returncode == 1 and "API_KEY_INVALID" in p.stderr
    for text in outputs:
        assert SECRET not in text
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert SECRET.encode() not in f.read_bytes(), f
    log = control(gemini_emulator.base_url, "/_emulator/requests")["requests"]
    assert log and SECRET not in repr(log) and SECRET not in repr(control(gemini_emulator.base_url, "/_emulator/stats"))
