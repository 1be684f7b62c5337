"""``Guard``: the loop every call runs: breaker → limiter → one SDK call → reconcile, retrying
on failure, all inside one deadline.

The loop is one sans-IO generator (``_steps``); ``call`` and ``acall`` are its two small\ndrivers, differing only in how they wait, acquire and send.

The deadline (``RetryPolicy.deadline_s``) covers the whole call, retries included: each attempt
is given the time that is left (``fn(remaining_s)``), which the client turns into that
attempt's HTTP timeout, so a hung server costs at most the deadline, never attempts × timeout.

What happens to the quota charge of a failed attempt:

- **429** (any kind): the server refused the request without counting it (the emulator and
  Gemini's quotas count accepted requests), so the reservation is *released*: it no longer
  counts against RPM/TPM or the day. Before that the 429 is fed to the limiter: per-minute →
  a shared backoff gate until ``retry_after`` (so a burst of 429s becomes one wait, for every
  caller of the key) and, in adaptive mode, a learned limit; per-day → the day is blocked.
- **5xx, timeouts, transport errors**: the charge is *kept*. The server may well have counted
  the request (a 503 after admission, a response lost in transit), and we can't tell a refused
  connection from a dropped one. Over-counting costs one slot for one window; under-counting
  costs a 429.
- A 5xx with ``Retry-After`` closes the gate too: the server is asking everyone to slow down.
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from ..clock import Clock
from ..errors import FlashlaneError, RateLimited, ServiceUnavailable, Stopped
from ..limits import Limiter, Reservation
from .breaker import Breaker
from .retry import RetryPolicy

if TYPE_CHECKING:
    from ..telemetry import CallSpan

__all__ = ["Guard", "GuardStats", "MIN_ATTEMPT_S"]

# An attempt is not started with less time than this left before the deadline.
MIN_ATTEMPT_S = 1.0

T = TypeVar("T")


@dataclass
class GuardStats:
    requests: int = 0  # attempts sent (fn calls)
    succeeded: int = 0
    rate_limited: int = 0  # 429s of any kind
    retries: int = 0
    gave_up: int = 0
    backoff_s: float = 0.0  # slept between attempts (retry policy)
    limiter_wait_s: float = 0.0  # waited in the limiter for the quota window or a gate
    by_kind: Counter[str] = field(default_factory=Counter)  # "rate_limited:rpm", "unavailable", ...
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def waits_s(self) -> float:
        return self.backoff_s + self.limiter_wait_s

    def add(self, **deltas: float) -> None:
        with self._lock:
            for name, value in deltas.items():
                setattr(self, name, getattr(self, name) + value)

    def count(self, kind: str) -> None:
        with self._lock:
            self.by_kind[kind] += 1

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            return {"requests": self.requests, "succeeded": self.succeeded, "rate_limited": self.rate_limited,
                    "retries": self.retries, "gave_up": self.gave_up, "backoff_s": self.backoff_s,
                    "limiter_wait_s": self.limiter_wait_s, "waits_s": self.waits_s, "by_kind": dict(self.by_kind)}


def _kind(error: FlashlaneError) -> str:
    if isinstance(error, RateLimited):
        return f"{error.reason_code}:{error.kind}"
    return error.reason_code


@dataclass(frozen=True)
class _Sleep:
    seconds: float


@dataclass(frozen=True)
class _Acquire:
    pass


@dataclass(frozen=True)
class _Attempt:
    remaining_s: float


@dataclass(frozen=True)
class _Done:
    value: Any


def _next(steps: Generator[Any, Any, Any], value: Any) -> Any:
    """The loop's next effect, or ``_Done`` with what it returned."""
    try:
        return steps.send(value)
    except StopIteration as done:
        return _Done(done.value)


def _attempt(fn: Callable[[float], Any], remaining_s: float) -> Any:
    try:
        return fn(remaining_s)
    except FlashlaneError as e:
        return e  # the loop decides: retry, or raise it


async def _aattempt(fn: Callable[[float], Awaitable[Any]], remaining_s: float) -> Any:
    try:
        return await fn(remaining_s)
    except FlashlaneError as e:
        return e


class Guard:
    def __init__(self, limiter: Limiter, retry: RetryPolicy, clock: Clock, *,
                 rng: random.Random | None = None, breaker: Breaker | None = None) -> None:
        self.limiter = limiter
        self.retry = retry
        self.clock = clock
        self.rng = rng or random.Random()
        self.breaker = breaker or Breaker(clock)
        self.stats = GuardStats()
        self.stopping = False  # set by a run's first Ctrl-C: calls not yet sent stay unsent

    def _check_sending(self) -> None:
        if self.stopping:
            raise Stopped("the run is stopping: this request was not sent",
                          hint="rerun the same command to send it")

    def _remaining(self, start: float) -> float:
        return self.retry.deadline_s - (self.clock.monotonic() - start)

    def _steps(self, key: str, est_tokens: int, input_tokens_of: Callable[[T], int | None],
               start: float | None, obs: CallSpan | None = None) -> Generator[_Sleep | _Acquire | _Attempt, Any, T]:
        """The loop itself, sans-IO: it yields what to wait for or do (``_Sleep``, ``_Acquire`` ->
        the reservation, ``_Attempt`` -> the answer or the FlashlaneError) and returns the answer.
        ``obs`` (telemetry on): the call's span, told of each attempt, limiter wait and retry."""
        start = self.clock.monotonic() if start is None else start
        attempt = 0
        while True:
            attempt += 1
            while (wait := self.breaker.admit(key)) > 0:  # Outage propagates in stop mode
                yield _Sleep(wait)
            self._check_sending()
            t0 = self.clock.monotonic()
            res = yield _Acquire()  # RateLimited(rpd) propagates: the day is gone
            if self.stopping:  # it waited for quota while the run was told to stop: it is not sent
                res.release()
                self._check_sending()
            self.stats.add(limiter_wait_s=self.clock.monotonic() - t0, requests=1)
            if obs is not None:
                obs.attempt(res.waited)
            out = yield _Attempt(max(self._remaining(start), MIN_ATTEMPT_S))
            if isinstance(out, FlashlaneError):
                delay = self._after_failure(key, res, out, attempt, self.clock.monotonic() - start)
                if obs is not None:
                    obs.failed(out, delay)
                if delay is None:
                    raise out
                yield _Sleep(delay)
                continue
            self._after_success(key, res, out, input_tokens_of)
            return out  # type: ignore[no-any-return]

    def call(self, key: str, est_tokens: int, fn: Callable[[float], T],
             input_tokens_of: Callable[[T], int | None], *, start: float | None = None,
             obs: CallSpan | None = None) -> T:
        """``fn(remaining_s)`` makes one attempt with at most ``remaining_s`` seconds. ``start``: when
        the deadline began, if before this call (the rounds of a tool loop share one deadline)."""
        steps, value = self._steps(key, est_tokens, input_tokens_of, start, obs), None
        while not isinstance(effect := _next(steps, value), _Done):
            if isinstance(effect, _Sleep):
                value = self.clock.sleep(effect.seconds)  # type: ignore[func-returns-value]
            else:
                value = self.limiter.acquire(key, est_tokens) if isinstance(effect, _Acquire) else _attempt(
                    fn, effect.remaining_s)
        return effect.value  # type: ignore[no-any-return]

    async def acall(self, key: str, est_tokens: int, fn: Callable[[float], Awaitable[T]],
                    input_tokens_of: Callable[[T], int | None], *, start: float | None = None,
                    obs: CallSpan | None = None) -> T:
        steps, value = self._steps(key, est_tokens, input_tokens_of, start, obs), None
        while not isinstance(effect := _next(steps, value), _Done):
            if isinstance(effect, _Sleep):
                value = await self.clock.asleep(effect.seconds)  # type: ignore[func-returns-value]
            else:
                value = await (self.limiter.aacquire(key, est_tokens) if isinstance(effect, _Acquire)
                               else _aattempt(fn, effect.remaining_s))
        return effect.value  # type: ignore[no-any-return]

    # ---------------------------------------------------------------- shared decisions

    def _after_success(self, key: str, res: Reservation, out: T,
                       input_tokens_of: Callable[[T], int | None]) -> None:
        self.stats.add(succeeded=1)
        self.breaker.success(key)
        res.reconcile(input_tokens_of(out), at=self.clock.time())
        self.limiter.on_success(key, res.tokens)

    def _after_failure(self, key: str, res: Reservation, error: FlashlaneError, attempt: int,
                       elapsed: float) -> float | None:
        """Settle the reservation, inform the limiter; the wait before the next attempt or None."""
        self.stats.count(_kind(error))
        self.breaker.failure(key, error)
        if isinstance(error, RateLimited):
            self.stats.add(rate_limited=1)
            self.limiter.on_rate_limited(key, error, res)  # before release: it reads the window
            res.release()
        else:
            # 5xx, timeouts, dropped connections: the server may have counted the request.
            res.reconcile(at=self.clock.time())
            if isinstance(error, ServiceUnavailable) and error.retry_after:
                self.limiter.backoff(key, self.clock.time() + error.retry_after)
        if self.breaker.is_open(key) and self.breaker.mode == "stop":
            # The service is down for everyone: this call ends as the outage, not as its own
            # failure, so a pipeline leaves its rows pending instead of failing them.
            raise self.breaker.outage_error(key) from error
        delay = self.retry.delay_for(error, attempt, elapsed + MIN_ATTEMPT_S, self.rng)
        if delay is None:
            if error.retryable:
                self.stats.add(gave_up=1)
            return None
        self.stats.add(retries=1, backoff_s=delay)
        return delay
