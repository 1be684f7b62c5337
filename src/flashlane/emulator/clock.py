"""The emulator's own clock: wall time plus a movable offset.

Quota windows and the per-day reset (midnight America/Los_Angeles) read this clock, so a test
can jump to just before midnight Pacific (``POST /_emulator/clock {"set": epoch}``) or skip a
minute (``{"advance": 60}``) without sleeping. Latency sleeps use real time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

PACIFIC = ZoneInfo("America/Los_Angeles")


class EmulatorClock:
    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += float(seconds)

    def set(self, epoch: float) -> None:
        self.offset = float(epoch) - time.time()

    def reset(self) -> None:
        self.offset = 0.0


def pacific_day(ts: float) -> str:
    return datetime.fromtimestamp(ts, PACIFIC).date().isoformat()


def seconds_to_pacific_midnight(ts: float) -> float:
    now = datetime.fromtimestamp(ts, PACIFIC)
    nxt = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), tzinfo=PACIFIC)
    return max(nxt.timestamp() - ts, 0.0)


class FollowingClock:
    """A client clock (``flashlane.clock.Clock``) that is the emulator's clock: it reads the emulator's
    time, and sleeping moves the emulator's time forward instead of waiting. A Lane built with it runs
    a batch job's turnaround, a deadline's cut-off or a quota window in no wall time, and the client and
    the emulator agree on what time it is (``emulator`` is an in-process ``Emulator``)."""

    def __init__(self, emulator: Any) -> None:
        self.emulator = emulator
        self.sleeps: list[float] = []

    def time(self) -> float:
        return float(self.emulator.app.clock.now())

    def monotonic(self) -> float:
        return self.time()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.sleeps.append(seconds)
            self._until(self.time() + seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio

        if seconds > 0:
            self.sleeps.append(seconds)
            # Sleepers that start together wait together: each moves the clock to its own wake-up time at
            # most, so 16 requests each waiting 1 s for the limiter cost 1 s, not 16.
            target = self.time() + seconds
            await asyncio.sleep(0)
            self._until(target)
        await asyncio.sleep(0)

    def _until(self, target: float) -> None:
        ahead = target - self.time()
        if ahead > 0:
            self.emulator.advance_clock(ahead)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.time(), UTC)
