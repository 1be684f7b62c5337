"""Nonsense in, a clear error out: CLI options, scenario and projects files, control bodies and
request bodies (issue 11 items 4 and 7; issue 10 item 2, the emulator's side)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors

from flashlane.emulator import Emulator

from .conftest import MODEL

KEY = {"x-goog-api-key": "test-key"}


def _cli(*args: str) -> tuple[int, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "flashlane", "emulator", "--port", "0", *args],
        capture_output=True, text=True, timeout=60,
    )
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, no traceback
    return proc.returncode, lines[0]


@pytest.mark.parametrize(
    ("args", "first"),
    [
        (["--rpm", "-3"], "error: Invalid value for '--rpm': -3 is not in the range x>=0."),
        (["--port", "-5"], "error: Invalid value for '--port': -5 is not in the range 0<=x<=65535."),
        (["--port", "70000"], "error: Invalid value for '--port': 70000 is not in the range 0<=x<=65535."),
        (["--tpm", "lots"], "error: Invalid value for '--tpm': 'lots' is not a valid integer range."),
        (["--window-seconds", "0"], "error: Invalid value for '--window-seconds'"),
        (["--latency-scale", "-1"], "error: Invalid value for '--latency-scale'"),
        (["--flex-shed-rate", "2"], "error: Invalid value for '--flex-shed-rate'"),
        (["--tier", "gold"], "error: Invalid value for '--tier'"),
        (["--no-such-option"], "error: No such option '--no-such-option'"),
    ],
)
def test_cli_rejects_nonsense_options(args: list[str], first: str) -> None:
    code, line = _cli(*args)
    assert code == 2 and line.startswith(first)


def test_module_entry_point_is_one_line_too() -> None:
    proc = subprocess.run([sys.executable, "-m", "flashlane.emulator", "--rpm", "-3"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "error: Invalid value for '--rpm': -3 is not in the range x>=0."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules:\n  - match: {promt_contains: refund}\n    action: {error: 503}\n",
         "scenario rule 1 match: unknown key 'promt_contains' (did you mean 'prompt_contains'?); accepted: "),
        ("rules:\n  - match: {prompt_contains: refund}\n    action: {eror: 503}\n",
         "scenario rule 1 action: unknown key 'eror' (did you mean 'error'?); accepted: "),
        ("rules:\n  - {prompt_contains: refund, error: 503}\n",
         "scenario rule 1: unknown key 'prompt_contains'"),
        ("rulez: []\n", "scenario: unknown key 'rulez' (did you mean 'rules'?); accepted: replace, rules"),
        ("rules:\n  - {error: 999}\n", "scenario rule 1: 'error' must be an HTTP status from 400 to 599"),
        ("rules:\n  - {delay: -1}\n", "scenario rule 1: 'delay' must be a number of seconds >= 0"),
    ],
)
def test_scenario_file_unknown_keys(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(text)
    code, line = _cli("--scenario", str(f))
    assert code == 2
    assert line.startswith(f"error: cannot load --scenario {f}: {expected}"), line


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"projects": {"p": {"keys": ["k"], "rmp": 5}}},
         "projects file: project 'p': unknown key 'rmp' (did you mean 'rpm'?); accepted: batch_enqueued_tokens, "),
        ({"project": {}}, "projects file: unknown key 'project' (did you mean 'projects'?)"),
        ({"projects": {"p": {"models": {MODEL: {"rpn": 1}}}}},
         f"projects file: project 'p', model '{MODEL}': unknown key 'rpn'"),
        ({"projects": {"p": {"rpm": -3}}}, "projects file: project 'p', 'rpm': expected a whole number >= 0, got -3"),
        ({"projects": {"p": {"tier": "gold"}}}, "projects file: project 'p': 'tier' must be one of free, tier1"),
    ],
)
def test_projects_file_unknown_keys(tmp_path: Path, data: dict, expected: str) -> None:
    f = tmp_path / "p.json"
    f.write_text(json.dumps(data))
    code, line = _cli("--projects", str(f))
    assert code == 2 and line.startswith(f"error: cannot load --projects {f}: {expected}"), line


def test_control_endpoint_rejects_unknown_keys(emu: Emulator) -> None:
    base = emu.base_url
    r = httpx.post(f"{base}/_emulator/scenario", json={"rules": [{"match": {"promt_contains": "x"}, "error": 503}]})
    assert r.status_code == 400
    assert r.json()["error"]["message"].startswith("scenario rule 1 match: unknown key 'promt_contains'")
    r = httpx.post(f"{base}/_emulator/scenario", json={"rules": [{"action": {"eror": 503}}]})
    assert r.status_code == 400 and "unknown key 'eror' (did you mean 'error'?)" in r.json()["error"]["message"]
    r = httpx.post(f"{base}/_emulator/quotas", json={"rmp": 5})
    assert r.status_code == 400 and r.json()["error"]["message"].startswith("quotas: unknown key 'rmp'")
    r = httpx.post(f"{base}/_emulator/quotas", json={"rpm": -3})
    assert r.status_code == 400 and "expected a whole number >= 0" in r.json()["error"]["message"]
    r = httpx.post(f"{base}/_emulator/quotas", json={"projects": {"p": {"rmp": 1}}})
    assert r.status_code == 400 and "unknown key 'rmp'" in r.json()["error"]["message"]
    # nothing was half-applied, and the emulator still answers
    assert httpx.get(f"{base}/_emulator/scenario").json() == {"rules": []}
    assert httpx.get(f"{base}/_emulator/quotas").json()["rpm"] == 0
    body = {"contents": [{"parts": [{"text": "x"}]}]}
    assert httpx.post(f"{base}/v1/models/{MODEL}:generateContent", json=body, headers=KEY).status_code == 200


def _post(emu: Emulator, content: bytes) -> httpx.Response:
    return httpx.post(f"{emu.base_url}/v1beta/models/{MODEL}:generateContent", content=content,
                      headers={**KEY, "content-type": "application/json"}, timeout=30)


def _error(r: httpx.Response, code: int = 400) -> dict:
    assert r.status_code == code, r.text
    assert r.headers["content-type"] == "application/json; charset=UTF-8"
    err = r.json()["error"]
    assert set(err) <= {"code", "message", "status", "details"} and err["code"] == code
    return err


@pytest.mark.parametrize("depth", [100_000, 5_000])
def test_deeply_nested_body_is_a_json_400(emu: Emulator, depth: int) -> None:
    err = _error(_post(emu, b'{"contents": ' + b"[" * depth + b"]" * depth + b"}"))
    assert err["status"] == "INVALID_ARGUMENT" and "nesting too deep" in err["message"]
    schema = b'{"type": "object", "properties": {"a": ' * 800 + b"{}" + b"}}" * 800
    body = (b'{"contents": [{"parts": [{"text": "x"}]}], "generationConfig": {"responseMimeType": '
            b'"application/json", "responseJsonSchema": ' + schema + b"}}")
    err = _error(_post(emu, body))
    assert err["status"] == "INVALID_ARGUMENT"
    assert _post(emu, b'{"contents": [{"parts": [{"text": "x"}]}]}').status_code == 200


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"maxOutputTokens": 1e12}, "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32), 1000000000000"),
        ({"max_output_tokens": 2**31}, "Invalid value at 'generation_config.max_output_tokens' (TYPE_INT32)"),
        ({"temperature": -3}, "* GenerateContentRequest.generation_config.temperature: temperature must be in "
                              "the range [0.0, 2.0], got -3."),
        ({"topP": 1.5}, "* GenerateContentRequest.generation_config.top_p: top_p must be in the range"),
        ({"responseMimeType": "application/json", "responseSchema": {"type": "nonsense"}},
         "Invalid value at 'generation_config.response_schema.type' "
         "(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), \"nonsense\""),
        ({"responseMimeType": "application/json",
          "responseJsonSchema": {"type": "object", "properties": {"a": {"type": "nonsense"}}}},
         "* GenerateContentRequest.generation_config.response_json_schema.properties[a].type: "
         "unsupported JSON Schema type \"nonsense\""),
    ],
)
def test_out_of_range_generation_config(client: genai.Client, emu: Emulator, config: dict, message: str) -> None:
    body = {"contents": [{"parts": [{"text": "x"}]}], "generationConfig": config}
    err = _error(_post(emu, json.dumps(body).encode()))
    assert err["status"] == "INVALID_ARGUMENT" and err["message"].startswith(message), err["message"]


def test_sdk_sees_the_400(client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=MODEL, contents="x", config={"temperature": -3})
    assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"


def _quota_error(client: genai.Client) -> dict:
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=MODEL, contents="x")
    assert ei.value.code == 429
    return ei.value.details["error"]


def test_scripted_429_states_the_configured_limit_or_none(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"times": 1, "error": 429, "retry_delay": 3}])
    err = _quota_error(client)
    violation = err["details"][0]["violations"][0]
    assert "quotaValue" not in violation  # the emulator's quota is unlimited: no "0"
    assert "limit:" not in err["message"] and err["message"].endswith("Please retry in 3s.")
    emu.configure(rpm=40)
    emu.load_scenario([{"times": 1, "error": 429}])
    violation = _quota_error(client)["details"][0]["violations"][0]
    assert violation["quotaValue"] == "40"
    emu.load_scenario([{"times": 1, "error": 429, "quota": "tpm", "quota_value": 123}])
    violation = _quota_error(client)["details"][0]["violations"][0]
    assert violation["quotaValue"] == "123" and violation["quotaId"].startswith("GenerateContentInputTokens")


def test_no_quota_429_says_limit_zero_everywhere(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"times": 1, "no_quota": True}])
    err = _quota_error(client)
    violations = err["details"][0]["violations"]
    assert len(violations) == 3 and all(v["quotaValue"] == "0" for v in violations)
    assert {v["quotaId"] for v in violations} == {
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    }
    assert err["message"].count(", limit: 0, model: ") == 3
    assert client.models.generate_content(model=MODEL, contents="x").text
