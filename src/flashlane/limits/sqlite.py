"""SQLite backend: one file shared by every process on a machine.

WAL so readers never block; each admit is one ``BEGIN IMMEDIATE`` transaction (takes the write
lock up front, so two processes can't both read "14 of 15" and both admit). ``busy_timeout``
makes a contending process wait for the lock instead of failing. The tables and their SQL live
in ``flashlane.store.limiter``; the decisions (``window.py``) stay here.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from ..store.limiter import LimiterTables
from .config import Limits
from .window import Decision, Entry, KeyState, decide, prune_before, usage

__all__ = ["DEFAULT_BUSY_TIMEOUT_MS", "SqliteStore", "default_path"]

DEFAULT_BUSY_TIMEOUT_MS = 30_000
DEFAULT_FILENAME = "limits.sqlite3"


def default_path() -> Path:
    """``$FLASHLANE_STATE_DIR/limits.sqlite3``, else the platform's user state dir."""
    env = os.environ.get("FLASHLANE_STATE_DIR")
    if env:
        base = Path(env)
    else:
        import platformdirs

        base = Path(platformdirs.user_state_dir("flashlane"))
    return base / DEFAULT_FILENAME


class SqliteStore(LimiterTables):
    """The limiter's ``Store`` on its tables: adjust, remove, extend_gate, block_day and close
    are the tables' own; admitting (a decision between reads and writes) is here."""

    name = "sqlite"

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        self.path = Path(path) if path else default_path()
        super().__init__(self.path, busy_timeout_s=DEFAULT_BUSY_TIMEOUT_MS / 1000)

    def round_trip(self, key: str, now: float) -> bool:
        # A local file: tens of microseconds uncontended, less than a thread hop costs. (The gateway,
        # serving many clients on one loop, still runs every store call on its thread pool.)
        return False

    def _load(self, key: str, since: float) -> KeyState:
        entries, day, gate = self.load(key, since)
        st = KeyState(entries=[Entry(ts, tok) for ts, tok in entries], gate_until=gate if gate is not None else 0.0)
        if day:
            st.day_reset, st.day_count, st.day_blocked = day
        return st

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        with self.transaction():
            now = clock()  # inside the write lock: see window.py
            self.prune(key, prune_before(now, limits.span))
            d = decide(self._load(key, now - limits.span), now, tokens, limits)
            self.save_day(key, d.day_reset, d.day_count, d.day_blocked)
            if d.admitted:
                self.add(key, entry_id, now, tokens)
        return d

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        with self.lock:
            return usage(self._load(key, now - span), now, span)
