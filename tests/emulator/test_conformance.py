"""Emulator bodies vs recorded live traffic: same key names, nesting and JSON value types.

Values differ (synthetic answers); the structure must not. Keys the live API sends only in some
versions or backends (``avgLogprobs``, ``serviceTier``, ``candidatesTokensDetails``) are allowed
to be absent; every other sample key must be present with the same JSON type, and the emulator
must not invent keys the samples do not have.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2 as httpx
import pytest

from flashlane.emulator import Emulator
from flashlane.models import CATALOG

from .conftest import MODEL, load_sample

OPTIONAL = {
    "avgLogprobs",
    "serviceTier",
    "candidatesTokensDetails",
    "index",
    "thoughtsTokenCount",
    "nextPageToken",
    "thoughtSignature",  # on a Gemini 3 answer that thought [ws 05]; these samples are Gemini 2.x answers
}
KEY = {"x-goog-api-key": "test-key"}


def _kind(v: Any) -> str:
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float)):
        return "number"
    return type(v).__name__


def assert_same_shape(ours: Any, sample: Any, path: str = "$") -> None:
    assert _kind(ours) == _kind(sample), f"{path}: {_kind(ours)} != {_kind(sample)}"
    if isinstance(sample, dict):
        missing = set(sample) - set(ours) - OPTIONAL
        extra = set(ours) - set(sample) - OPTIONAL
        assert not missing, f"{path}: missing {missing}"
        assert not extra, f"{path}: extra {extra}"
        for k in set(sample) & set(ours):
            assert_same_shape(ours[k], sample[k], f"{path}.{k}")
    elif isinstance(sample, list) and sample and ours:
        for i, item in enumerate(ours):
            assert_same_shape(item, sample[min(i, len(sample) - 1)], f"{path}[{i}]")


def _interaction(prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    it = load_sample(prefix)["interactions"][0]
    return it["request"], it["response"]


def _post(
    emu: Emulator, op: str, body: dict[str, Any], model: str = MODEL, query: str = ""
) -> httpx.Response:
    return httpx.post(f"{emu.base_url}/v1beta/models/{model}:{op}{query}", json=body, headers=KEY)


@pytest.mark.parametrize("prefix", ["01", "03", "08"])
def test_generate_content_shapes(emu: Emulator, prefix: str) -> None:
    req, resp = _interaction(prefix)
    body = dict(req["body"])
    if prefix == "08":  # Gemini 3: thinking counts against the cap, so leave room for a truncated answer
        body["generationConfig"] = {"maxOutputTokens": 30, "thinkingConfig": {"thinking_level": "MINIMAL"}}
    r = _post(emu, "generateContent", body)
    assert r.status_code == 200
    assert r.headers["content-type"] == resp["headers"]["content-type"]
    ours = r.json()
    assert_same_shape(ours, resp["body"])
    assert ours["candidates"][0]["finishReason"] == resp["body"]["candidates"][0]["finishReason"]
    if prefix == "03":
        json.loads(ours["candidates"][0]["content"]["parts"][0]["text"])


def _sse_events(raw: str) -> list[dict[str, Any]]:
    assert raw.endswith("\r\n\r\n")
    events = raw.split("\r\n\r\n")[:-1]
    assert all(e.startswith("data: ") and "\n" not in e for e in events)
    return [json.loads(e[len("data: ") :]) for e in events]


def test_stream_shape_and_framing(emu: Emulator) -> None:
    req, resp = _interaction("02")
    r = _post(emu, "streamGenerateContent", req["body"], query="?alt=sse")
    assert r.status_code == 200
    assert r.headers["content-type"] == resp["headers"]["content-type"]
    assert r.headers["content-disposition"] == "attachment"
    ours, theirs = _sse_events(r.text), _sse_events(resp["body_raw_text"])
    assert len(ours) > 1
    for ev in ours[:-1]:
        assert_same_shape(ev, theirs[0])
    assert_same_shape(ours[-1], theirs[-1])
    assert '": ' in r.text and ", " not in r.text.split('"text"')[0]  # compact: ': ' but ',' alone
    assert len({e["responseId"] for e in ours}) == 1 and len({e["modelVersion"] for e in ours}) == 1


def test_count_tokens_shape(emu: Emulator) -> None:
    req, resp = _interaction("12")
    r = _post(emu, "countTokens", req["body"])
    assert_same_shape(r.json(), resp["body"])
    assert r.json()["totalTokens"] == 11  # 44 characters / 4
    assert r.text.startswith('{\n  "totalTokens"') and r.text.endswith("}\n")  # pretty, like the raw sample


def test_models_list_shape(emu: Emulator) -> None:
    _, resp = _interaction("19")
    r = httpx.get(f"{emu.base_url}/v1beta/models", headers=KEY)
    ours = r.json()
    assert set(ours) <= {"models", "nextPageToken"}
    recorded = {m["name"]: m for m in resp["body"]["models"]}
    for m in ours["models"]:
        assert_same_shape(m, recorded.get(m["name"], resp["body"]["models"][0]))
    # The recorded first page, less the catalog's retired models; the embedding models among them.
    retired = {f"models/{m.id}" for m in CATALOG.values() if m.retired}
    assert [m["name"] for m in ours["models"]][: len(recorded) - len(retired & set(recorded))] == [
        n for n in recorded if n not in retired]
    assert len(ours["models"]) == 50 and ours["nextPageToken"]
    assert recorded["models/gemini-embedding-001"] in ours["models"]
    page = httpx.get(f"{emu.base_url}/v1beta/models?pageSize=2", headers=KEY).json()
    assert len(page["models"]) == 2 and page["nextPageToken"]
    paged = list(page["models"])
    while page.get("nextPageToken"):
        page = httpx.get(
            f"{emu.base_url}/v1beta/models?pageSize=2&pageToken={page['nextPageToken']}", headers=KEY
        ).json()
        paged += page["models"]
    assert [m["name"] for m in paged][:50] == [m["name"] for m in ours["models"]] and len(paged) == 51
    one = httpx.get(f"{emu.base_url}/v1beta/models/{MODEL}", headers=KEY).json()
    assert_same_shape(one, resp["body"]["models"][0])


def test_error_404_shape(emu: Emulator) -> None:
    req, resp = _interaction("14")
    r = _post(emu, "generateContent", req["body"], model="gemini-3.6-flahs")
    assert r.status_code == 404 and r.headers["content-type"] == resp["headers"]["content-type"]
    assert r.json() == resp["body"]  # identical, message included


def test_error_429_shape(emu: Emulator) -> None:
    sample = load_sample("21")
    emu.configure(tpm=5)
    r = _post(emu, "generateContent", {"contents": [{"parts": [{"text": "x" * 100}]}]})
    assert r.status_code == sample["http_status"]
    assert_same_shape(r.json(), sample["body"])
    assert [d["@type"] for d in r.json()["error"]["details"]] == [
        d["@type"] for d in sample["body"]["error"]["details"]
    ]


def test_error_400_api_key_shape(emu: Emulator) -> None:
    sample = load_sample("23")
    r = httpx.post(
        f"{emu.base_url}/v1beta/models/{MODEL}:generateContent",
        json={"contents": [{"parts": [{"text": "x"}]}]},
        headers={"x-goog-api-key": "invalid"},
    )
    assert r.status_code == sample["http_status"]
    assert r.json() == sample["body_as_printed_in_8516"][0]


def test_error_503_shape(emu: Emulator) -> None:
    sample = load_sample("26")
    emu.load_scenario([{"error": 503}])
    r = _post(emu, "generateContent", {"contents": [{"parts": [{"text": "x"}]}]})
    assert r.status_code == 503
    assert r.json() == sample["bodies"][0]
