"""``Limiter``: waits until a request fits its key's quota, on an injected clock.

One limiter serves many keys (``f"{project}:{model}"``); the state per key lives in a
``Store`` (memory, SQLite, Redis) so processes sharing a store share the quota.
"""

from __future__ import annotations

import asyncio
import uuid
import weakref
from collections import deque
from datetime import UTC, datetime

from ..clock import SYSTEM_CLOCK, Clock
from ..errors import PACIFIC, RateLimited, describe_reset
from ..models import PRIORITY_LIMIT_SHARE
from .adaptive import AdaptiveLimits
from .config import PRIORITY_KEY_SUFFIX, Limits
from .store import Store
from .window import WAKE_EPSILON_S, day_reset_after

__all__ = ["DEFAULT_GATE_WITHOUT_RETRY_INFO_S", "Limiter", "Reservation", "Wait"]

# A 429 without RetryInfo still means "the window is full": hold everyone back for a moment
# (scaled with the window, so scaled benchmarks keep the proportion) instead of letting the
# rest of the burst collect their own 429s.
DEFAULT_GATE_WITHOUT_RETRY_INFO_S = 1.0  # per 60 s of window


class Reservation:
    """One admission. Its tokens stay charged to the window unless ``release``d."""

    def __init__(self, store: Store, key: str, entry_id: str, ts: float, tokens: int, day_reset: float) -> None:
        self.store = store
        self.key = key
        self.entry_id = entry_id
        self.ts = ts
        self.tokens = tokens
        self.day_reset = day_reset
        self.released = False
        self.waited: dict[str, float] = {}  # seconds waited for admission, by what held it back (Wait.quota)

    def reconcile(self, actual_input_tokens: int | None = None, *, at: float | None = None) -> None:
        """After the call: charge the real ``promptTokenCount`` instead of the estimate, and
        count the request from ``at`` (when its answer arrived) rather than from admission.

        The server counted it at arrival, somewhere between admission and answer. Counting
        from the answer is the safe side of that interval: a request that reached the server
        late can then never make a later one collide with it in the server's window."""
        if self.released:
            return
        tokens = self.tokens if actual_input_tokens is None else actual_input_tokens
        if tokens != self.tokens or at is not None:
            self.store.adjust(self.key, self.entry_id, tokens, at)
            self.tokens = tokens

    def release(self) -> None:
        """The server did not count the request (it answered 429): give back the request and
        its tokens, for the window and the day. Idempotent."""
        if not self.released:
            self.released = True
            self.store.remove(self.key, self.entry_id, self.day_reset)

    def __repr__(self) -> str:
        return f"Reservation({self.key!r}, tokens={self.tokens}, ts={self.ts:.3f})"


class Wait(float):
    """Seconds to wait before trying again, and the quota that asks for it (``Decision.quota``:
    "backoff", "rpm" or "tpm"); a float to every caller that needs only the seconds."""

    quota: str = ""

    def __new__(cls, seconds: float, quota: str = "") -> Wait:
        w = super().__new__(cls, seconds)
        w.quota = quota
        return w


class Limiter:
    def __init__(self, store: Store, limits: Limits, *, clock: Clock | None = None, model: str | None = None) -> None:
        self.store = store
        self.limits = limits
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.model = model
        self.adaptive: AdaptiveLimits | None = AdaptiveLimits(limits) if limits.adaptive else None
        self._priority = limits.share(PRIORITY_LIMIT_SHARE)  # a priority key's own; made once: compared per lease
        # Answers per key in the last span, in this process: what adaptive mode learns from.
        self._answered: dict[str, deque[tuple[float, int]]] = {}
        # Per event loop (a Lane's sync calls and a run may each have one): admissions off the loop, one at a time.
        self._trips: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()

    # ---------------------------------------------------------------- admission

    def limits_for(self, key: str) -> Limits:
        if self.adaptive is not None:
            return self.adaptive.limits_for(key, self.clock.time())
        if key.endswith(PRIORITY_KEY_SUFFIX):
            return self._priority
        return self.limits

    def _try(self, key: str, tokens: int) -> Reservation | Wait:
        """A reservation, or the seconds to wait before trying again. Raises on a used-up day."""
        limits = self.limits_for(key)
        entry_id = uuid.uuid4().hex
        d = self.store.admit(key, self.clock.time, tokens, limits, entry_id)
        if d.admitted:
            return Reservation(self.store, key, entry_id, d.at, tokens, d.day_reset)
        if d.day_exhausted:
            raise self._day_used_up(key, d.at, d.day_reset, limits)
        if self.adaptive is not None and d.wait > 0 and d.quota in ("rpm", "tpm"):
            now = self.clock.time()
            if self.adaptive.note_saturated(key, now):
                return self._try(key, tokens)  # probed up: the new limit may admit it (at most once per interval)
            probe = self.adaptive.next_probe_in(key, now)
            if probe is not None and probe < d.wait:
                return Wait(probe + WAKE_EPSILON_S, d.quota)  # wake for the probe, not the window
        return Wait(d.wait, d.quota)

    def try_acquire(self, key: str, tokens: int) -> Reservation | Wait:
        """One admission attempt that never waits: a ``Reservation``, or the seconds to wait before
        trying again (raises like ``acquire`` on a used-up day). For an event loop that runs a
        blocking store's calls in a thread and must not hold a thread while it waits (the gateway)."""
        return self._try(key, tokens)

    def acquire(self, key: str, tokens: int) -> Reservation:
        """Block (on the clock) until the request fits; raise ``RateLimited(kind="rpd")`` at once
        when the day is used up. The reservation tells what it waited for (``waited``)."""
        waited: dict[str, float] = {}
        while True:
            got = self._try(key, tokens)
            if isinstance(got, Reservation):
                got.waited = waited
                return got
            waited[got.quota] = waited.get(got.quota, 0.0) + got
            self.clock.sleep(got)

    async def aacquire(self, key: str, tokens: int) -> Reservation:
        waited: dict[str, float] = {}
        while True:
            got = await self._atry(key, tokens)
            if isinstance(got, Reservation):
                got.waited = waited
                return got
            waited[got.quota] = waited.get(got.quota, 0.0) + got
            await self.clock.asleep(got)

    async def _atry(self, key: str, tokens: int) -> Reservation | Wait:
        """``_try`` for the event loop. An attempt that waits on another process (``Store.round_trip``:
        a Redis exchange, a lease from the Ray keeper) runs on a thread, so the loop keeps settling
        answers meanwhile; one such attempt at a time per loop, so the callers queued behind it
        admit from the lease it brought instead of each asking for one."""
        if not self.store.round_trip(key, self.clock.time()):
            return self._try(key, tokens)
        loop = asyncio.get_running_loop()
        lock = self._trips.get(loop)
        if lock is None:
            lock = self._trips[loop] = asyncio.Lock()
        async with lock:
            if not self.store.round_trip(key, self.clock.time()):
                return self._try(key, tokens)
            return await asyncio.to_thread(self._try, key, tokens)

    def _day_used_up(self, key: str, now: float, day_reset: float, limits: Limits) -> RateLimited:
        reset_at = datetime.fromtimestamp(day_reset, UTC).astimezone(PACIFIC)
        model = self.model or key.rpartition(":")[2] or "this model"
        quota = f" ({limits.rpd:,} requests)" if limits.rpd else ""
        return RateLimited(
            f"the requests-per-day quota for {model}{quota} is used up; it resets at {describe_reset(reset_at)}",
            hint="rerun after the reset (finished work is kept), or move the project to a paid quota tier",
            kind="rpd", retry_after=max(day_reset - now, 0.0), reset_at=reset_at, model=self.model)

    # ---------------------------------------------------------------- feedback

    def backoff(self, key: str, until_wall_time: float) -> None:
        """Coordinated backoff: nobody acquiring ``key`` (in any process sharing the store) is
        admitted before ``until_wall_time``."""
        self.store.extend_gate(key, until_wall_time)

    def on_rate_limited(self, key: str, error: RateLimited, reservation: Reservation | None = None) -> None:
        """Feed a 429 back: per-day → block the day; per-minute → close the gate for the
        server's wait (so a burst of 429s doesn't multiply) and, if adaptive, learn the limit.
        Call before ``reservation.release()`` so the observed window still includes it."""
        now = self.clock.time()
        if error.kind == "rpd":
            reset = error.reset_at.timestamp() if error.reset_at else day_reset_after(now)
            self.store.block_day(key, reset)
            return
        limits = self.limits_for(key)
        wait = error.retry_after
        if wait is None:
            wait = DEFAULT_GATE_WITHOUT_RETRY_INFO_S * limits.window_s / 60.0
        self.backoff(key, now + wait)
        if self.adaptive is not None:
            answered = self._recent(key, now, limits.span)
            request_tokens = reservation.tokens if reservation else 0
            self.adaptive.on_429(key, error.kind, quota_value=_quota_value(error),
                                 observed_requests=len(answered) + 1,
                                 observed_tokens=sum(t for _, t in answered) + request_tokens,
                                 request_tokens=request_tokens, now=now,
                                 sent_at=reservation.ts if reservation else None)

    def on_success(self, key: str, tokens: int = 0) -> None:
        """An answer arrived: adaptive mode counts it and probes a learned limit back up."""
        if self.adaptive is None:
            return
        now = self.clock.time()
        self._answered.setdefault(key, deque()).append((now, tokens))
        self._recent(key, now, self.limits_for(key).span)
        self.adaptive.on_success(key, now)

    def _recent(self, key: str, now: float, span: float) -> deque[tuple[float, int]]:
        answered = self._answered.setdefault(key, deque())
        while answered and answered[0][0] <= now - span:
            answered.popleft()
        return answered

    # ---------------------------------------------------------------- reporting

    def describe(self) -> str:
        text = self.limits.describe() + f"; backend {self.store.name}"
        if self.adaptive is not None:
            text += self.adaptive.describe()
        return text

    def close(self) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"Limiter({self.describe()})"


def _quota_value(error: RateLimited) -> int | None:
    value = getattr(error, "quota_value", None)
    try:
        return int(value) if value else None
    except (TypeError, ValueError):
        return None
