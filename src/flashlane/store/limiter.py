"""The quota limiter's shared state: one SQLite file every process on a machine admits through.

Tables: ``admission`` (a row per request admitted in the window), ``day`` (the per-day count and
whether the day is used up) and ``gate`` (a key's closed-until time after a 429). Versioned in
``PRAGMA user_version``; a file written before versions were recorded has ``admission`` and is
version 1. The limiter's arithmetic stays in ``flashlane.limits``; this module only reads and
writes rows, inside the caller's ``transaction()`` where a decision spans several statements.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import AbstractContextManager

from .db import transaction
from .migrate import Migration, Schema, UserVersion, open_migrated

__all__ = ["LIMITER_SCHEMA", "LimiterTables"]

_V1 = """
CREATE TABLE IF NOT EXISTS admission (key TEXT NOT NULL, id TEXT PRIMARY KEY, ts REAL NOT NULL,
                                      tokens INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS admission_key_ts ON admission (key, ts);
CREATE TABLE IF NOT EXISTS day (key TEXT PRIMARY KEY, reset REAL NOT NULL, count INTEGER NOT NULL,
                                blocked INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS gate (key TEXT PRIMARY KEY, until REAL NOT NULL);
"""

LIMITER_SCHEMA = Schema(
    "limiter database", (Migration(1, "admissions, day counts, 429 gates", _V1),), UserVersion(),
    marker="admission",
    upgrade_hint="upgrade flashlane, or give this flashlane its own limiter file (FLASHLANE_STATE_DIR)")

DayRow = tuple[float, int, bool]  # (reset, count, blocked)


class LimiterTables:
    def __init__(self, path: str | os.PathLike[str], *, busy_timeout_s: float) -> None:
        # One connection, used under a lock: sqlite3 connections aren't safe to share between
        # threads concurrently, and one writer per process is all the file allows anyway.
        self.lock = threading.Lock()
        # concurrent openers wait on the busy timeout while one of them migrates
        self._db = open_migrated(path, LIMITER_SCHEMA, busy_timeout_s=busy_timeout_s)

    def transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        return transaction(self._db, self.lock)

    def load(self, key: str, since: float) -> tuple[list[tuple[float, int]], DayRow | None, float | None]:
        """A key's admissions after ``since`` (ts, tokens), its day row and its gate (under the lock)."""
        db = self._db
        entries = [(float(ts), int(tok)) for ts, tok in
                   db.execute("SELECT ts, tokens FROM admission WHERE key = ? AND ts > ?", (key, since))]
        day = db.execute("SELECT reset, count, blocked FROM day WHERE key = ?", (key,)).fetchone()
        gate = db.execute("SELECT until FROM gate WHERE key = ?", (key,)).fetchone()
        return entries, (None if day is None else (day[0], day[1], bool(day[2]))), (None if gate is None else gate[0])

    def prune(self, key: str, before: float) -> None:
        """Inside a transaction: forget a key's admissions at or before ``before``."""
        self._db.execute("DELETE FROM admission WHERE key = ? AND ts <= ?", (key, before))

    def save_day(self, key: str, reset: float, count: int, blocked: bool) -> None:
        """Inside a transaction."""
        self._db.execute("INSERT INTO day (key, reset, count, blocked) VALUES (?, ?, ?, ?) "
                         "ON CONFLICT (key) DO UPDATE SET reset = excluded.reset, count = excluded.count, "
                         "blocked = excluded.blocked", (key, reset, count, int(blocked)))

    def add(self, key: str, entry_id: str, ts: float, tokens: int) -> None:
        """Inside a transaction."""
        self._db.execute("INSERT INTO admission (key, id, ts, tokens) VALUES (?, ?, ?, ?)", (key, entry_id, ts, tokens))

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        with self.transaction() as db:
            if ts is None:
                db.execute("UPDATE admission SET tokens = ? WHERE id = ?", (tokens, entry_id))
            else:
                db.execute("UPDATE admission SET tokens = ?, ts = max(ts, ?) WHERE id = ?", (tokens, ts, entry_id))

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        with self.transaction() as db:
            db.execute("DELETE FROM admission WHERE id = ?", (entry_id,))
            db.execute("UPDATE day SET count = count - 1 WHERE key = ? AND reset = ? AND count > 0", (key, day_reset))

    def extend_gate(self, key: str, until: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO gate (key, until) VALUES (?, ?) "
                       "ON CONFLICT (key) DO UPDATE SET until = max(until, excluded.until)", (key, until))

    def block_day(self, key: str, day_reset: float) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO day (key, reset, count, blocked) VALUES (?, ?, 0, 1) "
                       "ON CONFLICT (key) DO UPDATE SET reset = excluded.reset, blocked = 1", (key, day_reset))

    def close(self) -> None:
        with self.lock:
            self._db.close()
