"""``flashlane run``'s body: input file -> run database -> output files, resumable (what
resume promises: docs/tasks.md, "How flashlane run behaves"). A different input, task, model
or options gives a different fingerprint and is refused (``--fresh`` starts over), so a
resumed run never mixes answers to two different questions. The input streams into the
store while its fingerprint is computed; an unchanged input (same sha256) is not read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import math
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..caching.response_cache import ResponseCache, default_cache_path
from ..errors import FlashlaneError, InputError, model_not_found
from ..media import page_selection
from ..models import Quota, Usage, cost_of, lookup
from ..store.db import copy_database
from ..store.run import RunStore
from ..tasks import Task
from .batch import BatchOptions, stderr_say
from .context_cache import RunContextCache
from .estimate import Estimate, estimate_run
from .items import COLUMN_SAMPLE_ROWS, Item, ItemBuilder, columns_of
from .job import Job
from .packing import ID_OVERHEAD_TOKENS, PackPlan, auto_pack_size, estimate_item_tokens, quota_from_limits
from .plan import parse_finish_by
from .progress import Progress
from .readers import DEFAULT_ENCODING, DELIMITERS, DIR_PATH_COLUMN, input_digest, is_dir_input, iter_rows
from .report import build_report
from .runlock import RunLock
from .runner import LiveRunner, RunOptions, finish_uploads, open_runner
from .scheduler import DEFAULT_CONCURRENCY, Engine, RunOutcome
from .writers import (
    InputNames,
    failures_path,
    output_format,
    output_record,
    remove_stale_temp,
    require_writer,
    write_failures,
    write_output,
)

if TYPE_CHECKING:
    from ..call.client import Client as Lane

__all__ = ["RunConfig", "RunSummary", "RunInterrupted", "run_file", "estimate_file", "default_output", "default_run_db",
           "resolve_pack"]

RUN_DB_SUFFIX = ".flashlane.db"
PACK_SAMPLE_ITEMS = 2000  # items read back to estimate tokens per item for --pack auto
ROWS_IDS = "rows"  # meta "ids": items are numbered by row (no id column)
IMPLICIT_ID_COLUMN = "id"
SHOWN_CHARS = 60  # a setting's value as a refused rerun shows it (instructions can be pages long)


@dataclass
class RunConfig:
    input: str
    output: str | None = None
    fmt: str | None = None
    encoding: str = DEFAULT_ENCODING
    delimiter: str | None = None  # a CSV/TSV delimiter (None: a .csv file's is detected, a .tsv's is a tab)
    column: str | None = None
    template: str | None = None
    id_column: str | None = None
    run_db: str | None = None
    fresh: bool = False
    retry_failed: bool = False
    pack: int | str | None = None  # None/1: one item per request; N; "auto"
    concurrency: int | None = DEFAULT_CONCURRENCY  # None: auto from the quota and model latency
    budget_usd: float | None = None
    cache: bool = True  # the response cache (--no-cache: off)
    # flashlane eval: the response cache is the eval's own file, its answers shared only between runs of
    # the same scope (pack size, prefix caching) and kept with their usage, so a hit is priced as the
    # request it saved would have cost (ResponseCache); None: the user's cache, as --no-cache says
    cache_file: str | None = None
    cache_scope: str | None = None
    service_tier: str | None = None  # None: the Lane's service_tier setting
    cache_prefix: str | None = None  # the context cache of the prefix: auto | on | off (None: the setting)
    quiet: bool = False
    task_options: dict[str, Any] = field(default_factory=dict)
    batch: Any = None  # pipeline.batch.BatchOptions for --service-tier batch (None: the defaults)
    warn: Callable[[str], None] | None = None  # one-line warnings about the input (default: stderr)
    input_columns: bool = True  # write the input's columns next to the results (--no-input-columns: only results)
    media_column: str | None = None  # a column of file paths, each row's file sent with it (a folder: "path")
    # the folder relative paths in media_column are read against (None: the input's; flashlane eval:
    # the labelled file's, as its rows are copied into the eval's folder)
    media_base: str | None = None
    glob: str | None = None  # a folder input: which files (relative-path glob; default all)
    finish_by: str | None = None  # --finish-by: a duration ("2h") or a time; the tiers are planned (plan.py)
    # --dry-run: send nothing. With --finish-by, run_file prints the plan; without, the command
    # line prints estimate_file's estimate (items, pages, tokens, dollars per tier) instead.
    dry_run: bool = False
    pages: str | None = None  # only these pages of each PDF in the media column ("1-3"; default all)


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
    """The pack size; ``items`` is a sample of the input (for tokens per item)."""
    if pack in (None, 0, 1, "1"):
        return PackPlan(1, "one item per request")
    if not job.packable:
        return PackPlan(1, f"task '{job.task.name}' returns free text, which does not pack")
    if isinstance(pack, str) and pack.lower() == "auto":
        settings = job.lane.settings
        if job.service_tier == "batch":
            # A batch job has no per-minute request quota to fill: pack as many as fit (the
            # accuracy, output and context bounds of auto_pack_size), the fewest shared prompts.
            unbound = Quota(rpm=1, tpm=0, rpd=0)
            p = auto_pack_size(model=job.model, thinking=job.thinking, per_item_input=estimate_item_tokens(items, lambda it: job.item_tokens(it).total),
                               shared_input=job.shared_tokens, per_item_answer=job.answer_tokens(), quota=unbound,
                               output_ceiling=settings.output_ceiling)
            return PackPlan(p.size, f"batch: no per-minute request quota, {p.size} per request (as many as fit)")
        return auto_pack_size(model=job.model, thinking=job.thinking, per_item_input=estimate_item_tokens(items, lambda it: job.item_tokens(it).total),
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


def pack_hint(job: Job, sample: list[Item], report: dict[str, Any]) -> dict[str, Any] | None:
    """What ``--pack auto`` would have saved a structured run that went unpacked (packing is off
    unless asked): its requests, the cost of the shared prompt and the thinking each request
    repeats, and the time under the quota (requests over RPM, tokens over TPM: the lower bounds
    a limiter paces to). Estimates from this run's own counts; whether accuracy holds is what
    ``flashlane eval`` measures. None when packing would not change anything."""
    if not job.packable or report["requests"] < 2:
        return None
    size = resolve_pack(job, sample, "auto").size
    asked = report["items"]["ok"] + report["items"]["failed"] - report["items"]["cached"]
    requests = math.ceil(asked / size) if size > 1 else asked
    fewer = report["requests"] - requests
    if size <= 1 or fewer <= 0:
        return None
    # What each request repeats, from this run's own counts: its input beyond the item (the prompt,
    # instructions and schema every request carries) and its thinking.
    tok = report["tokens"]
    shared = max(tok["input"] / report["requests"] - estimate_item_tokens(sample), 0.0) if sample else 0.0
    saved_in, saved_thoughts = round(fewer * shared), round(fewer * tok["thinking"] / report["requests"])
    added_out = asked * ID_OVERHEAD_TOKENS  # each packed answer carries its item's id
    before = cost_of(job.model, Usage(prompt_tokens=saved_in, thoughts_tokens=saved_thoughts),
                     service_tier=job.service_tier)
    extra = cost_of(job.model, Usage(output_tokens=added_out), service_tier=job.service_tier)
    out: dict[str, Any] = {"pack": size, "requests": report["requests"], "requests_packed": requests,
                           "saved_usd": None if before is None or extra is None else round(before - extra, 8)}
    quota = quota_from_limits(getattr(job.lane.settings, "limits", None), job.model)
    tokens = tok["input"] + tok["output"] + tok["thinking"]
    if quota is not None and quota.rpm:
        def minutes(n_requests: int, n_tokens: int) -> float:
            return max(n_requests / quota.rpm, n_tokens / quota.tpm if quota.tpm else 0.0)
        out.update(rpm=quota.rpm, minutes=round(minutes(report["requests"], tokens), 2),
                   minutes_packed=round(minutes(requests, max(tokens - saved_in - saved_thoughts + added_out, 0)), 2))
    return out


# ---------------------------------------------------------------------------- input -> store


class _Ingest:
    """The input read once, row by row: checked, turned into items, hashed into the
    fingerprint, and handed to the store as ``(idx, item_id, hash, row_json)``."""

    def __init__(self, cfg: RunConfig, task: Task, job: Job, id_column: str | None, *,
                 implicit_id: bool = False) -> None:
        seen: dict[str, str] = {}
        rows = iter_rows(cfg.input, fmt=cfg.fmt, encoding=cfg.encoding, warn=cfg.warn, delimiter=cfg.delimiter,
                         seen=seen, glob=cfg.glob)
        head = list(itertools.islice(rows, COLUMN_SAMPLE_ROWS))
        self.columns: dict[str, None] = dict.fromkeys(columns_of(head))
        implicit = implicit_id and id_column is None and IMPLICIT_ID_COLUMN in self.columns
        if implicit:
            id_column = IMPLICIT_ID_COLUMN  # a column named "id" is the id unless --id-column says otherwise
        self.builder = _builder(task, cfg, id_column, implicit_id=implicit)
        try:
            self.builder.check(list(self.columns))
        except InputError as e:
            if "delimiter" in seen:  # say how the columns were split, so a wrong split is seen as one
                d = seen["delimiter"]
                e.hint = (f"{e.hint}; columns were split on {DELIMITERS.get(d, repr(d))} ({seen['how']}); "
                          "pass --delimiter to split them otherwise")
            raise
        self._rows = itertools.chain(head, rows)
        self.source = _source(cfg, id_column)
        self.hash = job.fingerprint_start(source=self.source)
        self.job_key = str(job.fingerprint_start(source=self.source).hexdigest())

    def _built(self) -> Iterator[tuple[int, dict[str, Any], Item]]:
        columns = self.columns
        for idx, row in enumerate(self._rows):
            if len(row) != len(columns) or any(k not in columns for k in row):
                columns.update(dict.fromkeys(row))
            yield idx, row, self.builder.build(idx, row)

    def items(self) -> Iterator[Item]:
        """The input's items, one at a time (what a dry run estimates)."""
        return (it for _, _, it in self._built())

    def __iter__(self) -> Iterator[tuple[int, str, str, str]]:
        for idx, row, it in self._built():
            self.hash.update(Job.item_line(it))
            try:
                blob = json.dumps(row, ensure_ascii=False, default=str)
            except RecursionError:
                raise InputError(f"row {idx + 1}: JSON nested too deeply to store", hint="flatten the data") from None
            yield idx, it.id, it.hash, blob

    @property
    def fingerprint(self) -> str:
        return str(self.hash.hexdigest())


def _source(cfg: RunConfig, id_column: str | None) -> dict[str, Any]:
    """How rows become items, as the fingerprint hashes it (the media keys only when used, so
    text runs keep their fingerprints)."""
    source: dict[str, Any] = {"column": cfg.column, "template": cfg.template, "id_column": id_column}
    if cfg.media_column is not None:
        source.update(media_column=cfg.media_column, glob=cfg.glob)
    if cfg.pages:
        source.update(pages=cfg.pages)
    return source


def _builder(task: Task, cfg: RunConfig, id_column: str | None, *, implicit_id: bool = False) -> ItemBuilder:
    # Relative paths in a media column are read against the folder (a folder input) or the
    # input file's folder, so a CSV and its scans move together.
    base = Path(cfg.media_base) if cfg.media_base is not None else Path(cfg.input) if is_dir_input(cfg.input) \
        else Path(cfg.input).parent if cfg.input != "-" else Path()
    return ItemBuilder(task, column=cfg.column, template=cfg.template, id_column=id_column, implicit_id=implicit_id,
                       media_column=cfg.media_column, media_base=base, pages=cfg.pages)


def _id_column(store: RunStore, cfg: RunConfig) -> str | None:
    """Which column holds the ids: --id-column ('' = number the rows), else what the run used."""
    if cfg.id_column is not None:
        return cfg.id_column or None
    recorded = store.metadata.get("ids")
    if recorded is None or recorded == ROWS_IDS:
        return None  # runs made before ids were recorded numbered their rows
    return recorded.removeprefix("column:")


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        text = ",".join(str(v) for v in value)
    elif isinstance(value, dict):
        text = json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)
    else:
        text = "(none)" if value is None or value == "" else str(value)
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _settings(job: Job, source: dict[str, Any]) -> dict[str, str]:
    """What decides the answers, readable (what ``Job.fingerprint_start`` hashes): recorded with
    a run, so a rerun refused for a different fingerprint can name what changed."""
    system, instructions = job.decides  # the pair the fingerprint hashes
    decides = {"task": job.task.name, "model": job.model, "thinking": job.thinking, "system": system,
               "instructions": instructions, "template": job.task.item_template,
               "schema": job.item_schema.json_schema if job.item_schema else None,
               "tools": job.task.tool_names, "reference material": job.prefix.digest() if job.prefix else None,
               **{k: v for k, v in job.options.items() if k not in ("schema", "text")}, **source}
    return {k: _shown(v) for k, v in decides.items()}


# Settings that follow from the task and the options (a task file's edit, or the options rendered).
_DERIVED = ("system", "instructions", "template", "schema", "tools", "reference material")


def _changed(store: RunStore, now: dict[str, str]) -> str:
    """``labels: positive,negative,neutral → pos,neg; model: ...``, or what else differs."""
    try:
        before = json.loads(store.metadata.get("settings") or "null")
    except ValueError:
        before = None
    if not isinstance(before, dict):  # a run made before settings were recorded
        return "a different input, task, model or options"
    keys = [k for k in dict.fromkeys([*before, *now]) if before.get(k, "(none)") != now.get(k, "(none)")]
    # What the user chose first; what follows from it (the labels' instructions) only when nothing chosen differs.
    chosen = [k for k in keys if k not in _DERIVED] or keys
    return "; ".join(f"{k}: {before.get(k, '(none)')} → {now.get(k, '(none)')}" for k in chosen) or \
        "the input's rows differ"


def open_run(store: RunStore, job: Job, task: Task, cfg: RunConfig, output: Path) -> ItemBuilder:
    """Fill a new run's store from the input, or check a resumed one against it."""
    if not store.is_new() and not store.items.has_work():
        store.reset()  # nothing done yet: a corrected command replaces it
    if store.is_new():
        store.reset()  # rows of an ingest that was cut off
        ingest = _Ingest(cfg, task, job, cfg.id_column or None, implicit_id=cfg.id_column is None)
        store.items.insert(ingest, ingest.builder.duplicate)
        store.metadata.set(fingerprint=ingest.fingerprint, job_key=ingest.job_key, input_digest=input_digest(cfg.input),
                       ids=f"column:{ingest.source['id_column']}" if ingest.source["id_column"] else ROWS_IDS,
                       input_columns=list(ingest.columns), task=job.task.name, model=job.model, input=cfg.input,
                       output=str(output), status="running", settings=_settings(job, ingest.source))
        return ingest.builder
    id_column = _id_column(store, cfg)
    source = _source(cfg, id_column)
    builder = _builder(task, cfg, id_column)
    digest = input_digest(cfg.input)
    job_key = str(job.fingerprint_start(source=source).hexdigest())
    if digest is not None and store.metadata.get("input_digest") == digest and store.metadata.get("job_key") == job_key:
        return builder  # the same bytes through the same job: the same fingerprint, nothing to read
    ingest = _Ingest(cfg, task, job, id_column)
    store.items.stage(ingest, ingest.builder.duplicate)
    if ingest.fingerprint != store.metadata.get("fingerprint"):
        store.items.drop_staged()
        raise InputError(f"{store.path} belongs to a run with other settings: {_changed(store, _settings(job, source))}",
                         hint="rerun with the run's settings to resume it; or add --fresh to start over (finished "
                              "rows are requested again), or pass another -o or --run-db")
    store.items.adopt_staged()
    store.metadata.set(job_key=job_key, input_digest=digest, input_columns=list(ingest.columns),
                   ids=f"column:{id_column}" if id_column else ROWS_IDS)
    return builder


def check_model(lane: Lane, model: str) -> None:
    """A retired or unknown model fails before the run starts, not row by row: the catalog
    knows retired IDs; one the catalog does not know is asked of the API (``models.get``),
    so a model the API serves still works."""
    info = lookup(model)
    if info is not None:
        if info.retired:
            raise model_not_found(model)
        return
    lane.get_model(model)  # raises ModelNotFound (404) naming the closest known IDs


def _sample(store: RunStore, builder: ItemBuilder) -> list[Item]:
    return [builder.restore(idx, iid, json.loads(row)) for idx, iid, _, row in store.items.sample(PACK_SAMPLE_ITEMS)
            if row is not None]


# ---------------------------------------------------------------------------- store -> output


def _file_sig(path: Path) -> list[int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _output_sig(output: Path, inputs: bool) -> str:
    return json.dumps([str(output), inputs, _file_sig(output), _file_sig(failures_path(output))])


def _write_outputs(store: RunStore, output: Path, *, inputs: bool) -> Path:
    fails = failures_path(output)
    if not store.changed and store.metadata.get("output_sig") == _output_sig(output, inputs):
        return fails  # written from this very state already
    recorded = store.metadata.get("ids")
    id_column = recorded.removeprefix("column:") if recorded and recorded != ROWS_IDS else None

    def records() -> Iterator[dict[str, Any]]:
        names = InputNames(id_column) if inputs else None
        return (output_record(r, names) for r in store.items.iter_rows())

    write_output(output, records)
    write_failures(output, (output_record(r, None) for r in store.items.iter_rows(failed_only=True)))
    store.metadata.set(output_sig=_output_sig(output, inputs))
    store.changed = False
    return fails


def _finalize(store: RunStore, output: Path, engine: Engine | None, status: str, *, inputs: bool) -> Path:
    # Every session ends here, batch ones too (no engine: their API calls are jobs, not requests).
    store.sessions.end(status, **(engine.guard_delta() if engine is not None else {}))
    store.metadata.set(status=status)
    return _write_outputs(store, output, inputs=inputs)


class RunInterrupted(KeyboardInterrupt):
    """The run was stopped by SIGINT or SIGTERM; what was done is saved and the output written."""

    def __init__(self, signum: int, output: Path, run_db: Path, counts: dict[str, int] | None,
                 batch_jobs: Sequence[str] = ()) -> None:
        self.signum = signum
        self.exit_code = 128 + signum  # 130 for SIGINT, 143 for SIGTERM, as shells report them
        name = signal.Signals(signum).name
        done = f" ({counts['ok'] + counts['failed']} of {sum(counts.values())} rows done)" if counts else ""
        self.message = (f"interrupted by {name}: partial output written to {output}{done}; "
                        f"rerun the same command to resume (run db {run_db})")
        if batch_jobs:
            # A batch job is the server's work, not this process's: it goes on (and is billed) without us.
            run = output if run_db == default_run_db(output) else run_db
            self.message += (f"\n{len(batch_jobs)} batch job(s) keep running on the server and will be billed "
                             f"({', '.join(batch_jobs)}): rerun the same command to collect them, or "
                             f"cancel them with: flashlane batch cancel {run}")
        super().__init__(self.message)


class _Signals:
    """SIGTERM behaves as SIGINT: the run stops, saves what it has, writes partial output. While
    requests are in flight (``run`` with a drain), the first signal stops sending and lets them
    answer (``Engine.interrupt``); a second stops at once."""

    def __init__(self) -> None:
        self.received: int | None = None
        self._previous: Any = None

    def _raise(self, signum: int, frame: Any) -> None:
        self.received = signum
        raise KeyboardInterrupt

    def __enter__(self) -> _Signals:
        with contextlib.suppress(ValueError):  # not the main thread: leave signals alone
            self._previous = signal.signal(signal.SIGTERM, self._raise)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    async def run(self, coro: Any, drain: Callable[[str], str] | None = None) -> Any:
        """Await ``coro``; the first SIGINT or SIGTERM calls ``drain`` (and shows what it says), the
        next one, or the first without a drain, cancels ``coro``."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        installed = []

        def on_signal(signum: int) -> None:
            first = self.received is None
            self.received = self.received or signum  # the exit code is the first signal's
            if first and drain is not None:
                print(drain(signal.Signals(signum).name), file=sys.stderr, flush=True)
            elif task is not None:
                task.cancel()

        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(signum, on_signal, signum)
                installed.append(signum)
        try:
            return await coro
        finally:
            for signum in installed:
                loop.remove_signal_handler(signum)  # SIGINT goes back to KeyboardInterrupt
            if signal.SIGTERM in installed:
                with contextlib.suppress(ValueError):
                    signal.signal(signal.SIGTERM, self._raise)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve() or (b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _refused(run_db: Path) -> None:
    """A run refused before its first session (bad input, a column that is not there, a changed
    rerun of an empty run) leaves no database behind: nothing is sent before a session starts,
    so a database without one records nothing paid for."""
    with contextlib.suppress(Exception):
        store = RunStore(run_db, create=False)
        try:
            unused = store.totals.ledger()["sessions"] == 0
        finally:
            store.close()
        if unused:
            _remove_db(run_db)


def _media_input(cfg: RunConfig) -> RunConfig:
    """A folder input: one row per file, its relative path the id and the file sent. ``--pages``
    checked here, before any work: it needs files, and a page range it can read."""
    if is_dir_input(cfg.input):
        cfg = replace(cfg, media_column=cfg.media_column or DIR_PATH_COLUMN,
                      id_column=DIR_PATH_COLUMN if cfg.id_column is None else cfg.id_column)
    if cfg.pages:
        if cfg.media_column is None:
            raise InputError("--pages chooses pages of the input's PDF files, and this input has none",
                             hint="give a folder, or name the column of file paths with --media-column")
        try:
            page_selection(cfg.pages)
        except ValueError as e:
            raise InputError(f"--pages {cfg.pages}: {e}", hint="e.g. --pages 1-3 or --pages 1,4-5") from None
    return cfg


def estimate_file(lane: Lane, task: Task, cfg: RunConfig) -> Estimate:
    """What ``run_file`` would send and cost, read from the input without sending a request
    (but countTokens, on a few sampled requests with files) or writing a file."""
    cfg = _media_input(cfg)
    if cfg.budget_usd is not None and cfg.budget_usd <= 0:
        raise InputError("--budget-usd must be positive", hint="e.g. --budget-usd 0.50")
    job = Job.create(lane, task, cfg.task_options)
    check_model(lane, job.model)
    # The ingest's item builder holds the files while their items are estimated (call/media.py
    # keeps only weak references), so it stays named here until the estimate is done.
    ingest = _Ingest(cfg, task, job, cfg.id_column or None, implicit_id=cfg.id_column is None)
    items = ingest.items()
    sample = list(itertools.islice(items, PACK_SAMPLE_ITEMS))
    plan = resolve_pack(job, sample, cfg.pack)
    cache = ResponseCache(default_cache_path(lane.settings.state_dir)) if cfg.cache else None
    try:
        estimate = estimate_run(job, itertools.chain(sample, items), plan, count=lane.count_call,
                                budget_usd=cfg.budget_usd, cache=cache)
    finally:
        if cache is not None:
            cache.close()
    del ingest
    return estimate


def run_file(lane: Lane, task: Task, cfg: RunConfig) -> RunSummary:
    cfg = _media_input(cfg)
    output = Path(cfg.output) if cfg.output else default_output(cfg.input, task)
    if cfg.input != "-" and _same_file(Path(cfg.input), output):
        raise InputError(f"the output {output} is the input file; writing it would destroy the input",
                         hint="pass another -o, e.g. -o " + str(default_output(cfg.input, task)))
    output_format(output)  # refuse a bad extension before doing any work
    require_writer(output)
    if cfg.budget_usd is not None and cfg.budget_usd <= 0:
        raise InputError("--budget-usd must be positive", hint="e.g. --budget-usd 0.50")
    if cfg.dry_run and cfg.finish_by is None:
        raise InputError("run_file's dry run shows a --finish-by plan",
                         hint="add finish_by; for the estimate of a run without one, call estimate_file")
    deadline = parse_finish_by(cfg.finish_by, lane.clock.time()) if cfg.finish_by is not None else None
    if deadline is not None and deadline <= lane.clock.time():
        raise InputError(f"--finish-by {cfg.finish_by} is already past", hint="give a later time, or a duration "
                         "such as --finish-by 2h")
    job = Job.create(lane, task, cfg.task_options, service_tier=cfg.service_tier)
    check_model(lane, job.model)
    run_db = Path(cfg.run_db) if cfg.run_db else default_run_db(output)
    if cfg.input != "-" and _same_file(Path(cfg.input), run_db):
        raise InputError(f"the run database {run_db} is the input file", hint="pass another --run-db")
    if cfg.dry_run:
        return _plan_only(lane, task, cfg, job, output, run_db, deadline)
    with RunLock(run_db), _Signals() as signals:
        new = not run_db.exists()
        try:
            return _run_locked(lane, task, cfg, job, output, run_db, signals, deadline)
        except FlashlaneError:
            if new:
                _refused(run_db)
            raise
        except (KeyboardInterrupt, asyncio.CancelledError):
            if isinstance(sys.exc_info()[1], RunInterrupted):
                raise
            raise RunInterrupted(signals.received or signal.SIGINT, output, run_db, None) from None


def _plan_only(lane: Lane, task: Task, cfg: RunConfig, job: Job, output: Path, run_db: Path,
               deadline: float | None) -> RunSummary:
    """--dry-run with --finish-by: the plan, made on a scratch copy of the run database (its
    history and finished rows included) and a scratch output, so the run's own files are left as
    they were and nothing is sent, made or deleted."""
    with RunLock(run_db), _Signals() as signals, tempfile.TemporaryDirectory(prefix="flashlane-plan-") as tmp:
        scratch = Path(tmp) / run_db.name
        if run_db.exists():
            copy_database(run_db, scratch)
        summary = _run_locked(lane, task, cfg, job, Path(tmp) / output.name, scratch, signals, deadline)
    return replace(summary, output=output, failures=failures_path(output), run_db=run_db)


def _run_locked(lane: Lane, task: Task, cfg: RunConfig, job: Job, output: Path, run_db: Path,
                signals: _Signals, deadline: float | None = None) -> RunSummary:
    if cfg.fresh:
        _remove_db(run_db)
    remove_stale_temp(output)
    remove_stale_temp(failures_path(output))
    store = RunStore(run_db, now=lane.clock.time)
    response_cache: ResponseCache | None = None
    engine: Engine | None = None
    context_cache: RunContextCache | None = None
    status = "interrupted"
    try:
        builder = open_run(store, job, task, cfg, output)
        plan = resolve_pack(job, _sample(store, builder), cfg.pack)
        if cfg.retry_failed:
            store.items.retry_failed()
        store.sessions.close_stale()
        if cfg.cache:
            response_cache = ResponseCache(cfg.cache_file or default_cache_path(lane.settings.state_dir),
                                           # a packed item's answer is another answer than the item's alone
                                           scope=None if cfg.cache_scope is None else f"{cfg.cache_scope} pack={plan.size}",
                                           keep_usage=cfg.cache_scope is not None)
        store.sessions.start()
        store.metadata.set(limits=lane.guard.limiter.describe())
        say = None if cfg.quiet else stderr_say
        batch = cfg.batch or BatchOptions()
        if batch.say is None:
            batch.say = say
        runner, context_cache = open_runner(job, store, builder, RunOptions(
            pack_size=plan.size, concurrency=cfg.concurrency, budget_usd=cfg.budget_usd, cache=response_cache,
            cache_prefix=cfg.cache_prefix, batch=batch, spool_dir=str(run_db.parent), finish_by=deadline,
            say=stderr_say if cfg.dry_run else say, plan_only=cfg.dry_run))
        if isinstance(runner, LiveRunner):
            engine = runner.engine
        if cfg.dry_run:  # the plan is printed; nothing is sent
            outcome = RunOutcome(status="planned", message="dry run: the plan above; nothing was sent")
        else:
            with Progress(quiet=cfg.quiet or not runner.shows_progress) as progress:
                if engine is not None:
                    engine.on_progress = progress.update
                outcome = runner.run(signals.run)
        engine = runner.engine  # a batch run's standard fallback has one too
        status = outcome.status
        if status == "done" and store.items.counts()["pending"]:
            status = "incomplete"
        if status == "interrupted":  # drained: the answers in flight are recorded; the cache serves the rerun
            _finalize(store, output, engine, status, inputs=cfg.input_columns)
            raise RunInterrupted(signals.received or signal.SIGINT, output, run_db, store.items.counts())
        context_cache, closing = None, context_cache
        if closing is not None:
            closing.close()  # the run stopped in order: its context cache is deleted, whatever comes next
        if plan.size == 1 and cfg.pack is None:
            hint = pack_hint(job, _sample(store, builder), build_report(store))
            if hint is not None:
                store.metadata.set(pack_auto=hint)
        finish_uploads(job, store, done=status == "done")
        fails = _finalize(store, output, engine, status, inputs=cfg.input_columns)
        report = build_report(store)
    except (KeyboardInterrupt, asyncio.CancelledError) as e:
        if isinstance(e, RunInterrupted):
            raise
        counts = None
        jobs: list[str] = []
        if store.session is not None:
            with contextlib.suppress(Exception):
                _finalize(store, output, engine, status, inputs=cfg.input_columns)
                counts = store.items.counts()
                jobs = [r.name or r.display_name for r in store.batch.active()]
        raise RunInterrupted(signals.received or signal.SIGINT, output, run_db, counts, jobs) from None
    except BaseException:
        if context_cache is not None:
            with contextlib.suppress(Exception):
                context_cache.close()
        if store.session is not None:
            with contextlib.suppress(Exception):
                _finalize(store, output, engine, status, inputs=cfg.input_columns)
        raise
    finally:
        lane.uploads.finish(delete=False)  # detached from the store (a no-op when finish_uploads ran)
        store.close()
        if response_cache is not None:
            response_cache.close()
    return RunSummary(outcome=outcome, output=output, failures=fails, run_db=run_db, pack=plan, report=report)
