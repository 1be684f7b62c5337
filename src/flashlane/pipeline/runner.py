"""One function picks the runner for a run's service tier; both paths (``flashlane run`` and
``lane.map``) go through it, so neither has its own copy of the standard-or-batch branch.

- ``LiveRunner``: standard and flex requests, sent as they are built (``scheduler.Engine``).
- ``BatchRunner``: Batch API jobs (``batch.BatchRun``), polled until they end; with
  ``fallback="standard"`` what failed inside a job then goes through a ``LiveRunner``.

Both share the prefilter (too large, empty, cache hits, done rows) and the per-item settling
(``settle``); both record every request in the one ledger of the run store.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any

from ..call.service_tier import BATCH, STANDARD
from ..errors import ConfigError
from ..store.run import RunStore
from .batch import BatchOptions, BatchRun
from .context_cache import RunContextCache, open_context_cache
from .items import ItemBuilder
from .job import Job
from .scheduler import Engine, RunOutcome, Snapshot
from .settle import Keep

__all__ = ["RunOptions", "open_runner", "LiveRunner", "BatchRunner"]

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


class LiveRunner:
    """Standard and flex: requests sent as they are built, under the client's guard."""

    shows_progress = True

    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, opts: RunOptions) -> None:
        self.engine = Engine(job, store, builder, pack_size=opts.pack_size, concurrency=opts.concurrency,
                             budget_usd=opts.budget_usd, cache=opts.cache, on_progress=opts.on_progress,
                             keep_values=opts.keep_values)

    async def arun(self) -> RunOutcome:
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

    def run(self, wrap: Wrap | None = None) -> RunOutcome:
        o = self.opts
        outcome = BatchRun(self.job, self.store, self.builder, pack_size=o.pack_size, budget_usd=o.budget_usd,
                           cache=o.cache, options=o.batch, keep_values=o.keep_values, spool_dir=o.spool_dir).run()
        if outcome.status != "done" or o.batch.fallback != STANDARD or not self.store.items.counts()["pending"]:
            return outcome
        live = LiveRunner(replace(self.job, service_tier=STANDARD), self.store, self.builder, replace(o, on_progress=None))
        self.engine = live.engine
        after = live.run(wrap)
        after.values = {**outcome.values, **after.values}
        return after

    async def arun(self) -> RunOutcome:
        return await asyncio.to_thread(self.run)


def open_runner(job: Job, store: RunStore, builder: ItemBuilder, opts: RunOptions) -> tuple[LiveRunner | BatchRunner,
                                                                                              RunContextCache]:
    """The runner for ``job``'s service tier, and the run's context cache opened for it (a batch
    run records why its prefix goes inline). A run started on one service tier is finished on it."""
    batch = job.service_tier == BATCH
    runner = BatchRunner(job, store, builder, opts) if batch else LiveRunner(job, store, builder, opts)
    if not batch:
        store.batch.refuse_other_tier(job.service_tier)
    context_cache = open_context_cache(store, job, pending_items=store.items.counts()["pending"],
                                       pack_size=opts.pack_size, concurrency=opts.concurrency,
                                       mode=opts.cache_prefix, batch=batch)
    return runner, context_cache
