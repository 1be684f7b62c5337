"""Every scenario action, observed through the real SDK (and raw HTTP where the SDK hides it)."""

from __future__ import annotations

import json
import time

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel

from flashlane.emulator import Emulator

from .conftest import MODEL, make_client


class Label(BaseModel):
    label: str
    score: float


JSON_CFG = types.GenerateContentConfig(response_mime_type="application/json", response_schema=Label)


@pytest.mark.parametrize(
    ("code", "status", "cls"),
    [
        (400, "INVALID_ARGUMENT", errors.ClientError),
        (403, "PERMISSION_DENIED", errors.ClientError),
        (404, "NOT_FOUND", errors.ClientError),
        (500, "INTERNAL", errors.ServerError),
        (503, "UNAVAILABLE", errors.ServerError),
        (504, "DEADLINE_EXCEEDED", errors.ServerError),
    ],
)
def test_error_codes(emu: Emulator, client: genai.Client, code: int, status: str, cls: type) -> None:
    emu.load_scenario([{"match": {"nth": 1}, "action": {"error": code}}])
    with pytest.raises(cls) as ei:
        client.models.generate_content(model=MODEL, contents="hi")
    assert ei.value.code == code and ei.value.status == status
    assert set(ei.value.details["error"]) >= {"code", "message", "status"}
    assert client.models.generate_content(model=MODEL, contents="hi").text  # nth=1 only
    assert emu.stats()["by_status"] == {str(code): 1, "200": 1}


def test_429_with_retry_delay(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"every": 2}, "action": {"error": 429, "retry_delay": 26.5}}])
    client.models.generate_content(model=MODEL, contents="a")
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=MODEL, contents="b")
    err = ei.value.details["error"]
    assert ei.value.code == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    types_ = [d["@type"].rsplit(".", 1)[1] for d in err["details"]]
    assert types_ == ["QuotaFailure", "Help", "RetryInfo"]
    assert err["details"][2]["retryDelay"] == "26.5s"
    assert err["message"].endswith("Please retry in 26.5s.")
    assert (
        err["details"][0]["violations"][0]["quotaId"]
        == "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"
    )


def test_match_filters_times_and_order(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario(
        {
            "rules": [
                {"match": {"prompt_contains": "alpha"}, "times": 1, "action": {"text": "first"}},
                {"match": {"prompt_contains": "alpha"}, "action": {"text": "second"}},
                {"match": {"model": "gemini-2.5-flash-lite"}, "text": "lite"},
                {"match": {"header": {"x-test-case": "h1"}}, "text": "by header"},
                {"match": {"project": "nobody"}, "text": "never"},
            ]
        }
    )
    assert client.models.generate_content(model=MODEL, contents="alpha").text == "first"
    assert client.models.generate_content(model=MODEL, contents="alpha").text == "second"
    assert client.models.generate_content(model="gemini-2.5-flash-lite", contents="x").text == "lite"
    c = make_client(emu, headers={"x-test-case": "h1"})
    assert c.models.generate_content(model=MODEL, contents="x").text == "by header"
    assert client.models.generate_content(model=MODEL, contents="x").text != "never"


def test_nth_per_model_and_method(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario(
        [
            {"match": {"model": "gemini-2.5-flash-lite", "nth": 2, "per_model": True}, "text": "second lite"},
            {"match": {"method": "streamGenerateContent"}, "text": "streamed answer"},
            {"match": {"method": "countTokens"}, "error": 500},
        ]
    )
    client.models.generate_content(model=MODEL, contents="x")
    client.models.generate_content(model="gemini-2.5-flash-lite", contents="x")
    assert client.models.generate_content(model="gemini-2.5-flash-lite", contents="x").text == "second lite"
    assert (
        "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents="x"))
        == "streamed answer"
    )
    with pytest.raises(errors.ServerError):
        client.models.count_tokens(model=MODEL, contents="x")


def test_delay(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"action": {"delay": 0.3}}])
    t = time.perf_counter()
    assert client.models.generate_content(model=MODEL, contents="x").text
    assert time.perf_counter() - t >= 0.3


def test_hang_until_client_gives_up(emu: Emulator) -> None:
    emu.load_scenario([{"times": 1, "action": {"hang": True}}])
    c = make_client(emu, timeout=300)
    with pytest.raises(httpx.TimeoutException):
        c.models.generate_content(model=MODEL, contents="x")
    assert c.models.generate_content(model=MODEL, contents="x").text  # server still fine
    deadline = time.time() + 2
    while emu.stats()["by_status"].get("0") != 1 and time.time() < deadline:
        time.sleep(0.02)
    assert emu.stats()["by_status"].get("0") == 1


def test_drop_connection(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"times": 1, "action": {"drop": True}}])
    with pytest.raises(httpx.TransportError):
        client.models.generate_content(model=MODEL, contents="x")
    assert client.models.generate_content(model=MODEL, contents="x").text


def test_cut_stream(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"times": 1, "action": {"cut_after": 1}}])
    got: list[str] = []
    with pytest.raises(httpx.TransportError):
        for chunk in client.models.generate_content_stream(
            model=MODEL, contents="a long enough prompt about many things"
        ):
            got.append(chunk.text or "")
    assert len(got) == 1


def test_safety_finish(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"action": {"finish": "SAFETY"}}])
    r = client.models.generate_content(model=MODEL, contents="x")
    cand = r.candidates[0]
    assert cand.finish_reason == types.FinishReason.SAFETY and r.text is None
    assert any(s.blocked for s in cand.safety_ratings)


@pytest.mark.parametrize("reason", ["SAFETY", "PROHIBITED_CONTENT", "OTHER"])
def test_prompt_block(emu: Emulator, client: genai.Client, reason: str) -> None:
    emu.load_scenario([{"action": {"block": reason}}])
    r = client.models.generate_content(model=MODEL, contents="x")
    assert not r.candidates and r.text is None
    assert r.prompt_feedback.block_reason == reason
    assert r.usage_metadata.prompt_token_count == 1


@pytest.mark.parametrize("reason", ["RECITATION", "OTHER"])
def test_other_finishes(emu: Emulator, client: genai.Client, reason: str) -> None:
    emu.load_scenario([{"action": {"finish": reason}}])
    r = client.models.generate_content(model=MODEL, contents="x")
    assert r.candidates[0].finish_reason == reason and r.text is None


def test_scripted_max_tokens_and_empty_stop(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"nth": 1}, "finish": "MAX_TOKENS"}, {"match": {"nth": 2}, "empty": True}])
    r = client.models.generate_content(model=MODEL, contents="describe something at length please")
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS and r.text
    r = client.models.generate_content(model=MODEL, contents="x")
    assert r.candidates[0].finish_reason == types.FinishReason.STOP and not r.text
    assert r.usage_metadata.candidates_token_count is None


def test_fixed_json_malformed_and_violation(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario(
        [
            {"match": {"nth": 1}, "json": {"label": "fixed", "score": 0.5}},
            {"match": {"nth": 2}, "malformed_json": True},
            {"match": {"nth": 3}, "malformed_json": '{"label": "pos'},
            {"match": {"nth": 4}, "schema_violation": True},
        ]
    )
    r = client.models.generate_content(model=MODEL, contents="x", config=JSON_CFG)
    assert r.parsed == Label(label="fixed", score=0.5)
    for _ in range(2):
        r = client.models.generate_content(model=MODEL, contents="x", config=JSON_CFG)
        assert r.parsed is None and r.text
        with pytest.raises(ValueError):
            json.loads(r.text)
    r = client.models.generate_content(model=MODEL, contents="x", config=JSON_CFG)
    assert r.parsed is None
    assert isinstance(json.loads(r.text), dict)


def test_control_api_scenario_roundtrip(emu: Emulator) -> None:
    base = emu.base_url
    assert httpx.post(f"{base}/_emulator/scenario", json={"rules": [{"error": 503}]}).status_code == 200
    assert httpx.post(
        f"{base}/_emulator/scenario", json={"rules": [{"error": 500}], "replace": False}
    ).json()["rules"][1]["action"] == {"error": 500}
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert (
        httpx.post(
            f"{base}/v1/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": "k"}
        ).status_code
        == 503
    )
    assert httpx.delete(f"{base}/_emulator/scenario").json() == {"rules": []}
    assert (
        httpx.post(
            f"{base}/v1/models/{MODEL}:generateContent", json=body, headers={"x-goog-api-key": "k"}
        ).status_code
        == 200
    )
