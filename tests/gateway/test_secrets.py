"""Neither the upstream key nor a gateway token ever appears in the gateway's logs, metrics,
ledger or answers, nor in what the emulator logged, across successes and every error path."""

from __future__ import annotations

import os
import urllib.request
from pathlib import Path

import pytest
from google import genai
from google.genai import errors, types

from flashlane.emulator import Emulator
from flashlane.gateway.ledger import read_ledger
from tests.conftest import control, scenario

from .conftest import MODEL, TOKEN, TOKEN_B, UPSTREAM_KEY, GatewayProcess, gateway_env


def test_keys_and_tokens_never_leak(upstream: Emulator, tokens_file: Path, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    env = gateway_env(tmp_path, TEAM_A_KEY=os.environ["TEAM_A_KEY"], GOOGLE_GEMINI_BASE_URL=upstream.base_url,
                      FLASHLANE_DEBUG="1")  # even in debug mode
    gw = GatewayProcess(["--tokens", str(tokens_file), "--ledger", str(ledger), "--access-log", "--limits", "free"],
                        env, tmp_path / "gateway.log")
    answers: list[str] = []
    try:
        c = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(base_url=gw.base_url, timeout=5000))
        answers.append(c.models.generate_content(model=MODEL, contents="hi").model_dump_json())
        answers += [ch.model_dump_json() for ch in c.models.generate_content_stream(model=MODEL, contents="story")]
        scenario(upstream.base_url, {"times": 1, "action": {"error": 500}},
                 {"times": 1, "action": {"error": 429, "retry_delay": 30}})
        for model in (MODEL, "gemini-3.1-flash-lite-preview", "gemini-9-nope"):
            try:
                answers.append(c.models.generate_content(model=model, contents="x").model_dump_json())
            except errors.APIError as e:
                answers.append(str(e))
        for key in ("not-a-token", UPSTREAM_KEY):
            bad = genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gw.base_url))
            with pytest.raises(errors.ClientError) as e:
                bad.models.generate_content(model=MODEL, contents="x")
            answers.append(str(e.value))
        other = genai.Client(api_key=TOKEN_B, http_options=types.HttpOptions(base_url=gw.base_url))
        answers.append(other.models.generate_content(model=MODEL, contents="hi").model_dump_json())
        metrics = urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()
    finally:
        log = gw.stop()
    assert "POST /v1/models/gemini-3.1-flash-lite:generateContent 200" in log  # the access log is on
    assert "label=alice project=team-a" in log
    assert "429" in " ".join(answers)  # the 30 s wait did not fit the 5 s deadline: passed on
    assert upstream.stats()["by_project_model"][f"team-a/{MODEL}"]["requests"] >= 4  # mapped key went upstream
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "tokens.toml"]
    assert {r["label"] for r in read_ledger(ledger)} == {"alice", "bob"}  # flushed on SIGTERM
    emulator_logs = repr(control(upstream.base_url, "/_emulator/requests")) + repr(upstream.stats())
    for secret in (UPSTREAM_KEY, TOKEN, TOKEN_B, "AIzaSy-gateway-other"):
        assert secret not in log
        assert secret not in metrics
        assert secret not in emulator_logs
        assert all(secret not in a for a in answers)
        for f in files:
            assert secret.encode() not in f.read_bytes(), f
