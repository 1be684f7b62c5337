"""Batch runs: a run's requests sent as Gemini Batch API jobs, at half the price, crash-safe;
what they promise (inline or file jobs, never a duplicate job, resubmission, budgets) is in
docs/tiers.md. Media too large to go inline are uploaded through the Files API as the job is built
and referenced by uri (``fileData``) in its lines (call/uploads.py); small ones ride inline. Each request has a stable key (``request_key``: its items' ids); results are
joined by key, never by position (inline results were reported out of order: python-genai #1909).
Jobs are recorded in the run store before they are created (``store.run.batch_jobs``).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from google.genai import types

from .. import telemetry
from ..call.request import Call
from ..call.result import Result, usage_from_response
from ..call.service_tier import BATCH
from ..call.transport import Transport
from ..call.uploads import BATCH_REUSE_MARGIN_S
from ..errors import FileNotFound, FlashlaneError, InputError, RateLimited, from_status
from ..models import cost_of
from ..store.run import BatchJobs, JobRecord, RunStore
from .items import Item, ItemBuilder
from .job import Job
from .scheduler import RunOutcome
from .settle import Keep, Prefilter, Split, held, split

if TYPE_CHECKING:
    from ..caching.response_cache import ResponseCache

__all__ = ["BatchOptions", "BatchRun", "request_key", "batch_request_config", "TERMINAL_STATES",
           "INLINE_MAX_BYTES", "FILE_MAX_BYTES", "MAX_REQUESTS_PER_JOB", "MAX_RESUBMITS"]

# "Inline ... for batches under 20 MB total"; "Max 2 GB per file" (ai.google.dev/gemini-api/docs/batch-api,
# rate-limits page; model-facts.md §2.3). Inline stays a margin under 20 MB for the JSON envelope the SDK adds.
INLINE_MAX_BYTES = 19_000_000
FILE_MAX_BYTES = 2_000_000_000
# No request-count limit per job is documented (model-facts.md §2.3 "Not found"); this bound
# keeps one job's results file and a resubmission after an expiry moderate.
MAX_REQUESTS_PER_JOB = 50_000
MAX_ACTIVE_JOBS = 100  # "100 concurrent batch requests" (model-facts.md §2.3)
MAX_RESUBMITS = 2  # an item rides in at most 1 + this many jobs before it is a failure
# Polling: the target turnaround is 24 h, most jobs end far sooner; start quick, back off.
POLL_INITIAL_S = 2.0
POLL_MAX_S = 60.0
POLL_FACTOR = 1.5
PENDING_WINDOW = 5_000  # items read from the store at a time while building jobs
TERMINAL_STATES = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED")
DISPLAY_PREFIX = "flashlane"
# Keys the Gemini API's Schema (responseSchema, an OpenAPI 3.0 subset) takes; anything else
# (``$ref``/``$defs``, ``additionalProperties``, ``const``...) keeps responseJsonSchema.
SCHEMA_KEYS = frozenset({"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems",
                         "properties", "required", "minProperties", "maxProperties", "minLength", "maxLength",
                         "pattern", "example", "anyOf", "propertyOrdering", "default", "items", "minimum",
                         "maximum"})


@dataclass
class BatchOptions:
    inline_max_bytes: int = INLINE_MAX_BYTES
    file_max_bytes: int = FILE_MAX_BYTES
    max_requests: int = MAX_REQUESTS_PER_JOB
    max_active_jobs: int = MAX_ACTIVE_JOBS
    max_resubmits: int = MAX_RESUBMITS
    poll_initial_s: float = POLL_INITIAL_S
    poll_max_s: float = POLL_MAX_S
    poll_factor: float = POLL_FACTOR
    detach: bool = False
    fallback: str = "queue"  # queue: failed requests go to the next job | standard: to the standard tier
    say: Callable[[str], None] | None = None  # progress lines (None: quiet)
    # A deadline plan's cut-off (epoch seconds on the lane's clock): no job is submitted from then on,
    # and every job not ended is cancelled; the run returns "cutoff" only once each cancellation is
    # confirmed (the job reads a terminal state) and what the job returned is collected, so its other
    # rows are free for the next tier and none is ever in flight on two tiers.
    cutoff_at: float | None = None


def request_key(items: list[Item]) -> str:
    """A request's key: stable for the same items (so a resumed run joins the same answers)."""
    h = hashlib.sha256("\n".join(it.id for it in items).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"r{items[0].index + 1}-{len(items)}-{h}"


def _schema_fits(node: Any) -> bool:
    if isinstance(node, dict):
        if any(k not in SCHEMA_KEYS for k in node):
            return False
        props = node.get("properties")
        if isinstance(props, dict) and not all(_schema_fits(v) for v in props.values()):
            return False
        if "items" in node and not _schema_fits(node["items"]):
            return False
        return all(_schema_fits(v) for v in node.get("anyOf", []))
    return True


def batch_request_config(config: types.GenerateContentConfig) -> types.GenerateContentConfig:
    """The standard request's config as a batch request sends it.

    Structured output: responseSchema when the schema fits the API's Schema subset, else
    responseJsonSchema. Why: crmne/ruby_llm #894 reported degenerate JSON with
    responseJsonSchema in batch mode while responseSchema worked, and the Vercel AI SDK's
    Google provider (4.0.122) rejects structured-output schemas in batches for that reason
    (model-facts.md addendum). Our item and pack schemas (objects, arrays, enums, min/maxItems)
    fit the subset, so batches use responseSchema; a user schema with ``$ref`` or
    ``additionalProperties`` cannot be expressed there and keeps responseJsonSchema (the answer
    is validated per item either way, and a bad one goes back to the queue).
    """
    js = config.response_json_schema
    if js is None or not _schema_fits(js):
        return config
    # A copy: the SDK's schema conversion edits the dict it is given in place, and this one is the
    # job's own (its fingerprint hashes it), so a second run in the same process was refused as changed.
    return config.model_copy(update={"response_json_schema": None, "response_schema": copy.deepcopy(js)})


def _count(stats: dict[str, Any], name: str) -> int:
    try:
        return int(stats.get(name) or 0)  # int64 counts arrive as strings
    except (TypeError, ValueError):
        return 0


def _short(state: Any) -> str:
    s = str(getattr(state, "value", state) or "")
    return s.removeprefix("BATCH_STATE_").removeprefix("JOB_STATE_")


def read_job(transport: Transport, jobs: BatchJobs, rec: JobRecord) -> tuple[dict[str, Any], str, dict[str, int]]:
    """(the job's Operation as sent, its short state, the server's request counts), recorded."""
    assert rec.name is not None
    op = transport.get_batch_operation(rec.name)
    meta = op.get("metadata") or {}
    state = _short(meta.get("state"))
    raw_stats = meta.get("batchStats") or {}
    stats = {k: _count(raw_stats, k) for k in ("requestCount", "successfulRequestCount", "failedRequestCount",
                                                "pendingRequestCount")}
    jobs.update(rec.id, state, stats)
    return op, state, stats


@dataclass
class _Built:
    keys: list[tuple[str, list[str]]] = field(default_factory=list)
    calls: list[tuple[str, Call]] = field(default_factory=list)  # inline only
    path: Path | None = None
    size: int = 0
    reserved: float = 0.0


class BatchRun:
    """One run's batch work: submit, re-attach, poll, collect; ``run()`` until done or detached."""

    def __init__(self, job: Job, store: RunStore, builder: ItemBuilder, *, pack_size: int = 1,
                 budget_usd: float | None = None, cache: ResponseCache | None = None,
                 options: BatchOptions | None = None, keep_values: Keep = False, spool_dir: str | None = None) -> None:
        self.job = job
        self.store = store
        self.builder = builder
        self.pack_size = max(1, pack_size)
        self.budget_usd = budget_usd
        self.cache = cache
        self.opt = options or BatchOptions()
        self.keep_values = keep_values
        self.jobs = store.batch
        self.transport = job.lane.transport
        self.clock = job.lane.clock
        self.spool_dir = spool_dir
        self.outcome = RunOutcome()
        self.requests = 0
        self.cutoffs: list[dict[str, Any]] = []  # jobs cancelled at the plan's cut-off
        self._cancelled: set[int] = set()
        run_id = store.metadata.get("run_id")
        if run_id is None:
            run_id = uuid.uuid4().hex[:12]
            store.metadata.set(run_id=run_id)
        self.run_id = run_id

    # ------------------------------------------------------------------ helpers

    def _say(self, line: str) -> None:
        if self.opt.say is not None:
            self.opt.say(line)

    @property
    def max_sent(self) -> int:
        """Jobs an item may ride in: with the standard fallback, one (then the standard tier)."""
        return 1 if self.opt.fallback == "standard" else 1 + self.opt.max_resubmits

    def _restore(self, ids: list[str]) -> list[Item]:
        rows = self.store.items.rows_by_id(ids)  # {item_id: (idx, input row parsed)}
        return [self.builder.restore(rows[iid][0], iid, rows[iid][1]) for iid in ids]

    def _call(self, unit: list[Item]) -> Call:
        call = self.job.call_for(unit)  # the standard request, tools and all; only the schema field differs
        return replace(call, config=batch_request_config(call.config))

    def _spent(self) -> float:
        return self.store.requests.spent_usd()

    # ------------------------------------------------------------------ before any job: local outcomes

    def _windows(self, max_sent: int | None = None) -> Iterator[list[tuple[int, str, str, str | None]]]:
        """Free pending rows (not in a job in flight; with ``max_sent``, sent in fewer jobs than
        that): (idx, item_id, hash, row), a window at a time."""
        after = -1
        while rows := self.jobs.free_pending(after, PENDING_WINDOW, max_sent):
            after = rows[-1][0]
            yield rows

    def _prefilter(self) -> None:
        """Rows decided without a request (too large, empty) and cache hits, once per run."""
        prefilter = Prefilter(self.job, self.cache, dedupe=False)  # each row of a job is its own request
        for rows in self._windows():
            for _idx, iid, _h, row in rows:
                if row is None:
                    raise InputError(f"item {iid} has no stored input row", hint="rerun the same command")
            _, failed, hits = prefilter([self.builder.restore(idx, iid, json.loads(row or "{}"))
                                        for idx, iid, _h, row in rows])
            self.outcome.values.update(held({i: prefilter.values[i] for i in hits}, self.keep_values))
            prefilter.values.clear()
            self.store.requests.record_failures(failed)
            self.store.requests.record_cached(hits)

    # ------------------------------------------------------------------ building a job

    def _units(self) -> Any:
        """Free pending items (not in a job in flight, sent fewer than ``max_sent`` times), packed."""
        unit: list[Item] = []
        for rows in self._windows(self.max_sent):
            for idx, iid, _h, row in rows:
                it = self.builder.restore(idx, iid, json.loads(row or "{}"))
                if self.job.closes_unit(unit, it, self.pack_size):
                    yield unit
                    unit = []
                unit.append(it)
        if unit:
            yield unit

    def _line(self, key: str, call: Call) -> bytes:
        """One JSONL line, converted by the SDK's own inline-request converter, so a file job's
        requests are byte for byte what an inline job would send."""
        wire = self.transport.batch_request(call.model, call.sdk_contents, call.config)
        return json.dumps({"key": key, "request": wire}, ensure_ascii=False).encode() + b"\n"

    def _build(self, seq: int) -> _Built | None:
        """The next job's requests, streamed: lines spooled to a file once past the inline size."""
        b = _Built()
        spool = None
        budget_left = None
        if self.budget_usd is not None:
            budget_left = self.budget_usd - self._spent() - self.jobs.reserved_usd()
        try:
            for unit in self._units():
                call = self._call(unit)
                key = request_key(unit)
                cost = self.job.max_cost(call) or 0.0
                if budget_left is not None and b.reserved + cost > budget_left:
                    break
                # Large media: uploaded (or an upload reused) now, so the line names the file's uri;
                # it must outlive the job's 24 h turnaround (uploads.BATCH_REUSE_MARGIN_S).
                call = self.job.lane.uploads.resolve(call, BATCH_REUSE_MARGIN_S)
                line = self._line(key, call)
                if b.keys and (len(b.keys) >= self.opt.max_requests or b.size + len(line) > self.opt.file_max_bytes):
                    break
                b.keys.append((key, [it.id for it in unit]))
                b.size += len(line)
                b.reserved += cost
                if spool is None and b.size > self.opt.inline_max_bytes:
                    # Past the inline limit: from here on the job is a file; spool what we have.
                    fd, name = tempfile.mkstemp(prefix=f"{DISPLAY_PREFIX}-{self.run_id}-{seq}-", suffix=".jsonl",
                                                dir=self.spool_dir)
                    spool = os.fdopen(fd, "wb")
                    b.path = Path(name)
                    for k, c in b.calls:
                        spool.write(self._line(k, c))
                    b.calls = []
                if spool is not None:
                    spool.write(line)
                else:
                    b.calls.append((key, call))
        finally:
            if spool is not None:
                spool.close()
        return b if b.keys else None

    # ------------------------------------------------------------------ submitting

    def _submit(self) -> bool:
        """Submit one job of free pending work; False when there is none (or no budget)."""
        seq = self.jobs.next_seq()
        built = self._build(seq)
        if built is None:
            return False
        display = f"{DISPLAY_PREFIX}-{self.run_id}-{seq}"
        mode = "file" if built.path is not None else "inline"
        jid = self.jobs.intend(display_name=display, mode=mode, model=self.job.model, requests=built.keys,
                               reserved_usd=built.reserved)
        try:
            if built.path is not None:
                uploaded = self.transport.upload_file(str(built.path), types.UploadFileConfig(
                    display_name=display, mime_type="application/jsonl"))
                self.jobs.set_file(jid, str(uploaded.name))
                src: Any = str(uploaded.name)
            else:
                src = [types.InlinedRequest(contents=c.sdk_contents, config=c.config, metadata={"key": k})
                       for k, c in built.calls]
            try:
                with telemetry.span("flashlane.batch.create", {
                        "gen_ai.request.model": self.job.model, "flashlane.batch.mode": mode,
                        "flashlane.requests": len(built.keys), "flashlane.items": sum(len(i) for _, i in built.keys),
                        "flashlane.reserved_usd": built.reserved}) as sp:
                    created = self.transport.create_batch(self.job.model, src, display)
                    sp.set({"flashlane.batch.job": str(created.name), "flashlane.batch.state": _short(created.state)})
            except RateLimited:
                # 429 on create (the enqueued-token quota): the job was not created; its rows stay free.
                if built.path is not None and self.jobs.file_of(jid):
                    with contextlib.suppress(FlashlaneError):
                        self.transport.delete_file(str(self.jobs.file_of(jid)))
                self.jobs.forget(jid)
                raise
        finally:
            if built.path is not None:
                with contextlib.suppress(OSError):
                    built.path.unlink()
        self.jobs.named(jid, str(created.name), _short(created.state))
        n_items = sum(len(ids) for _, ids in built.keys)
        self._say(f"batch: submitted {created.name} ({mode}, {len(built.keys)} requests, {n_items} items, "
                  f"up to ${built.reserved:.4f} reserved)")
        return True

    def _reattach(self) -> None:
        for rec in self.jobs.active():
            if rec.name is not None:
                continue
            found = self.transport.find_batch(rec.display_name)
            if found is not None:
                self.jobs.named(rec.id, str(found.name), _short(found.state))
                self._say(f"batch: re-attached {found.name} ({rec.display_name}), created before the last run stopped")
            else:
                if rec.file_name:
                    with contextlib.suppress(FlashlaneError):
                        self.transport.delete_file(rec.file_name)
                self.jobs.forget(rec.id)

    # ------------------------------------------------------------------ polling

    def _poll(self) -> list[tuple[JobRecord, dict[str, Any]]]:
        with telemetry.span("flashlane.batch.poll", {"gen_ai.request.model": self.job.model}) as sp:
            done = self._poll_jobs()
            sp.set({"flashlane.batch.jobs_ended": len(done)})
            return done

    def _poll_jobs(self) -> list[tuple[JobRecord, dict[str, Any]]]:
        done = []
        lines = []
        for rec in self.jobs.active():
            if rec.name is None:
                continue
            try:
                op, state, stats = read_job(self.transport, self.jobs, rec)
            except FlashlaneError as e:
                if not e.retryable:
                    raise
                # The transport already retried; a job runs for hours: ask again at the next poll.
                lines.append(f"{rec.name.removeprefix('batches/')[:12]} not read ({e.message}); asking again")
                continue
            lines.append(f"{rec.name.removeprefix('batches/')[:12]} {state} {stats['successfulRequestCount']}"
                         f"+{stats['failedRequestCount']} failed/{stats['requestCount'] or rec.n_requests}")
            if state in TERMINAL_STATES:
                done.append((rec, op))
        if lines:
            self._say("batch: " + "; ".join(lines))
        return done

    # ------------------------------------------------------------------ collecting

    @staticmethod
    def _responses_file(op: dict[str, Any]) -> str | None:
        output = (op.get("metadata") or {}).get("output") or op.get("response") or {}
        name = output.get("responsesFile")
        return str(name) if name else None

    def _results(self, rec: JobRecord, op: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """Key -> {"response": ...} or {"error": ...}, joined by key (never by position)."""
        meta = op.get("metadata") or {}
        output = meta.get("output") or op.get("response") or {}
        out: dict[str, dict[str, Any]] = {}
        inline = output.get("inlinedResponses")
        if isinstance(inline, dict):
            for entry in inline.get("inlinedResponses") or []:
                key = (entry.get("metadata") or {}).get("key")
                if key is not None:
                    out[str(key)] = entry
        elif output.get("responsesFile"):
            data = self.transport.download_file(str(output["responsesFile"]))
            for raw in data.splitlines():
                if not raw.strip():
                    continue
                entry = json.loads(raw)
                if isinstance(entry, dict) and entry.get("key") is not None:
                    out[str(entry["key"])] = entry
        return out

    def _collect(self, rec: JobRecord, op: dict[str, Any]) -> None:
        with telemetry.span("flashlane.batch.results", {"gen_ai.request.model": self.job.model,
                                                        "flashlane.batch.job": rec.name}) as sp:
            sp.set(self._collect_job(rec, op))

    def _collect_job(self, rec: JobRecord, op: dict[str, Any]) -> dict[str, Any]:
        state = _short((op.get("metadata") or {}).get("state"))
        results = self._results(rec, op)
        done_keys = self.jobs.done_keys(rec.id)
        answered = missing = errors = 0
        for key, ids in self.jobs.requests_of(rec.id).items():
            if key in done_keys:
                continue  # recorded by a run that stopped while collecting
            entry = results.get(key)
            unit = self._restore(ids)
            if entry is None:
                missing += 1
                self._back(rec, key, unit, "batch_missing", f"the batch job ended {state} before answering it")
            elif entry.get("response") is None:
                errors += 1
                err = entry.get("error") or {}
                self._file_gone(unit, err)
                self._back(rec, key, unit, "batch_error",
                           f"failed inside the batch job: {err.get('message') or err.get('status') or err}")
            else:
                answered += 1
                self._answer(rec, key, unit, entry["response"])
        error = (op.get("error") or {}).get("message")
        with self.store.transaction():
            self.jobs.mark_collected(rec.id, state, error)
        self._say(f"batch: collected {rec.name} ({state}): {answered} answered, {errors} failed inside the job, "
                  f"{missing} missing" + (" (back to the queue)" if errors or missing else ""))
        self._delete_files(rec, op)
        return {"flashlane.batch.state": state, "flashlane.batch.answered": answered,
                "flashlane.batch.errors": errors, "flashlane.batch.missing": missing}

    def _file_gone(self, unit: list[Item], err: dict[str, Any]) -> None:
        """A request that failed inside the job because a file it referenced is gone: the next job
        uploads the file again (errors.FileNotFound, the same reading as a live request's 403)."""
        if not isinstance(err, dict) or not err.get("message"):
            return
        e = from_status(int(err.get("code") or 403), err)
        if isinstance(e, FileNotFound):
            self.job.lane.uploads.gone(e, self._call(unit))

    def _delete_files(self, rec: JobRecord, op: dict[str, Any]) -> None:
        """The job is collected: its uploaded input and its results file are of no more use. The
        Files API keeps a file 48 h unless deleted (files.delete; ai.google.dev/gemini-api/docs/files);
        the Batch API docs do not say whether a job's responsesFile may be deleted by its owner, so a
        refusal is reported, not raised (the file then expires on its own)."""
        for what, name in (("input", rec.file_name), ("results", self._responses_file(op))):
            if not name:
                continue
            try:
                self.transport.delete_file(name)
            except FlashlaneError as e:
                self._say(f"batch: {what} file {name} of {rec.name} not deleted ({e.message}); it expires in 48 h")

    def _settle(self, rec: JobRecord, key: str, unit: list[Item], bad: dict[str, tuple[str, str]], outcome: str,
                state: str, *, error: str | None = None, usage: Any = None, cost: float | None = 0.0,
                ok: dict[str, Any] | None = None) -> None:
        """Record one request of a job: its ``bad`` items go back to the queue, or fail after their last job."""
        failed = {i: why for i, why in bad.items() if self.jobs.times_sent(i) >= self.max_sent
                  and self.opt.fallback != "standard"}
        self.store.requests.record(started=rec.created, item_ids=[it.id for it in unit], outcome=outcome,
                                   error=error, usage=usage, cost_usd=cost, ok=ok or {}, failed=failed,
                                   requeued=[i for i in bad if i not in failed], tier=BATCH)
        with self.store.transaction():
            self.jobs.set_outcome(rec.id, key, state)
        self.requests += 1

    def _back(self, rec: JobRecord, key: str, unit: list[Item], reason: str, message: str) -> None:
        """A request not answered: its items go back to the queue, or fail after their last job."""
        self._settle(rec, key, unit, {it.id: (reason, message) for it in unit}, "requeued", "requeued", error=message)

    def _answer(self, rec: JobRecord, key: str, unit: list[Item], body: dict[str, Any]) -> None:
        resp = self.transport.parse_response(body, model=self.job.model)
        # A batch result cannot be asked again in place: what the judge refuses goes back to the queue.
        judge = self.job.lane.judge(self._call(unit), can_resend=False, billed_tier=BATCH)
        usage = usage_from_response(resp)
        cost = cost_of(self.job.model, usage, service_tier=BATCH)
        if (tel := telemetry.current()) is not None:  # an answer billed like a call's: same metrics
            tel.record_usage({"gen_ai.operation.name": telemetry.OPERATION, "gen_ai.provider.name": telemetry.GEMINI,
                              "gen_ai.request.model": self.job.model, "flashlane.service_tier": BATCH}, usage, cost)
        try:
            result = judge.verdict([resp])
        except FlashlaneError as e:
            got = Split(bad={it.id: f"the answer could not be used: {e.message}" for it in unit})
        else:
            assert isinstance(result, Result)  # no tools are run and nothing is resent in a batch
            got = split(self.job, unit, result, cache=self.cache is not None)
        bad = {i: ("batch_answer", m) for i, m in {**got.bad, **got.refused}.items()}
        self.outcome.values.update(held(got.values, self.keep_values))
        self._settle(rec, key, unit, bad, "ok" if got.ok else "requeued", "partial" if bad else "ok", usage=usage,
                     cost=cost, ok=got.ok)
        if self.cache is not None and got.cache_entries:
            self.cache.put_many(got.cache_entries)

    # ------------------------------------------------------------------ the loop

    def has_free_work(self) -> bool:
        return any(True for _ in self._units())

    def _past(self, at: float | None) -> bool:
        return at is not None and self.clock.time() >= at

    def _cut_off(self, active: list[JobRecord]) -> None:
        """The plan's cut-off passed: cancel each job not ended (once; through the Transport). Its rows
        stay in flight (``batch_items`` of a job not collected) until the job reads a terminal state
        and is collected: only then are they free for another tier."""
        for rec in active:
            if rec.name is None or rec.id in self._cancelled:
                continue
            self.transport.cancel_batch(rec.name)
            self._cancelled.add(rec.id)
            self.cutoffs.append({"job": rec.name, "at": self.clock.time(), "state": rec.short_state,
                                 "done": rec.stats.get("successfulRequestCount", 0), "requests": rec.n_requests})
            self._say(f"batch: cut-off reached: cancelling {rec.name} ({rec.short_state}); its rows move on once "
                      "the cancellation is confirmed")

    def run(self) -> RunOutcome:
        self._reattach()
        self._prefilter()
        delay = self.opt.poll_initial_s
        while True:
            submitted = False
            quota_full: RateLimited | None = None
            cut = self._past(self.opt.cutoff_at)
            try:
                while not cut and len(self.jobs.active()) < self.opt.max_active_jobs and self._submit():
                    submitted = True
            except RateLimited as e:
                quota_full = e  # wait for jobs in flight to end, then submit the rest
            active = self.jobs.active()
            if cut and active:
                self._cut_off(active)
            if cut and not active:
                self.outcome.status = "cutoff" if self.cutoffs else self.outcome.status
                return self.outcome
            if not active and quota_full is not None:
                self.outcome.status = "quota"
                self.outcome.error = quota_full
                self.outcome.message = ("the Batch API refused a new job (429: the enqueued-token quota for this "
                                        "model is full); rerun the same command later to submit the rest")
                return self.outcome
            if not active:
                if self.budget_usd is not None and self.has_free_work():
                    self.outcome.status = "budget"
                    self.outcome.message = (f"stopped before passing the budget of ${self.budget_usd:g} (spent "
                                            f"${self._spent():.6f}); rerun with a higher --budget-usd to go on")
                return self.outcome
            if self.opt.detach:
                self.outcome.status = "detached"
                self.outcome.message = (f"{len(active)} batch job(s) in flight; rerun the same command to collect "
                                        "the results")
                return self.outcome
            finished = self._poll()
            for rec, op in finished:
                self._collect(rec, op)
            if finished or submitted:
                delay = self.opt.poll_initial_s
                if finished:
                    continue
            wait = delay
            if self.opt.cutoff_at is not None and self.clock.time() < self.opt.cutoff_at:
                wait = min(wait, self.opt.cutoff_at - self.clock.time())  # wake on the cut-off, not a poll later
            self.clock.sleep(wait)
            delay = min(delay * self.opt.poll_factor, self.opt.poll_max_s)


def stderr_say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def job_summary(rec: JobRecord) -> dict[str, Any]:
    return {"display_name": rec.display_name, "name": rec.name, "state": rec.short_state, "mode": rec.mode,
            "requests": rec.n_requests, "items": rec.n_items, "stats": rec.stats, "collected": rec.collected,
            "reserved_usd": round(rec.reserved_usd, 6), "created": time.strftime(
                "%Y-%m-%dT%H:%M:%SZ", time.gmtime(rec.created)), "error": rec.error}
