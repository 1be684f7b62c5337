"""Worker process for the multi-process limiter tests (importable by ``spawn`` children).

Each worker acquires from a limiter on a shared backend, then "calls the server": a quota
oracle in its own SQLite file that enforces the same quota with the same sliding window,
timestamped by the oracle itself, after admission (as a server would see arrival).
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

ORACLE_SCHEMA = "CREATE TABLE IF NOT EXISTS hit (ts REAL, ok INTEGER, worker INTEGER)"


def oracle_admit(db: sqlite3.Connection, rpm: int, window: float, worker: int) -> bool:
    db.execute("BEGIN IMMEDIATE")
    try:
        now = time.time()
        (n,) = db.execute("SELECT count(*) FROM hit WHERE ok = 1 AND ts > ?", (now - window,)).fetchone()
        ok = n < rpm
        db.execute("INSERT INTO hit (ts, ok, worker) VALUES (?, ?, ?)", (now, int(ok), worker))
    finally:
        db.execute("COMMIT")
    return ok


class _Stop(Exception):
    pass


class _StopClock:
    """The system clock, except a wait that would end past the stop time ends the worker
    (rather than sleeping through the next window after the test is over)."""

    def __init__(self, stop_at: Any) -> None:
        from flashlane.clock import SystemClock

        self._sys = SystemClock()
        self._stop_at = stop_at
        self.time, self.monotonic, self.now = self._sys.time, self._sys.monotonic, self._sys.now

    def sleep(self, seconds: float) -> None:
        if time.time() + seconds >= self._stop_at.value:
            raise _Stop
        self._sys.sleep(seconds)

    async def asleep(self, seconds: float) -> None:
        raise NotImplementedError


def run(worker: int, backend: str, where: dict[str, Any], spec: str, rpm: int, window: float,
        oracle_path: str, ready: Any, go: Any, stop_at: Any) -> None:
    from flashlane.limits import make_limiter

    lim = make_limiter(spec, backend, path=where.get("path"), redis_url=where.get("redis_url"),
                       clock=_StopClock(stop_at))
    db = sqlite3.connect(oracle_path, isolation_level=None, timeout=30)
    db.execute("PRAGMA busy_timeout = 30000")
    ready.put(worker)
    go.wait()
    key = "proj:gemini-3.1-flash-lite"
    try:
        while True:
            res = lim.acquire(key, 1)
            if time.time() >= stop_at.value:
                res.release()
                break
            if not oracle_admit(db, rpm, window, worker):
                res.release()  # the server said 429: not counted (never expected here)
            else:
                res.reconcile(at=time.time())  # as Guard does once the answer is in
    except _Stop:
        pass
    db.close()
    lim.close()
