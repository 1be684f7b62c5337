"""Guard: limiter → call → reconcile, with retries, on virtual time (TestClock)."""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import pytest

from flashlane.call.guard import Guard
from flashlane.call.retry import RetryPolicy
from flashlane.clock import TestClock
from flashlane.config import RUN_DEADLINE_S
from flashlane.errors import (
    BadRequest,
    FlashlaneError,
    ModelNotFound,
    RateLimited,
    ServiceUnavailable,
    TransportError,
)
from flashlane.limits import Limiter, make_limiter
from flashlane.limits.adaptive import MAX_PROBE_EVERY, PROBE_DIVISIONS

KEY = "proj:gemini-3.1-flash-lite"


class Script:
    """fn for Guard: raises the scripted errors in order, then returns "ok"."""

    def __init__(self, *errors: FlashlaneError) -> None:
        self.errors = list(errors)
        self.calls = 0

    def __call__(self, remaining_s: float = 0.0) -> str:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return "ok"


class QuotaServer:
    """A tiny stand-in for the emulator's quota: sliding-window RPM, 429 with the true wait,
    refused requests not counted."""

    def __init__(self, clock: TestClock, rpm: int, window: float = 60.0) -> None:
        self.clock, self.rpm, self.window = clock, rpm, window
        self.accepted: list[float] = []
        self.refused = 0

    def __call__(self, remaining_s: float = 0.0) -> str:
        now = self.clock.time()
        live = [t for t in self.accepted if t > now - self.window]
        if len(live) >= self.rpm:
            self.refused += 1
            raise RateLimited("over rpm", kind="rpm", retry_after=live[len(live) - self.rpm] + self.window - now)
        self.accepted.append(now)
        return "ok"


def none(_: Any) -> None:
    return None


def guard(limits: str = "adaptive", *, clock: TestClock, policy: RetryPolicy | None = None) -> Guard:
    return Guard(make_limiter(limits, clock=clock), policy or RetryPolicy(), clock, rng=random.Random(5))


def test_wait_honours_retry_delay() -> None:
    clock = TestClock()
    g = guard(clock=clock)
    fn = Script(RateLimited("tpm", kind="tpm", retry_after=26.0))
    assert g.call(KEY, 10, fn, none) == "ok"
    assert fn.calls == 2
    assert len(clock.sleeps) >= 1 and clock.sleeps[0] >= 26.0
    s = g.stats.snapshot()
    assert s["rate_limited"] == 1 and s["retries"] == 1 and s["requests"] == 2 and s["succeeded"] == 1
    assert s["by_kind"] == {"rate_limited:tpm": 1}
    assert g.stats.waits_s >= 26.0


async def test_async_wait_honours_retry_delay() -> None:
    clock = TestClock()
    g = guard(clock=clock)
    fn = Script(RateLimited("rpm", kind="rpm", retry_after=26.0), ServiceUnavailable("503"))

    async def once(remaining_s: float) -> str:
        return fn()

    assert await g.acall(KEY, 10, once, none) == "ok"
    assert fn.calls == 3 and clock.sleeps[0] >= 26.0


def test_rpd_is_not_retried_and_blocks_the_key() -> None:
    clock = TestClock()
    g = guard(clock=clock)
    fn = Script(RateLimited("day", kind="rpd"))
    with pytest.raises(RateLimited) as ei:
        g.call(KEY, 10, fn, none)
    assert ei.value.kind == "rpd" and fn.calls == 1 and clock.sleeps == []
    with pytest.raises(RateLimited):  # the next call fails fast, without reaching the server
        g.call(KEY, 10, fn, none)
    assert fn.calls == 1


@pytest.mark.parametrize("error", [BadRequest("400", status_code=400), ModelNotFound("404", status_code=404)])
def test_client_errors_are_not_retried(error: FlashlaneError) -> None:
    clock = TestClock()
    g = guard(clock=clock)
    fn = Script(error)
    with pytest.raises(type(error)):
        g.call(KEY, 10, fn, none)
    assert fn.calls == 1 and clock.sleeps == []


def test_attempt_cap() -> None:
    clock = TestClock()
    g = guard(clock=clock, policy=RetryPolicy(max_attempts=4))
    fn = Script(*[ServiceUnavailable("503")] * 10)
    with pytest.raises(ServiceUnavailable):
        g.call(KEY, 10, fn, none)
    assert fn.calls == 4 and g.stats.gave_up == 1


def test_deadline() -> None:
    clock = TestClock()
    g = guard(clock=clock, policy=RetryPolicy(deadline_s=250.0))
    fn = Script(*[RateLimited("rpm", kind="rpm", retry_after=100.0)] * 10)
    t0 = clock.time()
    with pytest.raises(RateLimited):
        g.call(KEY, 10, fn, none)
    assert fn.calls == 3  # at 0, ~100, ~200; a 4th would start past 250
    assert clock.time() - t0 <= 250.0


def test_reconcile_charges_the_real_prompt_size() -> None:
    clock = TestClock()
    g = guard("tpm=100,window=10,margin=0", clock=clock)
    g.call(KEY, 90, Script(), lambda _: 30)
    g.call(KEY, 70, Script(), lambda _: 70)  # 30 + 70 fits: no wait
    assert clock.sleeps == []
    assert g.limiter.store.usage(KEY, clock.time(), 10) == (2, 100)


def test_429_is_released_but_5xx_keeps_its_charge() -> None:
    clock = TestClock()
    g = guard("rpm=10,rpd=10", clock=clock)
    g.call(KEY, 5, Script(RateLimited("rpm", kind="rpm", retry_after=1.0)), none)
    assert g.limiter.store.usage(KEY, clock.time(), 120)[0] == 1
    g.call(KEY, 5, Script(ServiceUnavailable("503"), TransportError("reset")), none)
    assert g.limiter.store.usage(KEY, clock.time(), 120)[0] == 4


def test_503_with_retry_after_closes_the_gate_for_everyone() -> None:
    clock = TestClock()
    g = guard(clock=clock)
    with pytest.raises(ServiceUnavailable):
        Guard(g.limiter, RetryPolicy(max_attempts=1), clock).call(
            KEY, 1, Script(ServiceUnavailable("503", retry_after=9.0)), none)
    t0 = clock.time()
    g.call(KEY, 1, Script(), none)
    assert clock.time() - t0 >= 9.0


class HookClock(TestClock):
    """Runs ``hook`` at the first sleep, before time moves: "meanwhile, another caller ..."."""

    def __init__(self) -> None:
        super().__init__()
        self.hook: Callable[[], None] | None = None

    def sleep(self, seconds: float) -> None:
        hook, self.hook = self.hook, None
        if hook:
            hook()
        super().sleep(seconds)


def test_coordinated_backoff_one_429_makes_other_callers_wait() -> None:
    clock = HookClock()
    limiter: Limiter = make_limiter("adaptive", clock=clock)
    a = Guard(limiter, RetryPolicy(), clock, rng=random.Random(1))
    b = Guard(limiter, RetryPolicy(), clock, rng=random.Random(2))
    t0 = clock.time()
    b_called_at: list[float] = []

    def b_fn(remaining_s: float) -> str:
        b_called_at.append(clock.time())
        return "ok"

    # A is told to wait 26 s; while A sleeps, B starts a call on the same key.
    clock.hook = lambda: b.call(KEY, 1, b_fn, none)
    a.call(KEY, 1, Script(RateLimited("rpm", kind="rpm", retry_after=26.0)), none)
    assert b_called_at and b_called_at[0] - t0 >= 26.0  # B never reached the server early
    assert b.stats.limiter_wait_s >= 26.0 and b.stats.rate_limited == 0
    assert a.stats.backoff_s >= 26.0


def test_adaptive_never_slows_an_unthrottled_project() -> None:
    clock = TestClock()
    g = guard(clock=clock)
    for _ in range(2000):
        g.call(KEY, 100, Script(), none)
    assert clock.sleeps == []


def test_adaptive_converges_on_a_free_tier_quota_without_losing_items() -> None:
    clock = TestClock()
    server = QuotaServer(clock, rpm=15)
    g = guard(clock=clock, policy=RetryPolicy(deadline_s=RUN_DEADLINE_S))  # as a file run's rows get
    t0 = clock.time()
    results = [g.call(KEY, 10, server, none) for _ in range(300)]
    assert results == ["ok"] * 300  # every item done
    elapsed = clock.time() - t0
    ideal = (300 / 15 - 1) * 60  # 15 per minute, the first batch at t = 0
    assert elapsed <= ideal * 1.15, (elapsed, ideal)
    # The first discovery, then failed probes ever more rarely: after 1, 2, 4, ... MAX_PROBE_EVERY
    # probe intervals (a waiting acquire probes as soon as one is due), then one per MAX_PROBE_EVERY.
    t, every, probes = 0.0, 1, 0
    while (t := t + 60 / PROBE_DIVISIONS * every) <= elapsed:
        probes, every = probes + 1, min(every * 2, MAX_PROBE_EVERY)
    assert server.refused <= 1 + probes, (server.refused, probes)
    assert g.limiter.adaptive is not None
    rpm, _ = g.limiter.adaptive.learned(KEY)
    assert rpm == 15
