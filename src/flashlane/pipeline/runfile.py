"""``flashlane run``'s body: input file -> run database -> output files, resumable.

A run is its database (default ``<output>.flashlane.db``). Running the same command again
resumes it: rows already finished are not requested again. A different input, task, model
or options gives a different fingerprint and is refused (``--fresh`` starts over), so a
resumed run never mixes answers to two different questions.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..tasks import Task
from .cache import ResponseCache, default_cache_path
from .items import Item, make_items
from .job import Job
from .packing import PackPlan, auto_pack_size, estimate_item_tokens, quota_from_limits
from .progress import Progress
from .readers import DEFAULT_ENCODING, read_rows
from .report import build_report
from .scheduler import DEFAULT_CONCURRENCY, Engine, RunOutcome
from .store import RunStore
from .writers import failures_path, output_format, output_rows, write_failures, write_output

if TYPE_CHECKING:
    from ..client import Lane

__all__ = ["RunConfig", "RunSummary", "run_file", "default_output", "default_run_db", "resolve_pack"]

RUN_DB_SUFFIX = ".flashlane.db"


@dataclass
class RunConfig:
    input: str
    output: str | None = None
    fmt: str | None = None
    encoding: str = DEFAULT_ENCODING
    column: str | None = None
    template: str | None = None
    id_column: str | None = None
    run_db: str | None = None
    fresh: bool = False
    retry_failed: bool = False
    pack: int | str | None = None  # None/1: one item per request; N; "auto"
    concurrency: int | None = DEFAULT_CONCURRENCY  # None: auto from the quota and model latency
    budget_usd: float | None = None
    cache: bool = True
    quiet: bool = False
    task_options: dict[str, Any] = field(default_factory=dict)


@dataclass
class RunSummary:
    outcome: RunOutcome
    output: Path
    failures: Path
    run_db: Path
    pack: PackPlan
    report: dict[str, Any]


def default_output(input_path: str, task: Task) -> Path:
    if input_path == "-":
        return Path(f"stdin.{task.name}.jsonl")
    p = Path(input_path)
    return p.with_name(f"{p.stem}.{task.name}.jsonl")


def default_run_db(output: Path) -> Path:
    return Path(f"{output}{RUN_DB_SUFFIX}")


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.unlink(f"{path}{suffix}")


def resolve_pack(job: Job, items: list[Item], pack: int | str | None) -> PackPlan:
    if pack in (None, 0, 1, "1"):
        return PackPlan(1, "one item per request")
    if not job.packable:
        return PackPlan(1, f"task '{job.task.name}' returns free text, which does not pack")
    if isinstance(pack, str) and pack.lower() == "auto":
        settings = job.lane.settings
        return auto_pack_size(model=job.model, thinking=job.thinking, per_item_input=estimate_item_tokens(items),
                              shared_input=job.shared_tokens, per_item_answer=job.answer_tokens(),
                              quota=quota_from_limits(getattr(settings, "limits", None), job.model),
                              output_ceiling=settings.output_ceiling)
    try:
        n = int(pack)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"--pack must be a number or 'auto', not {pack!r}", hint="e.g. --pack 10 or --pack auto") from None
    if n < 1:
        raise InputError("--pack must be at least 1", hint="e.g. --pack 10 or --pack auto")
    return PackPlan(n, f"{n} items per request (--pack)")


def open_run(store_path: Path, job: Job, items: list[Item], cfg: RunConfig, output: Path) -> RunStore:
    if cfg.fresh:
        _remove_db(store_path)
    store = RunStore(store_path)
    fp = job.fingerprint(items, source={"column": cfg.column, "template": cfg.template, "id_column": cfg.id_column})
    if store.is_new():
        store.init_items(items)
        store.set_meta(fingerprint=fp, task=job.task.name, model=job.model, input=cfg.input, output=str(output),
                       status="running", schema_version="1")
    elif store.get_meta("fingerprint") != fp:
        store.close()
        raise InputError(f"{store_path} belongs to a run with a different input, task, model or options",
                         hint="add --fresh to start over (finished rows are requested again), or pass another "
                              "--run-db")
    if cfg.retry_failed:
        with store._tx():
            store.db.execute("DELETE FROM failures")
            store.db.execute("UPDATE items SET status='pending' WHERE status='failed'")
    return store


def _finalize(store: RunStore, items: list[Item], output: Path, engine: Engine | None, status: str) -> Path:
    if engine is not None:
        store.end_session(status, **engine.guard_delta())
    store.set_meta(status=status)
    rows = output_rows(items, store.results())
    write_output(output, rows)
    return write_failures(output, rows)


def run_file(lane: Lane, task: Task, cfg: RunConfig) -> RunSummary:
    rows = read_rows(cfg.input, fmt=cfg.fmt, encoding=cfg.encoding)
    items = make_items(rows, task, column=cfg.column, template=cfg.template, id_column=cfg.id_column)
    output = Path(cfg.output) if cfg.output else default_output(cfg.input, task)
    output_format(output)  # refuse a bad extension before doing any work
    if cfg.budget_usd is not None and cfg.budget_usd <= 0:
        raise InputError("--budget-usd must be positive", hint="e.g. --budget-usd 0.50")
    job = Job.create(lane, task, cfg.task_options)
    plan = resolve_pack(job, items, cfg.pack)
    run_db = Path(cfg.run_db) if cfg.run_db else default_run_db(output)
    store = open_run(run_db, job, items, cfg, output)
    cache = ResponseCache(default_cache_path(lane.settings.state_dir)) if cfg.cache else None
    engine: Engine | None = None
    status = "interrupted"
    try:
        finished = store.finished_ids()
        todo = [it for it in items if it.id not in finished]
        store.start_session()
        store.set_meta(limits=lane.guard.limiter.describe())
        with Progress(quiet=cfg.quiet) as progress:
            engine = Engine(job, store, pack_size=plan.size, concurrency=cfg.concurrency, budget_usd=cfg.budget_usd,
                            cache=cache, on_progress=progress.update)
            outcome = asyncio.run(engine.run(todo))
        status = outcome.status
        if status == "done" and store.counts()["pending"]:
            status = "incomplete"
        fails = _finalize(store, items, output, engine, status)
        report = build_report(store)
    except BaseException:
        with contextlib.suppress(Exception):
            _finalize(store, items, output, engine, status)
        raise
    finally:
        store.close()
        if cache is not None:
            cache.close()
    return RunSummary(outcome=outcome, output=output, failures=fails if fails else failures_path(output),
                      run_db=run_db, pack=plan, report=report)
