"""The emulator as a raw ASGI application: routing, auth, quota, answers, control API.

No web framework: one ``__call__`` that parses the path itself keeps a request at a few tens
of microseconds, so the emulator is never the bottleneck of a benchmark. Paths are accepted
under any version segment (``/v1/``, ``/v1beta/``, ...) and in the Vertex forms
(``/{v}/projects/{p}/locations/{l}/publishers/google/models/{m}:op`` and
``/{v}/publishers/google/models/{m}:op``). The order of checks per generate call mirrors the
live API: auth, model, body, then scenario faults, then quota, then the answer.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from ..models import ModelInfo, canonical_id, lookup, uncatalogued
from . import answer as ans_mod
from . import embeddings, flex, latency, listing
from . import tools as tools_mod
from .batches import BATCH_OP, BatchesApi
from .caches import CacheBook, CacheUse
from .clock import EmulatorClock
from .config import EmulatorConfig
from .errors import (
    PAYLOAD_LIMIT_BYTES,
    PAYLOAD_TOO_LARGE_MESSAGE,
    ApiError,
    api_error,
    api_key_invalid,
    error_body,
    invalid_argument,
    model_not_found,
    quota_exhausted,
    unregistered_caller,
)
from .files import FilesApi
from .keys import non_negative_float, reject_unknown
from .listing import EMBED_METHODS
from .quota import QuotaBook, no_quota_violations, violation
from .responder import MAX_GENERATED_CHARS, ON_LOOP_CHARS, OverBudget
from .scenario import ScenarioBook, rules_from_data
from .stats import Stats
from .wire import (
    JSON_HEADERS,
    GenerateRequest,
    camel_keys,
    dumps_json,
    parse_count_tokens,
    parse_generate,
    parse_json_body,
    prompt_details,
)

SSE_HEADERS = [(b"content-type", b"text/event-stream"), (b"content-disposition", b"attachment")]
GENERATE = "generateContent"
STREAM = "streamGenerateContent"
COUNT = "countTokens"
KNOWN_OPS = (GENERATE, STREAM, COUNT)
DEFAULT_PAGE_SIZE = 50
DISCONNECT_WAIT_S = 2.0
DEFAULT_SCRIPTED_RETRY_S = 30.0
NESTING_MESSAGE = "Invalid JSON payload received. Message nesting too deep."
# Answers too big to generate on the event loop (responder.ON_LOOP_CHARS) are generated here. One
# worker: big answers wait for each other, and the loop shares the GIL with one thread at most.
_BIG_ANSWERS = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flashlane-emulator-answers")


def _dumps_sse(obj: Any) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ": "), ensure_ascii=False).encode() + b"\r\n\r\n"


def wants_sse(scope: dict[str, Any]) -> bool:
    """``alt=sse`` in the query: server-sent events (both SDKs always ask for them); without it the
    stream is one JSON array (gemini-api-wire.md §1.1; llm-gemini calls that form)."""
    return "sse" in parse_qs(scope.get("query_string", b"").decode("latin-1")).get("alt", [])


# The array framing recorded live (gemini-api-wire.md §1.1 [ws 17]; llm-gemini cassette test_prompt.yaml
# @2a8c855): "[" + the first element pretty-printed, then "\n,\r\n" + each next element, then "\n]".
ARRAY_SEPARATOR = b"\n,\r\n"
ARRAY_END = b"\n]"


def array_element(obj: Any, first: bool) -> bytes:
    """One element of a JSON-array stream, with what goes before it."""
    return (b"[" if first else ARRAY_SEPARATOR) + json.dumps(obj, indent=2, ensure_ascii=False).encode()


@dataclass
class Prepared:
    """A generate request ready to answer (see ``EmulatorApp.prepare``)."""

    req: GenerateRequest
    body: dict[str, Any]  # as answered: the named cache's prefix written in
    toolset: tools_mod.ToolSet | None
    cache: CacheUse | None


def compose(info: ModelInfo, prep: Prepared, act: dict[str, Any] | None,
            budget: int = MAX_GENERATED_CHARS) -> ans_mod.Answer:
    """Text or schema instance, and what the request's tools make of it, each schema instance
    generated within ``budget`` characters. Reads no emulator state, so it may run off the loop."""
    answer = ans_mod.build(info, prep.req, act, budget)
    answer.media_tokens = prep.req.media_tokens
    tools_mod.apply(info, prep.toolset, prep.body, answer, act, prep.req.seed(info.id), budget)
    return answer


class _Dropped(Exception):
    """The connection was closed on purpose (scenario ``drop`` / ``cut_after``)."""


async def lifespan(receive: Any, send: Any) -> None:
    """An ASGI lifespan scope with nothing to set up or tear down (the emulator's, the gateway's)."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class EmulatorApp:
    """ASGI callable. All state lives here; it runs on one event loop (no locks needed)."""

    def __init__(self, config: EmulatorConfig | None = None):
        self.config = config or EmulatorConfig()
        self.clock = EmulatorClock()
        self.quota = QuotaBook(self.config.window_seconds)
        self.scenario = ScenarioBook()
        self.stats = Stats(self.config.request_log_size)
        self.caches = CacheBook(self.config.implicit_cache_rate)
        self.scenario.load(list(self.config.scenario))
        self.files = FilesApi(self)
        self.flex = flex.Shedder()
        self.batches = BatchesApi(self)

    # ------------------------------------------------------------------ state control
    def reset(self) -> None:
        self.quota.reset()
        self.scenario.reset()
        self.stats.reset()
        self.clock.reset()
        self.caches.reset()
        self.files.store.reset()
        self.flex.reset()
        self.batches.book.reset()
        self.caches.implicit_rate = self.config.implicit_cache_rate

    def load_scenario(self, rules: list[dict[str, Any]], replace: bool = True) -> None:
        self.scenario.load(rules, replace=replace)

    # ------------------------------------------------------------------ ASGI entry
    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        try:
            if path.startswith("/_emulator/"):
                await self._control(scope, receive, send, path[len("/_emulator/") :])
            elif path.startswith(("/upload/", "/download/")):
                await self._transfer(scope, receive, send, path)
            else:
                await self._api(scope, receive, send, path)
        except _Dropped:
            return
        except RecursionError:
            # a body nested deeper than our own walkers go: the client's fault, never a 500
            await self._send_error_if_possible(send, 400, error_body(400, NESTING_MESSAGE))
        except Exception:
            # a bug must still answer in the API's error shape (not uvicorn's plain-text 500)
            await self._send_error_if_possible(send, 500, error_body(500))
            raise

    async def _send_error_if_possible(self, send: Any, code: int, body: dict[str, Any]) -> None:
        try:
            await self._send_json(send, code, body)
        except Exception:  # noqa: BLE001 - the response had already started; nothing to add
            pass

    # ------------------------------------------------------------------ helpers
    @staticmethod
    async def _send_bytes(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [*headers, (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _send_json(self, send: Any, status: int, obj: Any) -> None:
        await self._send_bytes(send, status, dumps_json(obj), JSON_HEADERS)

    @staticmethod
    async def _read_body(receive: Any, limit: int = PAYLOAD_LIMIT_BYTES) -> bytes | None:
        """The request body, or None when it exceeds ``limit`` (drained, not kept)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                raise _Dropped
            body = msg.get("body", b"")
            size += len(body)
            if size > limit:
                chunks.clear()
            elif body:
                chunks.append(body)
            if not msg.get("more_body"):
                break
        return None if size > limit else b"".join(chunks)  # one chunk: join returns it, no copy

    @staticmethod
    async def _wait_disconnect(receive: Any, timeout: float | None = None) -> None:
        async def _loop() -> None:
            while True:
                msg = await receive()
                if msg["type"] == "http.disconnect":
                    return

        if timeout is None:
            await _loop()
        else:
            try:
                await asyncio.wait_for(_loop(), timeout)
            except TimeoutError:
                pass

    async def _drop(self, receive: Any, send: Any) -> None:
        """Close the TCP connection without (finishing) a response."""
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        if transport is None:
            raise RuntimeError("connection dropped by scenario")  # server closes the socket
        transport.close()
        await self._wait_disconnect(receive, DISCONNECT_WAIT_S)
        raise _Dropped

    # ------------------------------------------------------------------ API routes
    async def _api(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        parts = path.strip("/").split("/")
        version = parts[0] if parts else ""
        rest = parts[1:]
        path_project = None
        if len(rest) >= 4 and rest[0] == "projects" and rest[2] == "locations":
            path_project = rest[1]
            rest = rest[4:]
        if len(rest) >= 2 and rest[0] == "publishers" and rest[1] == "google":
            rest = rest[2:]
        http_method = scope["method"]
        if version.startswith("v") and rest and rest[0] == "cachedContents":
            await self._cached_contents(scope, receive, send, version, rest[1:], path_project)
            return
        if version.startswith("v") and rest and rest[0] == "files":
            await self.files.resource(scope, receive, send, version, rest[1:])
            return
        if version.startswith("v") and rest and rest[0] == "batches":
            try:
                batch_project = self.authorized_project(scope, path_project)
            except ApiError as e:
                await self._send_json(send, e.code, e.body)
                return
            await self.batches.resource(scope, receive, send, version, rest[1:], batch_project)
            return
        if not version.startswith("v") or not rest or rest[0] != "models":
            await self._send_json(send, 404, error_body(404, f"Method not found: {path}"))
            return

        key, bearer = self._credentials(scope)
        op: str | None = None
        model_name = ""
        if len(rest) > 1:
            model_name = "/".join(rest[1:])
            if ":" in model_name:
                model_name, op = model_name.rsplit(":", 1)
        stat_method = op or ("models.list" if len(rest) == 1 else "models.get")
        project = self.config.project_for(key, path_project)
        try:
            self._check_key(key, bearer)
            if len(rest) == 1:
                if http_method != "GET":
                    raise api_error(404, f"Method not found: {http_method} {path}")
                await self._send_json(send, 200, self._list_models(scope))
                self.stats.record(self.clock.now(), stat_method, None, project, 200)
                return
            info = self._model(model_name)
            if op is None and http_method != "GET":
                raise api_error(404, f"Method not found: {http_method} {path}")
            if op not in (None, BATCH_OP, *KNOWN_OPS, *EMBED_METHODS):
                raise api_error(404, f"Method not found: {op}")
            if info is None or info.retired or op is not None and not self._serves(info, op):
                raise model_not_found(model_name.removeprefix("models/"), version, op or "get")
            if op is None:
                await self._send_json(send, 200, listing.resource(info))
                self.stats.record(self.clock.now(), stat_method, info.id, project, 200)
                return
            if op == BATCH_OP:
                await self.batches.create(scope, receive, send, info, project, version)
                return
            if http_method != "POST":
                raise api_error(404, f"Method not found: {http_method} {path}")
            raw = await self._read_body(receive)
            if raw is None:
                raise invalid_argument(PAYLOAD_TOO_LARGE_MESSAGE)
            body = parse_json_body(raw)
            if op == COUNT:
                await self._count_tokens(scope, receive, send, info, project, body)
            elif op in EMBED_METHODS:
                out = (embeddings.embed if op == "embedContent" else embeddings.batch_embed)(info.id, body)
                await self._send_json(send, 200, out)
                self.stats.record(self.clock.now(), op, info.id, project, 200)
            else:
                await self._generate(scope, receive, send, info, project, body, op)
        except ApiError as e:
            await self._send_json(send, e.code, e.body)
            model_id = None
            if op is not None or model_name:
                found = lookup(model_name) if model_name else None
                model_id = found.id if found is not None else model_name.removeprefix("models/") or None
            self.stats.record(self.clock.now(), stat_method, model_id, project, e.code)

    async def _transfer(self, scope: dict[str, Any], receive: Any, send: Any, path: str) -> None:
        """``/upload/{v}/files`` (resumable uploads) and ``/download/{v}/files/{id}:download``."""
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "upload" and parts[2] == "files":
            await self.files.upload(scope, receive, send, parts[1])
        elif len(parts) == 4 and parts[0] == "download" and parts[2] == "files" and parts[3].endswith(":download"):
            await self.files.download(scope, receive, send, parts[1], parts[3].removesuffix(":download"))
        else:
            await self._send_json(send, 404, error_body(404, f"Method not found: {path}"))

    def authorized_project(self, scope: dict[str, Any], path_project: str | None = None) -> str:
        """The caller's project, or the 403/400 for a missing or invalid key."""
        key, bearer = self._credentials(scope)
        self._check_key(key, bearer)
        return self.config.project_for(key, path_project)

    def _check_key(self, key: str | None, bearer: bool) -> None:
        if key is None and not bearer:
            raise unregistered_caller()
        if key is not None and self.config.key_is_invalid(key):
            raise api_key_invalid()

    @staticmethod
    def _credentials(scope: dict[str, Any]) -> tuple[str | None, bool]:
        key: str | None = None
        bearer = False
        for name, value in scope["headers"]:
            if name == b"x-goog-api-key":
                key = value.decode("latin-1").strip() or None
            elif name == b"authorization" and value[:7].lower() == b"bearer ":
                bearer = True
        if key is None:
            qs = scope.get("query_string", b"")
            if b"key=" in qs:
                vals = parse_qs(qs.decode("latin-1")).get("key")
                if vals and vals[0].strip():
                    key = vals[0].strip()
        return key, bearer

    def _model(self, name: str) -> ModelInfo | None:
        """The catalog's entry, a served extra model the catalog does not know, or a model the
        recorded listing names (listing.py)."""
        info = lookup(name)
        if info is None and canonical_id(name) in self.config.extra_models:
            return uncatalogued(name)
        return info or listing.served(name)

    def _serves(self, info: ModelInfo, op: str) -> bool:
        """Whether the model serves this method (an embedding model embeds, the others generate)."""
        methods = listing.methods(info.id) or listing.GENERATE_METHODS  # extra models generate
        if op in EMBED_METHODS:
            return "embedContent" in methods
        return ("countTokens" if op == COUNT else "generateContent") in methods

    def _list_models(self, scope: dict[str, Any]) -> dict[str, Any]:
        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        try:
            size = int(q.get("pageSize", q.get("page_size", [DEFAULT_PAGE_SIZE]))[0]) or DEFAULT_PAGE_SIZE
            start = int(q.get("pageToken", q.get("page_token", ["0"]))[0] or 0)
        except ValueError:
            raise invalid_argument("Invalid page token or page size.") from None
        live = listing.listing(self.config.extra_models)
        out: dict[str, Any] = {"models": live[start : start + size]}
        if start + size < len(live):
            out["nextPageToken"] = str(start + size)
        return out

    async def _cached_contents(
        self, scope: dict[str, Any], receive: Any, send: Any, version: str, rest: list[str],
        path_project: str | None,
    ) -> None:
        """cachedContents create / list / get / patch / delete; the resource lives in caches.py."""
        http_method = scope["method"]
        key, bearer = self._credentials(scope)
        # Vertex express mode (API key, no project) names caches "projects/None/locations/None/...".
        project = self.config.project_for(key, None if path_project == "None" else path_project)
        name = "/".join(rest)
        op = {("POST", False): "create", ("GET", False): "list", ("GET", True): "get",
              ("PATCH", True): "patch", ("DELETE", True): "delete"}.get((http_method, bool(name)))
        stat_method = f"cachedContents.{op or http_method.lower()}"
        now = self.clock.now()
        book = self.caches
        try:
            self._check_key(key, bearer)
            if op is None:
                raise api_error(404, f"Method not found: {http_method} /{version}/cachedContents/{name}")
            await self.control_fault(scope, receive, send, stat_method, project)
            body: dict[str, Any] = {}
            if op in ("create", "patch"):
                raw = await self._read_body(receive)
                if raw is None:
                    raise invalid_argument(PAYLOAD_TOO_LARGE_MESSAGE)
                body = parse_json_body(raw)
            if op == "create":
                spec = self.config.projects.get(project)
                out = book.create(project, body, now, version, free_tier=spec is not None and spec.tier == "free")
            elif op == "list":
                out = book.list_page(project, scope.get("query_string", b"").decode("latin-1"), now)
            elif op == "get":
                out = book.get(project, name, now)
            elif op == "patch":
                out = book.patch(project, name, body, now)
            else:
                out = book.delete(project, name, now)
        except ApiError as e:
            await self._send_json(send, e.code, e.body)
            self.stats.record(now, stat_method, None, project, e.code)
            return
        await self._send_json(send, 200, out)
        self.stats.record(now, stat_method, None, project, 200)

    def _headers_dict(self, scope: dict[str, Any]) -> dict[str, str]:
        return {
            n.decode("latin-1"): v.decode("latin-1")
            for n, v in scope["headers"]
            if n not in (b"x-goog-api-key", b"authorization")
        }

    def _scenario_action(
        self, scope: dict[str, Any], op: str, model: str, project: str, prompt: str
    ) -> dict[str, Any] | None:
        n_global, n_model = self.scenario.count(op, model)
        if not self.scenario.rules:
            return None
        return self.scenario.pick({"method": op, "model": model, "project": project, "prompt": prompt,
                                   "headers": self._headers_dict(scope), "n_global": n_global, "n_model": n_model})

    async def control_fault(self, scope: dict[str, Any], receive: Any, send: Any, method: str,
                            project: str | None) -> None:
        """Apply a scenario rule that names this control-plane method (``cachedContents.create``,
        ``files.upload``, ``batches.get``, ...) before the call is served: its delay, drop or error
        (raised as ``ApiError``). Rules without ``method`` match the generate methods only."""
        if not self.scenario.rules:
            return
        act = self.scenario.pick({"method": method, "model": "", "project": project or "", "prompt": "",
                                  "headers": self._headers_dict(scope), "n_global": 0, "n_model": 0})
        if act:
            await self._apply_fault(receive, send, act, "", project or "")

    async def _apply_fault(
        self, receive: Any, send: Any, act: dict[str, Any], model: str, project: str
    ) -> None:
        """Delay, then hang / drop / error as the action says (returns if none apply)."""
        delay = act.get("delay")
        if delay:
            await asyncio.sleep(float(delay))
        if act.get("hang"):
            await self._wait_disconnect(receive)
            raise _Dropped
        if act.get("drop"):
            await self._drop(receive, send)
        code = act.get("error")
        if code is None and act.get("no_quota"):
            code = 429
        if code is not None:
            code = int(code)
            message = act.get("message")
            if code == 429:
                raise self._scripted_429(act, model, project, message)
            raise ApiError(code, error_body(code, message, act.get("status")))

    def _scripted_429(self, act: dict[str, Any], model: str, project: str, message: str | None) -> ApiError:
        """A scenario 429 states the quota the emulator has configured (none when unlimited),
        or ``quota_value`` when the rule gives one; ``no_quota`` gives the limit-0 body."""
        delay = float(act.get("retry_delay", DEFAULT_SCRIPTED_RETRY_S))
        if act.get("no_quota"):
            return quota_exhausted(no_quota_violations(model), delay, message)
        kind = str(act.get("quota", "rpm")).lower()
        if act.get("quota_value") is not None:
            limit: int | None = int(act["quota_value"])
        else:
            limit = getattr(self.config.limits_for(project, model), kind) or None
        tier = self.config.tier_for(project)
        return quota_exhausted([violation(kind, tier == "free", model, limit)], delay, message)

    async def _count_tokens(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        info: ModelInfo,
        project: str,
        body: dict[str, Any],
    ) -> None:
        use: CacheUse | None = None
        inner = body.get("generateContentRequest", body.get("generate_content_request"))
        if isinstance(inner, dict):  # the REST form that can name a cache (SDKs send bare contents)
            use = self.caches.use(project, info, inner, self.clock.now())
            if use is not None:
                body = {"generateContentRequest": use.body}
        total, media = parse_count_tokens(body, info.id, self.files.resolver(project))
        if isinstance(inner, dict):
            total += tools_mod.declaration_tokens(camel_keys(use.body if use else inner).get("tools"))
        act = self._scenario_action(scope, COUNT, info.id, project, "") if self.scenario.rules else None
        if act:
            await self._apply_fault(receive, send, act, info.id, project)
        out: dict[str, Any] = {"totalTokens": total}
        if use is not None:
            out["cachedContentTokenCount"] = use.entry.tokens
        if total:
            out["promptTokensDetails"] = prompt_details(total, media)
        if use is not None:
            out["cacheTokensDetails"] = [{"modality": "TEXT", "tokenCount": use.entry.tokens}]
        await self._send_json(send, 200, out)
        self.stats.record(self.clock.now(), COUNT, info.id, project, 200)

    def prepare(self, info: ModelInfo, project: str, body: dict[str, Any]) -> Prepared:
        """A generate request read and checked as the live API does before answering: its named
        cache written in (caches.py), the body parsed, thinking settings, tools and the current
        turn's thought signatures checked (tools.py). Raises ApiError."""
        use = self.caches.use(project, info, body, self.clock.now())
        if use is not None and not body.get("contents"):
            raise invalid_argument("* GenerateContentRequest.contents: contents is not specified\n")
        effective = body if use is None else use.body
        req = parse_generate(effective, info.id, self.files.resolver(project))
        ans_mod.check_thinking(info, req)
        toolset = tools_mod.parse(effective)
        if toolset is not None:
            req.prompt_tokens += toolset.declaration_tokens
        contents = effective.get("contents")
        if isinstance(contents, list) and len(contents) > 1:  # only a history can drop a signature
            tools_mod.check_signatures(info, contents)
        return Prepared(req, effective, toolset, use)

    def answer(
        self, info: ModelInfo, project: str, prep: Prepared, act: dict[str, Any] | None,
        composed: ans_mod.Answer | None = None,
    ) -> ans_mod.Answer:
        """The answer to a prepared request (``compose``, unless ``composed`` already), and the
        cached share of its prompt (named cache, else an implicit hit). Counts the cache use."""
        req = prep.req
        answer = composed if composed is not None else compose(info, prep, act)
        if prep.cache is not None:
            answer.cached_tokens = prep.cache.entry.tokens
            self.caches.referenced(prep.cache)
        else:
            self.caches.uncached_requests += 1
            answer.cached_tokens = self.caches.implicit(
                project, info, req.system_texts + req.texts, req.prompt_tokens, req.seed(info.id),
                self.clock.now(),
            )
        return answer

    async def _generate(
        self,
        scope: dict[str, Any],
        receive: Any,
        send: Any,
        info: ModelInfo,
        project: str,
        body: dict[str, Any],
        op: str,
    ) -> None:
        prep = self.prepare(info, project, body)
        req = prep.req
        tier = flex.requested_tier(body)

        def record(status: int, usage: tuple[int, int, int] | None) -> None:  # 0: the connection was dropped
            self.stats.record(self.clock.now(), op, info.id, project, status, req.prompt, usage, (body, scope["headers"]))

        act = self._scenario_action(scope, op, info.id, project, req.prompt)
        if act:
            try:
                await self._apply_fault(receive, send, act, info.id, project)
            except _Dropped:
                record(0, None)
                raise
        if tier == flex.FLEX and (act and act.get("shed") or self.flex.shed(self.config.flex_shed_rate)):
            raise flex.shed_error()
        limits = self.config.limits_for(project, info.id)
        if limits.rpm or limits.tpm or limits.rpd:
            self.quota.admit(project, info.id, req.prompt_tokens, limits, self.clock.now(),
                             self.config.tier_for(project), priority=tier == flex.PRIORITY)
        if act and act.get("raw_body") is not None:
            await self._send_raw(send, op == GENERATE or not wants_sse(scope), str(act["raw_body"]),
                                 str(act.get("content_type", "application/json")))
            record(200, None)
            return
        try:
            composed = compose(info, prep, act, ON_LOOP_CHARS)
        except OverBudget:  # a big schema instance: made off the loop, so other requests keep being served
            composed = await asyncio.get_running_loop().run_in_executor(_BIG_ANSWERS, compose, info, prep, act)
        answer = self.answer(info, project, prep, act, composed)
        answer.service_tier = str(act["served_tier"]).lower() if act and act.get("served_tier") else tier
        rid = ans_mod.new_response_id()
        scale = self.config.latency_scale * (self.config.flex_latency_factor if tier == flex.FLEX else 1.0)
        out_tokens = answer.candidates_tokens + answer.thoughts_tokens
        if op == GENERATE:
            if scale > 0:
                await latency.pause(latency.total(info, out_tokens, scale))
            await self._send_json(send, 200, ans_mod.response(answer, info.id, rid))
            record(200, answer.usage_tuple)
            return
        chunks = ans_mod.stream_chunks(answer, info.id, rid, gemini3=tools_mod.signs(info))
        first, gap = latency.plan(info, out_tokens, len(chunks), scale)
        sse = wants_sse(scope)
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS if sse else JSON_HEADERS})
        if first:
            await latency.pause(first)
        cut = act.get("cut_after") if act else None  # send this many chunks, then drop the connection
        for i, chunk in enumerate(chunks if cut is None else chunks[: max(int(cut), 0)]):
            if i and gap:
                await latency.pause(gap)
            data = _dumps_sse(chunk) if sse else array_element(chunk, i == 0)
            await send({"type": "http.response.body", "body": data, "more_body": True})
        if cut is not None:
            record(0, answer.usage_tuple)
            await self._drop(receive, send)
        await send({"type": "http.response.body", "body": b"" if sse else ARRAY_END, "more_body": False})
        record(200, answer.usage_tuple)

    async def _send_raw(self, send: Any, whole: bool, raw: str, content_type: str) -> None:
        """A 200 whose body is exactly ``raw`` (cut-off JSON, an HTML error page from a proxy);
        for an SSE stream (not ``whole``), one event carrying ``raw`` as its data."""
        if whole:
            await self._send_bytes(send, 200, raw.encode(), [(b"content-type", content_type.encode("latin-1"))])
            return
        await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS})
        await send({"type": "http.response.body", "body": b"data: " + raw.encode() + b"\r\n\r\n", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    # ------------------------------------------------------------------ control API
    async def _control(self, scope: dict[str, Any], receive: Any, send: Any, what: str) -> None:
        method = scope["method"]
        what = what.strip("/")
        body: dict[str, Any] = {}
        if method in ("POST", "PUT", "PATCH", "DELETE"):
            raw = await self._read_body(receive)
            try:
                body = parse_json_body(raw or b"")
            except ApiError as e:
                await self._send_json(send, 400, e.body)
                return
        try:
            result = self.control(method, what, body, scope.get("query_string", b"").decode("latin-1"))
        except KeyError:
            await self._send_json(
                send, 404, error_body(404, f"Unknown control endpoint: {method} /_emulator/{what}")
            )
            return
        except (ValueError, TypeError) as e:
            await self._send_json(send, 400, error_body(400, str(e)))
            return
        await self._send_json(send, 200, result)

    def control(self, method: str, what: str, body: dict[str, Any], query: str = "") -> Any:
        """The control API, callable directly (the in-process ``Emulator`` uses it too)."""
        if what == "health":
            return {"status": "ok"}
        if what == "stats" and method == "GET":
            return {**self.stats.snapshot(), "batches": self.batches.book.snapshot()}
        if what == "batches" and method == "GET":
            return self.batches.book.snapshot(with_keys="keys=1" in query)
        if what == "requests" and method == "GET":
            q = parse_qs(query)
            limit = int(q["limit"][0]) if "limit" in q else None
            return {"requests": self.stats.recent(limit)}
        if what == "caches":
            if method == "POST":
                reject_unknown("caches", body, ("implicit_rate",))
                if "implicit_rate" in body:
                    rate = non_negative_float("caches: implicit_rate", body["implicit_rate"])
                    if rate > 1:
                        raise ValueError(f"caches: implicit_rate must be between 0 and 1, got {rate}")
                    self.config.implicit_cache_rate = self.caches.implicit_rate = rate
            return self.caches.snapshot(self.clock.now())
        if what == "reset" and method == "POST":
            self.reset()
            return {"status": "reset"}
        if what == "clock":
            if method == "POST":
                if "set" in body:
                    self.clock.set(float(body["set"]))
                if "advance" in body:
                    self.clock.advance(float(body["advance"]))
            return {"now": self.clock.now(), "offset": self.clock.offset}
        if what == "scenario":
            if method == "POST":
                self.load_scenario(rules_from_data(body), replace=bool(body.get("replace", True)))
            elif method == "DELETE":
                self.scenario.clear()
            return {"rules": self.scenario.describe()}
        if what == "quotas":
            if method == "POST":
                self.config.apply_settings(body)
                self.quota.window = self.config.window_seconds
            c = self.config
            return {
                "rpm": c.rpm,
                "tpm": c.tpm,
                "rpd": c.rpd,
                "window_seconds": c.window_seconds,
                "tier": c.tier,
                "projects": sorted(c.projects),
            }
        raise KeyError(what)
