"""One row per ``flashlane run`` invocation (``sessions``): its wall time, outcome and API-call
counters, kept current so a killed run's report still has them."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["SessionsRepo"]

# Requests still 'sent' when their session ends went out and no answer was kept.
_UNANSWERED = "UPDATE requests SET outcome='unanswered' WHERE session=? AND outcome='sent'"


class SessionsRepo:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def close_stale(self) -> int:
        """Sessions still 'running' belong to processes that died (the caller holds the run's
        lock): close them at their last sign of life, so wall time and rates stay true."""
        db = self.store.db
        stale = [(r[0],) for r in db.execute("SELECT id FROM sessions WHERE outcome='running'")]
        if not stale:
            return 0
        with self.store.transaction():
            db.executemany(
                "UPDATE sessions SET outcome='killed', ended=MAX(COALESCE(ended, started), "
                "COALESCE((SELECT MAX(COALESCE(ended, started)) FROM requests WHERE session=sessions.id), started)) "
                "WHERE id=?", stale)
            db.executemany(_UNANSWERED, stale)  # the process died with them in flight
        return len(stale)

    def start(self) -> int:
        with self.store.transaction():
            cur = self.store.db.execute("INSERT INTO sessions (started, outcome, pid) VALUES (?, 'running', ?)",
                                        (time.time(), os.getpid()))
        self.store.session = int(cur.lastrowid or 0)
        return self.store.session

    def end(self, outcome: str, *, requests: int = 0, rate_limited: int = 0, retries: int = 0) -> None:
        session = self.store.session
        if session is None:
            return
        with self.store.transaction():
            self.store.db.execute(
                "UPDATE sessions SET ended=?, outcome=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                (time.time(), outcome, requests, rate_limited, retries, session))
            self.store.db.execute(_UNANSWERED, (session,))  # cut off by an interrupt

    def touch(self, counters: dict[str, int] | None) -> None:
        """Inside a transaction: the session's last sign of life (and API-call counters)."""
        session = self.store.session
        if session is None:
            return
        if counters is None:
            self.store.db.execute("UPDATE sessions SET ended=? WHERE id=?", (time.time(), session))
        else:
            self.store.db.execute("UPDATE sessions SET ended=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                                  (time.time(), counters.get("requests", 0), counters.get("rate_limited", 0),
                                   counters.get("retries", 0), session))
