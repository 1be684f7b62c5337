"""The run store: one SQLite database per run, the checkpoint that makes resume exact.

Schema (WAL journal, one transaction per finished request, so a SIGKILL loses at most
the requests in flight)::

    meta      (key TEXT PRIMARY KEY, value TEXT)            fingerprint, task, model, status, ...
    items     (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE, hash TEXT, status TEXT)
                                                            status: pending | ok | failed
    requests  (id INTEGER PRIMARY KEY, session INTEGER, started REAL, ended REAL, n_items INTEGER,
               outcome TEXT, error TEXT)                    one row per request sent
    attempts  (request_id INTEGER, item_id TEXT, outcome TEXT, error TEXT)
                                                            which items rode in which request
    results   (item_id TEXT PRIMARY KEY, value TEXT, prompt_tokens, output_tokens, thoughts_tokens,
               cost_usd REAL, cached INTEGER, request_id INTEGER)
    failures  (item_id TEXT PRIMARY KEY, reason TEXT, error TEXT, attempts INTEGER)
    usage     (request_id INTEGER PRIMARY KEY, prompt_tokens, output_tokens, thoughts_tokens,
               cached_tokens, cost_usd REAL)                the cost ledger, exact per request
    sessions  (id INTEGER PRIMARY KEY, started REAL, ended REAL, outcome TEXT, requests INTEGER,
               rate_limited INTEGER, retries INTEGER)       one row per `flashlane run` invocation

Per-item token counts of a packed request are the request's counts shared evenly; the
``usage`` table holds the exact totals, and reports add up from it.
No API key is ever written here: nothing that reaches this module carries one.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..result import Usage
from .items import Item

__all__ = ["RunStore", "StoredResult", "SCHEMA_VERSION"]

SCHEMA_VERSION = "1"
BUSY_TIMEOUT_S = 30.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS items (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE NOT NULL, hash TEXT,
    status TEXT NOT NULL DEFAULT 'pending');
CREATE TABLE IF NOT EXISTS requests (id INTEGER PRIMARY KEY, session INTEGER, started REAL, ended REAL,
    n_items INTEGER, outcome TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS attempts (request_id INTEGER, item_id TEXT, outcome TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS results (item_id TEXT PRIMARY KEY, value TEXT, prompt_tokens INTEGER,
    output_tokens INTEGER, thoughts_tokens INTEGER, cost_usd REAL, cached INTEGER, request_id INTEGER);
CREATE TABLE IF NOT EXISTS failures (item_id TEXT PRIMARY KEY, reason TEXT, error TEXT, attempts INTEGER);
CREATE TABLE IF NOT EXISTS usage (request_id INTEGER PRIMARY KEY, prompt_tokens INTEGER, output_tokens INTEGER,
    thoughts_tokens INTEGER, cached_tokens INTEGER, cost_usd REAL);
CREATE TABLE IF NOT EXISTS sessions (id INTEGER PRIMARY KEY, started REAL, ended REAL, outcome TEXT,
    requests INTEGER DEFAULT 0, rate_limited INTEGER DEFAULT 0, retries INTEGER DEFAULT 0);
CREATE INDEX IF NOT EXISTS attempts_item ON attempts (item_id);
"""


@dataclass(frozen=True)
class StoredResult:
    item_id: str
    status: str  # ok | failed | pending
    value: Any = None  # the task's answer as JSON data
    reason: str | None = None
    error: str | None = None
    usage: Usage = Usage()
    cost_usd: float = 0.0
    cached: bool = False


class RunStore:
    def __init__(self, path: str | Path = ":memory:") -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        try:
            # Autocommit mode; writes group into explicit transactions below.
            self.db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                      check_same_thread=False)
            self.db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a killed process (what resume promises); FULL would
            # also survive power loss at one fsync per request.
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise InputError(f"{self.path} is not a flashlane run database ({e})",
                             hint="pass another --run-db, or --fresh to start over") from None
        self.session: int | None = None

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------------ meta

    def get_meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, **values: Any) -> None:
        with self._tx():
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()])

    def meta(self) -> dict[str, str]:
        return {k: v for k, v in self.db.execute("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------ items

    def is_new(self) -> bool:
        return self.get_meta("fingerprint") is None

    def init_items(self, items: Iterable[Item]) -> None:
        with self._tx():
            self.db.executemany("INSERT OR IGNORE INTO items (idx, item_id, hash) VALUES (?, ?, ?)",
                                [(it.index, it.id, it.hash) for it in items])

    def finished_ids(self) -> set[str]:
        return {r[0] for r in self.db.execute("SELECT item_id FROM items WHERE status != 'pending'")}

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "ok": 0, "failed": 0}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            out[status] = n
        return out

    # ------------------------------------------------------------------ sessions and requests

    def start_session(self) -> int:
        with self._tx():
            cur = self.db.execute("INSERT INTO sessions (started, outcome) VALUES (?, 'running')", (time.time(),))
        self.session = int(cur.lastrowid or 0)
        return self.session

    def end_session(self, outcome: str, *, requests: int = 0, rate_limited: int = 0, retries: int = 0) -> None:
        if self.session is None:
            return
        with self._tx():
            self.db.execute("UPDATE sessions SET ended=?, outcome=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (time.time(), outcome, requests, rate_limited, retries, self.session))

    def update_session_counters(self, *, requests: int, rate_limited: int, retries: int) -> None:
        if self.session is None:
            return
        with self._tx():
            self.db.execute("UPDATE sessions SET ended=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (time.time(), requests, rate_limited, retries, self.session))

    def record_request(self, *, started: float, item_ids: list[str], outcome: str, error: str | None,
                       usage: Usage | None, cost_usd: float,
                       ok: dict[str, tuple[Any, Usage, float]], failed: dict[str, tuple[str, str]],
                       requeued: Iterable[str] = ()) -> int:
        """Everything one request produced, in one transaction: its ledger line, which items it
        carried, their results and their failures."""
        with self._tx():
            cur = self.db.execute(
                "INSERT INTO requests (session, started, ended, n_items, outcome, error) VALUES (?, ?, ?, ?, ?, ?)",
                (self.session, started, time.time(), len(item_ids), outcome, error))
            rid = int(cur.lastrowid or 0)
            if usage is not None:
                self.db.execute("INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?)",
                                (rid, usage.prompt_tokens, usage.output_tokens, usage.thoughts_tokens,
                                 usage.cached_tokens, cost_usd))
            requeued = set(requeued)
            rows: list[tuple[int, str, str, str | None]] = []
            for iid in item_ids:
                if iid in ok:
                    rows.append((rid, iid, "ok", None))
                elif iid in failed:
                    rows.append((rid, iid, "failed", failed[iid][1]))
                else:
                    rows.append((rid, iid, "requeued" if iid in requeued else outcome, error))
            self.db.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?)", rows)
            self._write_ok(ok, rid, cached=False)
            self._write_failed(failed)
        return rid

    def record_cached(self, ok: dict[str, tuple[Any, Usage, float]]) -> None:
        with self._tx():
            self._write_ok(ok, None, cached=True)

    def record_failures(self, failed: dict[str, tuple[str, str]]) -> None:
        """Failures decided before any request (too large, empty)."""
        with self._tx():
            self._write_failed(failed)

    def _write_ok(self, ok: dict[str, tuple[Any, Usage, float]], rid: int | None, *, cached: bool) -> None:
        if not ok:
            return
        self.db.executemany(
            "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(iid, json.dumps(v, ensure_ascii=False), u.prompt_tokens, u.output_tokens, u.thoughts_tokens, c,
              int(cached), rid) for iid, (v, u, c) in ok.items()])
        self.db.executemany("UPDATE items SET status='ok' WHERE item_id=?", [(i,) for i in ok])
        self.db.executemany("DELETE FROM failures WHERE item_id=?", [(i,) for i in ok])

    def _write_failed(self, failed: dict[str, tuple[str, str]]) -> None:
        if not failed:
            return
        self.db.executemany(
            "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, "
            "(SELECT COUNT(*) FROM attempts WHERE attempts.item_id=?))",
            [(iid, reason, err, iid) for iid, (reason, err) in failed.items()])
        self.db.executemany("UPDATE items SET status='failed' WHERE item_id=?", [(i,) for i in failed])

    # ------------------------------------------------------------------ reading back

    def spent_usd(self) -> float:
        return float(self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage").fetchone()[0])

    def results(self) -> dict[str, StoredResult]:
        """Every item's state keyed by id (pending items included)."""
        out: dict[str, StoredResult] = {}
        q = ("SELECT i.item_id, i.status, r.value, r.prompt_tokens, r.output_tokens, r.thoughts_tokens, r.cost_usd,"
             " r.cached, f.reason, f.error FROM items i LEFT JOIN results r ON r.item_id=i.item_id"
             " LEFT JOIN failures f ON f.item_id=i.item_id ORDER BY i.idx")
        for iid, status, value, pt, ot, tt, cost, cached, reason, error in self.db.execute(q):
            usage = Usage(pt or 0, ot or 0, tt or 0, 0, (pt or 0) + (ot or 0) + (tt or 0))
            out[iid] = StoredResult(iid, status, json.loads(value) if value is not None else None, reason, error,
                                    usage, float(cost or 0.0), bool(cached))
        return out

    def _tx(self) -> _Tx:
        return _Tx(self.db)


class _Tx:
    """BEGIN IMMEDIATE .. COMMIT: one writer at a time, rolled back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self.db.execute("ROLLBACK" if exc_type is not None else "COMMIT")
