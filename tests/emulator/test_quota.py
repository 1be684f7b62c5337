"""Quotas per (project, model): RPM/TPM sliding windows, RPD per Pacific day, key -> project."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors

from flashlane.emulator import Emulator, EmulatorConfig
from flashlane.emulator.config import load_projects_file

from .conftest import MODEL, make_client


def _quota_error(c: genai.Client, contents: str = "hi") -> dict:
    with pytest.raises(errors.ClientError) as ei:
        c.models.generate_content(model=MODEL, contents=contents)
    assert ei.value.code == 429 and ei.value.status == "RESOURCE_EXHAUSTED"
    return ei.value.details["error"]


def _delay(err: dict) -> float:
    retry = err["details"][-1]
    assert retry["@type"] == "type.googleapis.com/google.rpc.RetryInfo"
    assert err["message"].endswith(f"Please retry in {retry['retryDelay']}.")
    return float(retry["retryDelay"].rstrip("s"))


def _ids(err: dict) -> list[str]:
    return [v["quotaId"] for v in err["details"][0]["violations"]]


def test_rpm_true_retry_delay_and_rejections_free(emu: Emulator, client: genai.Client) -> None:
    emu.configure(rpm=2)
    client.models.generate_content(model=MODEL, contents="hi")
    emu.advance_clock(10)
    client.models.generate_content(model=MODEL, contents="hi")
    err = _quota_error(client)
    assert _ids(err) == ["GenerateRequestsPerMinutePerProjectPerModel-FreeTier"]
    v = err["details"][0]["violations"][0]
    assert v["quotaDimensions"] == {"location": "global", "model": MODEL} and v["quotaValue"] == "2"
    assert 49.5 <= _delay(err) <= 50.001
    for _ in range(3):  # rejected requests consume nothing
        _quota_error(client)
    emu.advance_clock(50.01)
    client.models.generate_content(model=MODEL, contents="hi")
    assert 9.5 <= _delay(_quota_error(client)) <= 10.001
    # countTokens and models calls do not use generate quota
    assert client.models.count_tokens(model=MODEL, contents="hi").total_tokens == 1
    assert list(client.models.list())


def test_tpm_counts_input_tokens_paid_ids(emu: Emulator, client: genai.Client) -> None:
    emu.configure(tpm=10, tier="tier1")
    client.models.generate_content(model=MODEL, contents="x" * 32)  # 8 tokens
    err = _quota_error(client, "y" * 12)  # 3 more would make 11 > 10
    assert _ids(err) == ["GenerateContentPaidTierInputTokensPerModelPerMinute"]
    assert err["details"][0]["violations"][0]["quotaMetric"].endswith(
        "generate_content_paid_tier_input_token_count"
    )
    assert 59 <= _delay(err) <= 60.001
    client.models.generate_content(model=MODEL, contents="z" * 8)  # 2 tokens fit exactly
    assert emu.stats()["tokens"]["prompt"] == 10


def test_tpm_free_tier_id(emu: Emulator, client: genai.Client) -> None:
    emu.configure(tpm=5)
    assert _ids(_quota_error(client, "x" * 40)) == ["GenerateContentInputTokensPerModelPerMinute-FreeTier"]


def test_rpd_resets_at_pacific_midnight(emu: Emulator, client: genai.Client) -> None:
    emu.configure(rpd=1)
    pacific = ZoneInfo("America/Los_Angeles")
    emu.set_clock(datetime(2026, 6, 1, 23, 59, 0, tzinfo=pacific).timestamp())
    client.models.generate_content(model=MODEL, contents="hi")
    err = _quota_error(client)
    assert _ids(err) == ["GenerateRequestsPerDayPerProjectPerModel-FreeTier"]
    assert 59 <= _delay(err) <= 60.001
    emu.advance_clock(61)
    client.models.generate_content(model=MODEL, contents="hi")
    _quota_error(client)


def test_clock_control_endpoint(emu: Emulator) -> None:
    r = httpx.post(f"{emu.base_url}/_emulator/clock", json={"set": 1_800_000_000})
    assert abs(r.json()["now"] - 1_800_000_000) < 1
    r = httpx.post(f"{emu.base_url}/_emulator/clock", json={"advance": 100})
    assert abs(r.json()["now"] - 1_800_000_100) < 1


def test_two_keys_share_a_project_and_other_projects_are_separate(emu: Emulator) -> None:
    emu.configure(projects={"proj-a": {"keys": ["k1", "k2"], "rpm": 1}, "proj-b": {"keys": ["k3"], "rpm": 1}})
    k1, k2, k3, other = (make_client(emu, k) for k in ("k1", "k2", "k3", "unlisted"))
    k1.models.generate_content(model=MODEL, contents="hi")
    _quota_error(k2)
    k3.models.generate_content(model=MODEL, contents="hi")
    for _ in range(3):
        other.models.generate_content(model=MODEL, contents="hi")  # default project: unlimited
    # a different model has its own bucket
    k2.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
    stats = emu.stats()["by_project_model"]
    assert stats[f"proj-a/{MODEL}"]["by_status"] == {"200": 1, "429": 1}
    assert stats[f"default/{MODEL}"]["requests"] == 3
    assert "k1" not in repr(emu.stats()) and "k1" not in repr(emu.requests())


def test_projects_file_yaml(tmp_path: Path) -> None:
    f = tmp_path / "projects.yaml"
    f.write_text(
        "projects:\n  team:\n    keys: [ka, kb]\n    rpm: 1\n    models:\n      gemini-2.5-flash-lite: {rpm: 2}\n"
        "invalid_keys: [revoked]\n"
    )
    cfg = EmulatorConfig(latency_scale=0)
    load_projects_file(cfg, f)
    with Emulator(cfg).running() as emu:
        a, b = make_client(emu, "ka"), make_client(emu, "kb")
        a.models.generate_content(model=MODEL, contents="hi")
        _quota_error(b)
        a.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
        b.models.generate_content(model="gemini-2.5-flash-lite", contents="hi")
        revoked = make_client(emu, "revoked")
        with pytest.raises(errors.ClientError) as ei:
            revoked.models.generate_content(model=MODEL, contents="hi")
        assert ei.value.code == 400 and ei.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"


def test_tier_preset_from_catalog(emu: Emulator) -> None:
    emu.configure(projects={"free-proj": {"keys": ["fk"], "tier": "free"}})
    c = make_client(emu, "fk")
    for _ in range(5):  # gemini-3-flash-preview free tier: 5 RPM
        c.models.generate_content(model="gemini-3-flash-preview", contents="hi")
    with pytest.raises(errors.ClientError) as ei:
        c.models.generate_content(model="gemini-3-flash-preview", contents="hi")
    assert ei.value.code == 429


def test_reset_clears_windows(emu: Emulator, client: genai.Client) -> None:
    emu.configure(rpm=1)
    client.models.generate_content(model=MODEL, contents="hi")
    _quota_error(client)
    httpx.post(f"{emu.base_url}/_emulator/reset")
    assert emu.stats()["requests_total"] == 0
    client.models.generate_content(model=MODEL, contents="hi")
