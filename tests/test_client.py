"""Lane against the emulator over real HTTP: what goes on the wire, what comes back, what users read."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

import flashlane as fl
from flashlane.clock import TestClock
from tests.conftest import control, scenario


class City(BaseModel):
    city: str
    country: str


@pytest.fixture
def lane(gemini_emulator):  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, api_key="test-key", clock=TestClock()) as lane:
        yield lane


def _last_request(base_url: str) -> dict:
    log = control(base_url, "/_emulator/requests")
    entries = log["requests"] if isinstance(log, dict) else log
    return entries[-1]


def test_generate_returns_text_usage_cost_and_version(lane: fl.Lane) -> None:
    r = lane.generate("Say hello in five words.")
    assert r.text.strip()
    assert r.finish_reason == "STOP"
    assert r.usage.prompt_tokens > 0 and r.usage.output_tokens > 0
    assert r.usage.thoughts_tokens > 0  # minimal still thinks a little on Gemini 3
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.output_tokens + r.usage.thoughts_tokens
    expected = (r.usage.prompt_tokens * 0.25 + (r.usage.output_tokens + r.usage.thoughts_tokens) * 1.50) / 1e6
    assert r.cost_usd == pytest.approx(expected)
    assert r.model == "gemini-3.1-flash-lite" and r.model_version
    assert r.latency_s > 0
    assert lane.totals.calls == 1 and lane.totals.cost_usd == pytest.approx(expected)


def test_wire_carries_minimal_thinking_output_cap_and_timeout(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    lane.generate("hi")
    entry = _last_request(gemini_emulator.base_url)
    cfg = entry["generation_config"]
    thinking = cfg.get("thinkingConfig") or cfg.get("thinking_config")
    level = thinking.get("thinkingLevel") or thinking.get("thinking_level")
    assert level.upper() == "MINIMAL"
    assert "thinkingBudget" not in thinking and "thinking_budget" not in thinking
    assert int(cfg.get("maxOutputTokens") or cfg.get("max_output_tokens")) == 2048
    assert entry["headers"]["x-server-timeout"] == "30"


def test_budget_models_get_a_budget_not_a_level(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, model="gemini-2.5-flash-lite") as lane:
        lane.generate("hi")
    thinking = _last_request(gemini_emulator.base_url)["generation_config"]
    thinking = thinking.get("thinkingConfig") or thinking.get("thinking_config")
    assert (thinking.get("thinkingBudget", thinking.get("thinking_budget"))) == 0
    assert "thinkingLevel" not in thinking and "thinking_level" not in thinking


def test_schema_answers_are_parsed_into_the_model(lane: fl.Lane) -> None:
    r = lane.generate("What is the largest city in Mexico?", schema=City)
    assert isinstance(r.parsed, City)


def test_async_generate_and_stream(lane: fl.Lane) -> None:
    async def go() -> tuple[fl.Result, list[str]]:
        r = await lane.agenerate("Write two sentences about rivers.")
        chunks = [c async for c in lane.astream("Write two sentences about rivers.")]
        return r, chunks

    r, chunks = asyncio.run(go())
    assert r.text and "".join(chunks).strip()


def test_stream_yields_chunks_and_a_result(lane: fl.Lane) -> None:
    s = lane.stream("Write a paragraph about the sea.")
    chunks = list(s)
    assert len(chunks) > 1
    assert s.result is not None and s.result.text == "".join(chunks)
    assert s.result.usage.output_tokens > 0 and s.result.finish_reason == "STOP"


def test_invalid_key_message(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, api_key="invalid") as lane, pytest.raises(fl.AuthError) as info:
        lane.generate("hi")
    assert "API_KEY_INVALID" in str(info.value) and "invalid" not in (info.value.hint or "").split()


def test_retired_model_names_its_replacement(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, model="gemini-3.1-flash-lite-preview") as lane:
        with pytest.raises(fl.ModelNotFound) as info:
            lane.generate("hi")
    assert "use 'gemini-3.1-flash-lite'" in str(info.value)


def test_unknown_model_suggests(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    with fl.Lane(base_url=gemini_emulator.base_url, model="gemini-3.1-flash-lyte") as lane:
        with pytest.raises(fl.ModelNotFound, match="did you mean 'gemini-3.1-flash-lite'"):
            lane.generate("hi")


def test_503_is_retried_then_succeeds(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"error": 503}, "times": 2})
    r = lane.generate("hello")
    assert r.text
    stats = control(gemini_emulator.base_url, "/_emulator/stats")
    assert stats["by_status"].get("503") == 2 and stats["by_status"].get("200") == 1
    assert sum(lane.clock.sleeps) > 0  # backoff happened on the test clock, not in wall time


def test_persistent_503_gives_service_unavailable(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"error": 503}})
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock(), max_attempts=3) as lane:
        with pytest.raises(fl.ServiceUnavailable, match="503 UNAVAILABLE"):
            lane.generate("hello")
    assert control(gemini_emulator.base_url, "/_emulator/stats")["by_status"]["503"] == 3


def test_hang_hits_the_client_timeout(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"hang": True}})
    with fl.Lane(base_url=gemini_emulator.base_url, timeout_s=0.5, max_attempts=1) as lane:
        with pytest.raises(fl.Timeout, match="timed out"):
            lane.generate("hello")


def test_prompt_block_and_safety_stop_are_typed(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {"prompt_contains": "blockme"}, "action": {"block": "PROHIBITED_CONTENT"}},
             {"match": {"prompt_contains": "stopme"}, "action": {"finish": "SAFETY"}})
    with pytest.raises(fl.SafetyBlocked) as info:
        lane.generate("blockme please")
    assert info.value.stage == "prompt" and info.value.reason == "PROHIBITED_CONTENT"
    assert "PROHIBITED_CONTENT" in str(info.value)
    with pytest.raises(fl.SafetyBlocked) as info2:
        lane.generate("stopme please")
    assert info2.value.stage == "answer" and info2.value.reason == "SAFETY" and info2.value.ratings


def test_rpd_exhaustion_is_not_retried_and_names_the_reset(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    control(gemini_emulator.base_url, "/_emulator/scenario",
            {"rules": [{"match": {}, "action": {"error": 429, "quota": "rpd"}}], "replace": True})
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock()) as lane:
        with pytest.raises(fl.RateLimited) as info:
            lane.generate("hi")
    assert info.value.kind == "rpd" and "Pacific" in str(info.value)
    assert control(gemini_emulator.base_url, "/_emulator/stats")["by_status"]["429"] == 1


def test_count_tokens_agrees_with_usage(lane: fl.Lane) -> None:
    text = "The quick brown fox jumps over the lazy dog."
    assert lane.count_tokens(text) == lane.generate(text).usage.prompt_tokens


def test_emulator_flag_runs_in_process() -> None:
    with fl.Lane(emulator=True) as lane:
        assert lane.emulator_url and lane.emulator_url.startswith("http://127.0.0.1:")
        assert lane.generate("hi").text


def test_no_credentials_is_a_config_error() -> None:
    with pytest.raises(fl.ConfigError, match="no Gemini credentials"):
        fl.Lane()


def test_vertex_express_mode_goes_to_vertex_paths(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    with fl.Lane(backend="vertex", api_key="vertex-key", base_url=gemini_emulator.base_url) as lane:
        assert lane.generate("hi").text
    stats = control(gemini_emulator.base_url, "/_emulator/stats")
    assert stats["by_method"].get("generateContent") == 1


def test_lane_map_runs_items_in_order(lane: fl.Lane) -> None:
    out = lane.map("classify", ["Great!", "Awful.", "Fine."], labels=["positive", "negative", "neutral"], pack=3)
    assert len(out) == 3 and all(r.status == "ok" for r in out)
    assert all(r.value.label in ("positive", "negative", "neutral") for r in out)
