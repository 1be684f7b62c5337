"""The emulator's own clock: wall time plus a movable offset.

Quota windows and the per-day reset (midnight America/Los_Angeles) read this clock, so a test
can jump to just before midnight Pacific (``POST /_emulator/clock {"set": epoch}``) or skip a
minute (``{"advance": 60}``) without sleeping. Latency sleeps use real time.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
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
