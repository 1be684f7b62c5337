"""The Batch API: create (inline or a JSONL file), get, list, cancel, delete, on the emulator's clock.

What a client sees (states, timeline, results, partial results, the enqueued-token 429) is in
docs/emulator.md (Batch API); here are the sources and the choices behind it.

Wire (``gemini-api-wire.md`` §1.2, wire sample 28): ``POST /{v}/models/{m}:batchGenerateContent``
with ``{"batch": {"displayName", "inputConfig": {"requests": {"requests": [{"request": {...},
"metadata": {"key": ...}}]}} | {"fileName": "files/..."}}}`` answers an Operation; ``GET
/{v}/batches/{id}``, ``GET /{v}/batches`` (``operations``, ``nextPageToken``), ``POST
/{v}/batches/{id}:cancel`` and ``DELETE /{v}/batches/{id}`` (both ``{}``).

A finished Operation carries the output twice, in ``metadata.output`` (the Python SDK reads only
that) and in ``response`` (the guide's curl reads it), or else ``error``: the two are a oneof in
google.longrunning.Operation. CANCELLED is code 1 per the REST reference; FAILED 13 and EXPIRED 4
are our choice (no recorded body). ``batchStats`` counts are int64 strings, zeros left out (ws 28).

State is computed lazily from the clock when a job is read (PENDING for the first
``PENDING_SHARE`` of the turnaround), so ``/_emulator/clock`` moves jobs too. Answers go through
``EmulatorApp.prepare``/``answer``, as generateContent's do. Jobs over ``SYNC_REQUESTS`` requests
are answered in the background a slice at a time (a job is not SUCCEEDED before all its answers
exist); input files are read line by line and results spool to disk, so a million-line job costs
little memory. No source says what an expired, failed or cancelled job returns: the results done
before the end are kept. The enqueued-token 429 body (message and a ``Help`` link only) is the
one printed in langchain4j/langchain4j#3942 and python-genai #1901.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..models import ModelInfo
from . import answer as ans_mod
from . import openai_rows
from .caches import format_time
from .errors import (
    QUOTA_HELP_URL,
    ApiError,
    api_error,
    error_body,
    invalid_argument,
)
from .files import StoredFile, page_bounds
from .wire import camel_keys, content_texts, count_prompt_tokens, new_id, parse_json_body

if TYPE_CHECKING:
    from .app import EmulatorApp

BATCH_OP = "batchGenerateContent"
REQUEST_STAT = "batchGenerateContent.request"  # one stats entry per answered request in a batch
BATCH_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"
OUTPUT_TYPE = "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"
BATCH_TTL_S = 48 * 3600  # pending or running longer than this: EXPIRED (batch guide)
PENDING_SHARE = 0.2  # share of the turnaround spent in PENDING before RUNNING
SYNC_REQUESTS = 1000  # jobs up to this size are answered at creation; bigger ones in the background
SLICE = 50  # background answering yields to other requests after this many
DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
_ID_LENGTH = 36  # live batch ids look like "leg9wy9p5df66syjxke2eq4xfjqcwp47ejv3" (wire sample 28)
TERMINAL = ("SUCCEEDED", "FAILED", "CANCELLED", "EXPIRED")
# google.rpc.Code numbers for per-request errors given as HTTP statuses in scenarios
RPC_CODE = {400: 3, 403: 7, 404: 5, 409: 10, 429: 8, 499: 1, 500: 13, 501: 12, 503: 14, 504: 4}
END_ERRORS = {
    "FAILED": (13, "Batch job failed."),
    "CANCELLED": (1, "Batch job was cancelled."),
    "EXPIRED": (4, "Batch job expired: it was pending or running for more than 48 hours."),
}
BATCH_QUOTA_MESSAGE = (
    "You exceeded your current quota, please check your plan and billing details. For more "
    f"information on this error, head to: {QUOTA_HELP_URL}. To monitor your current usage, head "
    "to: https://ai.dev/rate-limit. "
)
_BATCH_KEYS = ("displayName", "inputConfig", "priority", "model", "webhookConfig", "name")
_INPUT_KEYS = ("requests", "fileName")


def status(code: int, message: str) -> dict[str, Any]:
    return {"code": code, "message": message}


def known_fields(message: dict[str, Any], fields: tuple[str, ...], where: str) -> None:
    """The JSON parser's 400 for the first key of ``message`` that is not one of its ``fields``."""
    for name in message:
        if name not in fields:
            raise invalid_argument(
                f'Invalid JSON payload received. Unknown name "{name}" at \'{where}\': Cannot find field.')


@dataclass
class Job:
    id: str
    project: str
    model: str
    display_name: str
    create_time: float
    turnaround: float
    count: int = 0
    tokens: int = 0  # input tokens (counted up front when an enqueued-token limit applies)
    input_file: str | None = None  # "files/..." for file jobs
    items: list[Any] = field(default_factory=list, repr=False)  # inline requests, until answered
    source: StoredFile | None = field(default=None, repr=False)  # file jobs: the input, pinned
    results: list[dict[str, Any]] = field(default_factory=list)  # inline: InlinedResponse per slot
    output: StoredFile | None = field(default=None, repr=False)  # file jobs: result lines so far
    keys: list[str | None] = field(default_factory=list)  # per output slot, for the per-key counters
    failed_slots: set[int] = field(default_factory=set)
    usage: list[tuple[int, int, int]] = field(default_factory=list)
    processed: int = 0  # requests answered so far (in output order)
    tokens_counted: bool = False
    task: asyncio.Task[None] | None = field(default=None, repr=False)
    action: dict[str, Any] = field(default_factory=dict)
    priority: str | None = None
    state: str = "PENDING"
    end_time: float | None = None
    update_time: float = 0.0
    done_count: int = 0  # results revealed (terminal states)
    cancel_at: float | None = None  # batches.cancel was asked; the job reads CANCELLED from then on
    published: StoredFile | None = None

    @property
    def name(self) -> str:
        return f"batches/{self.id}"

    def timeline(self) -> tuple[float, float]:
        start = self.create_time + self.turnaround * PENDING_SHARE
        return start, self.create_time + self.turnaround

    def progress(self, now: float) -> int:
        """Requests a running job has done by ``now`` (shown in batchStats): the clock's share,
        and never more than have really been answered."""
        start, end = self.timeline()
        if now < start:
            by_clock = 0
        elif now >= end or end <= start:
            by_clock = self.count
        else:
            by_clock = math.floor(self.count * (now - start) / (end - start))
        return min(by_clock, self.processed)

    def stop(self) -> None:
        """No more answering: cancel the background task, release the input file."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None
        self.items = []
        if self.source is not None:
            self.source.unpin()
            self.source = None

    def discard(self) -> None:
        """Stop, and close the results written so far (the job is dropped or was never kept)."""
        self.stop()
        if self.output is not None:
            self.output.close()


class BatchBook:
    """Jobs by id, and the counters tests read (jobs created, requests answered per key)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.reset()

    def reset(self) -> None:
        for job in self.jobs.values():
            job.discard()
        self.jobs = {}
        self.created: Counter[str] = Counter()  # "project/model" -> jobs created
        self.answered: dict[str, Counter[str]] = {}  # project -> key -> times answered
        self.requests_answered = 0

    def snapshot(self, with_keys: bool = False) -> dict[str, Any]:
        dup = {p: sorted(k for k, n in c.items() if n > 1) for p, c in self.answered.items()}
        out: dict[str, Any] = {
            "jobs_created": dict(self.created),
            "requests_answered": self.requests_answered,
            "keys_answered": sum(len(c) for c in self.answered.values()),
            "keys_answered_twice": {p: keys[:100] for p, keys in dup.items() if keys},
            "jobs": [
                {"name": j.name, "project": j.project, "model": j.model, "state": j.state,
                 "requests": j.count, "done": j.done_count, "enqueued_tokens": j.tokens}
                for j in self.jobs.values()
            ],
        }
        if with_keys:
            out["answered_by_key"] = {p: dict(c) for p, c in self.answered.items()}
        return out


class BatchesApi:
    """HTTP handlers for batches; the routing in ``app`` sends batch paths here."""

    def __init__(self, app: EmulatorApp):
        self.app = app
        self.book = BatchBook()

    # ---------------------------------------------------------------- state machine
    def advance(self, job: Job, now: float) -> None:
        if job.state in TERMINAL:
            return
        if job.cancel_at is not None and now >= job.cancel_at:
            self._cancel(job, job.cancel_at)
            return
        act = job.action
        target = str(act.get("batch_state", "succeeded")).lower().removeprefix("batch_state_").upper()
        start, end = job.timeline()
        if now >= job.create_time + BATCH_TTL_S and (target in ("PENDING", "RUNNING") or job.processed < job.count):
            fraction = float(act.get("done_fraction", 0.0)) if target in ("PENDING", "RUNNING") else 1.0
            done = min(math.floor(job.count * fraction), job.processed)
            self._finish(job, "EXPIRED", done, job.create_time + BATCH_TTL_S)
            return
        if target == "PENDING" or now < start:
            return
        if target == "RUNNING" or now < end:
            if job.state == "PENDING":
                job.state, job.update_time = "RUNNING", start
            return
        done = job.count if target == "SUCCEEDED" else math.floor(job.count * float(act.get("done_fraction", 0.0)))
        if job.processed < done:  # a big job still being answered in the background: still running
            if job.state == "PENDING":
                job.state, job.update_time = "RUNNING", start
            return
        self._finish(job, target, done, end)

    def _cancel(self, job: Job, at: float) -> None:
        """CANCELLED at ``at``, with the requests a running job had done by then."""
        start, _ = job.timeline()
        running = at >= start and str(job.action.get("batch_state", "")).lower() != "pending"
        self._finish(job, "CANCELLED", job.progress(at) if running else 0, at)

    def _finish(self, job: Job, state: str, done: int, at: float) -> None:
        """Reveal the first ``done`` results and count them as answered."""
        job.stop()
        job.state, job.end_time, job.update_time, job.done_count = state, at, at, done
        counter = self.book.answered.setdefault(job.project, Counter())
        stats = self.app.stats
        for i in range(done):
            key = job.keys[i]
            if key is not None:
                counter[key] += 1
            failed = i in job.failed_slots
            stats.record(at, REQUEST_STAT, job.model, job.project, 500 if failed else 200, None,
                         None if failed else job.usage[i])
        self.book.requests_answered += done
        if job.output is not None:
            if done == job.count:
                published = job.output
            else:
                published = StoredFile(f"batch-{job.id}", job.project, "", "application/jsonl", at,
                                       "GENERATED")
                for i, line in enumerate(job.output.lines()):
                    if i >= done:
                        break
                    published.write(line)
                job.output.close()
            published.id = f"batch-{job.id}"
            published.source = "GENERATED"
            published.create_time = published.update_time = at
            if done or state == "SUCCEEDED":
                self.app.files.store.add(published)
                job.published = published
            else:
                published.close()
            job.output = None
        elif done < job.count:
            job.results = job.results[:done]

    # ---------------------------------------------------------------- shapes
    def operation(self, job: Job) -> dict[str, Any]:
        meta: dict[str, Any] = {"@type": BATCH_TYPE, "model": f"models/{job.model}"}
        if job.display_name:
            meta["displayName"] = job.display_name
        if job.input_file:
            meta["inputConfig"] = {"fileName": job.input_file}
        output = self._output(job)
        if output is not None:
            meta["output"] = output
        meta["createTime"] = format_time(job.create_time)
        if job.end_time is not None:
            meta["endTime"] = format_time(job.end_time)
        meta["updateTime"] = format_time(job.update_time or job.create_time)
        meta["batchStats"] = self._stats(job)
        meta["state"] = f"BATCH_STATE_{job.state}"
        meta["name"] = job.name
        if job.priority is not None:
            meta["priority"] = job.priority
        op: dict[str, Any] = {"name": job.name, "metadata": meta}
        if job.state in TERMINAL:
            op["done"] = True
            if job.state == "SUCCEEDED":
                op["response"] = {"@type": OUTPUT_TYPE, **(output or {})}
            else:
                op["error"] = status(*END_ERRORS[job.state])
        return op

    def _output(self, job: Job) -> dict[str, Any] | None:
        if job.state not in TERMINAL:
            return None
        if job.input_file is not None and not job.action.get("inline_results"):
            return {"responsesFile": job.published.name} if job.published is not None else None
        if not job.results and job.state != "SUCCEEDED":
            return None
        return {"inlinedResponses": {"inlinedResponses": job.results}}

    def _stats(self, job: Job) -> dict[str, str]:
        if job.state in TERMINAL:
            done = job.done_count
        else:
            done = job.progress(self.app.clock.now()) if job.state == "RUNNING" else 0
            if str(job.action.get("batch_state", "")).lower().removeprefix("batch_state_") == "running":
                done = min(math.floor(job.count * float(job.action.get("done_fraction", 0.0))), job.processed)
        failed = sum(1 for i in job.failed_slots if i < done) if job.state in TERMINAL else 0
        counts = {"requestCount": job.count, "successfulRequestCount": done - failed,
                  "failedRequestCount": failed, "pendingRequestCount": job.count - done}
        return {k: str(v) for k, v in counts.items() if v}  # int64 as strings; zeros omitted (ws 28)

    # ---------------------------------------------------------------- create
    async def create(self, scope: dict[str, Any], receive: Any, send: Any, info: ModelInfo, project: str,
                     version: str) -> None:
        """``models/{m}:batchGenerateContent`` (auth and model already checked by ``app``)."""
        app = self.app
        now = app.clock.now()
        if scope["method"] != "POST":
            raise api_error(404, f"Method not found: {scope['method']} {scope['path']}")
        raw = await app._read_body(receive)
        if raw is None:
            raise invalid_argument("Request payload size exceeds the limit: 20971520 bytes.")
        body = camel_keys(parse_json_body(raw))
        known_fields(body, ("batch",), "")
        batch = camel_keys(body.get("batch") or {})
        if not isinstance(batch, dict) or not batch:
            raise invalid_argument("* BatchGenerateContentRequest.batch: batch is required\n")
        known_fields(batch, _BATCH_KEYS, "batch")
        config = camel_keys(batch.get("inputConfig") or {})
        if not isinstance(config, dict):
            raise invalid_argument("Invalid value at 'batch.input_config'")
        known_fields(config, _INPUT_KEYS, "batch.input_config")
        if ("requests" in config) == ("fileName" in config):
            raise invalid_argument(
                "* BatchGenerateContentRequest.batch.input_config: exactly one of requests or file_name "
                "must be set\n"
            )
        act = app._scenario_action(scope, BATCH_OP, info.id, project, "") or {}
        if act:
            await app._apply_fault(receive, send, act, info.id, project)
        job = self._new_job(info, project, batch, now, act)
        if "requests" in config:
            self._load_inline(job, config["requests"])
        else:
            self._load_file(job, str(config["fileName"]), now)
        try:
            self._admit(job, info)
        except ApiError:
            job.discard()
            raise
        self.book.jobs[job.id] = job
        self.book.created[f"{project}/{info.id}"] += 1
        if job.count <= SYNC_REQUESTS:
            for _ in self._steps(job, info):
                pass
            job.stop()
        else:  # answered in slices in the background, so the emulator keeps serving meanwhile
            job.task = asyncio.get_running_loop().create_task(self._run(job, info))
        # the create answer is the job as created (PENDING, no "done"), as the live API answers (ws 28)
        await app._send_json(send, 200, self.operation(job))
        app.stats.record(now, BATCH_OP, info.id, project, 200)

    def _new_job(self, info: ModelInfo, project: str, batch: dict[str, Any], now: float,
                 act: dict[str, Any]) -> Job:
        turnaround = act.get("turnaround")
        if turnaround is None:
            turnaround = self.app.config.batch_turnaround()
        priority = batch.get("priority")
        return Job(
            id=new_id(_ID_LENGTH), project=project, model=info.id, display_name=str(batch.get("displayName") or ""),
            create_time=now, turnaround=float(turnaround), action=dict(act),
            priority=None if priority is None else str(priority), update_time=now,
        )

    def _answer(self, job: Job, info: ModelInfo, request: Any, key: str | None,
                slot: int) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
        """(GenerateContentResponse, None) or (None, Status) for one request."""
        act = job.action
        error_keys = act.get("error_keys") or []
        rate = float(act.get("error_rate", 0.0) or 0.0)
        scripted = (key is not None and key in error_keys) or (
            rate > 0 and math.floor((slot + 1) * rate + 1e-9) > math.floor(slot * rate + 1e-9))
        if scripted:
            http = int(act.get("error_code", 500))
            return None, status(RPC_CODE.get(http, 13), str(act.get("message") or error_body(http)["error"]["message"]))
        if not isinstance(request, dict):
            return None, status(3, "Invalid request: expected a GenerateContentRequest object.")
        try:
            prepared = self.app.prepare(info, job.project, camel_keys(request))
            answer = self.app.answer(info, job.project, prepared, None)
        except ApiError as e:
            return None, status(RPC_CODE.get(e.code, 13), e.body["error"]["message"])
        if not job.tokens_counted:
            job.tokens += prepared.req.prompt_tokens
        job.usage[slot] = answer.usage_tuple
        return ans_mod.response(answer, info.id, ans_mod.new_response_id()), None

    def _order(self, job: Job, n: int) -> list[int]:
        order = list(range(n))
        if job.action.get("shuffle"):
            random.Random(job.id).shuffle(order)
        return order

    def _load_inline(self, job: Job, requests: Any) -> None:
        items = camel_keys(requests).get("requests") if isinstance(requests, dict) else None
        if not isinstance(items, list) or not items:
            raise invalid_argument(
                "* BatchGenerateContentRequest.batch.input_config.requests.requests: at least one request "
                "is required\n"
            )
        job.items = items
        job.count = len(items)

    def _load_file(self, job: Job, file_name: str, now: float) -> None:
        source = self.app.files.store.get(job.project, file_name, now)
        job.count = source.count_lines()
        if job.count == 0:
            raise invalid_argument(f"The input file {source.name} has no requests.")
        job.input_file = source.name
        job.source = source
        source.pins += 1
        if not job.action.get("inline_results"):
            job.output = StoredFile(f"batch-{job.id}", job.project, "", "application/jsonl", now, "GENERATED")

    def _lines(self, job: Job) -> Iterator[tuple[str | None, Any, str | None]]:
        """(key, request, parse error) per request of a job, in output order."""
        if job.source is None:
            for i in self._order(job, job.count):
                item = camel_keys(job.items[i]) if isinstance(job.items[i], dict) else {}
                metadata = item.get("metadata")
                key = metadata.get("key") if isinstance(metadata, dict) else None
                yield (None if key is None else str(key)), item, None
            return
        n = 0
        for raw in job.source.lines():
            if not raw.strip():
                continue
            n += 1
            try:
                line = json.loads(raw)
            except (ValueError, RecursionError):
                line = None
            if not isinstance(line, dict):
                yield None, None, f"Invalid JSON on line {n} of {job.input_file}."
                continue
            key = line.get("custom_id") if openai_rows.is_row(line) else line.get("key")
            yield (None if key is None else str(key)), line, None

    def _steps(self, job: Job, info: ModelInfo) -> Iterator[None]:
        """Answer a job's requests one by one (a generator, so big jobs can pause between them)."""
        for slot, (key, item, problem) in enumerate(self._lines(job)):
            job.usage.append((0, 0, 0))
            response: dict[str, Any] | None
            error: dict[str, Any] | None
            openai = item is not None and job.source is not None and openai_rows.is_row(item)
            if problem is not None or item is None:
                response, error = None, status(3, problem or "Invalid request.")
            else:
                try:
                    request = openai_rows.to_request(item["body"]) if openai else item.get("request")
                except ApiError as e:
                    response, error = None, status(3, e.body["error"]["message"])
                else:
                    response, error = self._answer(job, info, request, key, slot)
            if job.source is None:  # inline: InlinedResponse with the request's metadata
                entry: dict[str, Any] = {}
                if item is not None and item.get("metadata") is not None:
                    entry["metadata"] = item["metadata"]
            elif job.output is None:  # a file job answered inline (scenario inline_results)
                entry = {} if key is None else {"metadata": {"key": key}}
            else:  # file: a result line with the request's key
                entry = {} if key is None else {"key": key}
            if openai:  # an OpenAI-shaped line is answered OpenAI-shaped (openai_rows.py)
                assert item is not None
                entry = openai_rows.result(item["custom_id"], info.id, response, error, int(job.create_time))
            elif response is not None:
                entry["response"] = response
            else:
                entry["error"] = error
            if response is None:
                job.failed_slots.add(slot)
            if job.output is not None:
                job.output.write(json.dumps(entry, ensure_ascii=False).encode() + b"\n")
            else:
                job.results.append(entry)
            job.keys.append(key)
            job.processed += 1
            yield None

    async def _run(self, job: Job, info: ModelInfo) -> None:
        for i, _ in enumerate(self._steps(job, info)):
            if i % SLICE == SLICE - 1:
                await asyncio.sleep(0)
        job.stop()

    def _input_tokens(self, job: Job) -> int:
        """Prompt tokens of every request (for the enqueued-token limit), without answering."""
        total = 0
        for _key, item, problem in self._lines(job):
            request = item.get("request") if problem is None and item is not None else None
            if problem is None and item is not None and openai_rows.is_row(item):
                try:
                    request = openai_rows.to_request(item["body"])
                except ApiError:
                    request = None
            if isinstance(request, dict):
                request = camel_keys(request)
                try:
                    total += count_prompt_tokens(content_texts(request.get("contents") or []))
                    system = request.get("systemInstruction")
                    if isinstance(system, dict):
                        total += count_prompt_tokens(content_texts(system, "system_instruction"))
                except ApiError:
                    pass  # answered with its error later; it enqueues nothing
        return total

    def _admit(self, job: Job, info: ModelInfo) -> None:
        limit = self.app.config.batch_tokens_for(job.project, info.id)
        if not limit:
            return
        job.tokens, job.tokens_counted = self._input_tokens(job), True
        now = self.app.clock.now()
        enqueued = 0
        for other in self.book.jobs.values():
            if other.project == job.project and other.model == job.model:
                self.advance(other, now)
                if other.state not in TERMINAL:
                    enqueued += other.tokens
        if enqueued + job.tokens > limit:
            details = [{"@type": "type.googleapis.com/google.rpc.Help",
                        "links": [{"description": "Learn more about Gemini API quotas", "url": QUOTA_HELP_URL}]}]
            raise ApiError(429, error_body(429, BATCH_QUOTA_MESSAGE, details=details))

    # ---------------------------------------------------------------- get / list / cancel / delete
    def _job(self, project: str, name: str) -> Job:
        job = self.book.jobs.get(name.removeprefix("batches/"))
        if job is None or job.project != project:
            raise api_error(404, f"Batch {name.removeprefix('batches/')} not found.")
        return job

    async def resource(self, scope: dict[str, Any], receive: Any, send: Any, version: str, rest: list[str],
                       project: str) -> None:
        """``/{v}/batches[/{id}[:cancel]]`` (auth checked by ``app``)."""
        app = self.app
        now = app.clock.now()
        method = scope["method"]
        name = "/".join(rest)
        verb = None
        if ":" in name:
            name, verb = name.rsplit(":", 1)
        op = {("GET", False, None): "list", ("GET", True, None): "get", ("DELETE", True, None): "delete",
              ("POST", True, "cancel"): "cancel"}.get((method, bool(name), verb))
        stat = f"batches.{op or method.lower()}"
        try:
            if op is None:
                raise api_error(404, f"Method not found: {method} {scope['path']}")
            await app.control_fault(scope, receive, send, stat, project)
            if op == "list":
                out = self._list(project, scope.get("query_string", b"").decode("latin-1"), now)
            else:
                job = self._job(project, name)
                self.advance(job, now)
                if op == "get":
                    out = self.operation(job)
                elif op == "cancel":
                    await app._read_body(receive)
                    if job.state not in TERMINAL and job.cancel_at is None:
                        # scenario cancel_delay: the job goes on reading as before until then
                        job.cancel_at = now + float(job.action.get("cancel_delay") or 0.0)
                        self.advance(job, now)
                    out = {}
                else:
                    self.book.jobs.pop(job.id).discard()
                    out = {}
        except ApiError as e:
            await app._send_json(send, e.code, e.body)
            app.stats.record(now, stat, None, project, e.code)
            return
        await app._send_json(send, 200, out)
        app.stats.record(now, stat, None, project, 200)

    def _list(self, project: str, query: str, now: float) -> dict[str, Any]:
        start, size = page_bounds(query, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        mine = sorted((j for j in self.book.jobs.values() if j.project == project),
                      key=lambda j: (-j.create_time, j.id))  # newest first
        out: dict[str, Any] = {}
        page = mine[start : start + size]
        for job in page:
            self.advance(job, now)
        if page:
            out["operations"] = [self.operation(j) for j in page]
        if start + size < len(mine):
            out["nextPageToken"] = str(start + size)
        return out


__all__ = ["BATCH_OP", "BatchBook", "BatchesApi"]
