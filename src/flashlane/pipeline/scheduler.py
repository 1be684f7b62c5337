"""The async engine: workers pull requests (single items or packs) from a queue, call the
Lane, and commit what each request produced before taking the next.

Items come from the run store a window at a time (``WINDOW_ITEMS`` pending items, read when
the queue runs low), never as a list of the whole input, so memory stays flat however many
rows a run has. Each request is written to the ledger before it is sent.

Policy lives here, retries do not: the Lane already retries 429/5xx, re-asks on schema
errors and grows a truncated cap. What the engine decides is per item:

- a packed request that fails as a whole, or leaves an item missing, invalid or repeated,
  sends those items back to the queue one by one (never packed again);
- a single request that fails becomes a recorded failure with the error's ``reason_code``;
- a per-day quota (``RateLimited`` kind ``rpd``) parks the run: nothing more is scheduled,
  the affected items stay pending, never failed;
- an outage (``Outage``: the client's breaker opened after many failures in a row) stops the
  run the same way: rows stay pending, and rerunning resumes;
- credentials or model errors abort the run (every row would fail the same way);
- with a budget, a request is only started if what is spent, plus the most the requests in
  flight can cost, plus the most this one can cost, stays within it;
- a request whose files go inline waits while the inline bytes of the requests in flight plus its
  own would pass ``media_inflight_bytes`` (``MEDIA_INFLIGHT_BYTES``): each inline request holds its
  files several times until answered (bytes, base64, JSON), so this keeps a run's memory flat in
  file sizes; a request over the cap by itself still goes, once nothing else with files is in flight;
- with a cut-off (``stop_at``, a deadline plan's step), nothing more is sent from then on; the
  requests in flight are answered and recorded, the rest stays pending for the plan's next tier
  (status ``cutoff``); with ``hand_on``, a request that fails retryably (a flex request shed past its
  retries) leaves its rows pending for that next tier rather than failing them;
- an interrupt (the first Ctrl-C or SIGTERM, ``interrupt``) stops sending and gives the requests
  in flight ``DRAIN_S`` to answer, so what is already paid for is recorded, not asked again by
  the rerun; those still out then stay in the ledger as sent, and count in the report.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..caching.response_cache import ResponseCache
from ..call.request import Call
from ..errors import (
    AuthError,
    ConfigError,
    ContentError,
    FlashlaneError,
    InputError,
    ModelNotFound,
    NoQuota,
    Outage,
    RateLimited,
    Stopped,
)
from ..models import Usage, cost_of
from ..store.run import RunStore
from .items import Item, ItemBuilder
from .job import Job
from .settle import Keep, Prefilter, held, split

__all__ = ["Engine", "RunOutcome", "Snapshot", "DEFAULT_CONCURRENCY", "DRAIN_S", "MEDIA_INFLIGHT_BYTES", "WINDOW_ITEMS"]

DEFAULT_CONCURRENCY = None  # auto (see packing.auto_concurrency)
WINDOW_ITEMS = 2000  # pending items read from the store at a time
TICK_S = 1.0  # progress refresh while nothing finishes (a limiter wait must not freeze the display)
WAIT_NOTICE_S = 3.0  # no answer for this long: progress says what the run is waiting for
FATAL_ERRORS = (AuthError, ModelNotFound, ConfigError, NoQuota)  # every row would fail the same way
GUARD_COUNTERS = ("requests", "rate_limited", "retries")
# After an interrupt, how long requests in flight may take to answer: long enough for a Flash-Lite
# answer with a retry or two, short enough that a user who pressed Ctrl-C is not kept waiting.
DRAIN_S = 30.0
# Inline file bytes (before base64) the requests in flight may carry together. An inline request
# holds its files about four times over until answered (the bytes, their base64, the JSON body, the
# SDK's copies): bench/documents.py measured ~4 MB of peak RSS per MB in flight (50 files of 1 MB:
# 164 MB uncapped at 16 in flight, 146 MB at a 12 MB cap, 129 MB at 8 MB, 116 MB at 4 MB, against
# 96 MB for one-page files). 8 MB keeps that within the 1.5x of a small-file run and still
# has several ordinary scans in flight at once. A request may carry up to ~15 MB of files inline
# (media.MAX_INLINE_FILE_BYTES): over the cap, it goes alone.
MEDIA_INFLIGHT_BYTES = 8 * 1024 * 1024


@dataclass
class Snapshot:
    """What progress displays; counts are for the whole run, not just this session."""

    total: int = 0
    ok: int = 0
    failed: int = 0
    cached: int = 0
    requests: int = 0
    usage: Usage = Usage()  # of this session's requests
    cost_usd: float = 0.0  # of the requests whose price is known
    unpriced_requests: int = 0  # requests to a model whose price is unknown
    done_at_start: int = 0
    waiting: str | None = None  # "quota" (requests held by the limiter) | "answers" | None

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def tokens(self) -> int:
        """Input plus billed output (thinking included), as progress shows them."""
        return self.usage.prompt_tokens + self.usage.billed_output_tokens


@dataclass
class RunOutcome:
    status: str = "done"  # done | parked | budget | outage | aborted | interrupted
    reset_at: datetime | None = None
    error: FlashlaneError | None = None
    message: str = ""
    values: dict[str, Any] = field(default_factory=dict)  # item id -> finished value (keep_values only)


def _stop_status(error: FlashlaneError) -> str | None:
    """How a failure stops the whole run (None: it is this request's own failure)."""
    if isinstance(error, RateLimited) and error.kind == "rpd":
        return "parked"  # the day's quota is gone: rows wait for the reset
    if isinstance(error, Outage):
        return "outage"
    if isinstance(error, Stopped):
        return "stopped"  # never left: not a request the server saw
    if isinstance(error, FATAL_ERRORS):
        return "aborted"
    return None


def guard_counts(lane: Any) -> dict[str, int]:
    """Requests, 429s and retries as the Lane's guard has counted them so far."""
    stats = lane.guard.stats
    return {name: int(getattr(stats, name)) for name in GUARD_COUNTERS}


class Engine:
    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, *, pack_size: int = 1,
                 concurrency: int | None = None, budget_usd: float | None = None, cache: ResponseCache | None = None,
                 on_progress: Callable[[Snapshot], None] | None = None, keep_values: Keep = False,
                 window: int = WINDOW_ITEMS, drain_s: float = DRAIN_S, stop_at: float | None = None,
                 hand_on: bool = False, claimed: set[str] | None = None,
                 media_inflight_bytes: int = MEDIA_INFLIGHT_BYTES) -> None:
        self.job = job
        self.store = store
        self.clock = job.lane.clock  # the client's: tests move it instead of sleeping
        self.builder = builder
        self.pack_size = max(1, pack_size if job.packable else 1)
        if concurrency is None:  # auto: enough requests in flight to keep the quota busy
            from .packing import auto_concurrency

            concurrency = auto_concurrency(job.lane.settings.limits, job.model)
        self.concurrency = max(1, concurrency)
        if budget_usd is not None and cost_of(job.model, Usage()) is None:
            raise ConfigError(f"the price of {job.model} is unknown, so a budget cannot be enforced",
                              hint="drop --budget-usd, or use a model whose price 'flashlane models' shows")
        self.budget_usd = budget_usd
        self.cache = cache
        self.on_progress = on_progress
        self.keep_values = keep_values  # map_items returns the task's objects; file runs read the store
        self.window = max(1, window)
        self.drain_s = drain_s
        self.stop_at = stop_at
        self.hand_on = hand_on
        self.media_inflight_bytes = media_inflight_bytes
        # Engines on two tiers at once over one run (a deadline's last resort) share this set: a row one
        # of them has taken is skipped by the other, so no row is asked on both.
        self.claimed = claimed
        self.outcome = RunOutcome()
        self.snap = Snapshot()
        self._queue: deque[list[Item]] = deque()
        self._partial: list[Item] = []  # a pack being filled across windows
        self._cursor = -1  # the last input position read from the store
        self._exhausted = False
        self._inflight = 0
        self._inflight_cost = 0.0
        self._head: tuple[list[Item], Call] | None = None  # the queue head's request, once built
        self._inflight_media = 0  # inline file bytes of the requests in flight (Call.inline_bytes)
        self._spent = 0.0
        self._stop: str | None = None
        self._cond: asyncio.Condition | None = None
        self._workers: list[asyncio.Task[None]] = []
        self._drain: asyncio.Task[None] | None = None
        self._drain_over = False  # the drain time ran out: workers still waiting are let go
        self._guard_base = guard_counts(job.lane)
        self._calls = 0  # requests the engine has handed to the Lane
        self._last_done = self.clock.monotonic()
        self.prefilter = Prefilter(job, cache)

    # ------------------------------------------------------------------ setup

    def _keep(self, values: dict[str, Any]) -> None:
        self.outcome.values.update(held(values, self.keep_values))

    def _prefilter(self, items: Sequence[Item]) -> list[Item]:
        """Failures known without asking (too large, empty) and cache hits, before any request."""
        todo, failed, hits = self.prefilter(items)
        self._keep({i: self.prefilter.values.pop(i, None) for i in hits})
        self.store.requests.record_failures(failed)
        self.store.requests.record_cached(hits)
        self.snap.cached += len(hits)
        self.snap.ok += len(hits)
        self.snap.failed += len(failed)
        return todo

    def _refill(self) -> None:
        """Read pending items from the store until the queue holds enough work (or none is left)."""
        low = max(2 * self.concurrency, 8)
        while not self._exhausted and len(self._queue) < low:
            rows = self.store.items.pending_after(self._cursor, self.window)
            if not rows:
                self._exhausted = True
                if self._partial:
                    self._queue.append(self._partial)
                    self._partial = []
                return
            self._cursor = rows[-1][0]
            if self.claimed is not None:
                rows = [r for r in rows if r[1] not in self.claimed]
                self.claimed.update(r[1] for r in rows)
            items = []
            for idx, iid, _, row in rows:
                if row is None:
                    raise InputError(f"item {iid} has no stored input row", hint="rerun the same command: the "
                                     "input is read again and stored with the run")
                items.append(self.builder.restore(idx, iid, json.loads(row)))
            self._plan(self._prefilter(items))

    def _plan(self, items: list[Item]) -> None:
        unit = self._partial
        for it in items:
            if self.job.closes_unit(unit, it, self.pack_size):
                self._queue.append(unit)
                unit = []
            unit.append(it)
        self._partial = unit
        if len(unit) >= self.pack_size:
            self._queue.append(unit)
            self._partial = []

    # ------------------------------------------------------------------ running

    async def run(self) -> RunOutcome:
        self._cond = asyncio.Condition()
        self.job.lane.stop_sending(False)  # a client reused after an interrupted run sends again
        counts = self.store.items.counts()
        self.snap.total = sum(counts.values())
        self.snap.ok, self.snap.failed = counts["ok"], counts["failed"]
        self.snap.done_at_start = self.snap.done
        self._spent = self.store.requests.spent_usd()
        self.snap.cost_usd = self._spent
        self._refill()
        self._emit()
        workers = self._workers = [asyncio.create_task(self._worker())
                                   for _ in range(self.concurrency if self._queue else 0)]
        ticker = asyncio.create_task(self._tick()) if self.on_progress is not None else None
        try:
            await asyncio.gather(*workers)
        except BaseException:
            for w in workers:
                w.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self.outcome.status = "interrupted"
            raise
        finally:
            for t in (ticker, self._drain):
                if t is not None:
                    t.cancel()
                    await asyncio.gather(t, return_exceptions=True)
        if self._stop:
            self.outcome.status = self._stop
        self.snap.waiting = None
        return self.outcome

    async def _tick(self) -> None:
        while True:
            await self.clock.asleep(TICK_S)
            self._emit()

    async def _worker(self) -> None:
        try:
            while True:
                picked = await self._next()
                if picked is None:
                    return
                unit, call, max_cost = picked
                try:
                    await self._send(unit, call, max_cost)
                finally:
                    self._inflight -= 1
                    self._inflight_cost -= max_cost
                    self._inflight_media -= call.inline_bytes
                    assert self._cond is not None
                    async with self._cond:
                        self._cond.notify_all()
        except asyncio.CancelledError:
            if not self._drain_over:
                raise  # a second Ctrl-C: the run stops at once
            # The drain ran out: this request's 'sent' line stays in the ledger (counted as sent).

    def interrupt(self, signal_name: str) -> str:
        """The first Ctrl-C or SIGTERM (called on the event loop): send nothing more, record what the
        requests in flight answer within ``drain_s``, then stop. Returns the line to show."""
        self._halt("interrupted", f"interrupted by {signal_name}")
        self.job.lane.stop_sending()
        if self._drain is None:
            self._drain = asyncio.get_running_loop().create_task(self._drain_then_stop())
        return (f"{signal_name}: sending stopped; waiting up to {self.drain_s:g} s for {self._inflight} request(s) "
                "in flight to answer, so they are recorded and not paid again (Ctrl-C again stops at once)")

    async def _drain_then_stop(self) -> None:
        assert self._cond is not None
        async with self._cond:
            self._cond.notify_all()  # workers waiting for work see the stop
        await self.clock.asleep(self.drain_s)
        self._drain_over = True
        for w in self._workers:
            w.cancel()

    async def _next(self) -> tuple[list[Item], Call, float] | None:
        assert self._cond is not None
        async with self._cond:
            while True:
                if self.stop_at is not None and self.clock.time() >= self.stop_at:
                    self._halt("cutoff", "the plan's cut-off for this service tier passed: what is left moves on")
                if self._stop:
                    return None
                if not self._exhausted and len(self._queue) < 2 * self.concurrency:
                    self._refill()
                if self._queue:
                    unit = self._queue[0]
                    call = self._head_call(unit)
                    max_cost = self.job.max_cost(call) or 0.0  # known whenever there is a budget
                    if self.budget_usd is not None and self._spent + self._inflight_cost + max_cost > self.budget_usd:
                        if self._inflight:  # what is in flight may cost less than its maximum: wait and see
                            await self._cond.wait()
                            continue
                        self._halt("budget", f"stopped before passing the budget of ${self.budget_usd:g} "
                                             f"(spent ${self._spent:.6f}); rerun with a higher --budget-usd to go on")
                        return None
                    if call.inline_bytes and self._inflight_media \
                            and self._inflight_media + call.inline_bytes > self.media_inflight_bytes:
                        await self._cond.wait()  # until a request with files is answered and lets go of them
                        continue
                    self._queue.popleft()
                    self._head = None
                    self._inflight += 1
                    self._inflight_cost += max_cost
                    self._inflight_media += call.inline_bytes
                    return unit, call, max_cost
                if self._inflight == 0 and self._exhausted:
                    return None
                if self._inflight == 0:
                    continue  # everything read so far settled without a request: read on
                await self._cond.wait()

    def _head_call(self, unit: list[Item]) -> Call:
        """The request for the unit at the head of the queue, built once however often waiting
        workers wake to look at it (building it reads its inline files)."""
        if self._head is None or self._head[0] is not unit:
            self._head = (unit, self.job.call_for(unit))
        return self._head[1]

    def _halt(self, status: str, message: str, error: FlashlaneError | None = None) -> None:
        if self._stop is None:
            self._stop = status
            self.outcome.message = message
            self.outcome.error = error

    async def _send(self, unit: list[Item], call: Call, max_cost: float) -> None:
        started = self.clock.time()
        rid = self.store.requests.sent(started=started, item_ids=[it.id for it in unit],
                                       max_cost_usd=max_cost or None)  # 0: the price is unknown
        self._calls += 1
        try:
            result = await self.job.arun_call(call)
        except FlashlaneError as e:
            stop = _stop_status(e)
            if stop is None:
                await self._failed(unit, started, e, rid)
                return
            if isinstance(e, RateLimited):
                self.outcome.reset_at = e.reset_at
            self._halt(stop, e.message, e)  # the run stops; the unit's rows stay pending
            self.store.requests.record(started=started, item_ids=[it.id for it in unit], outcome=stop,
                                      error=e.message, usage=None, cost_usd=0.0, ok={}, failed={}, request_id=rid,
                                      counters=self.guard_delta())
            return
        await self._succeeded(unit, started, result, rid)

    async def _failed(self, unit: list[Item], started: float, e: FlashlaneError, rid: int) -> None:
        # An answer that is not one was still paid for: the judge priced it at the tier that served it.
        usage = e.usage if isinstance(e, ContentError) and isinstance(e.usage, Usage) else None
        cost: float | None = e.cost_usd if isinstance(e, ContentError) and e.cost_usd is not None else 0.0
        ids = [it.id for it in unit]
        if self.hand_on and e.retryable:  # the plan's next tier takes them: they stay pending
            self.store.requests.record(started=started, item_ids=ids, outcome="moved", error=e.message, usage=usage,
                                      cost_usd=cost, ok={}, failed={}, request_id=rid, counters=self.guard_delta())
            self._account(usage, cost, requests=1)
            return
        packed = len(unit) > 1  # a pack's items go back one by one; a single item fails
        failed = {} if packed else {ids[0]: (e.reason_code, e.message)}
        self.store.requests.record(started=started, item_ids=ids, outcome="requeued" if packed else "failed",
                                  error=e.message, usage=usage, cost_usd=cost, ok={}, failed=failed,
                                  requeued=ids if packed else (), request_id=rid, counters=self.guard_delta())
        if packed:
            self._requeue(unit)
        else:
            self.snap.failed += 1 + self._settle_followers({}, failed)[1]
        self._account(usage, cost, requests=1)

    def _requeue(self, items: list[Item]) -> None:
        # Singles go to the front: they are the oldest work and keep output arriving in order.
        for it in reversed(items):
            self._queue.appendleft([it])

    async def _succeeded(self, unit: list[Item], started: float, result: Any, rid: int) -> None:
        got = split(self.job, unit, result, cache=self.cache is not None)
        self._keep(got.values)
        failed: dict[str, tuple[str, str]] = {}
        requeue = [it for it in unit if it.id in got.bad]
        for iid, why in got.refused.items():
            if len(unit) > 1:
                requeue.append(next(it for it in unit if it.id == iid))  # alone, it may convert
            else:
                failed[iid] = ("convert", why)
        self.store.requests.record(started=started, item_ids=[it.id for it in unit], outcome="ok", error=None,
                                  usage=result.usage, cost_usd=result.cost_usd, ok=got.ok, failed=failed,
                                  requeued=[it.id for it in requeue], request_id=rid, counters=self.guard_delta(),
                                  attempts=getattr(result, "attempts", None),
                                  tier=getattr(result, "service_tier", None))
        if self.cache is not None:
            self.cache.put_many(got.cache_entries)
        copies = self._settle_followers(got.ok, failed, got.values)
        self._requeue(requeue)
        self.snap.ok += len(got.ok) + copies[0]
        self.snap.failed += len(failed) + copies[1]
        self._account(result.usage, result.cost_usd, requests=1)

    def _settle_followers(self, ok: dict[str, Any], failed: dict[str, tuple[str, str]],
                          values: dict[str, Any] | None = None) -> tuple[int, int]:
        copied, fails = self.prefilter.followers(ok, failed, values or {})
        self._keep({i: self.prefilter.values.pop(i, None) for i in copied})
        if copied:
            self.store.requests.record_cached(copied)
        if fails:
            self.store.requests.record_failures(fails)
        return len(copied), len(fails)

    def _account(self, usage: Usage | None, cost: float | None, *, requests: int) -> None:
        if cost is None:
            self.snap.unpriced_requests += requests
            cost = 0.0
        self._spent += cost
        self.snap.requests += requests
        self.snap.cost_usd += cost
        self._last_done = self.clock.monotonic()
        if usage is not None:
            self.snap.usage = self.snap.usage + usage
        self._emit()

    def _waiting(self) -> str | None:
        """What the run waits for when nothing has finished for a while: the limiter holding
        requests back (calls handed to the Lane that it has not yet sent) or slow answers."""
        if self._inflight == 0 or self.clock.monotonic() - self._last_done < WAIT_NOTICE_S:
            return None
        d = self.guard_delta()
        first_attempts_sent = d["requests"] - d["retries"]
        return "quota" if self._calls > first_attempts_sent else "answers"

    def _emit(self) -> None:
        if self.on_progress is not None:
            self.snap.waiting = self._waiting()
            self.on_progress(self.snap)

    def guard_delta(self) -> dict[str, int]:
        now = guard_counts(self.job.lane)
        return {k: now[k] - self._guard_base.get(k, 0) for k in GUARD_COUNTERS}
