"""The run report: what a run did and cost, read back from its database alone, so
``flashlane report RUN_DB`` works on any run, finished, parked or killed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from .store import RunStore

__all__ = ["build_report", "format_report", "load_report"]


def build_report(store: RunStore) -> dict[str, Any]:
    db = store.db
    counts = store.counts()
    by_reason = {r: n for r, n in db.execute("SELECT reason, COUNT(*) FROM failures GROUP BY reason ORDER BY 2 DESC")}
    pt, ot, tt, ct, cost = db.execute(
        "SELECT COALESCE(SUM(prompt_tokens),0), COALESCE(SUM(output_tokens),0), COALESCE(SUM(thoughts_tokens),0),"
        " COALESCE(SUM(cached_tokens),0), COALESCE(SUM(cost_usd),0) FROM usage").fetchone()
    requests = db.execute("SELECT COUNT(*) FROM requests WHERE outcome NOT IN ('parked', 'aborted')").fetchone()[0]
    packed = db.execute("SELECT COUNT(*), COALESCE(SUM(n_items),0) FROM requests WHERE n_items > 1").fetchone()
    cached = db.execute("SELECT COUNT(*) FROM results WHERE cached=1").fetchone()[0]
    api_calls, limited, retries, wall, sessions = db.execute(
        "SELECT COALESCE(SUM(requests),0), COALESCE(SUM(rate_limited),0), COALESCE(SUM(retries),0),"
        " COALESCE(SUM(COALESCE(ended, started) - started),0), COUNT(*) FROM sessions").fetchone()
    meta = store.meta()
    done = counts["ok"] + counts["failed"]
    minutes = wall / 60 if wall else 0.0
    return {
        "run_db": store.path,
        "task": meta.get("task"),
        "model": meta.get("model"),
        "limits": meta.get("limits"),
        "input": meta.get("input"),
        "output": meta.get("output"),
        "status": meta.get("status", "unknown"),
        "items": {"total": sum(counts.values()), "ok": counts["ok"], "failed": counts["failed"],
                  "pending": counts["pending"], "cached": cached},
        "failed_by_reason": by_reason,
        "tokens": {"input": pt, "output": ot, "thinking": tt, "cached": ct},
        "cost_usd": round(cost, 8),
        "requests": requests,
        "packed_requests": packed[0],
        "items_per_packed_request": round(packed[1] / packed[0], 2) if packed[0] else None,
        "api_calls": api_calls,
        "rate_limited": limited,
        "retries": retries,
        "sessions": sessions,
        "wall_time_s": round(wall, 3),
        "items_per_minute": round(done / minutes, 1) if minutes else None,
        "cost_per_1000_items_usd": round(cost / done * 1000, 6) if done else None,
    }


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"run database {p} does not exist", hint="pass the <output>.flashlane.db of a run")
    store = RunStore(p)
    try:
        if store.is_new():
            raise InputError(f"{p} is not a flashlane run database", hint="pass the <output>.flashlane.db of a run")
        return build_report(store)
    finally:
        store.close()


def format_report(r: dict[str, Any]) -> str:
    it, tok = r["items"], r["tokens"]
    lines = [
        f"run       {r['run_db']} ({r['status']})",
        f"task      {r['task']} on {r['model']}",
        *([f"limits    {r['limits']}"] if r.get("limits") else []),
        f"items     {it['total']} total: {it['ok']} ok, {it['failed']} failed, {it['pending']} pending"
        + (f" ({it['cached']} from cache)" if it["cached"] else ""),
    ]
    if r["failed_by_reason"]:
        lines.append("failed    " + ", ".join(f"{k}: {v}" for k, v in r["failed_by_reason"].items()))
    lines += [
        f"tokens    {tok['input']:,} in, {tok['output']:,} out, {tok['thinking']:,} thinking",
        f"cost      ${r['cost_usd']:.6f}"
        + (f" (${r['cost_per_1000_items_usd']:.4f} per 1,000 items)" if r["cost_per_1000_items_usd"] else ""),
        f"requests  {r['requests']}"
        + (f" ({r['packed_requests']} packed, {r['items_per_packed_request']} items each)" if r["packed_requests"]
           else "")
        + f"; API calls {r['api_calls']}, 429s {r['rate_limited']}, retries {r['retries']}",
        f"time      {r['wall_time_s']:.1f} s over {r['sessions']} session(s)"
        + (f", {r['items_per_minute']:,} items/min" if r["items_per_minute"] else ""),
    ]
    return "\n".join(lines)


def report_json(r: dict[str, Any]) -> str:
    return json.dumps(r, indent=2, ensure_ascii=False)
