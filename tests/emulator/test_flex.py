"""``service_tier`` flex on generateContent through the Python SDK: the tier served in
``usageMetadata.serviceTier``, slower answers, deterministic shedding with a 503 body."""

from __future__ import annotations

import json
import time

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors, types

from flashlane.emulator import Emulator
from flashlane.emulator.flex import SHED_MESSAGE
from flashlane.models import CATALOG

from .conftest import MODEL

KEY = {"x-goog-api-key": "test-key"}


def test_tier_served_is_reported(emu: Emulator, client: genai.Client) -> None:
    # the SDK sends config.service_tier as the request's top-level serviceTier; its usage type
    # (google-genai 3.6.1) does not parse serviceTier yet, so the answer is read raw below
    assert client.models.generate_content(model=MODEL, contents="hi", config={"service_tier": "flex"}).text
    url = f"{emu.base_url}/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"parts": [{"text": "hi"}]}]}
    assert httpx.post(url, json=body, headers=KEY).json()["usageMetadata"]["serviceTier"] == "standard"
    r = httpx.post(url, json={**body, "serviceTier": "flex"}, headers=KEY)
    assert r.json()["usageMetadata"]["serviceTier"] == "flex"
    url = f"{emu.base_url}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    body = {"contents": [{"parts": [{"text": "a longer story about the sea and ships"}]}], "serviceTier": "flex"}
    events = [json.loads(line[6:]) for line in httpx.post(url, json=body, headers=KEY).text.splitlines()
              if line.startswith("data: ")]
    assert len(events) > 1 and all(e["usageMetadata"]["serviceTier"] == "flex" for e in events)


def test_raw_field_spellings_and_bad_value(emu: Emulator) -> None:
    url = f"{emu.base_url}/v1beta/models/{MODEL}:generateContent"
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    for field, value, served in (("serviceTier", "FLEX", "flex"), ("service_tier", "flex", "flex"),
                                 ("serviceTier", "priority", "priority"), ("serviceTier", "unspecified", "standard")):
        r = httpx.post(url, json={**body, field: value}, headers=KEY)
        assert r.status_code == 200 and r.json()["usageMetadata"]["serviceTier"] == served
    r = httpx.post(url, json={**body, "serviceTier": "cheap"}, headers=KEY)
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("Invalid value at 'service_tier'")


def test_shed_rate_is_deterministic_and_only_for_flex(emu: Emulator, client: genai.Client) -> None:
    emu.configure(flex_shed_rate=0.5)
    outcomes = []
    for _ in range(6):
        try:
            client.models.generate_content(model=MODEL, contents="x", config={"service_tier": "flex"})
            outcomes.append("ok")
        except errors.ServerError as e:
            assert e.code == 503 and e.status == "UNAVAILABLE" and e.message == SHED_MESSAGE
            outcomes.append("shed")
    assert outcomes == ["ok", "shed"] * 3
    for _ in range(4):  # standard requests are never shed
        assert client.models.generate_content(model=MODEL, contents="x").text
    assert emu.stats()["by_status"] == {"200": 7, "503": 3}


def test_scripted_shed(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"action": {"shed": True}}])
    assert client.models.generate_content(model=MODEL, contents="x").text  # standard: not shed
    with pytest.raises(errors.ServerError):
        client.models.generate_content(model=MODEL, contents="x", config={"service_tier": "flex"})


def test_flex_is_slower(emu: Emulator, client: genai.Client) -> None:
    scale, factor = 0.05, 8.0
    emu.configure(latency_scale=scale, flex_latency_factor=factor)
    t = time.perf_counter()
    client.models.generate_content(model=MODEL, contents="x", config={"service_tier": "flex"})
    flex_s = time.perf_counter() - t
    assert flex_s >= CATALOG[MODEL].ttft_s * scale * factor  # sleeps are lower bounds, even under load


def test_priority_requests_have_their_own_share_of_the_quota(emu: Emulator, client: genai.Client) -> None:
    """"Priority inference" has its own limits, 0.3x the standard rate limit (model-facts.md §2.1):
    at 10 RPM, 3 priority requests a minute, counted apart from the 10 standard ones."""
    emu.configure(rpm=10, window_seconds=60)
    priority = types.GenerateContentConfig(service_tier="priority",
                                           http_options=types.HttpOptions(retry_options=types.HttpRetryOptions(attempts=1)))
    for _ in range(3):
        assert client.models.generate_content(model=MODEL, contents="hi", config=priority).text
    with pytest.raises(errors.ClientError) as info:
        client.models.generate_content(model=MODEL, contents="hi", config=priority)
    assert info.value.code == 429
    for _ in range(10):  # standard's quota is untouched by priority's
        assert client.models.generate_content(model=MODEL, contents="hi").text
