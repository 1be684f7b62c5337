"""The run's small repositories, and ``Repo``, the base every repository of ``RunStore`` shares:
``meta`` (the run's facts), ``sessions`` (one per invocation), ``context_caches`` and the
report's totals."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["Repo", "MetaRepo", "SessionsRepo", "ContextCachesRepo", "TotalsRepo"]

# Requests still 'sent' when their session ends went out and no answer was kept.
_UNANSWERED = "UPDATE requests SET outcome='unanswered' WHERE session=? AND outcome='sent'"


class Repo:
    """One concern's tables, on the store's connection."""

    def __init__(self, store: RunStore) -> None:
        self.store = store
        self.db = store.db


class MetaRepo(Repo):
    """The run's key/value facts (``meta``): fingerprint, task, model, status, output signature."""

    def get(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set(self, **values: Any) -> None:
        """Text as it is, anything else as JSON."""
        with self.store.transaction():
            self.db.executemany("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                                [(k, v if isinstance(v, str) else json.dumps(v)) for k, v in values.items()])

    def all(self) -> dict[str, str]:
        return {k: v for k, v in self.db.execute("SELECT key, value FROM meta")}

    def forget_output(self) -> None:
        """The output on disk no longer matches the items (inside the caller's transaction when in one)."""
        self.db.execute("DELETE FROM meta WHERE key='output_sig'")

    def clear(self) -> None:
        """Everything but the schema version (inside the caller's transaction)."""
        self.db.execute("DELETE FROM meta WHERE key != 'schema_version'")


class SessionsRepo(Repo):
    """One row per ``flashlane run`` invocation (``sessions``): its wall time, outcome and API-call
    counters, kept current so a killed run's report still has them."""

    def close_stale(self) -> int:
        """Sessions still 'running' belong to processes that died (the caller holds the run's
        lock): close them at their last sign of life, so wall time and rates stay true."""
        stale = [(r[0],) for r in self.db.execute("SELECT id FROM sessions WHERE outcome='running'")]
        if not stale:
            return 0
        with self.store.transaction():
            self.db.executemany(
                "UPDATE sessions SET outcome='killed', ended=MAX(COALESCE(ended, started), "
                "COALESCE((SELECT MAX(COALESCE(ended, started)) FROM requests WHERE session=sessions.id), started)) "
                "WHERE id=?", stale)
            self.db.executemany(_UNANSWERED, stale)  # the process died with them in flight
        return len(stale)

    def start(self) -> int:
        with self.store.transaction():
            cur = self.db.execute("INSERT INTO sessions (started, outcome, pid) VALUES (?, 'running', ?)",
                                  (self.store.now(), os.getpid()))
        self.store.session = int(cur.lastrowid or 0)
        return self.store.session

    def end(self, outcome: str, *, requests: int = 0, rate_limited: int = 0, retries: int = 0) -> None:
        session = self.store.session
        if session is None:
            return
        with self.store.transaction():
            self.db.execute("UPDATE sessions SET ended=?, outcome=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (self.store.now(), outcome, requests, rate_limited, retries, session))
            self.db.execute(_UNANSWERED, (session,))  # cut off by an interrupt

    def touch(self, counters: dict[str, int] | None) -> None:
        """Inside a transaction: the session's last sign of life (and API-call counters)."""
        session = self.store.session
        if session is None:
            return
        if counters is None:
            self.db.execute("UPDATE sessions SET ended=? WHERE id=?", (self.store.now(), session))
        else:
            self.db.execute("UPDATE sessions SET ended=?, requests=?, rate_limited=?, retries=? WHERE id=?",
                            (self.store.now(), counters.get("requests", 0), counters.get("rate_limited", 0),
                             counters.get("retries", 0), session))


class ContextCachesRepo(Repo):
    """The run's explicit context caches (``context_caches``): made, extended, deleted or found gone,
    so a resumed run reuses a live one and the report charges their creation and storage."""

    def event(self, event: str, name: str, tokens: int, at: float, expires: float, *, model: str = "",
              prefix: str = "", input_per_m: float | None = None, storage_per_m_hour: float | None = None) -> None:
        """A cache was created, extended (new expiry) or ended (deleted or found gone)."""
        db = self.db
        with self.store.transaction():
            if event == "created":
                db.execute("INSERT OR REPLACE INTO context_caches VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                           (name, model, prefix, tokens, at, expires, input_per_m, storage_per_m_hour))
            elif event == "extended":
                db.execute("UPDATE context_caches SET expires=? WHERE name=? AND ended IS NULL", (expires, name))
            else:
                db.execute("UPDATE context_caches SET ended=MIN(?, expires) WHERE name=? AND ended IS NULL",
                           (at, name))

    def live(self) -> list[tuple[str, str, str, int, float]]:
        """Caches not known to be gone: (name, model, prefix digest, tokens, expires), newest first."""
        return [(str(n), str(m), str(p), int(t or 0), float(e or 0)) for n, m, p, t, e in self.db.execute(
            "SELECT name, model, prefix, tokens, expires FROM context_caches WHERE ended IS NULL "
            "ORDER BY created DESC")]

    def costs(self) -> dict[str, Any]:
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


_ITEM_LATENCIES = (" FROM results s JOIN requests r ON r.id = s.request_id LEFT JOIN request_tiers t ON t.request_id = r.id"
                   " WHERE r.ended IS NOT NULL AND COALESCE(t.tier, '') != 'batch'")


class TotalsRepo(Repo):
    """The report's figures, added up from the ledger tables alone, so ``flashlane report`` works
    on any run, finished, parked or killed."""

    def ledger(self) -> dict[str, Any]:
        """Totals for the report."""
        db = self.db
        by_reason = {r: n for r, n in db.execute("SELECT reason, COUNT(*) FROM failures GROUP BY reason "
                                                 "ORDER BY 2 DESC")}
        pt, ot, tt, ct, cost = db.execute(
            "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(output_tokens),0), COALESCE(SUM(thoughts_tokens),0),"
            " COALESCE(SUM(cached_tokens),0), COALESCE(SUM(cost_usd),0) FROM usage").fetchone()
        requests = db.execute("SELECT COUNT(*) FROM requests WHERE outcome NOT IN ('parked', 'aborted', 'stopped')").fetchone()[0]
        unpriced = db.execute("SELECT COUNT(*) FROM usage WHERE cost_usd IS NULL").fetchone()[0]
        unanswered = db.execute("SELECT COUNT(*) FROM requests WHERE outcome IN ('sent', 'unanswered')").fetchone()[0]
        packed = db.execute("SELECT COUNT(*), COALESCE(SUM(n_items),0) FROM requests WHERE n_items > 1").fetchone()
        cached = db.execute("SELECT COUNT(*) FROM results WHERE cached=1").fetchone()[0]
        # A killed session's API-call counter stops at its last recorded answer; every request it
        # wrote to the ledger (batch ones aside: those are jobs, not calls) was at least one call.
        api_calls, limited, retries, wall, sessions = db.execute(
            "SELECT COALESCE(SUM(MAX(requests, (SELECT COUNT(*) FROM requests r LEFT JOIN request_tiers t ON "
            "t.request_id=r.id WHERE r.session=sessions.id AND COALESCE(t.tier, '') != 'batch'))),0),"
            " COALESCE(SUM(rate_limited),0), COALESCE(SUM(retries),0),"
            " COALESCE(SUM(MAX(COALESCE(ended, started) - started, 0)),0), COUNT(*) FROM sessions").fetchone()
        killed = db.execute("SELECT COUNT(*) FROM sessions WHERE outcome='killed'").fetchone()[0]
        return {"failed_by_reason": by_reason, "tokens": (pt, ot, tt, ct), "cost_usd": float(cost),
                "unpriced_requests": int(unpriced),
                "requests": int(requests), "unanswered": int(unanswered), "packed": (int(packed[0]), int(packed[1])),
                "cached": int(cached), "api_calls": int(api_calls), "rate_limited": int(limited),
                "retries": int(retries), "wall_s": float(wall), "sessions": int(sessions), "killed": int(killed)}

    def item_latencies(self) -> tuple[int, Iterator[float]]:
        """Seconds from send to answer of the request that answered each item (one per answered
        item; answers from the response cache and batch jobs have no request time and are left out):
        how many, and the values in ascending order, streamed (SQLite sorts them, spilling to disk
        past its cache), so a million rows' percentiles hold two values, not a million."""
        n = int(self.db.execute("SELECT COUNT(*)" + _ITEM_LATENCIES).fetchone()[0])
        return n, (float(d) for (d,) in self.db.execute("SELECT r.ended - r.started" + _ITEM_LATENCIES + " ORDER BY 1"))

    def reasked_requests(self) -> int:
        """Answered requests the answer judge asked more than once (a re-ask after invalid JSON, a
        retry with a larger output cap); requests recorded before v8 have no count."""
        return int(self.db.execute("SELECT COUNT(*) FROM requests WHERE attempts > 1").fetchone()[0])

    def resent_items(self) -> int:
        """Items that rode in more than one request (requeued after a failed or split request, or
        asked again): the run-level re-asks the ledger can see."""
        return int(self.db.execute(
            "SELECT COUNT(*) FROM (SELECT item_id FROM attempts GROUP BY item_id HAVING COUNT(DISTINCT request_id) > 1)"
        ).fetchone()[0])

    def lost(self) -> dict[str, Any]:
        """Requests sent whose answer was never recorded (a kill, or a drain that ran out of time):
        the server served and billed them, so the report counts them. Each costs what the same
        items cost when a later request answered exactly them (the same question, the same price),
        else its items' shares of their later answers, else the most it could cost (written when it
        was sent). Paid twice: those whose items a later answered request carried again."""
        db = self.db
        carried: dict[int, list[str]] = {}
        bound: dict[int, float] = {}
        for rid, max_cost, iid in db.execute(
                "SELECT r.id, r.max_cost_usd, a.item_id FROM requests r LEFT JOIN attempts a ON a.request_id=r.id "
                "WHERE r.outcome IN ('sent', 'unanswered') ORDER BY r.id"):
            bound[rid] = float(max_cost or 0.0)
            if iid is not None:
                carried.setdefault(rid, []).append(str(iid))
        estimate = twice_usd = 0.0
        twice_requests = twice_items = 0
        for rid, most in bound.items():
            ids = carried.get(rid, [])
            later = self._answered_again(rid, ids)
            cost = self._same_question(rid, ids)
            if cost is None:
                shares = [db.execute("SELECT cost_usd FROM results WHERE item_id=? AND request_id IS NOT NULL",
                                     (i,)).fetchone() for i in ids]
                known = ids and all(s is not None and s[0] is not None for s in shares)
                cost = sum(float(s[0]) for s in shares if s is not None) if known else most
            estimate += cost
            if later:
                twice_requests += 1
                twice_items += len(later)
                twice_usd += cost
        return {"requests": len(bound), "estimated_usd": estimate, "max_usd": sum(bound.values()),
                "paid_twice": {"requests": twice_requests, "items": twice_items, "usd": twice_usd}}

    def _answered_again(self, rid: int, ids: list[str]) -> set[str]:
        """Items of request ``rid`` that a later request carried and got an answer for."""
        return {str(i) for (i,) in self.db.execute(
            "SELECT DISTINCT a.item_id FROM attempts a JOIN requests r ON r.id=a.request_id WHERE a.request_id > ? "
            f"AND r.outcome NOT IN ('sent', 'unanswered', 'parked', 'aborted', 'stopped') AND a.item_id IN ({','.join('?' * len(ids))})",
            (rid, *ids))} if ids else set()

    def _same_question(self, rid: int, ids: list[str]) -> float | None:
        """The recorded cost of the first later request that carried exactly ``ids``, if one did."""
        if not ids:
            return None
        for (other,) in self.db.execute(
                "SELECT a.request_id FROM attempts a JOIN usage u ON u.request_id=a.request_id "
                "WHERE a.item_id=? AND a.request_id > ? ORDER BY a.request_id", (ids[0], rid)):
            same = [str(i) for (i,) in self.db.execute("SELECT item_id FROM attempts WHERE request_id=?", (other,))]
            if sorted(same) == sorted(ids):
                row = self.db.execute("SELECT cost_usd FROM usage WHERE request_id=?", (other,)).fetchone()
                return None if row is None or row[0] is None else float(row[0])
        return None

    def requests_by_tier(self) -> dict[str, int]:
        """Requests served at a service tier other than standard (flex, batch), by tier."""
        return {str(t): int(n) for t, n in self.db.execute(
            "SELECT tier, COUNT(*) FROM request_tiers GROUP BY tier ORDER BY tier")}

    def rows_by_tier(self) -> dict[str, int]:
        """Answered rows by the tier that answered them (standard where no tier was recorded); rows
        from the response cache are ``cache``."""
        return {str(t): int(n) for t, n in self.db.execute(
            "SELECT CASE WHEN r.request_id IS NULL THEN 'cache' ELSE COALESCE(t.tier, 'standard') END, COUNT(*) "
            "FROM results r LEFT JOIN request_tiers t ON t.request_id=r.request_id GROUP BY 1 ORDER BY 1")}

    def tier_history(self) -> dict[str, dict[str, float]]:
        """What the run's answered live requests did per tier (requests, items, their span and median
        latency in seconds) and its collected batch jobs (jobs, median turnaround): the planner's
        measured throughput. Spans that are not positive (clocks that do not agree) are left out."""
        out: dict[str, dict[str, float]] = {}
        rows = self.db.execute(
            "SELECT COALESCE(t.tier, 'standard'), COUNT(*), SUM(r.n_items), MAX(r.ended) - MIN(r.started) "
            "FROM requests r LEFT JOIN request_tiers t ON t.request_id=r.id WHERE r.outcome='ok' AND "
            "r.ended > r.started AND COALESCE(t.tier, '') != 'batch' GROUP BY 1").fetchall()
        for tier, n, items, span in rows:
            lat = [float(d) for (d,) in self.db.execute(
                "SELECT r.ended - r.started FROM requests r LEFT JOIN request_tiers t ON t.request_id=r.id "
                "WHERE r.outcome='ok' AND r.ended > r.started AND COALESCE(t.tier, 'standard')=? "
                "ORDER BY 1", (tier,))]
            out[str(tier)] = {"requests": float(n), "items": float(items or 0), "span_s": float(span or 0),
                              "latency_s": lat[len(lat) // 2] if lat else 0.0}
        turn = [float(d) for (d,) in self.db.execute(
            "SELECT updated - created FROM batch_jobs WHERE collected=1 AND state LIKE '%SUCCEEDED' "
            "AND updated > created ORDER BY 1")]
        if turn:
            out["batch"] = {"jobs": float(len(turn)), "turnaround_s": turn[len(turn) // 2]}
        return out

