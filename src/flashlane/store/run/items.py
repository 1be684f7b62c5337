"""The run's items (``items``, with their ``results`` and ``failures`` read back): inserted in
chunks by the reader, pulled in bounded windows by the engine, streamed back in input order by
the writers, so a run's memory does not grow with its rows."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from ...models import Usage
from .repos import Repo

__all__ = ["IN_BATCH_JOBS", "IN_LIVE_REQUESTS", "INSERT_CHUNK", "ItemsRepo", "StoredResult", "StoredRow", "ItemRow"]

INSERT_CHUNK = 5_000  # rows per executemany: big enough to amortise, small enough to stay flat
READ_CHUNK = 1_000  # rows fetched at a time while streaming the output

ItemRow = tuple[int, str, str, str]  # (idx, item_id, hash, row as JSON)
# Items in flight on each tier (the per-key state both runners read before sending): those of a batch
# job not yet collected, and those of a live request sent and not yet answered in this run's session.
IN_BATCH_JOBS = ("SELECT bi.item_id FROM batch_items bi JOIN batch_jobs bj ON bj.id=bi.job_id "
                 "WHERE bj.collected=0")
IN_LIVE_REQUESTS = ("SELECT a.item_id FROM attempts a JOIN requests r ON r.id=a.request_id "
                    "WHERE r.outcome='sent' AND a.outcome='sent'")


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
    evidence: dict[str, Any] | None = None  # a grounded answer's sources, citations, search queries
    provenance: dict[str, Any] | None = None  # where each value was found (None: not asked for)
    service_tier: str | None = None  # the tier recorded for its request (flex, batch, priority; None: standard or none)
    request_id: int | None = None  # the request that answered it (None: the response cache, or not answered)


@dataclass(frozen=True)
class StoredRow:
    """One item as the output needs it: its input row and how it ended."""

    index: int
    row: dict[str, Any] | None  # None for items of a run made before rows were kept
    result: StoredResult


def _loads(value: str | None) -> Any:
    return json.loads(value) if value is not None else None


_ROWS = ("SELECT i.idx, i.item_id, i.status, i.row, r.value, r.prompt_tokens, r.output_tokens, r.thoughts_tokens,"
         " r.cost_usd, r.cached, f.reason, f.error, r.cached_tokens, r.evidence,"
         " r.provenance, r.request_id, t.tier FROM items i LEFT JOIN results r ON r.item_id=i.item_id"
         " LEFT JOIN request_tiers t ON t.request_id=r.request_id"
         " LEFT JOIN failures f ON f.item_id=i.item_id")


class ItemsRepo(Repo):
    def has_work(self) -> bool:
        """Has anything been paid for or finished? A run with neither can be replaced freely."""
        db = self.db
        finished = db.execute("SELECT 1 FROM items WHERE status != 'pending' LIMIT 1").fetchone()
        paid = db.execute("SELECT 1 FROM usage LIMIT 1").fetchone()
        # A batch job recorded (even one not yet answered) may be paid for: never forget it.
        batched = db.execute("SELECT 1 FROM batch_jobs LIMIT 1").fetchone()
        return finished is not None or paid is not None or batched is not None

    def insert(self, rows: Iterable[ItemRow], on_duplicate: Callable[[str, int, int], Exception]) -> int:
        """Insert ``(idx, item_id, hash, row_json)`` in chunks (one transaction each). An id
        already present becomes ``on_duplicate(item_id, earlier_idx, idx)``, raised."""
        n = 0
        for chunk in _chunks(rows, INSERT_CHUNK):
            try:
                with self.store.transaction():
                    self.db.executemany("INSERT INTO items (idx, item_id, hash, row) VALUES (?, ?, ?, ?)", chunk)
            except sqlite3.IntegrityError:
                raise self._duplicate("items", chunk, on_duplicate) or InputError(
                    "two rows share an id", hint="ids must be unique") from None
            n += len(chunk)
        self.store.mark_changed()
        return n

    def _duplicate(self, table: str, chunk: list[ItemRow],
                   on_duplicate: Callable[[str, int, int], Exception]) -> Exception | None:
        """The error for the first id of ``chunk`` seen before (in ``table`` or earlier in the chunk)."""
        seen: dict[str, int] = {}
        for idx, iid, _, _ in chunk:
            earlier = seen.get(iid)
            if earlier is None:
                row = self.db.execute(f"SELECT idx FROM {table} WHERE item_id=?", (iid,)).fetchone()  # noqa: S608
                earlier = None if row is None else int(row[0])
            if earlier is not None:
                return on_duplicate(iid, earlier, idx)
            seen[iid] = idx
        return None

    def stage(self, rows: Iterable[ItemRow], on_duplicate: Callable[[str, int, int], Exception]) -> None:
        """The input read again on resume: kept aside until its fingerprint is checked."""
        db = self.db
        db.execute("DROP TABLE IF EXISTS temp.incoming")
        db.execute("CREATE TEMP TABLE incoming (idx INTEGER PRIMARY KEY, item_id TEXT UNIQUE, row TEXT)")
        for chunk in _chunks(rows, INSERT_CHUNK):
            try:
                with self.store.transaction():
                    db.executemany("INSERT INTO temp.incoming VALUES (?, ?, ?)",
                                   [(idx, iid, row) for idx, iid, _, row in chunk])
            except sqlite3.IntegrityError:
                err = self._duplicate("temp.incoming", chunk, on_duplicate)
                if err is not None:
                    raise err from None
                raise

    def adopt_staged(self) -> None:
        """The staged input matched the run: its rows (every column) replace the stored ones."""
        with self.store.transaction():
            self.db.execute("UPDATE items SET row = (SELECT row FROM temp.incoming i WHERE i.idx = items.idx)")
        self.drop_staged()

    def drop_staged(self) -> None:
        self.db.execute("DROP TABLE IF EXISTS temp.incoming")

    def pending_after(self, after: int, limit: int) -> list[tuple[int, str, str, str | None]]:
        """The next ``limit`` pending items after position ``after``: (idx, item_id, hash, row). An item
        carried by a batch job not yet collected is in flight on the batch tier: it is never handed
        to a live request (a key is never in flight on two tiers at once; issue 26)."""
        return self.db.execute("SELECT idx, item_id, hash, row FROM items WHERE idx > ? AND status = 'pending' "
                               f"AND item_id NOT IN ({IN_BATCH_JOBS}) ORDER BY idx LIMIT ?", (after, limit)).fetchall()

    def sample(self, limit: int) -> list[tuple[int, str, str, str | None]]:
        return self.db.execute("SELECT idx, item_id, hash, row FROM items ORDER BY idx LIMIT ?",
                                     (limit,)).fetchall()

    def rows_by_id(self, ids: list[str]) -> dict[str, tuple[int, Any]]:
        """``{item_id: (idx, input row)}`` for the given ids (a batch job's items, restored)."""
        marks = ",".join("?" * len(ids))
        return {iid: (int(idx), _loads(row)) for idx, iid, row in self.db.execute(
            f"SELECT idx, item_id, row FROM items WHERE item_id IN ({marks})", ids)}  # noqa: S608

    def counts(self) -> dict[str, int]:
        out = {"pending": 0, "ok": 0, "failed": 0}
        for status, n in self.db.execute("SELECT status, COUNT(*) FROM items GROUP BY status"):
            out[status] = n
        return out

    def retry_failed(self) -> None:
        with self.store.transaction():
            self.db.execute("DELETE FROM failures")
            self.db.execute("UPDATE items SET status='pending' WHERE status='failed'")
            self.store.mark_changed()

    def iter_rows(self, *, failed_only: bool = False, start: int = 0, limit: int = -1) -> Iterator[StoredRow]:
        """Every item with its input row and outcome, in input order, streamed (from input
        position ``start``, at most ``limit`` of them)."""
        q = _ROWS + " WHERE i.idx >= ?" + (" AND i.status='failed'" if failed_only else "") + " ORDER BY i.idx LIMIT ?"
        return _stored_rows(self.db.execute(q, (start, limit)))

    def finished_by_id(self, ids: list[str]) -> Iterator[StoredRow]:
        """The items among ``ids`` that finished (ok or failed), with their input rows and outcomes:
        what a cluster run's ledger hands back instead of asking again (``pipeline.ledger``)."""
        for start in range(0, len(ids), READ_CHUNK):
            chunk = ids[start:start + READ_CHUNK]
            marks = ",".join("?" * len(chunk))
            yield from _stored_rows(self.db.execute(
                _ROWS + f" WHERE i.item_id IN ({marks}) AND i.status != 'pending'", chunk))  # noqa: S608

    def results(self) -> dict[str, StoredResult]:
        """Every item's state keyed by id (pending items included). In memory: for small runs
        (``map_items``); files stream with ``iter_rows``."""
        return {r.result.item_id: r.result for r in self.iter_rows()}

    def input_columns(self, sample: int = 1000) -> list[str]:
        """Input column names in first-seen order (recorded at ingest, else from the rows)."""
        recorded = self.store.metadata.get("input_columns")
        if recorded is not None:
            return list(json.loads(recorded))
        seen: dict[str, None] = {}
        for (row,) in self.db.execute("SELECT row FROM items WHERE row IS NOT NULL ORDER BY idx LIMIT ?",
                                            (sample,)):
            seen.update(dict.fromkeys(json.loads(row)))
        return list(seen)


def _stored_rows(cur: sqlite3.Cursor) -> Iterator[StoredRow]:
    while True:
        batch = cur.fetchmany(READ_CHUNK)
        if not batch:
            return
        for idx, iid, status, row, value, pt, ot, tt, cost, cached, reason, error, ct, ev, prov, rid, tier in batch:
            usage = Usage(pt or 0, ot or 0, tt or 0, ct or 0, (pt or 0) + (ot or 0) + (tt or 0))
            # a result row with no cost: its model's price is unknown (NULL), not free
            price = None if (cost is None and pt is not None) else float(cost or 0.0)
            yield StoredRow(int(idx), _loads(row), StoredResult(iid, status, _loads(value), reason, error, usage,
                                                                price, bool(cached), _loads(ev), _loads(prov),
                                                                tier, rid))


def _chunks(rows: Iterable[ItemRow], size: int) -> Iterator[list[ItemRow]]:
    it = iter(rows)
    return iter(lambda: list(itertools.islice(it, size)), [])
