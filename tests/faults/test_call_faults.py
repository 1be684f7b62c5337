"""Faults on one call, through the real SDK against the emulator: malformed answers, cut and
empty streams, outages, 429s that state no quota or a quota of zero, and the call deadline.

Waits run on the virtual clock (``flashlane_lane`` / ``TestClock``) except where the fault is
a real HTTP timeout, which no virtual clock can shorten."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

import flashlane as fl
from flashlane.clock import TestClock
from tests.conftest import control, scenario

LONG = "A long answer in many words, " * 20


def served(base_url: str) -> int:
    stats = control(base_url, "/_emulator/stats")
    return int(stats["totals"]["requests"]) if "totals" in stats else sum(
        int(v.get("requests", 0)) for v in stats.get("by_model", {}).values())


@pytest.mark.parametrize("raw, ctype", [('{"candidates": [{"content": {"parts": [{"text": "cut', "application/json"),
                                         ("<html><body>502 Bad Gateway</body></html>", "text/html")])
def test_malformed_body_is_typed_and_retried(gemini_emulator, flashlane_lane, raw: str, ctype: str) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 2, "action": {"raw_body": raw, "content_type": ctype}}])
    assert flashlane_lane.generate("hi").text  # two garbled answers, then a good one
    assert flashlane_lane.stats.by_kind.get("malformed") == 2


def test_malformed_body_every_time_ends_in_malformed_response(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"action": {"raw_body": "<html>oops</html>", "content_type": "text/html"}}])
    with pytest.raises(fl.MalformedResponse, match="could not be read"):
        flashlane_lane.generate("hi")


def test_garbage_sse_event_before_any_text_is_retried(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 1, "match": {"method": "streamGenerateContent"},
                                    "action": {"raw_body": '{"candidates": "not a list"}'}}])
    assert "".join(flashlane_lane.stream("hi"))


def test_stream_cut_before_any_text_is_retried(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 1, "match": {"method": "streamGenerateContent"},
                                    "action": {"cut_after": 0}}])
    text = "".join(flashlane_lane.stream("hi"))
    assert text and flashlane_lane.stats.retries == 1


def test_stream_cut_after_text_says_the_text_shown_is_incomplete(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"match": {"method": "streamGenerateContent"},
                                    "action": {"text": LONG, "cut_after": 2}}])
    shown = []
    with pytest.raises(fl.TransportError, match="the text shown is incomplete") as info:
        for chunk in flashlane_lane.stream("hi"):
            shown.append(chunk)
    assert shown and "discarded" not in str(info.value)


def test_stream_max_tokens_with_no_text_is_asked_again_with_a_larger_cap(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 1, "match": {"method": "streamGenerateContent"},
                                    "action": {"finish": "MAX_TOKENS", "empty": True}}])
    stream = flashlane_lane.stream("hi", max_output_tokens=100)
    assert "".join(stream)
    caps = [int(e["generation_config"].get("maxOutputTokens") or e["generation_config"]["max_output_tokens"])
            for e in control(gemini_emulator.base_url, "/_emulator/requests")["requests"]]
    assert caps[-2:] == [100, 400]


def test_outage_opens_the_breaker_instead_of_retrying_every_call(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"action": {"error": 503}}])
    lane = fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock(), limits="off", cache=False)
    with lane, pytest.raises(fl.Outage, match="service looks down"):
        for _ in range(20):  # twenty calls, each allowed 8 attempts
            try:
                lane.generate("hi")
            except fl.Outage:
                raise
            except fl.ServiceUnavailable:
                continue
    assert lane.stats.requests == lane._client.guard.breaker.threshold  # not 20 x 8


def test_breaker_in_wait_mode_probes_and_recovers(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"times": 12, "action": {"error": 503}}])
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock(), limits="off", on_outage="wait",
                 max_attempts=20, retry_deadline_s=10_000) as lane:
        assert lane.generate("hi").text
        assert lane._client.guard.breaker.opened == 1


def test_quota_of_zero_is_no_quota_after_one_request(gemini_emulator, flashlane_lane) -> None:  # type: ignore[no-untyped-def]
    gemini_emulator.load_scenario([{"action": {"error": 429, "quota_value": 0, "retry_delay": 3}}])
    with pytest.raises(fl.NoQuota, match="no quota") as info:
        flashlane_lane.generate("hi")
    assert "billing" in (info.value.hint or "")
    assert flashlane_lane.stats.requests == 1


def test_429s_without_a_stated_quota_at_start_do_not_slow_the_lane(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    """Ten 429s that state no quota (retryDelay 3 s) at the start, then answers: the adaptive
    limiter gates for the delay but learns no limit from requests that were never answered."""
    # Answers take 0.3 s, so the ten 429s reach the client before any answer even on a loaded
    # machine (when answers came first, 6 of 16 answered beside 10 refused looks exactly like a
    # real 6-RPM quota; that case is test_limits' slow start).
    gemini_emulator.load_scenario([{"times": 10, "action": {"error": 429, "retry_delay": 3}},
                                   {"action": {"delay": 0.3}}])
    with fl.Lane(base_url=gemini_emulator.base_url, clock=TestClock(), cache=False) as lane:
        t0 = lane.clock.time()
        results = lane.map("classify", [f"row {i}" for i in range(200)], labels=["a", "b"], concurrency=16)
        assert all(r.ok for r in results)
        assert lane.clock.time() - t0 < 60  # virtual seconds: the gate, not a collapsed rate
        assert lane._client.guard.limiter.adaptive is not None
        assert lane._client.guard.limiter.adaptive.learned(lane._client.quota_key) == (0, 0)


def test_ask_against_a_server_that_never_answers_gives_up_within_the_deadline(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"hang": True}})
    env = {"GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url, "GEMINI_API_KEY": "k", "PATH": "/usr/bin:/bin",
           "HOME": "/tmp"}
    t0 = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "flashlane", "ask", "hi"], capture_output=True, text=True, env=env,
                          timeout=150)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 1
    assert elapsed < 100, elapsed
    assert "timed out" in proc.stderr and "Traceback" not in proc.stderr
