"""``map_items``: the pipeline as a function (``lane.map``), for items from Python.

Same engine as ``flashlane run`` (packing, concurrency under the client's limiter, per-item
failures, the response cache). Memory stays flat in items: the items are read from the
iterable one at a time into a run database in a temporary file (never a list), the engine
reads them back a window at a time, and the results come back as ``MapResult``, a sequence in
input order that reads each ``ItemResult`` from that database when it is asked for. A value is
read back as the type the task returned (a Pydantic model is validated again from its JSON);
only when a task returns several model types are the values held in memory, since JSON cannot
tell them apart. The database is deleted when the ``MapResult`` is.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import json
import os
import tempfile
import weakref
from collections.abc import Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from pydantic import BaseModel

from ..caching.response_cache import ResponseCache, default_cache_path
from ..call.media import File, with_files
from ..call.tools import Citation, Source
from ..errors import FlashlaneError, InputError
from ..models import Usage
from ..store.run import RunStore, StoredRow
from ..tasks import Task, get_task
from ..tasks.provenance import Provenance
from .items import COLUMN_SAMPLE_ROWS, TEXT_FIELD, ItemBuilder, columns_of
from .job import Job
from .plan import parse_finish_by
from .report import build_report
from .runfile import PACK_SAMPLE_ITEMS, resolve_pack
from .runner import RunOptions, open_runner
from .scheduler import DEFAULT_CONCURRENCY, RunOutcome
from .settle import evidence_parts
from .writers import InputNames, output_record

if TYPE_CHECKING:
    from ..call.client import Client

__all__ = ["ItemResult", "MapResult", "map_items", "amap_items", "job_key", "run_sync"]

T = TypeVar("T")
PART_SUFFIX = ".part"  # a ledger database being filled (not a ``*.flashlane.db``: no reader sees it)


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
    # A task with built-in tools: the evidence of the answer, typed as on ``Result`` (read back from
    # the run database, where each result keeps it; empty for tasks without tools).
    sources: tuple[Source, ...] = ()
    citations: tuple[Citation, ...] = ()
    search_queries: tuple[str, ...] = ()
    # Where each value was found in the item (``provenance=True``), read back from the run database.
    provenance: Provenance | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class _Revive:
    """Reads finished values back from their JSON: learns the value types a run produces, and
    tells the engine which values it must hold because JSON cannot carry them."""

    def __init__(self) -> None:
        self.model: type[BaseModel] | None = None
        self.model_types: set[type[BaseModel]] = set()

    def keep(self, value: Any) -> bool:
        if isinstance(value, BaseModel):
            self.model_types.add(type(value))
            self.model = type(value) if len(self.model_types) == 1 else None
            return len(self.model_types) > 1  # several model types: hold them, a type can't be told from JSON
        return False  # str, numbers, lists and dicts of them come back as they are (the store holds JSON)

    def __call__(self, data: Any) -> Any:
        return self.model.model_validate(data) if self.model is not None and data is not None else data


class MapResult(Sequence[ItemResult]):
    """``ItemResult`` per item in input order, read from the run's database on demand, with how
    the run ended (``.outcome``) and what it did and cost (``.report``, as ``flashlane report --json``)."""

    def __init__(self, store: RunStore, outcome: RunOutcome, report: dict[str, Any], revive: _Revive,
                 tmp: tempfile.TemporaryDirectory[str] | None, id_column: str | None = None) -> None:
        self.outcome, self.report, self._id_column = outcome, report, id_column
        self._store, self._revive, self._n = store, revive, sum(store.items.counts().values())
        self._close = weakref.finalize(self, _cleanup, store, tmp)

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> ItemResult: ...

    @overload
    def __getitem__(self, i: slice) -> list[ItemResult]: ...

    def __getitem__(self, i: int | slice) -> ItemResult | list[ItemResult]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(self._n))]
        j = i + self._n if i < 0 else i
        if not 0 <= j < self._n:
            raise IndexError(i)
        return self._item(next(self._store.items.iter_rows(start=j, limit=1)))

    def __iter__(self) -> Iterator[ItemResult]:
        return (self._item(row) for row in self._store.items.iter_rows())

    def __repr__(self) -> str:
        return f"<MapResult of {self._n} items: {self.outcome.status}>"

    def _item(self, row: StoredRow) -> ItemResult:
        r = row.result
        value = self.outcome.values[r.item_id] if r.item_id in self.outcome.values else self._revive(r.value)
        sources, citations, queries = evidence_parts(r.evidence)
        return ItemResult(index=row.index, id=r.item_id, status=r.status, value=value, error=r.error,
                          reason=r.reason, usage=r.usage, cost_usd=r.cost_usd, cached=r.cached, sources=sources,
                          citations=citations, search_queries=queries,
                          provenance=Provenance.from_dict(r.provenance) if r.provenance is not None else None)

    def records(self) -> Iterator[dict[str, Any]]:
        """The records ``flashlane run`` writes for these items, input columns kept, in input order
        (JSON-shaped; ``writers.flat_row`` or ``writers.arrow_table`` make table rows of them)."""
        names = InputNames(self._id_column)
        return (output_record(row, names) for row in self._store.items.iter_rows())

    def close(self) -> None:
        """Delete the run's database now (otherwise when the result is garbage-collected); a
        ``run_db`` the caller named is closed and kept."""
        self._close()


def _cleanup(store: RunStore, tmp: tempfile.TemporaryDirectory[str] | None) -> None:
    store.close()
    if tmp is not None:
        tmp.cleanup()


def _row(x: Any) -> dict[str, Any]:
    # Files (fl.File, Path, or lists mixing them with text) stay objects: the item builder holds
    # them while the run lasts, and the store keeps their markers (call/media.py).
    if isinstance(x, Mapping):
        return {k: with_files(v) for k, v in x.items()}
    x = with_files(x)
    return {TEXT_FIELD: "" if x is None else x if isinstance(x, (File, list)) else str(x)}


async def amap_items(client: Client, task: Task | str, items: Iterable[Any], *, pack: int | str | None = None,
                     concurrency: int | None = DEFAULT_CONCURRENCY, column: str | None = None, template: str | None = None,
                     id_column: str | None = None, budget_usd: float | None = None, cache: bool | None = None,
                     service_tier: str | None = None, cache_prefix: str | None = None,
                     finish_by: Any = None, run_db: str | Path | None = None,
                     **task_options: Any) -> MapResult:
    """``map_items`` on the caller's event loop. ``run_db``: a run database to keep (a cluster
    run's ledger, ``pipeline.ledger``) instead of a temporary one; when it already holds these
    items (the same batch again, after a kill) the run resumes it, so what finished there is not
    asked again and what was sent there stays in its ledger."""
    t = get_task(task)
    pack, service_tier, cache_prefix, task_options = _with_run(t, pack, service_tier, cache_prefix, task_options)
    rows = map(_row, items)
    sample = list(itertools.islice(rows, max(PACK_SAMPLE_ITEMS, COLUMN_SAMPLE_ROWS)))
    builder = ItemBuilder(t, column=column, template=template, id_column=id_column)
    if sample:
        builder.check(columns_of(sample[:COLUMN_SAMPLE_ROWS]))
    job = Job.create(client, t, task_options, service_tier=service_tier)
    key = _job_key(job, column, template, id_column)
    plan = resolve_pack(job, [builder.build(i, r) for i, r in enumerate(sample[:PACK_SAMPLE_ITEMS])], pack)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if run_db is None:
        tmp = tempfile.TemporaryDirectory(prefix="flashlane-map-")
        run_db = Path(tmp.name) / "map.flashlane.db"
    part = None
    if tmp is None and not Path(run_db).exists():
        # A new ledger database is filled under another name and renamed into place once every row
        # is in: killed while filling it, a rerun starts it afresh instead of resuming a part of the rows.
        part = Path(run_db).with_name(Path(run_db).name + PART_SUFFIX)
        for leftover in part.parent.glob(part.name + "*"):  # a killed fill's file, WAL and index
            leftover.unlink()
    store = RunStore(part or run_db, now=client.clock.time)
    use_cache = client.settings.cache if cache is None else cache
    rcache = ResponseCache(default_cache_path(client.settings.state_dir)) if use_cache else None
    revive = _Revive()
    try:
        resumed = False
        if tmp is None:
            store.sessions.close_stale()  # a process that died running this batch: its requests stay counted
            resumed = sum(store.items.counts().values()) > 0
            if resumed and store.metadata.get("job_key") != key:
                raise InputError(f"{run_db} belongs to a run with other settings (task, options, model)",
                                 hint="use another ledger directory for another run")
            store.metadata.set(task=t.name, model=job.model, job_key=key)
        if not resumed:
            store.items.insert(((it.index, it.id, it.hash, json.dumps(row, ensure_ascii=False, default=str))
                                for it, row in ((builder.build(i, r), r)
                                                for i, r in enumerate(itertools.chain(sample, rows)))),
                               builder.duplicate)
        if part is not None:
            store.close()  # the last connection: SQLite folds the WAL into the file, which can then move
            os.replace(part, run_db)
            store = RunStore(run_db, now=client.clock.time)
        store.sessions.start()
        runner, run_cache = open_runner(job, store, builder, RunOptions(
            pack_size=plan.size, concurrency=concurrency, budget_usd=budget_usd, cache=rcache,
            cache_prefix=cache_prefix, keep_values=revive.keep,
            finish_by=None if finish_by is None else parse_finish_by(finish_by, client.clock.time())))
        try:
            outcome = await runner.arun()
        finally:
            run_cache.close()
            # The map's store is temporary: its uploads go with it, done or not.
            job.lane.uploads.finish(delete=True)
        report = build_report(store)
        if outcome.status == "aborted" and isinstance(outcome.error, FlashlaneError):
            raise outcome.error
    except BaseException:
        _cleanup(store, tmp)
        raise
    finally:
        if rcache is not None:
            rcache.close()
    return MapResult(store, outcome, report, revive, tmp, builder.id_column)


def job_key(client: Client, task: Task | str, *, column: str | None = None, template: str | None = None,
            id_column: str | None = None, service_tier: str | None = None, **task_options: Any) -> str:
    """What decides the answers of a ``map_items`` call (task, options, model, how rows become
    items), as the key its ``run_db`` records: a cluster run's ledger takes finished rows only from
    batch databases with the same key (``pipeline.ledger``)."""
    t = get_task(task)
    _, service_tier, _, task_options = _with_run(t, None, service_tier, None, task_options)
    job = Job.create(client, t, task_options, service_tier=service_tier)
    return _job_key(job, column, template, id_column)


def _with_run(task: Task, pack: int | str | None, service_tier: str | None, cache_prefix: str | None,
              task_options: dict[str, Any]) -> tuple[int | str | None, str | None, str | None, dict[str, Any]]:
    """The call's pack, service tier, prefix caching and task options (``model`` among them), each
    the call leaves out taken from the task file's [run] table, as ``flashlane run`` does."""
    given = task.with_run({**task_options, "pack": pack, "service_tier": service_tier, "cache_prefix": cache_prefix})
    return given.pop("pack"), given.pop("service_tier"), given.pop("cache_prefix"), given


def _job_key(job: Job, column: str | None, template: str | None, id_column: str | None) -> str:
    return str(job.fingerprint_start(source={"column": column, "template": template, "id_column": id_column})
               .hexdigest())


def map_items(client: Client, task: Task | str, items: Iterable[Any], *, pack: int | str | None = None,
              concurrency: int | None = DEFAULT_CONCURRENCY, **kw: Any) -> MapResult:
    """Run ``task`` on every item (strings, or mappings with the task's fields); results in order.

    ``pack`` = N or "auto" packs structured tasks N to a request. ``service_tier`` = "flex" or "batch"
    serves them at half price (default: the ``service_tier`` setting). ``finish_by`` = a duration
    ("2h", seconds, a timedelta) or a time (a datetime, "09:00" UTC): the run is planned across the tiers
    to be done by then at the lowest expected cost (``.report["deadline"]`` says how it went). Task options go as keywords
    (``labels=[...]``, ``to="fr"``, ``schema=Model``, ``max_words=40``)."""
    return run_sync(amap_items(client, task, items, pack=pack, concurrency=concurrency, **kw))


def run_sync(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to its end from synchronous code (``lane.map``, ``lane.evaluate``)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    # Called from inside an event loop (a notebook, an async app): run on a loop of our own.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()
