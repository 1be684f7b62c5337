"""``map_items``: the pipeline as a function, for code that holds its items in memory.

Same engine as ``flashlane run`` (packing, concurrency under the Lane's limiter, per-item
failures, the response cache), with an in-memory run database; results come back in input
order, one ``ItemResult`` per item, failures included rather than raised.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..caching.response_cache import ResponseCache, default_cache_path
from ..errors import FlashlaneError
from ..models import Usage
from ..store.run import RunStore
from ..tasks import Task, get_task
from .items import TEXT_FIELD, ItemBuilder, make_items
from .job import Job
from .report import build_report
from .runfile import PACK_SAMPLE_ITEMS, resolve_pack
from .runner import RunOptions, open_runner
from .scheduler import DEFAULT_CONCURRENCY, RunOutcome

if TYPE_CHECKING:
    from ..call.client import Client as Lane

__all__ = ["ItemResult", "MapResult", "map_items", "amap_items"]


@dataclass(frozen=True)
class ItemResult:
    index: int
    id: str
    status: str  # ok | failed | pending (the run stopped first: budget or per-day quota)
    value: Any = None  # what the task returns for one item (e.g. a Classification)
    error: str | None = None
    reason: str | None = None  # the error's reason_code: schema, safety, too_large, ...
    usage: Usage = Usage()
    cost_usd: float | None = 0.0  # None: the model's price is unknown
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class MapResult(list):  # type: ignore[type-arg]
    """A list of ``ItemResult`` in input order, with how the run ended (``.outcome``)."""

    outcome: RunOutcome
    report: dict[str, Any]  # what the run did and cost, as ``flashlane report`` shows it (--json)


def _rows(items: Iterable[Any]) -> list[dict[str, Any]]:
    rows = []
    for x in items:
        if isinstance(x, Mapping):
            rows.append(dict(x))
        else:
            rows.append({TEXT_FIELD: "" if x is None else str(x)})
    return rows


async def amap_items(lane: Lane, task: Task | str, items: Iterable[Any], *, pack: int | str | None = None,
                     concurrency: int | None = DEFAULT_CONCURRENCY, column: str | None = None, template: str | None = None,
                     id_column: str | None = None, budget_usd: float | None = None, cache: bool | None = None,
                     tier: str | None = None, cache_prefix: str | None = None,
                     **task_options: Any) -> MapResult:
    t = get_task(task)
    rows = _rows(items)
    its = make_items(rows, t, column=column, template=template, id_column=id_column)
    builder = ItemBuilder(t, column=column, template=template, id_column=id_column)
    job = Job.create(lane, t, task_options, tier=tier)
    plan = resolve_pack(job, its[:PACK_SAMPLE_ITEMS], pack)
    store = RunStore(":memory:")
    use_cache = lane.settings.cache if cache is None else cache
    rcache = ResponseCache(default_cache_path(lane.settings.state_dir)) if use_cache else None
    try:
        store.items.insert(((it.index, it.id, it.hash, json.dumps(row, ensure_ascii=False, default=str))
                            for it, row in zip(its, rows, strict=True)), builder.duplicate)
        store.sessions.start()
        runner, run_cache = open_runner(job, store, builder, RunOptions(
            pack_size=plan.size, concurrency=concurrency, budget_usd=budget_usd, cache=rcache,
            cache_prefix=cache_prefix, keep_values=True))
        try:
            outcome = await runner.arun()
        finally:
            run_cache.close()
        report = build_report(store)
        if outcome.status == "aborted" and isinstance(outcome.error, FlashlaneError):
            raise outcome.error
        stored = store.items.results()
    finally:
        store.close()
        if rcache is not None:
            rcache.close()
    out = MapResult()
    for it in its:
        r = stored[it.id]
        out.append(ItemResult(index=it.index, id=it.id, status=r.status, value=outcome.values.get(it.id, r.value),
                              error=r.error, reason=r.reason, usage=r.usage, cost_usd=r.cost_usd, cached=r.cached))
    out.outcome = outcome
    out.report = report
    return out


def map_items(lane: Lane, task: Task | str, items: Iterable[Any], *, pack: int | str | None = None,
              concurrency: int | None = DEFAULT_CONCURRENCY, **kw: Any) -> MapResult:
    """Run ``task`` on every item (strings, or mappings with the task's fields); results in order.

    ``pack`` = N or "auto" packs structured tasks N to a request. ``tier`` = "flex" or "batch"
    serves them at half price (default: the ``tier`` setting). Task options go as keywords
    (``labels=[...]``, ``to="fr"``, ``schema=Model``, ``max_words=40``)."""
    coro = amap_items(lane, task, list(items), pack=pack, concurrency=concurrency, **kw)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a notebook, an async app): run on a loop of our own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
