"""One function picks the runner for a run's service tier; both paths (``flashlane run`` and
``lane.map``) go through it, so neither has its own copy of the standard-or-batch branch.

- ``LiveRunner``: standard and flex requests, sent as they are built (``scheduler.Engine``).
- ``BatchRunner``: Batch API jobs (``batch.BatchRun``), polled until they end; with
  ``fallback="standard"`` what failed inside a job then goes through a ``LiveRunner``.
- ``DeadlineRunner`` (``finish_by``): a plan (``plan.make_plan``) carried out with the two above,
  one step at a time: a batch step cut off at its time (its jobs cancelled, the cancellation
  confirmed and what they returned collected before anything moves), then live steps on flex,
  standard, priority, each cut off in its turn. The run store's key state keeps every row on one
  tier at a time (``store.run.items.IN_BATCH_JOBS``/``IN_LIVE_REQUESTS``).

Both share the prefilter (too large, empty, cache hits, done rows) and the per-item settling
(``settle``); both record every request in the one ledger of the run store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from .. import telemetry
from ..caching.context_cache import CacheDecision
from ..call.service_tier import BATCH, FLEX, PRIORITY, STANDARD
from ..errors import ConfigError
from ..models import Usage, lookup
from ..store.run import RunStore
from . import plan as plan_mod
from .batch import BatchOptions, BatchRun
from .context_cache import RunContextCache, open_context_cache
from .items import ItemBuilder
from .job import Job
from .report import build_report
from .scheduler import Engine, RunOutcome, Snapshot
from .settle import Keep

__all__ = ["RunOptions", "open_runner", "finish_uploads", "LiveRunner", "BatchRunner", "DeadlineRunner"]

# Two engines sharing a run read this few rows at a time, so each takes work as it has room for it.
SHARED_WINDOW_ITEMS = 64
Drain = Callable[[str], str]  # an interrupt's signal name -> the line to show (Engine.interrupt)
# Awaits the run with signal handling (runfile._Signals.run): the first signal calls the drain.
Wrap = Callable[[Awaitable[RunOutcome], Drain | None], Awaitable[RunOutcome]]


@dataclass
class RunOptions:
    pack_size: int = 1
    concurrency: int | None = None  # None: auto from the quota and model latency
    budget_usd: float | None = None
    cache: Any = None  # the response cache (None: --no-cache)
    cache_prefix: str | None = None  # the prefix's context cache: auto | on | off (None: the setting)
    keep_values: Keep = False  # which finished values to hold in memory (settle.held)
    on_progress: Callable[[Snapshot], None] | None = None
    batch: BatchOptions = field(default_factory=BatchOptions)
    spool_dir: str | None = None  # where a batch job's file is built before upload
    finish_by: float | None = None  # a deadline (epoch seconds on the lane's clock): DeadlineRunner plans the tiers
    say: Callable[[str], None] | None = None  # the plan and its steps, as lines (None: quiet)
    plan_only: bool = False  # --dry-run: the runner says its plan; no cache is made, adopted or deleted


class LiveRunner:
    """Standard and flex: requests sent as they are built, under the client's guard."""

    shows_progress = True

    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, opts: RunOptions, *,
                 stop_at: float | None = None, hand_on: bool = False, claimed: set[str] | None = None) -> None:
        window = {} if claimed is None else {"window": SHARED_WINDOW_ITEMS}  # small: the other engine takes the rest
        self.engine = Engine(job, store, builder, pack_size=opts.pack_size, concurrency=opts.concurrency,
                             budget_usd=opts.budget_usd, cache=opts.cache, on_progress=opts.on_progress,
                             keep_values=opts.keep_values, stop_at=stop_at, hand_on=hand_on, claimed=claimed,
                             **window)

    async def arun(self) -> RunOutcome:
        with run_span(self.engine.job, self.engine.store):  # the calls' spans are its children
            return await self.engine.run()

    def run(self, wrap: Wrap | None = None) -> RunOutcome:
        """Run to the end on an event loop of its own; ``wrap`` awaits the run (signal handling)."""
        coro = self.arun()
        return asyncio.run(wrap(coro, self.engine.interrupt) if wrap is not None else coro)  # type: ignore[arg-type]


class BatchRunner:
    """Batch API jobs; polling blocks, so an async caller runs it off its event loop."""

    shows_progress = False  # jobs report by lines (BatchOptions.say), not a per-row bar

    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, opts: RunOptions) -> None:
        if job.lane.settings.backend == "vertex":
            # python-genai: files.upload raises "only supported in the Gemini Developer client", and
            # Vertex AI batch jobs read and write Cloud Storage or BigQuery, not inline/Files API input.
            raise ConfigError("--service-tier batch runs on the Gemini Developer API (an API key), not on Vertex AI",
                              hint="set GEMINI_API_KEY instead of the Vertex settings, or use --service-tier flex or standard")
        self.job, self.store, self.builder, self.opts = job, store, builder, opts
        self.engine: Engine | None = None  # the fallback's, once what failed in a job goes standard
        self.cutoffs: list[dict[str, Any]] = []  # jobs cancelled at a deadline plan's cut-off

    def run(self, wrap: Wrap | None = None) -> RunOutcome:
        with run_span(self.job, self.store):
            return self._run(wrap)

    def _run(self, wrap: Wrap | None) -> RunOutcome:
        o = self.opts
        run = BatchRun(self.job, self.store, self.builder, pack_size=o.pack_size, budget_usd=o.budget_usd,
                       cache=o.cache, options=o.batch, keep_values=o.keep_values, spool_dir=o.spool_dir)
        outcome = run.run()
        self.cutoffs = run.cutoffs
        if (outcome.status != "done" or o.batch.fallback != STANDARD or o.finish_by is not None
                or not self.store.items.counts()["pending"]):
            return outcome
        live = LiveRunner(replace(self.job, service_tier=STANDARD), self.store, self.builder, replace(o, on_progress=None))
        self.engine = live.engine
        after = live.run(wrap)
        after.values = {**outcome.values, **after.values}
        return after

    async def arun(self) -> RunOutcome:
        return await asyncio.to_thread(self.run)


@contextmanager
def run_span(job: Job, store: RunStore) -> Iterator[None]:
    """The run's span (telemetry.py), when telemetry is on: at its end, the run's items by status,
    its cost and requests as the run report counts them, and the rows this session settled
    (the ``flashlane.rows`` metric). A batch run's standard fallback and a deadline run's steps are run
    spans inside it."""
    tel = telemetry.current()
    if tel is None:
        yield
        return
    before = store.items.counts()
    attrs = {"gen_ai.request.model": job.model, "flashlane.service_tier": job.service_tier,
             "flashlane.task": job.task.name, "flashlane.items.total": sum(before.values())}
    with telemetry.span("flashlane.run", attrs) as sp:
        try:
            yield
        finally:
            after = store.items.counts()
            report = build_report(store)
            sp.set({"flashlane.items.ok": after["ok"], "flashlane.items.failed": after["failed"],
                    "flashlane.items.pending": after["pending"], "flashlane.items.cached": report["items"]["cached"],
                    "flashlane.cost_usd": report["cost_usd"], "flashlane.requests": report["requests"]})
            for status in ("ok", "failed"):
                if after[status] > before[status]:
                    tel.rows.add(after[status] - before[status], {"flashlane.row.status": status,
                                                                  "gen_ai.request.model": job.model})


class DeadlineRunner:
    """``finish_by``: the plan's steps, each through the runner of its tier (see the module's doc)."""

    shows_progress = False  # steps report by lines (the plan, cut-offs), as batch jobs do

    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, opts: RunOptions) -> None:
        assert opts.finish_by is not None
        self.job, self.store, self.builder, self.opts = job, store, builder, opts
        self.clock = job.lane.clock
        self.engine: Engine | None = None  # the last live step's
        self.rates = plan_mod.tier_rates(job.model, rpm=_rpm(job), concurrency=self._concurrency(),
                                         flex_concurrency=opts.concurrency or plan_mod.FLEX_CONCURRENCY,
                                         pack=opts.pack_size, history=store.totals.tier_history())
        pending = store.items.counts()["pending"]
        self.plan = plan_mod.make_plan(model=job.model, rows=pending, pack=opts.pack_size, now=self.clock.time(),
                                       deadline=opts.finish_by, rates=self.rates,
                                       request_usage=self._request_usage(), batch_ok=self._batch_ok())
        self.events: list[dict[str, Any]] = []

    def _concurrency(self) -> int:
        if self.opts.concurrency is not None:
            return self.opts.concurrency
        from .packing import auto_concurrency

        return auto_concurrency(self.job.lane.settings.limits, self.job.model)

    def _batch_ok(self) -> bool:
        prices = lookup(self.job.model)
        return (self.job.lane.settings.backend != "vertex" and prices is not None and prices.prices is not None
                and prices.prices.batch_input is not None)

    def _request_usage(self) -> Usage:
        """One request's usage at most: the first pending rows as a request (input estimate, output cap)."""
        rows = self.store.items.pending_after(-1, max(self.opts.pack_size, 1))
        if not rows:
            return Usage()
        units = [self.builder.restore(idx, iid, json.loads(row or "{}")) for idx, iid, _h, row in rows]
        return self.job.max_usage(self.job.call_for(units))

    def _say(self, line: str) -> None:
        if self.opts.say is not None:
            self.opts.say(line)

    def say_plan(self) -> None:
        """The plan and its expected cost, before anything is sent."""
        for line in self.plan.lines():
            self._say(line)

    def _event(self, **what: Any) -> None:
        self.events.append({"at": self.clock.time(), **what})
        self.store.metadata.set(deadline_events=self.events)

    def run(self, wrap: Wrap | None = None) -> RunOutcome:
        with run_span(self.job, self.store):  # each step's run span is its child
            return self._run(wrap)

    def _run(self, wrap: Wrap | None) -> RunOutcome:
        plan, o = self.plan, self.opts
        self.store.metadata.set(deadline_plan=plan.as_dict(), deadline_events=[])
        outcome = RunOutcome()
        values: dict[str, Any] = {}
        steps = plan.steps
        if steps[0].tier != BATCH and self.store.batch.active():
            # Jobs of an earlier session are still out: cut them off now (cancelled, confirmed, collected),
            # or their rows would stay with them while the live steps run.
            steps = [plan_mod.Step(BATCH, self.clock.time(), 0), *steps]
        if steps[0].tier == BATCH:
            step = steps[0]
            batch_opts = replace(o.batch, fallback=STANDARD, cutoff_at=step.until)
            runner = BatchRunner(replace(self.job, service_tier=BATCH), self.store, self.builder,
                                 replace(o, batch=batch_opts))
            outcome = runner.run(wrap)
            values.update(outcome.values)
            for cut in runner.cutoffs:
                self._event(step=BATCH, cutoff=step.until, **cut)
            if outcome.status not in ("done", "cutoff", "quota"):
                return self._end(outcome, values)
            left = self.store.items.counts()["pending"]
            steps, _ = plan_mod.live_chain(self.rates, left, self.clock.time(), plan.deadline)
            if left:
                self._say(f"deadline: {left:,} rows left after the batch step; now "
                          + ", then ".join(s.tier for s in steps))
        if len(steps) > 1 and steps[-1].tier == PRIORITY:
            # The last resort: priority's own limits (0.3x standard's) on top of standard's, both at once.
            return self._end(self._together(steps[-2:], wrap, o), values)
        for i, step in enumerate(steps):
            if not self.store.items.counts()["pending"]:
                break
            last = i == len(steps) - 1
            concurrency = o.concurrency or (plan_mod.FLEX_CONCURRENCY if step.tier == FLEX else None)
            live = LiveRunner(replace(self.job, service_tier=step.tier), self.store, self.builder,
                              replace(o, on_progress=None, concurrency=concurrency),
                              stop_at=None if last else step.until, hand_on=not last)
            self.engine = live.engine
            outcome = live.run(wrap)
            values.update(outcome.values)
            if outcome.status == "cutoff":
                self._event(step=step.tier, cutoff=step.until, left=self.store.items.counts()["pending"])
                self._say(f"deadline: {step.tier} cut off; {self.store.items.counts()['pending']:,} rows move on")
                continue
            if outcome.status != "done":
                break
        return self._end(outcome, values)

    def _together(self, steps: list[plan_mod.Step], wrap: Wrap | None, o: RunOptions) -> RunOutcome:
        """Standard and priority on the run at once, each taking rows the other has not (``claimed``)."""
        self._say("deadline: " + " and ".join(s.tier for s in steps) + " at once, to make the deadline")
        claimed: set[str] = set()
        runners = [LiveRunner(replace(self.job, service_tier=s.tier), self.store, self.builder,
                              replace(o, on_progress=None), claimed=claimed) for s in steps]
        self.engine = runners[0].engine

        async def both() -> list[RunOutcome]:
            return list(await asyncio.gather(*(r.arun() for r in runners)))

        outcomes = asyncio.run(both())
        out = next((x for x in outcomes if x.status != "done"), outcomes[0])
        out.values = {k: v for x in outcomes for k, v in x.values.items()}
        return out

    def _end(self, outcome: RunOutcome, values: dict[str, Any]) -> RunOutcome:
        finished = self.clock.time()
        done = not self.store.items.counts()["pending"]
        self.store.metadata.set(deadline_finished=finished, deadline_met=bool(done and finished <= self.plan.deadline))
        if outcome.status == "cutoff":
            outcome.status = "done"  # the rows it left were carried on (or the report says they are pending)
        outcome.values = values
        return outcome

    async def arun(self) -> RunOutcome:
        return await asyncio.to_thread(self.run)


def _rpm(job: Job) -> float | None:
    from .packing import quota_from_limits

    quota = quota_from_limits(job.lane.settings.limits, job.model)
    return float(quota.rpm) if quota is not None and quota.rpm else None


def open_runner(job: Job, store: RunStore, builder: ItemBuilder,
                opts: RunOptions) -> tuple[LiveRunner | BatchRunner | DeadlineRunner, RunContextCache]:
    """The runner for ``job``'s service tier (or for its deadline), and the run's context cache opened
    for it (a batch run records why its prefix goes inline). A run started on one service tier is
    finished on it; a deadline run moves rows between tiers through the run store's key state."""
    job.lane.uploads.attach(store.uploads)  # media uploaded for this run are recorded with it (finish_uploads)
    if opts.finish_by is not None:
        deadline = DeadlineRunner(job, store, builder, opts)
        deadline.say_plan()
        if opts.plan_only:  # a context cache costs storage, and an earlier session's is not ours to delete
            return deadline, RunContextCache(CacheDecision(mode=opts.cache_prefix or job.lane.settings.cache_prefix, use=False,
                                                           reason="dry run: nothing is made"))
        context_cache = open_context_cache(store, job, pending_items=store.items.counts()["pending"],
                                           pack_size=opts.pack_size, concurrency=opts.concurrency,
                                           mode=opts.cache_prefix, batch=deadline.plan.first == BATCH)
        return deadline, context_cache
    batch = job.service_tier == BATCH
    runner = BatchRunner(job, store, builder, opts) if batch else LiveRunner(job, store, builder, opts)
    if not batch:
        store.batch.refuse_other_tier(job.service_tier)
    context_cache = open_context_cache(store, job, pending_items=store.items.counts()["pending"],
                                       pack_size=opts.pack_size, concurrency=opts.concurrency,
                                       mode=opts.cache_prefix, batch=batch)
    return runner, context_cache


def finish_uploads(job: Job, store: RunStore, *, done: bool) -> None:
    """The session ends: the run's uploaded media are deleted when no row is left to send (``done``
    and nothing pending), else kept (recorded in the run store) for the rerun to reuse; they
    lapse after 48 h either way."""
    job.lane.uploads.finish(delete=done and not store.items.counts()["pending"])
