"""The limiter's behaviour, once, on every backend (memory, SQLite, Redis) via ``make``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from flashlane.clock import TestClock
from flashlane.errors import PACIFIC, RateLimited, next_pacific_midnight
from flashlane.limits import Limiter

KEY = "proj:gemini-3.1-flash-lite"
Make = Callable[..., Limiter]


def admitted_times(lim: Limiter, clock: TestClock, n: int, tokens: int = 1) -> list[float]:
    out = []
    for _ in range(n):
        lim.acquire(KEY, tokens)
        out.append(clock.time())
    return out


def test_sliding_window_admits_exactly_rpm_per_window(make: Make, clock: TestClock) -> None:
    lim = make("rpm=5,window=10,margin=0")
    t0 = clock.time()
    times = admitted_times(lim, clock, 16)
    rel = [t - t0 for t in times]
    assert rel[:5] == [0.0] * 5
    assert all(10.0 <= t < 10.01 for t in rel[5:10])
    assert all(20.0 <= t < 20.01 for t in rel[10:15])
    # No window (t - 10, t] ever holds more than 5.
    for t in rel:
        assert sum(1 for u in rel if t - 10 < u <= t) <= 5
    # Over [t0, t0 + 30): exactly 3 windows' worth.
    assert sum(1 for t in rel if t < 30) == 15


def test_sliding_not_fixed_window(make: Make, clock: TestClock) -> None:
    lim = make("rpm=3,window=10,margin=0")
    t0 = clock.time()
    for step in (0, 3, 3):  # admitted at 0, 3, 6
        clock.advance(step)
        lim.acquire(KEY, 1)
    lim.acquire(KEY, 1)  # waits for the one at 0 to leave: t = 10
    assert clock.time() - t0 == pytest.approx(10.0, abs=0.01)
    lim.acquire(KEY, 1)  # then the one at 3: t = 13
    assert clock.time() - t0 == pytest.approx(13.0, abs=0.01)


def test_margin_extends_the_window(make: Make, clock: TestClock) -> None:
    lim = make("rpm=1,window=2,margin=0.1")
    t0 = clock.time()
    admitted_times(lim, clock, 2)
    assert clock.time() - t0 == pytest.approx(2.1, abs=0.01)


def test_default_margin_is_small(make: Make) -> None:
    assert make("rpm=1").limits.margin == pytest.approx(0.3)  # 0.5 % of a 60 s window
    assert make("rpm=1,window=2").limits.margin == pytest.approx(0.02)  # the floor
    assert make("rpm=1,window=600").limits.margin == pytest.approx(0.5)  # the cap


def test_tpm_reservation_and_reconcile(make: Make, clock: TestClock) -> None:
    lim = make("tpm=100,window=10,margin=0")
    t0 = clock.time()
    r = lim.acquire(KEY, 60)
    # 60 + 50 > 100: would wait for the window ...
    r.reconcile(30)  # ... but the real prompt was 30 tokens: 30 + 50 fits now
    lim.acquire(KEY, 50)
    assert clock.time() == t0
    lim.acquire(KEY, 30)  # 30 + 50 + 30 > 100: waits until the first leaves at t0 + 10
    assert clock.time() - t0 == pytest.approx(10.0, abs=0.01)


def test_tpm_waits_for_enough_tokens_to_leave(make: Make, clock: TestClock) -> None:
    lim = make("tpm=100,window=10,margin=0")
    t0 = clock.time()
    lim.acquire(KEY, 40)
    clock.advance(2)
    lim.acquire(KEY, 40)
    clock.advance(2)
    lim.acquire(KEY, 90)  # needs both earlier ones gone: t0 + 12
    assert clock.time() - t0 == pytest.approx(12.0, abs=0.01)


def test_prompt_larger_than_tpm_goes_through_an_empty_window(make: Make, clock: TestClock) -> None:
    lim = make("tpm=100,window=10,margin=0")
    t0 = clock.time()
    lim.acquire(KEY, 5)
    lim.acquire(KEY, 500)
    assert clock.time() - t0 == pytest.approx(10.0, abs=0.01)


def test_release_gives_the_slot_back(make: Make, clock: TestClock) -> None:
    lim = make("rpm=1,rpd=1,window=10")
    t0 = clock.time()
    r = lim.acquire(KEY, 1)
    r.release()
    r.release()  # idempotent
    lim.acquire(KEY, 1)
    assert clock.time() == t0 and clock.sleeps == []


def test_keys_are_independent(make: Make, clock: TestClock) -> None:
    lim = make("rpm=1,window=10")
    lim.acquire("a:m", 1)
    lim.acquire("b:m", 1)
    assert clock.sleeps == []


def test_rpd_raises_at_once_with_reset_at_pacific_midnight(make: Make, clock: TestClock) -> None:
    lim = make("rpd=3")
    admitted_times(lim, clock, 3)
    with pytest.raises(RateLimited) as ei:
        lim.acquire(KEY, 1)
    e = ei.value
    assert e.kind == "rpd" and not e.retryable
    assert e.reset_at == next_pacific_midnight(clock.now())
    assert e.reset_at is not None and e.reset_at.astimezone(PACIFIC).hour == 0
    assert e.retry_after == pytest.approx(e.reset_at.timestamp() - clock.time())
    assert clock.sleeps == []
    clock.advance(e.reset_at.timestamp() - clock.time() + 0.001)
    lim.acquire(KEY, 1)  # a new Pacific day


@pytest.mark.parametrize(("start", "hours_to_next_reset"), [
    # 2026-03-08 02:00 PST -> PDT: the day after starts at 00:00 PDT, 23 h after 00:00 PST.
    (datetime(2026, 3, 8, 8, 30, tzinfo=UTC), 23),
    # 2026-11-01 02:00 PDT -> PST: that day has 25 h.
    (datetime(2026, 11, 1, 7, 30, tzinfo=UTC), 25),
])
def test_rpd_reset_across_dst(make: Make, start: datetime, hours_to_next_reset: int) -> None:
    clock = TestClock(start.timestamp())  # 00:30 Pacific on the DST-change day
    lim = make("rpd=1", clock_=clock)
    lim.acquire(KEY, 1)
    with pytest.raises(RateLimited) as ei:
        lim.acquire(KEY, 1)
    reset = ei.value.reset_at
    assert reset is not None
    local = reset.astimezone(PACIFIC)
    assert (local.hour, local.minute) == (0, 0)
    day_start = start.timestamp() - 1800  # 00:00 Pacific
    assert reset.timestamp() - day_start == hours_to_next_reset * 3600
    clock.advance(reset.timestamp() - clock.time() - 1)
    with pytest.raises(RateLimited):
        lim.acquire(KEY, 1)
    clock.advance(1.001)
    lim.acquire(KEY, 1)


def test_server_rpd_429_blocks_the_day(make: Make, clock: TestClock) -> None:
    lim = make("rpm=100")  # no local RPD known
    reset_at = next_pacific_midnight(clock.now())
    lim.on_rate_limited(KEY, RateLimited("day", kind="rpd", reset_at=reset_at))
    with pytest.raises(RateLimited) as ei:
        lim.acquire(KEY, 1)
    assert ei.value.kind == "rpd" and ei.value.reset_at == reset_at
    clock.advance(reset_at.timestamp() - clock.time() + 0.001)
    lim.acquire(KEY, 1)


def test_coordinated_backoff_is_shared_by_limiters_on_one_backend(make: Make, clock: TestClock) -> None:
    a, b = make("rpm=100"), make("rpm=100")  # two processes, one store
    t0 = clock.time()
    a.on_rate_limited(KEY, RateLimited("slow down", kind="rpm", retry_after=26.0))
    b.acquire(KEY, 1)
    assert clock.time() - t0 >= 26.0
    assert sum(clock.sleeps) >= 26.0


def test_backoff_never_shortens_a_gate(make: Make, clock: TestClock) -> None:
    lim = make("adaptive")
    t0 = clock.time()
    lim.backoff(KEY, t0 + 30)
    lim.backoff(KEY, t0 + 5)
    lim.acquire(KEY, 1)
    assert clock.time() - t0 >= 30


def test_two_limiters_share_the_window(make: Make, clock: TestClock) -> None:
    a, b = make("rpm=2,window=10,margin=0"), make("rpm=2,window=10,margin=0")
    t0 = clock.time()
    a.acquire(KEY, 1)
    b.acquire(KEY, 1)
    a.acquire(KEY, 1)
    assert clock.time() - t0 == pytest.approx(10.0, abs=0.01)


def test_adaptive_learns_from_the_window_and_probes_up(make: Make, clock: TestClock) -> None:
    lim = make("adaptive,window=10,margin=0")
    res = [lim.acquire(KEY, 1) for _ in range(16)]  # unthrottled at first
    assert clock.sleeps == []
    for r in res[:15]:  # fifteen answered; the sixteenth is refused
        r.reconcile(1, at=clock.time())
        lim.on_success(KEY, 1)
    lim.on_rate_limited(KEY, RateLimited("rpm", kind="rpm", retry_after=None), res[-1])
    res[-1].release()
    assert lim.adaptive is not None and lim.adaptive.learned(KEY) == (15, 0)
    clock.advance(10)
    lim.acquire(KEY, 1)  # the 15 left the window, so this fits
    assert "learned" in lim.describe()


async def test_aacquire_waits_on_the_clock(make: Make, clock: TestClock) -> None:
    lim = make("rpm=1,window=10,margin=0")
    t0 = clock.time()
    await lim.aacquire(KEY, 1)
    await lim.aacquire(KEY, 1)
    assert clock.time() - t0 == pytest.approx(10.0, abs=0.01)


def test_threads_on_the_real_clock_never_overfill_the_window(new_store: Callable[[], object]) -> None:
    """Atomic admission under real contention: 8 threads, each with its own store handle
    (own connection for SQLite/Redis), real time; admissions per sliding window never exceed RPM."""
    import threading

    from flashlane.clock import SystemClock
    from flashlane.limits import Limits

    limits = Limits.parse("rpm=20,window=0.4,margin=0")
    stores = [new_store() for _ in range(8)]
    stop = SystemClock().time() + 1.0
    times: list[float] = []
    lock = threading.Lock()

    def hammer(store: object) -> None:
        lim = Limiter(store, limits, clock=SystemClock())  # type: ignore[arg-type]
        while True:
            r = lim.acquire(KEY, 1)
            if r.ts >= stop:
                break
            with lock:
                times.append(r.ts)

    threads = [threading.Thread(target=hammer, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    times.sort()
    assert len(times) > 20  # more than one window's worth went through, so the rule was exercised
    for i, t in enumerate(times):
        assert sum(1 for u in times[: i + 1] if u > t - 0.4) <= 20


def test_a_settled_request_counts_from_its_answer(make: Make, clock: TestClock) -> None:
    """The server counted it somewhere between admission and answer: count it from the answer."""
    lim = make("rpm=1,window=10,margin=0")
    t0 = clock.time()
    res = lim.acquire(KEY, 1)
    clock.advance(3)  # the answer arrives 3 s later
    res.reconcile(at=clock.time())
    lim.acquire(KEY, 1)
    assert clock.time() == pytest.approx(t0 + 13, abs=0.01)


class _RemoteStore:
    """A store whose admissions wait on another process (as a Ray lease or a Redis exchange
    does): each one blocks until ``answer`` is set; the first brings a lease, so later ones are
    local. The rule itself is the memory store's."""

    def __init__(self) -> None:
        import threading

        from flashlane.limits.memory import MemoryStore

        self.inner, self.name = MemoryStore(), "remote"
        self.answer = threading.Event()
        self.trips: list[int] = []  # the thread each round trip ran on
        self.leased = False

    def round_trip(self, key: str, now: float) -> bool:
        return not self.leased

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: object, entry_id: str) -> object:
        import threading

        if not self.leased:
            self.trips.append(threading.get_ident())
            assert self.answer.wait(5), "the event loop was held while the store waited on the other process"
            self.leased = True
        return self.inner.admit(key, clock, tokens, limits, entry_id)  # type: ignore[arg-type]

    def __getattr__(self, name: str) -> object:
        return getattr(self.inner, name)


async def test_an_admission_that_waits_on_another_process_runs_off_the_event_loop_once() -> None:
    """The engine's loop keeps settling answers while a lease is fetched, and the 20 callers
    queued behind that one round trip admit from its lease instead of each asking again."""
    import asyncio
    import threading

    from flashlane.limits import Limits

    store = _RemoteStore()
    lim = Limiter(store, Limits.parse("rpm=100,window=60,margin=0"), clock=TestClock())  # type: ignore[arg-type]

    async def the_loop_runs_meanwhile() -> None:
        await asyncio.sleep(0)
        store.answer.set()  # only reached if the admission above let the loop go

    got = await asyncio.gather(*(lim.aacquire(KEY, 1) for _ in range(20)), the_loop_runs_meanwhile())
    assert len({r.entry_id for r in got[:20]}) == 20  # type: ignore[union-attr]
    assert len(store.trips) == 1 and store.trips[0] != threading.get_ident()
