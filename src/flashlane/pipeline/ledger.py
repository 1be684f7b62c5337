"""``Ledger``: a cluster run's ledger, a directory of run databases on a path every node reaches.

A cluster run (``flashlane.ray.map(..., ledger=DIR)``, ``flashlane run --ray``) cannot keep one
run database: its batches run at once in many processes on many machines, and the engine runs
every pending item of the store it is given. So each batch gets a run database of its own, in
``DIR``, named by the ids it runs (``batch-<sha256>.flashlane.db``), and goes through the same
engine and ledger as any run (``amap_items(run_db=...)``): a request is recorded before it is
sent and each row as it settles. What happens after a kill:

- the same batch again (Ray retries the task of a worker that died, or a rerun cuts the rows the
  same way): the same database, resumed: the rows that finished there are not asked again;
- any other batch: before it runs, every row that finished in any database of ``DIR`` is taken
  from there (``finished``), and only the rest is asked for.

So a finished row is never requested again, and a request sent is never forgotten: it stays in
the database of the batch that sent it, which ``flashlane report DIR`` adds up (``report``).
The files are SQLite (``store/``): the directory must be on a file system whose locks SQLite can
rely on (a local disk for a one-machine cluster; a POSIX shared file system across machines).
The lookup reads every database of ``DIR`` once per batch, which suits runs of up to a few
thousand batches.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..store.run import RunStore
from ..store.run.items import StoredRow
from .report import build_report, percentiles

__all__ = ["Ledger", "LEDGER_SUFFIX"]

LEDGER_SUFFIX = ".flashlane.db"
BATCH_PREFIX = "batch-"
# Hex digits of the ids' SHA-256 in a batch database's name: collisions need ~2^48 batches.
KEY_CHARS = 24
PENDING_CHUNK = 1_000  # pending rows looked up at a time (memory flat in rows)
NOT_A_LEDGER_HINT = "pass the ledger directory of a cluster run (flashlane.ray.map(..., ledger=DIR))"

# Summed over the batch databases as they are; the rest of a report is derived from these.
_SUMMED = ("items", "failed_by_reason", "tokens", "unpriced_requests", "requests", "unanswered_requests",
           "lost_answers", "paid_twice", "batch_in_flight", "packed_requests", "requests_by_tier", "api_calls",
           "rate_limited", "retries", "sessions", "killed_sessions", "resent_items", "wall_time_s")


class Ledger:
    """``key``: the run's ``api.job_key`` (what decides the answers); a batch database of another
    key in the same directory is refused, never read for answers. None: any (``flashlane report``)."""

    def __init__(self, path: str | Path, key: str | None = None) -> None:
        self.path, self.key = Path(path), key

    def batch_db(self, ids: list[str]) -> Path:
        """The run database of the batch of these ids (in this order): the same ids, the same file."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = hashlib.sha256("\0".join(ids).encode()).hexdigest()[:KEY_CHARS]
        return self.path / f"{BATCH_PREFIX}{key}{LEDGER_SUFFIX}"

    def databases(self) -> list[Path]:
        return sorted(self.path.glob(f"*{LEDGER_SUFFIX}")) if self.path.is_dir() else []

    def _stores(self, *, all_readable: bool = False) -> Iterator[RunStore]:
        for db in self.databases():
            try:
                store = RunStore(db, create=False)
            except InputError:
                if all_readable:  # a report must not leave a database out
                    raise
                continue  # being created by another process this moment: nothing finished in it yet
            try:
                found = store.metadata.get("job_key")
                if self.key is not None and found is not None and found != self.key:
                    raise InputError(f"the ledger {self.path} holds a run with other settings (task, options, model)",
                                     hint="use another ledger directory for another run")
                yield store
            finally:
                store.close()

    def finished(self, ids: list[str]) -> dict[str, StoredRow]:
        """The rows among ``ids`` that finished in any batch database (ok or failed)."""
        found: dict[str, StoredRow] = {}
        for store in self._stores():
            rest = [i for i in ids if i not in found]
            if not rest:
                break
            found.update((r.result.item_id, r) for r in store.items.finished_by_id(rest))
        return found

    def report(self) -> dict[str, Any]:
        """``flashlane report DIR``: the batch databases' reports added up."""
        reports: list[dict[str, Any]] = []
        latencies: list[float] = []  # every item's: a cluster report is O(rows) here still (the run's own is not)
        for store in self._stores(all_readable=True):
            if sum(store.items.counts().values()):
                reports.append(build_report(store))
                latencies += store.totals.item_latencies()[1]
        if not reports:
            raise InputError(f"{self.path} holds no batch databases of a cluster run", hint=NOT_A_LEDGER_HINT)
        return merge_reports(str(self.path), reports, latencies, self._still_pending())

    def _still_pending(self) -> int:
        """Rows pending in a batch database (a killed batch's) that no other one finished."""
        n = 0
        for store in self._stores(all_readable=True):
            after = -1
            while chunk := store.items.pending_after(after, PENDING_CHUNK):
                after = chunk[-1][0]
                ids = [iid for _, iid, _, _ in chunk]
                n += len(ids) - len(self.finished(ids))
        return n


def merge_reports(where: str, reports: list[dict[str, Any]], latencies: list[float], pending: int) -> dict[str, Any]:
    """The batch databases' reports as one: a row counts once (finished in one database, or
    pending in none but a killed batch's), the ledgers' requests and money add up."""
    out: dict[str, Any] = {k: reports[0].get(k) for k in ("task", "model", "limits", "input", "output")}
    for k in _SUMMED:
        out[k] = _sum([r[k] for r in reports])
    out["items"].update(pending=pending, total=out["items"]["ok"] + out["items"]["failed"] + pending)
    out["wall_time_s"] = round(out["wall_time_s"], 3)
    costs = [r["cost_usd"] for r in reports]
    cost = None if any(c is None for c in costs) else round(sum(costs), 8)
    it = out["items"]
    done = it["ok"] + it["failed"]
    packed_items = sum((r["items_per_packed_request"] or 0) * r["packed_requests"] for r in reports)
    status = "done" if not it["pending"] else "unfinished"
    out.update({
        "run_db": where,
        "status": status,
        "batch_databases": len(reports),
        "context_cache": None,  # per batch database; not added up across a cluster run
        "cost_usd": cost,
        "items_per_packed_request": round(packed_items / out["packed_requests"], 2) if out["packed_requests"] else None,
        # wall_time_s adds the batches' own times (they overlap on a cluster): busy time, not elapsed
        "items_per_minute": None,
        "cost_per_1000_items_usd": round(cost / done * 1000, 6) if done and cost is not None else None,
        "latency_per_item_s": percentiles(latencies),
    })
    return out


def _sum(values: list[Any]) -> Any:
    if all(isinstance(v, dict) for v in values):
        keys = dict.fromkeys(k for v in values for k in v)
        return {k: _sum([v[k] for v in values if k in v]) for k in keys}
    return sum(v or 0 for v in values)
