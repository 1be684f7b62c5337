"""The run store: one SQLite database per run, the checkpoint that makes resume exact.

Items live here, not in memory: the reader inserts them in chunks, the engine pulls bounded
windows of pending ones, and the writers stream the output back in input order, so a run's
memory does not grow with its rows.

Schema (current version; WAL journal, one transaction per finished request, so a SIGKILL
loses at most the answers of the requests in flight)::

    meta       (key TEXT PRIMARY KEY, value TEXT)       fingerprint, task, model, status, schema_version, ...
    migrations (version INTEGER PRIMARY KEY, applied REAL, what TEXT)
                                                        the schema steps applied to this file, in order
    items      (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE, hash TEXT, status TEXT, row TEXT)
                                                        status: pending | ok | failed; row: the input row
                                                        as JSON (every column, for the output)
    requests   (id INTEGER PRIMARY KEY, session INTEGER, started REAL, ended REAL, n_items INTEGER,
                outcome TEXT, error TEXT)               one row per request, written before it is sent
                                                        (outcome 'sent' until its answer is recorded)
    attempts   (request_id INTEGER, item_id TEXT, outcome TEXT, error TEXT)
                                                        which items rode in which request
    results    (item_id TEXT PRIMARY KEY, value TEXT, prompt_tokens, output_tokens, thoughts_tokens,
                cost_usd REAL, cached INTEGER, request_id INTEGER, cached_tokens INTEGER)
                                                        cached: answered from the response cache;
                                                        cached_tokens: input billed at the cached rate
    failures   (item_id TEXT PRIMARY KEY, reason TEXT, error TEXT, attempts INTEGER)
    usage      (request_id INTEGER PRIMARY KEY, prompt_tokens, output_tokens, thoughts_tokens,
                cached_tokens, cost_usd REAL)           the cost ledger, exact per request
    sessions   (id INTEGER PRIMARY KEY, started REAL, ended REAL, outcome TEXT, requests INTEGER,
                rate_limited INTEGER, retries INTEGER, pid INTEGER)
                                                        one row per `flashlane run` invocation
    request_tiers (request_id INTEGER PRIMARY KEY, tier TEXT)
                                                        the tier that served a request (flex, batch)
    batch_jobs, batch_requests, batch_items             Batch API jobs of a --tier batch run, recorded
                                                        before they are created (tiers/jobs.py)
    context_caches (name TEXT PRIMARY KEY, model TEXT, prefix TEXT, tokens INTEGER, created REAL,
                expires REAL, ended REAL, input_per_m REAL, storage_per_m_hour REAL)
                                                        explicit caches of the run's shared prefix: made,
                                                        extended (expires), deleted or found gone (ended)

Schema changes are steps in ``MIGRATIONS``, applied in order on open and recorded in
``migrations`` and ``meta.schema_version``, so a run database written by an older release
resumes after an upgrade; one written by a newer release is refused rather than damaged.

Per-item token counts of a packed request are the request's counts shared evenly; the
``usage`` table holds the exact totals, and reports add up from it.
No API key is ever written here: nothing that reaches this module carries one.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import Usage
from ..store.db import connect, transaction

__all__ = ["RunStore", "StoredResult", "StoredRow", "SCHEMA_VERSION", "MIGRATIONS", "INSERT_CHUNK"]

INSERT_CHUNK = 5_000  # rows per executemany: big enough to amortise, small enough to stay flat
NOT_A_RUN_DB_HINT = "pass another --run-db, or --fresh to start over"

_V1 = """
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

# v2: the input row is kept with its item (output keeps every input column; the engine
# rebuilds items from the store instead of holding them); sessions know their process.
_V2 = """
ALTER TABLE items ADD COLUMN row TEXT;
ALTER TABLE sessions ADD COLUMN pid INTEGER;
"""

# v3: service tiers (issue 12). The tier each answered request was served at; batch jobs and the
# requests (by key) and items each carries, recorded before a job is created (tiers/jobs.py).
_V3 = """
CREATE TABLE IF NOT EXISTS request_tiers (request_id INTEGER PRIMARY KEY, tier TEXT);
CREATE TABLE IF NOT EXISTS batch_jobs (id INTEGER PRIMARY KEY, display_name TEXT UNIQUE NOT NULL, name TEXT,
    state TEXT, mode TEXT, file_name TEXT, model TEXT, n_requests INTEGER, n_items INTEGER, reserved_usd REAL,
    created REAL, updated REAL, stats TEXT, collected INTEGER NOT NULL DEFAULT 0, error TEXT);
CREATE TABLE IF NOT EXISTS batch_requests (job_id INTEGER, key TEXT, item_ids TEXT, outcome TEXT,
    PRIMARY KEY (job_id, key));
CREATE TABLE IF NOT EXISTS batch_items (item_id TEXT, job_id INTEGER, key TEXT);
CREATE INDEX IF NOT EXISTS batch_items_item ON batch_items (item_id);
CREATE INDEX IF NOT EXISTS batch_items_job ON batch_items (job_id);
"""


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    sql: str


# v4: explicit context caches of the run's prefix (context_cache.py), so a resumed run reuses a
# live one, the last session deletes it, and the report charges creation and storage hours.
_V4 = """
CREATE TABLE IF NOT EXISTS context_caches (name TEXT PRIMARY KEY, model TEXT, prefix TEXT, tokens INTEGER,
    created REAL, expires REAL, ended REAL, input_per_m REAL, storage_per_m_hour REAL);
"""

# v5: each result keeps its share of cached input tokens (explicit or implicit cache hits), so an
# item's output row shows what of its input was billed at the cached rate.
_V5 = """
ALTER TABLE results ADD COLUMN cached_tokens INTEGER;
"""

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "first release: items, requests, attempts, results, failures, usage, sessions", _V1),
    Migration(2, "input rows stored with their items; sessions record their pid", _V2),
    Migration(3, "service tiers: the tier per request; batch jobs, their requests and items", _V3),
    Migration(4, "explicit context caches of the run's shared prefix", _V4),
    Migration(5, "results keep their cached input tokens", _V5),
)
SCHEMA_VERSION = MIGRATIONS[-1].version


@dataclass(frozen=True)
class StoredResult:
    item_id: str
    status: str  # ok | failed | pending
    value: Any = None  # the task's answer as JSON data
    reason: str | None = None
    error: str | None = None
    usage: Usage = Usage()
    cost_usd: float | None = 0.0  # None: answered by a model whose price is unknown
    cached: bool = False


@dataclass(frozen=True)
class StoredRow:
    """One item as the output needs it: its input row and how it ended."""

    index: int
    row: dict[str, Any] | None  # None for items of a run made before rows were kept
    result: StoredResult


def _loads(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


class RunStore:
    def __init__(self, path: str | Path = ":memory:", *, not_a_run_db_hint: str = NOT_A_RUN_DB_HINT,
                 create: bool = True) -> None:
        self.path = str(path)
        try:
            self.db = connect(self.path)
            if not create and self._found_version() == 0:
                self.db.close()
                raise InputError(f"{self.path} is not a flashlane run database", hint=not_a_run_db_hint)
            self.schema_version = self._migrate()
        except sqlite3.DatabaseError as e:
            raise InputError(f"{self.path} is not a flashlane run database ({e})", hint=not_a_run_db_hint) from None
        self.session: int | None = None
        self.changed = False  # did this process change any item's state (so the output is stale)?

    def close(self) -> None:
        self.db.close()

    def _tx(self) -> Any:
        return transaction(self.db)

    def _mark_changed(self) -> None:
        """Item states changed, so the output on disk is stale. The first change of a process
        also forgets the recorded output signature (in the same transaction when called inside
        one), so a run killed before it rewrote the output rewrites it next time."""
        if not self.changed:
            self.db.execute("DELETE FROM meta WHERE key='output_sig'")
        self.changed = True

    # ------------------------------------------------------------------ schema

    def _found_version(self) -> int:
        tables = {r[0] for r in self.db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "meta" in tables:
            row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if row is not None:
                return int(row[0])
        # The first release wrote schema_version only once a file run was set up; its tables say v1.
        return 1 if "items" in tables else 0

    def _migrate(self) -> int:
        found = self._found_version()
        if found > SCHEMA_VERSION:
            raise InputError(f"{self.path} was written by a newer flashlane (run database schema {found}; this "
                             f"release reads up to {SCHEMA_VERSION})", hint="upgrade flashlane to resume this run")
        for step in MIGRATIONS:
            if step.version <= found:
                continue
            with self._tx():
                for statement in filter(str.strip, step.sql.split(";")):
                    self.db.execute(statement)
                self.db.execute("CREATE TABLE IF NOT EXISTS migrations (version INTEGER PRIMARY KEY, applied REAL, "
                                "what TEXT)")
                self.db.execute("INSERT OR REPLACE INTO migrations VALUES (?, ?, ?)", (step.version, time.time(),
                                                                                      step.what))
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                                (str(step.version),))
        return SCHEMA_VERSION

    def migrations(self) -> list[tuple[int, str]]:
        return [(int(v), str(w)) for v, w in self.db.execute("SELECT version, what FROM migrations ORDER BY version")]

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

    def has_work(self) -> bool:
        """Has anything been paid for or finished? A run with neither can be replaced freely."""
        finished = self.db.execute("SELECT 1 FROM items WHERE status != 'pending' LIMIT 1").fetchone()
        paid = self.db.execute("SELECT 1 FROM usage LIMIT 1").fetchone()
        # A batch job recorded (even one not yet answered) may be paid for: never forget it.
        batched = self.db.execute("SELECT 1 FROM batch_jobs LIMIT 1").fetchone()
        return finished is not None or paid is not None or batched is not None

    def reset(self) -> None:
        """Forget everything (a run that did nothing, replaced by a corrected command)."""
        with self._tx():
            for table in ("items", "requests", "attempts", "results", "failures", "usage", "sessions",
                          "context_caches"):
                self.db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            self.db.execute("DELETE FROM meta WHERE key != 'schema_version'")
            self._mark_changed()

    def insert_items(self, rows: Iterable[tuple[int, str, str, str]],
                     on_duplicate: Callable[[str, int, int], Exception]) -> int:
        """Insert ``(idx, item_id, hash, row_json)`` in chunks (one transaction each). An id
        already present becomes ``on_duplicate(item_id, earlier_idx, idx)``, raised."""
        n = 0
        for chunk in _chunks(rows, INSERT_CHUNK):
            try:
                with self._tx():
                    self.db.executemany("INSERT INTO items (idx, item_id, hash, row) VALUES (?, ?, ?, ?)", chunk)
            except sqlite3.IntegrityError:
                raise self._duplicate(chunk, on_duplicate) from None
            n += len(chunk)
        self._mark_changed()
        return n

    def _duplicate(self, chunk: list[tuple[int, str, str, str]],
                   on_duplicate: Callable[[str, int, int], Exception]) -> Exception:
        seen: dict[str, int] = {}
        for idx, iid, _, _ in chunk:
            earlier = seen.get(iid)
            if earlier is None:
                row = self.db.execute("SELECT idx FROM items WHERE item_id=?", (iid,)).fetchone()
                earlier = None if row is None else int(row[0])
            if earlier is not None:
                return on_duplicate(iid, earlier, idx)
            seen[iid] = idx
        return InputError("two rows share an id", hint="ids must be unique")

    def stage_rows(self, rows: Iterable[tuple[int, str, str, str]],
                   on_duplicate: Callable[[str, int, int], Exception]) -> None:
        """The input read again on resume: kept aside until its fingerprint is checked."""
        self.db.execute("DROP TABLE IF EXISTS temp.incoming")
        self.db.execute("CREATE TEMP TABLE incoming (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE, row TEXT)")
        for chunk in _chunks(rows, INSERT_CHUNK):
            try:
                with self._tx():
                    self.db.executemany("INSERT INTO temp.incoming VALUES (?, ?, ?)",
                                        [(idx, iid, row) for idx, iid, _, row in chunk])
            except sqlite3.IntegrityError:
                seen: dict[str, int] = {}
                for idx, iid, _, _ in chunk:
                    hit = seen.get(iid)
                    if hit is None:
                        r = self.db.execute("SELECT idx FROM temp.incoming WHERE item_id=?", (iid,)).fetchone()
                        hit = None if r is None else int(r[0])
                    if hit is not None:
                        raise on_duplicate(iid, hit, idx) from None
                    seen[iid] = idx
                raise

    def adopt_staged(self) -> None:
        """The staged input matched the run: its rows (every column) replace the stored ones."""
        with self._tx():
            self.db.execute("UPDATE items SET row = (SELECT row FROM temp.incoming i WHERE i.idx = items.idx)")
        self.drop_staged()

    def drop_staged(self) -> None:
        self.db.execute("DROP TABLE IF EXISTS temp.incoming")

    def pending_after(self, after: int, limit: int) -> list[tuple[int, str, str, str | None]]:
        """The next ``limit`` pending items after position ``after``: (idx, item_id, hash, row)."""
        return self.db.execute("SELECT idx, item_id, hash, row FROM items WHERE idx > ? AND status = 'pending' "
                               "ORDER BY idx LIMIT ?", (after, limit)).fetchall()

    def sample_rows(self, limit: int) -> list[tuple[int, str, str, str | None]]:
        return self.db.execute("SELECT idx, item_id, hash, row FROM items ORDER BY idx LIMIT ?", (limit,)).fetchall()

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "ok": 0, "failed": 0}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            out[status] = n
        return out

    def retry_failed(self) -> None:
        with self._tx():
            self.db.execute("DELETE FROM failures")
            self.db.execute("UPDATE items SET status='pending' WHERE status='failed'")
            self._mark_changed()

    # ------------------------------------------------------------------ sessions and requests

    def close_stale_sessions(self) -> int:
        """Sessions still 'running' belong to processes that died (the caller holds the run's
        lock): close them at their last sign of life, so wall time and rates stay true."""
        stale = [r[0] for r in self.db.execute("SELECT id FROM sessions WHERE outcome='running'")]
        if not stale:
            return 0
        with self._tx():
            self.db.executemany(
                "UPDATE sessions SET outcome='killed', ended=MAX(COALESCE(ended, started), "
                "COALESCE((SELECT MAX(COALESCE(ended, started)) FROM requests WHERE session=sessions.id), started)) "
                "WHERE id=?", [(s,) for s in stale])
            # Requests sent but never answered: the process died with them in flight.
            self.db.executemany("UPDATE requests SET outcome='unanswered' WHERE session=? AND outcome='sent'",
                                [(s,) for s in stale])
        return len(stale)

    def start_session(self) -> int:
        with self._tx():
            cur = self.db.execute("INSERT INTO sessions (started, outcome, pid) VALUES (?, 'running', ?)",
                                  (time.time(), os.getpid()))
        self.session = int(cur.lastrowid or 0)
        return self.session

    def end_session(self, outcome: str, *, requests: int = 0, rate_limited: int = 0, retries: int = 0) -> None:
        if self.session is None:
            return
        with self._tx():
            self.db.execute("UPDATE sessions SET ended=?, outcome=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (time.time(), outcome, requests, rate_limited, retries, self.session))
            # Requests still 'sent' were cut off (an interrupt): they went out, no answer was kept.
            self.db.execute("UPDATE requests SET outcome='unanswered' WHERE session=? AND outcome='sent'",
                            (self.session,))

    def _touch_session(self, counters: dict[str, int] | None) -> None:
        """Inside a transaction: the session's last sign of life (and API-call counters), so a
        killed run's report still has its wall time and calls."""
        if self.session is None:
            return
        if counters is None:
            self.db.execute("UPDATE sessions SET ended=? WHERE id=?", (time.time(), self.session))
        else:
            self.db.execute("UPDATE sessions SET ended=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (time.time(), counters.get("requests", 0), counters.get("rate_limited", 0),
                             counters.get("retries", 0), self.session))

    def request_sent(self, *, started: float, n_items: int) -> int:
        """A ledger line written before the request goes out: a kill cannot lose it."""
        with self._tx():
            cur = self.db.execute("INSERT INTO requests (session, started, n_items, outcome) VALUES (?, ?, ?, 'sent')",
                                  (self.session, started, n_items))
        return int(cur.lastrowid or 0)

    def record_request(self, *, started: float, item_ids: list[str], outcome: str, error: str | None,
                       usage: Usage | None, cost_usd: float | None,
                       ok: dict[str, tuple[Any, Usage, float | None]], failed: dict[str, tuple[str, str]],
                       requeued: Iterable[str] = (), request_id: int | None = None,
                       counters: dict[str, int] | None = None) -> int:
        """Everything one request produced, in one transaction: its ledger line (the one
        written when it was sent, completed), which items it carried, their results and failures."""
        with self._tx():
            if request_id is None:
                cur = self.db.execute(
                    "INSERT INTO requests (session, started, ended, n_items, outcome, error) VALUES (?, ?, ?, ?, ?, ?)",
                    (self.session, started, time.time(), len(item_ids), outcome, error))
                rid = int(cur.lastrowid or 0)
            else:
                rid = request_id
                self.db.execute("UPDATE requests SET ended=?, outcome=?, error=? WHERE id=?",
                                (time.time(), outcome, error, rid))
            if usage is not None:
                self.db.execute("INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?, ?, ?)",
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
            self._touch_session(counters)
        return rid

    def record_cached(self, ok: dict[str, tuple[Any, Usage, float | None]]) -> None:
        if not ok:
            return
        with self._tx():
            self._write_ok(ok, None, cached=True)

    def record_failures(self, failed: dict[str, tuple[str, str]]) -> None:
        """Failures decided before any request (too large, empty)."""
        if not failed:
            return
        with self._tx():
            self._write_failed(failed)

    def _write_ok(self, ok: dict[str, tuple[Any, Usage, float | None]], rid: int | None, *, cached: bool) -> None:
        if not ok:
            return
        self._mark_changed()
        self.db.executemany(
            "INSERT OR REPLACE INTO results (item_id, value, prompt_tokens, output_tokens, thoughts_tokens, cost_usd,"
            " cached, request_id, cached_tokens) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [(iid, json.dumps(v, ensure_ascii=False), u.prompt_tokens, u.output_tokens, u.thoughts_tokens, c,
              int(cached), rid, u.cached_tokens) for iid, (v, u, c) in ok.items()])
        self.db.executemany("UPDATE items SET status='ok' WHERE item_id=?", [(i,) for i in ok])
        self.db.executemany("DELETE FROM failures WHERE item_id=?", [(i,) for i in ok])

    def _write_failed(self, failed: dict[str, tuple[str, str]]) -> None:
        if not failed:
            return
        self._mark_changed()
        self.db.executemany(
            "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, "
            "(SELECT COUNT(*) FROM attempts WHERE attempts.item_id=?))",
            [(iid, reason, err, iid) for iid, (reason, err) in failed.items()])
        self.db.executemany("UPDATE items SET status='failed' WHERE item_id=?", [(i,) for i in failed])

    # ------------------------------------------------------------------ context caches

    def cache_event(self, event: str, name: str, tokens: int, at: float, expires: float, *, model: str = "",
                    prefix: str = "", input_per_m: float | None = None,
                    storage_per_m_hour: float | None = None) -> None:
        """A cache was created, extended (new expiry) or ended (deleted or found gone)."""
        with self._tx():
            if event == "created":
                self.db.execute("INSERT OR REPLACE INTO context_caches VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                                (name, model, prefix, tokens, at, expires, input_per_m, storage_per_m_hour))
            elif event == "extended":
                self.db.execute("UPDATE context_caches SET expires=? WHERE name=? AND ended IS NULL", (expires, name))
            else:
                self.db.execute("UPDATE context_caches SET ended=MIN(?, expires) WHERE name=? AND ended IS NULL",
                                (at, name))

    def live_caches(self) -> list[tuple[str, str, str, int, float]]:
        """Caches not known to be gone: (name, model, prefix digest, tokens, expires), newest first."""
        return [(str(n), str(m), str(p), int(t or 0), float(e or 0)) for n, m, p, t, e in self.db.execute(
            "SELECT name, model, prefix, tokens, expires FROM context_caches WHERE ended IS NULL "
            "ORDER BY created DESC")]

    def cache_costs(self) -> dict[str, Any]:
        """What the run's caches cost beyond its requests: creating them (their tokens at the input
        price) and storing them (token-hours at the storage price) until deleted, or, for one still
        alive, until its current expiry (what it costs if nobody deletes it)."""
        created = 0
        creation = storage = token_hours = 0.0
        unpriced = 0
        for tokens, start, expires, ended, in_rate, st_rate in self.db.execute(
                "SELECT tokens, created, expires, ended, input_per_m, storage_per_m_hour FROM context_caches"):
            created += 1
            hours = max((ended if ended is not None else expires) - start, 0.0) / 3600
            token_hours += (tokens or 0) * hours
            if in_rate is None or st_rate is None:
                unpriced += 1
                continue
            creation += (tokens or 0) * in_rate / 1e6
            storage += (tokens or 0) * st_rate / 1e6 * hours
        return {"created": created, "creation_usd": creation, "storage_usd": storage,
                "token_hours": token_hours, "unpriced": unpriced}

    # ------------------------------------------------------------------ reading back

    def record_tier(self, request_id: int, tier: str | None) -> None:
        """The service tier that answered a request (flex and batch runs)."""
        if tier is None:
            return
        with self._tx():
            self.db.execute("INSERT OR REPLACE INTO request_tiers VALUES (?, ?)", (request_id, tier))

    def spent_usd(self) -> float:
        return float(self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage").fetchone()[0])

    _ROWS = ("SELECT i.idx, i.item_id, i.status, i.row, r.value, r.prompt_tokens, r.output_tokens, r.thoughts_tokens,"
             " r.cost_usd, r.cached, f.reason, f.error, r.cached_tokens FROM items i LEFT JOIN results r ON r.item_id=i.item_id"
             " LEFT JOIN failures f ON f.item_id=i.item_id")

    def iter_rows(self, *, failed_only: bool = False) -> Iterator[StoredRow]:
        """Every item with its input row and outcome, in input order, streamed."""
        q = self._ROWS + (" WHERE i.status='failed'" if failed_only else "") + " ORDER BY i.idx"
        cur = self.db.execute(q)
        while True:
            batch = cur.fetchmany(1000)
            if not batch:
                return
            for idx, iid, status, row, value, pt, ot, tt, cost, cached, reason, error, ct in batch:
                usage = Usage(pt or 0, ot or 0, tt or 0, ct or 0, (pt or 0) + (ot or 0) + (tt or 0))
                # a result row with no cost: its model's price is unknown (NULL), not free
                price = None if (cost is None and pt is not None) else float(cost or 0.0)
                yield StoredRow(int(idx), _loads(row), StoredResult(iid, status, _loads(value), reason, error, usage,
                                                                    price, bool(cached)))

    def results(self) -> dict[str, StoredResult]:
        """Every item's state keyed by id (pending items included). In memory: for small runs
        (``map_items``); files stream with ``iter_rows``."""
        return {r.result.item_id: r.result for r in self.iter_rows()}

    def input_columns(self, sample: int = 1000) -> list[str]:
        """Input column names in first-seen order (recorded at ingest, else from the rows)."""
        recorded = self.get_meta("input_columns")
        if recorded is not None:
            return list(json.loads(recorded))
        seen: dict[str, None] = {}
        for (row,) in self.db.execute("SELECT row FROM items WHERE row IS NOT NULL ORDER BY idx LIMIT ?", (sample,)):
            seen.update(dict.fromkeys(json.loads(row)))
        return list(seen)

    # ------------------------------------------------------------------ the report's figures

    def ledger(self) -> dict[str, Any]:
        """Totals for the report, from the ledger tables alone."""
        db = self.db
        by_reason = {r: n for r, n in db.execute("SELECT reason, COUNT(*) FROM failures GROUP BY reason "
                                                 "ORDER BY 2 DESC")}
        pt, ot, tt, ct, cost = db.execute(
            "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(output_tokens),0), COALESCE(SUM(thoughts_tokens),0),"
            " COALESCE(SUM(cached_tokens),0), COALESCE(SUM(cost_usd),0) FROM usage").fetchone()
        requests = db.execute("SELECT COUNT(*) FROM requests WHERE outcome NOT IN ('parked', 'aborted')").fetchone()[0]
        unpriced = db.execute("SELECT COUNT(*) FROM usage WHERE cost_usd IS NULL").fetchone()[0]
        unanswered = db.execute("SELECT COUNT(*) FROM requests WHERE outcome IN ('sent', 'unanswered')").fetchone()[0]
        packed = db.execute("SELECT COUNT(*), COALESCE(SUM(n_items),0) FROM requests WHERE n_items > 1").fetchone()
        cached = db.execute("SELECT COUNT(*) FROM results WHERE cached=1").fetchone()[0]
        api_calls, limited, retries, wall, sessions = db.execute(
            "SELECT COALESCE(SUM(requests),0), COALESCE(SUM(rate_limited),0), COALESCE(SUM(retries),0),"
            " COALESCE(SUM(MAX(COALESCE(ended, started) - started, 0)),0), COUNT(*) FROM sessions").fetchone()
        killed = db.execute("SELECT COUNT(*) FROM sessions WHERE outcome='killed'").fetchone()[0]
        return {"failed_by_reason": by_reason, "tokens": (pt, ot, tt, ct), "cost_usd": float(cost),
                "unpriced_requests": int(unpriced),
                "requests": int(requests), "unanswered": int(unanswered), "packed": (int(packed[0]), int(packed[1])),
                "cached": int(cached), "api_calls": int(api_calls), "rate_limited": int(limited),
                "retries": int(retries), "wall_s": float(wall), "sessions": int(sessions), "killed": int(killed)}


def _chunks(rows: Iterable[tuple[int, str, str, str]], size: int) -> Iterator[list[tuple[int, str, str, str]]]:
    chunk: list[tuple[int, str, str, str]] = []
    for r in rows:
        chunk.append(r)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
