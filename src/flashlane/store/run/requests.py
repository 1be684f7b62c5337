"""The request ledger (``requests``, ``attempts``, ``usage``, ``request_tiers``) and the results
and failures each request settles, one transaction per request, so a kill loses at most the
answers of the requests in flight and the cost is exact per request."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any, NamedTuple

from ...models import Usage
from .repos import Repo

__all__ = ["RequestsRepo", "Answer", "Answered", "Failed"]


class Answer(NamedTuple):
    """One item's settled answer (a plain ``(value, usage, cost)`` tuple is one without evidence
    or provenance)."""

    value: Any  # the task's finished value as JSON data
    usage: Usage  # its share of the request's usage
    cost: float | None  # its share of the request's cost
    evidence: dict[str, Any] | None = None  # a grounded answer's sources, citations, search queries
    provenance: dict[str, Any] | None = None  # where each value was found in the item (field path -> where)


Answered = dict[str, Answer]  # item_id -> its answer
Failed = dict[str, tuple[str, str]]  # item_id -> (reason, error)


class RequestsRepo(Repo):
    def sent(self, *, started: float, item_ids: list[str], max_cost_usd: float | None) -> int:
        """A ledger line written before the request goes out, with the items it carries and the most
        it can cost: a kill cannot lose it, and a lost answer is still counted (``TotalsRepo.lost``)."""
        with self.store.transaction():
            cur = self.db.execute(
                "INSERT INTO requests (session, started, n_items, outcome, max_cost_usd) VALUES (?, ?, ?, 'sent', ?)",
                (self.store.session, started, len(item_ids), max_cost_usd))
            rid = int(cur.lastrowid or 0)
            self.db.executemany("INSERT INTO attempts VALUES (?, ?, 'sent', NULL)", [(rid, i) for i in item_ids])
        return rid

    def record(self, *, started: float, item_ids: list[str], outcome: str, error: str | None,
               usage: Usage | None, cost_usd: float | None, ok: Answered, failed: Failed,
               requeued: Iterable[str] = (), request_id: int | None = None,
               counters: dict[str, int] | None = None, attempts: int | None = None, tier: str | None = None) -> int:
        """Everything one request produced, in one transaction: its ledger line (the one
        written when it was sent, completed), which items it carried, their results and failures,
        and the service tier that answered it (``tier``: flex, batch; none recorded means standard)."""
        db = self.db
        requeued = set(requeued)
        outcomes: list[tuple[str, str | None, str]] = []  # (outcome, error, item id)
        for iid in item_ids:
            if iid in ok:
                outcomes.append(("ok", None, iid))
            elif iid in failed:
                outcomes.append(("failed", failed[iid][1], iid))
            else:
                outcomes.append(("requeued" if iid in requeued else outcome, error, iid))
        with self.store.transaction():
            if request_id is None:
                cur = db.execute(
                    "INSERT INTO requests (session, started, ended, n_items, outcome, error, attempts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (self.store.session, started, self.store.now(), len(item_ids), outcome, error, attempts))
                rid = int(cur.lastrowid or 0)
                db.executemany("INSERT INTO attempts VALUES (?, ?, ?, ?)", [(rid, i, o, e) for o, e, i in outcomes])
            else:
                rid = request_id
                db.execute("UPDATE requests SET ended=?, outcome=?, error=?, attempts=? WHERE id=?",
                           (self.store.now(), outcome, error, attempts, rid))
                # The 'sent' rows written with the request, settled in place (no index entry changes).
                db.executemany("UPDATE attempts SET outcome=?, error=? WHERE request_id=? AND item_id=?",
                               [(o, e, rid, i) for o, e, i in outcomes])
            if usage is not None:
                db.execute("INSERT OR REPLACE INTO usage VALUES (?, ?, ?, ?, ?, ?)",
                           (rid, usage.prompt_tokens, usage.output_tokens, usage.thoughts_tokens,
                            usage.cached_tokens, cost_usd))
            if tier is not None:
                db.execute("INSERT OR REPLACE INTO request_tiers VALUES (?, ?)", (rid, tier))
            self._write_ok(ok, rid, cached=False)
            self._write_failed(failed)
            self.store.sessions.touch(counters)
        return rid

    def record_cached(self, ok: Answered) -> None:
        """Answers from the response cache: results with no request."""
        if not ok:
            return
        with self.store.transaction():
            self._write_ok(ok, None, cached=True)

    def record_failures(self, failed: Failed) -> None:
        """Failures decided before any request (too large, empty)."""
        if not failed:
            return
        with self.store.transaction():
            self._write_failed(failed)

    def spent_usd(self) -> float:
        return float(self.db.execute("SELECT COALESCE(SUM(cost_usd), 0) FROM usage").fetchone()[0])

    def _write_ok(self, ok: Answered, rid: int | None, *, cached: bool) -> None:
        self._settle("ok", ok, "INSERT OR REPLACE INTO results (item_id, value, prompt_tokens, output_tokens, "
                     "thoughts_tokens, cost_usd, cached, request_id, cached_tokens, evidence, provenance) "
                     "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     [(iid, json.dumps(a.value, ensure_ascii=False), a.usage.prompt_tokens, a.usage.output_tokens,
                       a.usage.thoughts_tokens, a.cost, int(cached), rid, a.usage.cached_tokens,
                       None if a.evidence is None else json.dumps(a.evidence, ensure_ascii=False),
                       None if a.provenance is None else json.dumps(a.provenance, ensure_ascii=False))
                      for iid, a in ((i, Answer(*t)) for i, t in ok.items())])
        if ok:
            self.db.executemany("DELETE FROM failures WHERE item_id=?", [(i,) for i in ok])

    def _write_failed(self, failed: Failed) -> None:
        self._settle("failed", failed, "INSERT OR REPLACE INTO failures VALUES (?, ?, ?, "
                     "(SELECT COUNT(*) FROM attempts WHERE attempts.item_id=?))",
                     [(iid, reason, err, iid) for iid, (reason, err) in failed.items()])

    def _settle(self, status: str, ids: Iterable[str], sql: str, rows: list[tuple[Any, ...]]) -> None:
        """Write the items' result or failure rows and their new status (inside a transaction)."""
        if not rows:
            return
        self.store.mark_changed()
        self.db.executemany(sql, rows)
        self.db.executemany("UPDATE items SET status=? WHERE item_id=?", [(status, i) for i in ids])
