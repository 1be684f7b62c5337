"""Faults on a whole file run, through the CLI as users type it: rows out + rows failed +
rows pending = rows in, no row requested twice, the exit code and the message."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import control, scenario


def _cli(args: list[str], base_url: str, cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_"))}
    env.update({"GOOGLE_GEMINI_BASE_URL": base_url, "GEMINI_API_KEY": "k",
                "FLASHLANE_STATE_DIR": str(cwd / "state")})
    return subprocess.run([sys.executable, "-m", "flashlane", *args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=timeout)


def _rows(n: int, path: Path) -> Path:
    path.write_text("text\n" + "".join(f"review number {i} about shipping\n" for i in range(n)))
    return path


def _served(base_url: str) -> int:
    return int(control(base_url, "/_emulator/stats")["requests_total"])


def test_outage_stops_the_run_with_rows_pending_and_a_rerun_finishes(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _rows(200, tmp_path / "in.csv")
    args = ["run", "classify", str(src), "--column", "text", "--labels", "pos,neg", "-o", str(tmp_path / "o.jsonl"),
            "--no-cache", "--quiet"]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"error": 503}})
    t0 = time.monotonic()
    p = _cli(args, gemini_emulator.base_url, tmp_path)
    assert time.monotonic() - t0 < 180
    assert p.returncode == 1, p.stderr
    assert "outage" in p.stderr and "rerun" in p.stderr and "Traceback" not in p.stderr
    assert _served(gemini_emulator.base_url) <= 200
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and not any(r.get("status") == "failed" for r in rows)

    control(gemini_emulator.base_url, "/_emulator/reset", {})
    p = _cli(args, gemini_emulator.base_url, tmp_path)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and all(r["result"]["label"] in ("pos", "neg") for r in rows)
    assert _served(gemini_emulator.base_url) == 200  # each pending row asked once, nothing twice


def test_ten_unstated_429s_at_the_start_do_not_collapse_the_default_limiter(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _rows(200, tmp_path / "in.csv")
    scenario(gemini_emulator.base_url, {"times": 10, "action": {"error": 429, "retry_delay": 3}})
    t0 = time.monotonic()
    p = _cli(["run", "classify", str(src), "--column", "text", "--labels", "pos,neg", "-o", str(tmp_path / "o.jsonl"),
              "--no-cache", "--quiet"], gemini_emulator.base_url, tmp_path)
    assert p.returncode == 0, p.stderr
    assert time.monotonic() - t0 < 60
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 200 and all(r["status"] == "ok" for r in rows)


def test_a_quota_of_zero_stops_the_run_after_one_request_naming_the_tier(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = _rows(50, tmp_path / "in.csv")
    scenario(gemini_emulator.base_url, {"action": {"no_quota": True}})
    p = _cli(["run", "classify", str(src), "--column", "text", "--labels", "pos,neg", "-o", str(tmp_path / "o.jsonl"),
              "--no-cache", "--quiet", "--concurrency", "1"], gemini_emulator.base_url, tmp_path)
    assert p.returncode == 1
    assert "no quota" in p.stderr and "tier" in p.stderr and "billing" in p.stderr and "Traceback" not in p.stderr
    assert _served(gemini_emulator.base_url) == 1


def test_ask_with_a_quota_of_zero_exits_1_after_one_request(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"action": {"no_quota": True}})
    p = _cli(["ask", "hi"], gemini_emulator.base_url, tmp_path)
    assert p.returncode == 1 and "no quota" in p.stderr.splitlines()[0]
    assert _served(gemini_emulator.base_url) == 1


def test_a_hung_item_never_holds_up_the_others(gemini_emulator, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in.csv"
    src.write_text("text\n" + "".join(f"review {i}\n" for i in range(19)) + "review that hangs forever\n")
    scenario(gemini_emulator.base_url, {"match": {"prompt_contains": "hangs forever"}, "action": {"hang": True}})
    env_args = ["run", "classify", str(src), "--column", "text", "--labels", "pos,neg", "-o", str(tmp_path / "o.jsonl"),
                "--no-cache", "--quiet", "--timeout", "2"]
    p = subprocess.run([sys.executable, "-m", "flashlane", *env_args], capture_output=True, text=True, cwd=tmp_path,
                       timeout=120, env={**{k: v for k, v in os.environ.items() if not k.startswith(("GEMINI_", "GOOGLE_"))},
                                         "GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url, "GEMINI_API_KEY": "k",
                                         "FLASHLANE_MAX_ATTEMPTS": "2", "FLASHLANE_STATE_DIR": str(tmp_path / "state")})
    assert p.returncode == 1, p.stderr
    rows = [json.loads(line) for line in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert len(rows) == 20
    assert sum(r["status"] == "ok" for r in rows) == 19
    hung = [r for r in rows if r["status"] != "ok"]
    assert len(hung) == 1 and hung[0]["reason"] == "timeout"
