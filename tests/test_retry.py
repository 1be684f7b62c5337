from __future__ import annotations

import random

import pytest

from flashlane.call.retry import DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY, RetryPolicy
from flashlane.config import DEFAULT_MAX_ATTEMPTS
from flashlane.errors import (
    AuthError,
    BadRequest,
    EmptyAnswer,
    ModelNotFound,
    RateLimited,
    SafetyBlocked,
    ServiceUnavailable,
    Timeout,
    TransportError,
)

RNG = random.Random(7)


@pytest.mark.parametrize("error", [
    RateLimited("x", kind="rpm"), RateLimited("x", kind="tpm"), RateLimited("x", kind="unknown"),
    ServiceUnavailable("x", status_code=500), ServiceUnavailable("x", status_code=503),
    Timeout("x", status_code=504), Timeout("x", status_code=408), TransportError("x"),
])
def test_retryable(error: Exception) -> None:
    assert RetryPolicy().delay_for(error, 1, 0.0, RNG) is not None  # type: ignore[arg-type]


@pytest.mark.parametrize("error", [
    RateLimited("x", kind="rpd"), BadRequest("x", status_code=400), AuthError("x", status_code=401),
    AuthError("x", status_code=403), ModelNotFound("x", status_code=404),
    SafetyBlocked("x", stage="answer", reason="SAFETY"), EmptyAnswer("x"),
])
def test_never_retried(error: Exception) -> None:
    assert RetryPolicy().delay_for(error, 1, 0.0, RNG) is None  # type: ignore[arg-type]


def test_defaults() -> None:
    p = RetryPolicy()
    assert (p.max_attempts, p.initial_delay, p.max_delay, p.deadline_s) == (8, 1.0, 60.0, 60.0)
    assert (DEFAULT_MAX_ATTEMPTS, DEFAULT_INITIAL_DELAY, DEFAULT_MAX_DELAY) == (8, 1.0, 60.0)


def test_full_jitter_bounds() -> None:
    p = RetryPolicy(max_attempts=100, deadline_s=1e9)
    rng = random.Random(1)
    err = ServiceUnavailable("x")
    for attempt in range(1, 12):
        cap = min(60.0, 2.0 ** (attempt - 1))
        delays = [p.delay_for(err, attempt, 0.0, rng) for _ in range(400)]
        assert all(d is not None and 0.0 <= d <= cap for d in delays)
        assert max(d for d in delays if d is not None) > 0.8 * cap  # spread over the whole range
        assert min(d for d in delays if d is not None) < 0.2 * cap


def test_retry_delay_is_a_lower_bound() -> None:
    p = RetryPolicy()
    rng = random.Random(3)
    err = RateLimited("x", kind="tpm", retry_after=26.0)
    assert all((p.delay_for(err, a, 0.0, rng) or 0) >= 26.0 for a in range(1, 8) for _ in range(50))
    # Longer backoff than the floor is kept: the floor doesn't remove jitter.
    big = RetryPolicy(initial_delay=100.0, max_delay=100.0, deadline_s=1e9)
    assert {round(big.delay_for(err, 1, 0.0, rng) or 0) for _ in range(50)} != {26}


def test_retry_after_header_on_503_is_a_lower_bound() -> None:
    assert (RetryPolicy().delay_for(ServiceUnavailable("x", retry_after=7.0), 1, 0.0, RNG) or 0) >= 7.0


def test_attempt_cap() -> None:
    p = RetryPolicy(max_attempts=3)
    err = TransportError("x")
    assert p.delay_for(err, 2, 0.0, RNG) is not None
    assert p.delay_for(err, 3, 0.0, RNG) is None


def test_deadline() -> None:
    p = RetryPolicy(deadline_s=30.0)
    assert p.delay_for(RateLimited("x", kind="rpm", retry_after=26.0), 1, 3.0, RNG) is not None
    assert p.delay_for(RateLimited("x", kind="rpm", retry_after=26.0), 1, 5.0, RNG) is None
    assert p.delay_for(TransportError("x"), 1, 30.0, RNG) is None


def test_invalid() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=0)
