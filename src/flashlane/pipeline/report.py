"""The run report: what a run did and cost, read back from its database alone, so
``flashlane report RUN_DB`` works on any run, finished, parked or killed."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..models import Usage, cost_of
from ..store.run import RunStore

__all__ = ["build_report", "format_report", "load_report", "percentiles", "sorted_percentiles"]

PERCENTILES = (50, 95)  # the latency cuts a report shows


def build_report(store: RunStore) -> dict[str, Any]:
    counts = store.items.counts()
    led = store.totals.ledger()
    pt, ot, tt, ct = led["tokens"]
    lost = store.totals.lost()
    # Requests to a model whose price is unknown make the whole cost unknown, not a smaller number.
    # Requests whose answers were lost were served and billed all the same: they count (lost()).
    cost: float | None = None if led["unpriced_requests"] else led["cost_usd"] + lost["estimated_usd"]
    batch = store.batch.active()
    packed_n, packed_items = led["packed"]
    wall = led["wall_s"]
    meta = store.metadata.all()
    tiers = store.totals.requests_by_tier()
    done = counts["ok"] + counts["failed"]
    minutes = wall / 60 if wall else 0.0
    caching = _caching(store, meta)
    if cost is not None and caching is not None:
        extra = caching["creation_usd"] + caching["storage_usd"]
        cost = None if caching["unpriced_caches"] else cost + extra
        # each output row's cost_usd is its request's share; this is the caches' share on top
        caching["per_item_usd"] = round(extra / done, 10) if done else None
    return {
        "run_db": store.path,
        "task": meta.get("task"),
        "model": meta.get("model"),
        "limits": meta.get("limits"),
        "input": meta.get("input"),
        "output": meta.get("output"),
        "status": meta.get("status", "unknown"),
        "items": {"total": sum(counts.values()), "ok": counts["ok"], "failed": counts["failed"],
                  "pending": counts["pending"], "cached": led["cached"]},
        "failed_by_reason": led["failed_by_reason"],
        # input includes cached (as promptTokenCount does); full_price_input = input - cached
        "tokens": {"input": pt, "output": ot, "thinking": tt, "cached": ct, "full_price_input": max(pt - ct, 0)},
        "context_cache": caching,
        "cost_usd": round(cost, 8) if cost is not None else None,
        "unpriced_requests": led["unpriced_requests"],
        "requests": led["requests"],
        "unanswered_requests": led["unanswered"],
        # sent, answer never recorded (a kill): their estimated cost is in cost_usd, at most max_usd
        "lost_answers": {"requests": lost["requests"], "estimated_usd": round(lost["estimated_usd"], 8),
                         "max_usd": round(lost["max_usd"], 8)},
        # lost answers whose items a later request carried again: paid twice because of a kill
        "paid_twice": {**lost["paid_twice"], "usd": round(lost["paid_twice"]["usd"], 8)},
        # batch jobs submitted and not yet collected: running (and billed) on the server
        "batch_in_flight": {"jobs": len(batch), "requests": sum(j.n_requests for j in batch),
                            "reserved_usd": round(sum(j.reserved_usd for j in batch), 8)},
        "packed_requests": packed_n,
        "items_per_packed_request": round(packed_items / packed_n, 2) if packed_n else None,
        "requests_by_tier": tiers,  # flex (as served: usageMetadata.serviceTier) and batch requests
        "api_calls": led["api_calls"],
        "rate_limited": led["rate_limited"],
        "retries": led["retries"],
        "sessions": led["sessions"],
        "killed_sessions": led["killed"],
        "wall_time_s": round(wall, 3),
        # over the sessions' wall time (killed ones up to their last recorded request)
        "items_per_minute": round(done / minutes, 1) if minutes else None,
        "cost_per_1000_items_usd": round(cost / done * 1000, 6) if done and cost is not None else None,
        # per answered item: its request's time from send to answer (an item packed with others waits as
        # long as its whole request); the eval compares configurations by these (issue 24)
        "latency_per_item_s": sorted_percentiles(*store.totals.item_latencies()),
        "resent_items": store.totals.resent_items(),
        "deadline": _deadline(store, meta, led["tokens"], cost),
        # an unpacked structured run: what --pack auto would have saved (runfile.pack_hint, estimated)
        "pack_auto": json.loads(meta["pack_auto"]) if meta.get("pack_auto") else None,
    }


def _deadline(store: RunStore, meta: dict[str, str], tokens: tuple[int, int, int, int],
              cost: float | None) -> dict[str, Any] | None:
    """A --finish-by run: its plan, the rows each tier answered, the cut-offs taken, its cost against
    the same tokens all on standard, and whether the deadline was met."""
    raw = meta.get("deadline_plan")
    if raw is None:
        return None
    plan = json.loads(raw)
    pt, ot, tt, ct = tokens
    standard = cost_of(str(meta.get("model") or ""), Usage(pt, ot, tt, ct), service_tier="standard")
    finished = json.loads(meta["deadline_finished"]) if "deadline_finished" in meta else None
    return {"plan": plan, "rows_by_tier": store.totals.rows_by_tier(),
            "cutoffs": json.loads(meta.get("deadline_events") or "[]"),
            "cost_usd": None if cost is None else round(cost, 8),
            "all_standard_usd": None if standard is None else round(standard, 8),
            "finished": finished, "deadline": plan["deadline"],
            "met": json.loads(meta["deadline_met"]) if "deadline_met" in meta else None}


def format_deadline(d: dict[str, Any] | None) -> list[str]:
    if d is None:
        return []
    plan = d["plan"]
    steps = ", then ".join(s["tier"] for s in plan["steps"])
    lines = [f"deadline  {'met' if d['met'] else 'missed' if d['met'] is not None else 'not reached yet'}: "
             f"planned {steps} for {plan['rows']:,} rows (expected ${plan['expected_usd'] or 0:.6f} at most)"]
    if d["finished"] is not None:
        late = d["finished"] - d["deadline"]
        lines[0] += f"; finished {abs(late):.0f} s {'after' if late > 0 else 'before'} the deadline"
    lines.append("          rows by tier: " + ", ".join(f"{t} {n:,}" for t, n in d["rows_by_tier"].items()))
    for c in d["cutoffs"]:
        what = c.get("job") or c["step"]
        lines.append(f"          cut-off: {c['step']} {what} at +{c['at'] - plan['now']:.0f} s"
                     + (f" ({c['state']}, {c['done']}/{c['requests']} done)" if "state" in c else ""))
    if d["cost_usd"] is not None and d["all_standard_usd"]:
        lines.append(f"          cost ${d['cost_usd']:.6f} vs ${d['all_standard_usd']:.6f} all on standard "
                     f"({d['cost_usd'] / d['all_standard_usd']:.2f}x)")
    return lines


def percentiles(xs: list[float]) -> dict[str, float] | None:
    """p50 and p95 (inclusive method: within the observed range, as for a small eval sample)."""
    return sorted_percentiles(len(xs), iter(sorted(xs)))


def sorted_percentiles(n: int, ascending: Iterator[float]) -> dict[str, float] | None:
    """p50 and p95 of ``n`` values streamed in ascending order, as ``statistics.quantiles(method=
    "inclusive")`` computes them (the cut at i/100 lies between the values at ``i * (n - 1) // 100``
    and the next), holding only the values at those positions: memory flat in rows."""
    if n == 0:
        return None
    cuts = {p: divmod(p * (n - 1), 100) for p in PERCENTILES}
    wanted = {j + k for j, _ in cuts.values() for k in (0, 1)}
    found = {i: x for i, x in enumerate(itertools.islice(ascending, max(wanted) + 1)) if i in wanted}
    out = {}
    for p, (j, delta) in cuts.items():
        lo = found[j]
        hi = found.get(j + 1, lo)  # n == 1: the one value
        out[f"p{p}"] = round((lo * (100 - delta) + hi * delta) / 100, 4)
    return out


def _caching(store: RunStore, meta: dict[str, str]) -> dict[str, Any] | None:
    """The run's explicit-cache decision (its arithmetic) and what its caches cost: creation
    and storage, on top of the requests (whose cached tokens are already priced at the cached rate)."""
    raw = meta.get("cache_decision")
    costs = store.context_caches.costs()
    if raw is None and not costs["created"]:
        return None
    return {"decision": json.loads(raw) if raw else None, "caches_created": costs["created"],
            "creation_usd": round(costs["creation_usd"], 8), "storage_usd": round(costs["storage_usd"], 8),
            "storage_token_hours": round(costs["token_hours"], 3), "unpriced_caches": costs["unpriced"]}


def format_caching(c: dict[str, Any] | None) -> list[str]:
    if c is None:
        return []
    d = c.get("decision") or {}
    if not d.get("prefix_tokens") and not c["caches_created"]:
        return []  # a task without reference material: nothing to say (--json still has the decision)
    lines = []
    if d:
        use = "cached" if d.get("use") else "not cached"
        line = f"prefix    {d.get('prefix_tokens', 0):,} tokens, {use} ({d.get('mode')}): {d.get('reason')}"
        lines.append(line)
        if d.get("inline_usd") is not None:
            be = d.get("break_even_requests")
            lines.append(f"          {d['requests']:,} requests: inline ${d['inline_usd']:.6f} vs cached "
                         f"${d['cached_usd']:.6f} + storage ${d['storage_usd']:.6f} ({d['hours']:.2f} h)"
                         + (f"; break-even {be:,} requests" if be else ""))
        if d.get("fallback"):
            lines.append(f"          {d['fallback']}")
    if c["caches_created"]:
        lines.append(f"caches    {c['caches_created']} created: creation ${c['creation_usd']:.6f}, storage "
                     f"${c['storage_usd']:.6f} ({c['storage_token_hours']:,} token-hours)")
    return lines


def load_report(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    hint = "pass the <output>.flashlane.db of a run"
    if not p.is_file():
        raise InputError(f"run database {p} does not exist", hint=hint)
    store = RunStore(p, not_a_run_db_hint=hint, create=False)
    try:
        if store.is_new():
            raise InputError(f"{p} is not a flashlane run database", hint=hint)
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
        f"tokens    {tok['input']:,} in, {tok['output']:,} out, {tok['thinking']:,} thinking"
        + (f" ({tok['cached']:,} of the input cached)" if tok.get("cached") else ""),
        *format_caching(r.get("context_cache")),
        (f"cost      ${r['cost_usd']:.6f}"
         + (f" (${r['cost_per_1000_items_usd']:.4f} per 1,000 items)" if r["cost_per_1000_items_usd"] else ""))
        if r["cost_usd"] is not None else
        f"cost      unknown ({r.get('unpriced_requests')} requests to a model whose price flashlane does not know; "
        "see 'flashlane models')",
        f"requests  {r['requests']}"
        + (f" ({r['packed_requests']} packed, {r['items_per_packed_request']} items each)" if r["packed_requests"]
           else "")
        + (f", {r['unanswered_requests']} unanswered (in flight when a run stopped)"
           if r.get("unanswered_requests") else "")
        + f"; API calls {r['api_calls']}, 429s {r['rate_limited']}, retries {r['retries']}"
        + ("; by service tier " + ", ".join(f"{t} {n}" for t, n in r["requests_by_tier"].items())
           if r.get("requests_by_tier") else ""),
        *_money_lines(r),
        *format_deadline(r.get("deadline")),
        *_pack_lines(r.get("pack_auto"), r.get("task")),
        f"time      {r['wall_time_s']:.1f} s over {r['sessions']} session(s)"
        + (f" ({r['killed_sessions']} killed)" if r.get("killed_sessions") else "")
        + (f", {r['items_per_minute']:,} items/min" if r["items_per_minute"] else ""),
    ]
    return "\n".join(lines)


def _duration(minutes: float) -> str:
    return f"{minutes * 60:.0f} s" if minutes < 1 else f"{minutes:,.1f} min"


def _pack_lines(p: dict[str, Any] | None, task: str | None) -> list[str]:
    """Packing is off unless asked: say what --pack auto would have saved, and how to check it."""
    if not p:
        return []
    saved = "" if p.get("saved_usd") is None else f", about ${p['saved_usd']:.6f} less"
    time = (f", and {_duration(p['minutes_packed'])} instead of {_duration(p['minutes'])} under {p['rpm']:,} RPM"
            if p.get("rpm") else "")
    return [f"packing   unpacked: --pack auto ({p['pack']} per request) would have sent {p['requests_packed']:,} "
            f"requests instead of {p['requests']:,}{saved}{time} (estimated);",
            f"          check that accuracy holds first: flashlane eval {task or 'TASK'} LABELLED_FILE --truth COLUMN "
            f"--pack 1,{p['pack']}"]


def _money_lines(r: dict[str, Any]) -> list[str]:
    """What a kill cost: answers lost (counted in the cost), rows paid twice, jobs still billing."""
    lines = []
    lost, twice, batch = r.get("lost_answers") or {}, r.get("paid_twice") or {}, r.get("batch_in_flight") or {}
    if lost.get("requests"):
        lines.append(f"lost      {lost['requests']} requests sent whose answers were never recorded (in flight at a kill): "
                     f"~${lost['estimated_usd']:.6f} counted in the cost, at most ${lost['max_usd']:.6f}")
    if twice.get("requests"):
        lines.append(f"twice     {twice['requests']} requests ({twice['items']} items) paid twice because of a kill: "
                     f"~${twice['usd']:.6f}")
    if batch.get("jobs"):
        lines.append(f"batch     {batch['jobs']} job(s) in flight on the server ({batch['requests']} requests, up to "
                     f"${batch['reserved_usd']:.6f}); rerun to collect, or 'flashlane batch cancel RUN'")
    return lines


def report_json(r: dict[str, Any]) -> str:
    return json.dumps(r, indent=2, ensure_ascii=False)
