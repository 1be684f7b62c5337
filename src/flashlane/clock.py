"""Time as a dependency, so backoff and quota windows are testable without sleeping.

``SystemClock`` is the real thing. ``TestClock`` is virtual time: ``sleep`` advances it
instantly, so a test can assert that a wait of exactly 26 s happened in 0 s of wall time.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Protocol

__all__ = ["Clock", "SystemClock", "TestClock", "SYSTEM_CLOCK"]


class Clock(Protocol):
    def time(self) -> float:
        """Wall-clock seconds since the epoch (used for quota windows shared across processes)."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...

    async def asleep(self, seconds: float) -> None: ...

    def now(self) -> datetime: ...


class SystemClock:
    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        # Imported here, not at the top: this module loads with the pytest plugin in every
        # project that has flashlane installed, and asyncio is a third of that cost (30 ms).
        import asyncio

        if seconds > 0:
            await asyncio.sleep(seconds)

    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """Virtual time. ``sleeps`` records every requested wait, in order."""

    __test__ = False  # not a pytest test class

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self._t = start
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def time(self) -> float:
        return self._t

    def monotonic(self) -> float:
        return self._t

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._t += max(seconds, 0.0)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    async def asleep(self, seconds: float) -> None:
        import asyncio  # see SystemClock.asleep

        self.sleeps.append(seconds)
        self.advance(seconds)
        await asyncio.sleep(0)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self._t, UTC)


SYSTEM_CLOCK = SystemClock()
