"""The adaptive policy's arithmetic, directly (the limiter-level behaviour is in the backend suite)."""

from __future__ import annotations

from flashlane.limits import AdaptiveLimits, Limits

K = "p:m"


def policy() -> AdaptiveLimits:
    return AdaptiveLimits(Limits.parse("adaptive,window=10,margin=0"))


def test_starts_unthrottled() -> None:
    assert policy().limits_for(K, 0).unlimited


def test_first_429_learns_the_observed_count() -> None:
    p = policy()
    p.on_429(K, "rpm", quota_value=None, observed_requests=16, observed_tokens=0, request_tokens=0, now=0)
    assert p.learned(K) == (15, 0)


def test_a_burst_of_429s_cuts_once_and_keeps_the_tightest_observation() -> None:
    p = policy()
    for seen in (40, 39, 20, 25):  # a burst sent before we knew: releases shrink the window
        p.on_429(K, "rpm", quota_value=None, observed_requests=seen, observed_tokens=0, request_tokens=0, now=1)
    assert p.learned(K) == (19, 0)


def test_later_429_cuts_multiplicatively() -> None:
    p = policy()
    p.on_429(K, "rpm", quota_value=None, observed_requests=21, observed_tokens=0, request_tokens=0, now=0)
    p.on_429(K, "rpm", quota_value=None, observed_requests=21, observed_tokens=0, request_tokens=0, now=20)
    assert p.learned(K) == (18, 0)  # floor(20 * 0.9)


def test_quota_value_is_exact_and_not_probed_past() -> None:
    p = policy()
    p.on_429(K, "tpm", quota_value=250_000, observed_requests=3, observed_tokens=300_000, request_tokens=1, now=0)
    p.note_saturated(K)
    assert p.limits_for(K, 100).tpm == 250_000


def test_tpm_learns_tokens_without_this_request() -> None:
    p = policy()
    p.on_429(K, "tpm", quota_value=None, observed_requests=3, observed_tokens=1200, request_tokens=200, now=0)
    assert p.learned(K) == (0, 1000)


def test_nothing_answered_yet_means_nothing_to_learn() -> None:
    p = policy()  # a burst of 429s before any success (the start-up case that once paced runs to ~1 RPM)
    p.on_429(K, "rpm", quota_value=None, observed_requests=1, observed_tokens=0, request_tokens=0, now=0)
    assert p.learned(K) == (0, 0)


def test_probes_up_fast_while_saturated_and_answered() -> None:
    p = policy()  # span 10 s: a probe every 10/12 s
    p.on_429(K, "unknown", quota_value=None, observed_requests=11, observed_tokens=0, request_tokens=0, now=0)
    p.on_success(K, 5)
    assert p.limits_for(K, 5).rpm == 10  # not saturated: demand, not the limit, set the pace
    p.note_saturated(K)
    p.on_success(K, 5.5)
    assert p.limits_for(K, 5.5).rpm == 20  # doubled
    p.on_success(K, 5.6)
    assert p.limits_for(K, 5.6).rpm == 20  # one step per interval, and only while saturated


def test_a_failed_probe_restores_the_limit_and_probes_less_often() -> None:
    p = policy()
    p.on_429(K, "rpm", quota_value=None, observed_requests=16, observed_tokens=0, request_tokens=0, now=0)
    p.note_saturated(K)
    p.on_success(K, 1)
    assert p.limits_for(K, 1).rpm == 30  # probe
    p.on_429(K, "rpm", quota_value=None, observed_requests=31, observed_tokens=0, request_tokens=0, now=1.2)
    assert p.learned(K) == (15, 0)  # back to what worked, not cut below it
    p.note_saturated(K)
    p.on_success(K, 2.5)
    assert p.limits_for(K, 2.5).rpm == 15  # next probe after 2 intervals, not 1
    p.on_success(K, 3.0)
    assert p.limits_for(K, 3.0).rpm == 30


def test_late_429s_of_requests_sent_before_a_probe_do_not_fail_it() -> None:
    p = policy()  # span 10 s: a probe every 10/12 s
    p.on_429(K, "rpm", quota_value=None, observed_requests=6, observed_tokens=0, request_tokens=0, now=0, sent_at=0)
    assert p.learned(K) == (5, 0)
    p.note_saturated(K)
    p.on_success(K, 1)  # probe: 5 -> 10 at t=1
    assert p.learned(K) == (10, 0)
    # The rest of the start-up burst, admitted at t=0 but refused only now: the same event.
    for t in (1.5, 2.0, 2.5):
        p.on_429(K, "rpm", quota_value=None, observed_requests=3, observed_tokens=0, request_tokens=0, now=t, sent_at=0)
    assert p.learned(K) == (10, 0)
    # A request admitted under the probed limit and refused does fail it.
    p.on_429(K, "rpm", quota_value=None, observed_requests=9, observed_tokens=0, request_tokens=0, now=3, sent_at=2)
    assert p.learned(K) == (5, 0)


def test_a_waiting_acquire_probes_when_due_not_once_per_window() -> None:
    p = policy()  # span 10 s: a probe due 10/12 s after each change
    p.on_429(K, "rpm", quota_value=None, observed_requests=7, observed_tokens=0, request_tokens=0, now=0)
    assert p.learned(K) == (6, 0)
    assert p.next_probe_in(K, 0.5) == 10 / 12 - 0.5
    assert not p.note_saturated(K, 0.5)  # too soon
    assert p.note_saturated(K, 1.0) and p.learned(K) == (12, 0)
    assert p.note_saturated(K, 2.0) and p.learned(K) == (24, 0)
    p.on_429(K, "rpm", quota_value=10, observed_requests=7, observed_tokens=0, request_tokens=0, now=3)
    assert p.next_probe_in(K, 3) is None and not p.note_saturated(K, 100)  # a stated quota is never probed
