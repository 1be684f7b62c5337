"""The report's figures, added up from the ledger tables alone, so ``flashlane report`` works
on any run, finished, parked or killed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["TotalsRepo"]


class TotalsRepo:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def ledger(self) -> dict[str, Any]:
        """Totals for the report."""
        db = self.store.db
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

    def requests_by_tier(self) -> dict[str, int]:
        """Requests served at a service tier other than standard (flex, batch), by tier."""
        return {str(t): int(n) for t, n in self.store.db.execute(
            "SELECT tier, COUNT(*) FROM request_tiers GROUP BY tier ORDER BY tier")}
