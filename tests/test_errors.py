"""The SDK boundary's mapping on the real error bodies recorded from the Gemini API (shared/wire-samples)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.genai import errors as genai_errors

from flashlane import errors as fl
from flashlane.call.boundary import boundary, map_exception
from flashlane.errors import next_pacific_midnight, parse_duration

SAMPLES = Path(__file__).parent / "emulator" / "wire_samples"
if not SAMPLES.is_dir():  # before the emulator suite's copy exists
    SAMPLES = Path(__file__).resolve().parents[2] / "shared" / "wire-samples"


def _sample(name: str) -> dict:
    return json.loads((SAMPLES / name).read_text())


def from_sdk_error(exc: BaseException, **kw: object) -> fl.FlashlaneError:
    mapped = map_exception(exc, **kw)  # type: ignore[arg-type]
    assert mapped is not None
    return mapped


def _sdk_error(code: int, body: dict) -> genai_errors.APIError:
    cls = genai_errors.ClientError if code < 500 else genai_errors.ServerError
    return cls(code, body)


def test_api_key_invalid_body_becomes_auth_error_naming_the_fix() -> None:
    body = _sample("23_error_400_api_key_invalid.json")["body_as_printed_in_8516"]
    err = from_sdk_error(_sdk_error(400, body), model="gemini-3.1-flash-lite")
    assert isinstance(err, fl.AuthError)
    assert "API_KEY_INVALID" in err.message
    assert "GEMINI_API_KEY" in (err.hint or "") and "aistudio.google.com" in (err.hint or "")


def test_429_input_token_quota_is_tpm_with_retry_delay() -> None:
    body = _sample("21_error_429_quota_failure_retryinfo.json")["body"]
    err = from_sdk_error(_sdk_error(429, body), model="gemini-2.5-flash")
    assert isinstance(err, fl.RateLimited)
    assert err.kind == "tpm"
    assert err.retry_after == 26.0
    assert err.quota_value == 250000
    assert err.retryable
    assert "input-tokens-per-minute" in err.message and "retry in" not in err.message  # the wait is .retry_after


def test_429_per_day_is_not_retryable_and_names_the_reset() -> None:
    body = _sample("21_error_429_quota_failure_retryinfo.json")["body"]
    body = json.loads(json.dumps(body))
    body["error"]["details"][0]["violations"][0]["quotaId"] = "GenerateRequestsPerDayPerProjectPerModel-FreeTier"
    now = datetime(2026, 11, 24, 20, 0, tzinfo=UTC)  # 12:00 Pacific
    err = from_sdk_error(_sdk_error(429, body), model="gemini-3.1-flash-lite", now=now)
    assert isinstance(err, fl.RateLimited)
    assert err.kind == "rpd" and not err.retryable
    assert err.reset_at is not None and err.reset_at.astimezone(UTC) == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert "2026-11-25 00:00 Pacific" in err.message and "local" in err.message


def test_404_for_unknown_model_suggests_close_ids() -> None:
    body = _sample("14_error_404_model_not_found_generateContent.json")["interactions"][0]["response"]["body"]
    err = from_sdk_error(_sdk_error(404, body), model="gemini-3.1-flash-lyte")
    assert isinstance(err, fl.ModelNotFound)
    assert "gemini-3.1-flash-lyte" in err.message
    assert "gemini-3.1-flash-lite" in err.message  # did you mean


def test_404_for_the_retired_preview_names_its_replacement() -> None:
    body = {"error": {"code": 404, "status": "NOT_FOUND",
                      "message": "models/gemini-3.1-flash-lite-preview is not found for API version v1"}}
    err = from_sdk_error(_sdk_error(404, body), model="gemini-3.1-flash-lite-preview")
    assert isinstance(err, fl.ModelNotFound)
    assert err.replacement == "gemini-3.1-flash-lite"
    assert "shut down on 2026-05-25" in err.message and "use 'gemini-3.1-flash-lite'" in err.message


@pytest.mark.parametrize("index", [0, 1, 2])
def test_503_variants_are_retryable_unavailable(index: int) -> None:
    body = _sample("26_error_503_unavailable.json")["bodies"][index]
    err = from_sdk_error(_sdk_error(503, body), model="m")
    assert isinstance(err, fl.ServiceUnavailable) and err.retryable
    assert body["error"]["message"] in err.message


def test_403_without_key_is_auth_error() -> None:
    body = {"error": {"code": 403, "status": "PERMISSION_DENIED", "message":
                      "Method doesn't allow unregistered callers (callers without established identity)."}}
    err = from_sdk_error(_sdk_error(403, body))
    assert isinstance(err, fl.AuthError) and "PERMISSION_DENIED" in err.message


def test_500_and_504() -> None:
    e500 = from_sdk_error(_sdk_error(500, {"error": {"code": 500, "status": "INTERNAL", "message": "An internal error has occurred."}}))
    e504 = from_sdk_error(_sdk_error(504, {"error": {"code": 504, "status": "DEADLINE_EXCEEDED", "message": "Deadline"}}))
    assert isinstance(e500, fl.ServiceUnavailable) and isinstance(e504, fl.Timeout)
    assert e500.retryable and e504.retryable


def test_400_invalid_argument_is_not_retryable() -> None:
    err = from_sdk_error(_sdk_error(400, {"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "bad field"}}))
    assert isinstance(err, fl.BadRequest) and not err.retryable and "bad field" in err.message


def test_unrelated_exceptions_are_not_swallowed() -> None:
    assert map_exception(KeyError("x")) is None
    with pytest.raises(KeyError), boundary(model="m"):
        raise KeyError("x")


def test_boundary_maps_and_chains_the_cause() -> None:
    body = {"error": {"code": 503, "status": "UNAVAILABLE", "message": "The model is overloaded."}}
    with pytest.raises(fl.ServiceUnavailable) as info, boundary(model="m"):
        raise _sdk_error(503, body)
    assert isinstance(info.value.__cause__, genai_errors.ServerError)


def test_limit_zero_on_every_violation_is_no_quota_not_a_rate() -> None:
    # The newer message text (python-genai #2044): every violation says limit 0 -> the tier has none.
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message":
                      "You exceeded your current quota.\n* Quota exceeded for metric: generate_content_free_tier_requests, "
                      "limit: 0, model: gemini-2.5-pro\n* Quota exceeded for metric: generate_content_free_tier_input_token_count, "
                      "limit: 0, model: gemini-2.5-pro\nPlease retry in 20s.", "details": [
                          {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                              {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                               "quotaId": "GenerateRequestsPerDayPerProjectPerModel-FreeTier"}]},
                          {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "20s"}]}}
    err = from_sdk_error(_sdk_error(429, body), model="gemini-2.5-pro")
    assert isinstance(err, fl.NoQuota) and not err.retryable
    assert "no quota" in err.message and "billing" in (err.hint or "")


def test_rate_message_is_clean_after_giving_up() -> None:
    body = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Resource has been exhausted (e.g. check quota)."}}
    err = from_sdk_error(_sdk_error(429, body), model="m")
    assert isinstance(err, fl.RateLimited) and "over a rate quota" in err.message
    assert "retry in" not in err.message and "FLASHLANE_TIER" not in (err.hint or "")


def test_durations_and_pacific_midnight_across_dst() -> None:
    assert parse_duration("47.174066935s") == pytest.approx(47.174066935)
    assert parse_duration("bogus") is None
    # 2026-11-01 is the end of DST in the US: the day has 25 hours in Pacific time.
    before = datetime(2026, 11, 1, 6, 30, tzinfo=UTC)  # 23:30 PDT on Oct 31
    assert next_pacific_midnight(before).astimezone(UTC) == datetime(2026, 11, 1, 7, 0, tzinfo=UTC)
    after = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)  # 04:00 PST on Nov 1
    assert next_pacific_midnight(after).astimezone(UTC) == datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
