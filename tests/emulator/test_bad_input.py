"""Bad requests get the live API's 400/403/404 shapes, and the emulator keeps serving."""

from __future__ import annotations

import httpx2 as httpx
import pytest

from flashlane.emulator import Emulator
from flashlane.emulator.errors import API_KEY_INVALID_MESSAGE, UNREGISTERED_CALLER_MESSAGE

from .conftest import MODEL

GOOD = {"contents": [{"role": "user", "parts": [{"text": "hello"}]}]}
KEY = {"x-goog-api-key": "test-key"}


def _url(emu: Emulator, op: str = "generateContent", model: str = MODEL) -> str:
    return f"{emu.base_url}/v1beta/models/{model}:{op}"


def _assert_error(resp: httpx.Response, code: int, status: str) -> dict:
    assert resp.status_code == code
    assert resp.headers["content-type"] == "application/json; charset=UTF-8"
    err = resp.json()["error"]
    assert err["code"] == code and err["status"] == status and isinstance(err["message"], str)
    return err


@pytest.mark.parametrize(
    "content",
    [
        b"{not json",
        b"[1, 2]",
        b'{"contents": []}',
        b'{"generationConfig": {}}',
        b'{"contents": "a string"}',
        b'{"contents": [{"parts": "nope"}]}',
        b'{"contents": [{"parts": [{"text": 5}]}]}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"maxOutputTokens": "many"}}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"thinkingConfig": {"thinkingLevel": "EXTREME"}}}',
        b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseJsonSchema": {"type": "object"}}}',
    ],
)
def test_invalid_bodies(emu: Emulator, content: bytes) -> None:
    with httpx.Client() as c:
        r = c.post(_url(emu), content=content, headers={**KEY, "content-type": "application/json"})
        _assert_error(r, 400, "INVALID_ARGUMENT")
        assert c.post(_url(emu), json=GOOD, headers=KEY).status_code == 200


def test_payload_over_20mb(emu: Emulator) -> None:
    big = b'{"contents": [{"parts": [{"text": "' + b"a" * (20 * 1024 * 1024) + b'"}]}]}'
    with httpx.Client() as c:
        err = _assert_error(c.post(_url(emu), content=big, headers=KEY), 400, "INVALID_ARGUMENT")
        assert err["message"] == "Request payload size exceeds the limit: 20971520 bytes."
        assert c.post(_url(emu), json=GOOD, headers=KEY).status_code == 200


def test_no_key_403_and_invalid_key_400(emu: Emulator) -> None:
    err = _assert_error(httpx.post(_url(emu), json=GOOD), 403, "PERMISSION_DENIED")
    assert err["message"] == UNREGISTERED_CALLER_MESSAGE and "details" not in err
    for bad in ("invalid", "bad-key"):
        err = _assert_error(
            httpx.post(_url(emu), json=GOOD, headers={"x-goog-api-key": bad}), 400, "INVALID_ARGUMENT"
        )
        assert err["message"] == API_KEY_INVALID_MESSAGE
        assert [d["@type"] for d in err["details"]] == [
            "type.googleapis.com/google.rpc.ErrorInfo",
            "type.googleapis.com/google.rpc.LocalizedMessage",
        ]
        assert err["details"][0]["reason"] == "API_KEY_INVALID"
        assert bad not in httpx.get(f"{emu.base_url}/_emulator/stats").text
    assert httpx.post(_url(emu), json=GOOD, headers=KEY).status_code == 200


def test_unknown_model_and_paths(emu: Emulator) -> None:
    err = _assert_error(httpx.post(_url(emu, model="gemini-0-x"), json=GOOD, headers=KEY), 404, "NOT_FOUND")
    assert err["message"].startswith("models/gemini-0-x is not found for API version v1beta")
    err = _assert_error(
        httpx.post(_url(emu, "countTokens", "nope"), json=GOOD, headers=KEY), 404, "NOT_FOUND"
    )
    assert "countTokens" in err["message"]
    _assert_error(httpx.get(f"{emu.base_url}/v1/models/nope", headers=KEY), 404, "NOT_FOUND")
    _assert_error(httpx.post(_url(emu, "fooBar"), json=GOOD, headers=KEY), 404, "NOT_FOUND")
    _assert_error(httpx.get(f"{emu.base_url}/nothing/here", headers=KEY), 404, "NOT_FOUND")
    assert httpx.post(_url(emu), json=GOOD, headers=KEY).status_code == 200


def test_snake_case_everywhere(emu: Emulator) -> None:
    body = {
        "contents": [{"role": "user", "parts": [{"text": "classify this"}]}],
        "system_instruction": {"parts": [{"text": "be brief"}]},
        "generation_config": {
            "max_output_tokens": 400,
            "response_mime_type": "application/json",
            "response_schema": {
                "type": "OBJECT",
                "properties": {
                    "label": {"type": "STRING", "enum": ["a", "b"]},
                    "n_items": {"type": "INTEGER", "minimum": 3, "maximum": 4},
                },
                "property_ordering": ["n_items", "label"],
                "required": ["label", "n_items"],
            },
            "thinking_config": {"thinking_level": "minimal", "include_thoughts": False},
        },
    }
    r = httpx.post(_url(emu), json=body, headers=KEY)
    assert r.status_code == 200
    import json

    value = json.loads(r.json()["candidates"][0]["content"]["parts"][0]["text"])
    assert list(value) == ["n_items", "label"] and value["label"] in ("a", "b") and 3 <= value["n_items"] <= 4
