"""The gateway as a raw ASGI application: auth, the quota policy, forwarding, ledger, metrics.

Per request: resolve the client's token (or pass its key through), answer retired models at
once with the real 404 shape naming the replacement, then for generate calls run the library's
policy around each upstream attempt:

- **limiter** (``flashlane.limits``, memory / SQLite / Redis): reserve the input-token estimate
  for ``project:model``; reconcile with ``usageMetadata.promptTokenCount`` from the answer (for a
  stream, from its last event), counted from when the answer arrived;
- **upstream 429** (classified by ``errors.from_status``): fed to ``Limiter.on_rate_limited``
  (a shared backoff gate), the reservation released, and retried after
  ``RetryPolicy.delay_for`` (which honours ``RetryInfo``), within the client's own deadline
  (``X-Server-Timeout``, sent by google-genai and @google/genai when a timeout is set) and the
  gateway's maximum; a per-day 429 is answered at once with the real body plus the reset time;
- **5xx / transport errors**: the reservation is kept (the server may have counted the
  request), retried likewise; ``Retry-After`` closes the gate.

These are the settlement rules of ``guard.Guard``; the gateway runs its own loop because it
must bound the limiter wait by the client's deadline, hand back the upstream's own error bytes
when it gives up, and settle a stream only when it ends. A stream is retried only before its
first byte has been sent to the client; after that its chunks pass through as they arrive.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import sys
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TextIO, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

from ..call.boundary import map_exception
from ..call.retry import RetryPolicy
from ..clock import SYSTEM_CLOCK, Clock
from ..emulator.app import NESTING_MESSAGE, lifespan
from ..emulator.errors import (
    PAYLOAD_LIMIT_BYTES,
    PAYLOAD_TOO_LARGE_MESSAGE,
    api_key_invalid,
    unregistered_caller,
)
from ..emulator.files import base_url
from ..errors import (
    AuthError,
    FlashlaneError,
    RateLimited,
    ServiceUnavailable,
    Timeout,
    TransportError,
    describe_reset,
    from_status,
    model_not_found,
)
from ..limits import Limiter, Limits, Reservation, Store
from ..limits.config import quota_key
from ..models import DEFAULT_MODEL, Usage, canonical_id, cost_of, lookup
from ..telemetry import current_span_set
from .ledger import Ledger, Owners
from .metrics import Metrics
from .tokens import Principal, TokenBook
from .upstream import DROP_REQUEST_HEADERS, DROP_RESPONSE_HEADERS, Upstream, UpstreamResponse
from .wire import (
    BATCH_CREATE,
    GENERATE,
    OWNED,
    STREAM,
    BadPath,
    Route,
    apply_defaults,
    asks_priority,
    dumps_error,
    error_body,
    estimate_input_tokens,
    mentions_owned,
    parse_route,
    rebase_file_uris,
    references,
    usage_in,
)

__all__ = ["DEFAULT_MAX_WAIT_S", "GatewayApp", "GatewayConfig"]

T = TypeVar("T")

DEFAULT_MAX_WAIT_S = 300.0  # the longest a request may wait for quota and retries, whatever the client allows
DEFAULT_MAX_ATTEMPTS = 8
# The time a client has to send a request's head: Apache mod_reqtimeout's default first header
# timeout (https://httpd.apache.org/docs/2.4/mod/mod_reqtimeout.html, header=20-40). Slow or silent
# connections, authenticated or not, are closed after it.
DEFAULT_HEAD_TIMEOUT_S = 20.0
# Answer a little before the client's own deadline, so it gets our answer rather than its timeout.
DEADLINE_MARGIN_S = 0.5
DEADLINE_MARGIN_FRACTION = 0.1
# The API refuses a request over 20 MB ("the maximum total request size is 20 MB",
# https://firebase.google.com/docs/vertex-ai/input-file-requirements; larger media go through the
# Files API: https://discuss.ai.google.dev/t/file-size-limit-413-request-entity-too-large/79575), so
# the gateway reads no more than that of any body it keeps; the emulator refuses at the same size.
MAX_BODY_BYTES = PAYLOAD_LIMIT_BYTES
# Upload bodies are streamed upstream unread, never kept: bounded only by the Files API's 2 GB per
# file (https://www.raymondcamden.com/2024/05/21/using-the-gemini-file-api-for-prompts-with-media).
MAX_UPLOAD_BYTES = 2 * 1024 ** 3
TAIL_BYTES = 64 * 1024  # how much of a stream's end is kept to find its last usageMetadata
UPLOAD_IDS_KEPT = 10_000
MAX_LIMITERS = 256
CLIENT_GONE = 499  # as nginx logs a request whose client closed the connection first
STREAM_CUT = 502  # a stream the upstream broke off: a bad gateway answer, whatever its first status said
STORE_THREADS = 16  # concurrent SQLite/Redis limiter calls; each is short, none waits for quota

JSON = b"application/json; charset=UTF-8"
# What the gateway adds to an error it passes on or words like the API (a reset time, the model to use
# instead): a header, so the body's message stays the API's own text (issue 25).
NOTE_HEADER = b"x-flashlane-gateway-note"
DAY_QUOTA_ID = "GenerateRequestsPerDayPerProjectPerModel"
DAY_QUOTA_METRIC = "generativelanguage.googleapis.com/generate_requests_per_model_per_day"


@dataclass(frozen=True)
class GatewayConfig:
    limits: str = "adaptive"
    max_wait_s: float = DEFAULT_MAX_WAIT_S
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    default_thinking: str | None = None  # added to generate requests that set no thinking
    default_max_output_tokens: int | None = None  # added to generate requests that set no cap
    access_log: bool = False
    head_timeout_s: float = DEFAULT_HEAD_TIMEOUT_S


@dataclass
class _Outcome:
    """What one request did, for the ledger, the metrics and the access log."""

    code: int = 0
    usage: Usage | None = None
    absorbed: int = 0  # upstream 429s waited out
    retries: int = 0
    limiter_wait_s: float = 0.0
    upstream_error: bool = False
    refused: bool = False
    auth_refused: bool = False  # the upstream rejected the credential (API_KEY_INVALID, 401, 403)
    known_model: str | None = None  # the catalog ID, once looked up
    model: str = ""  # the model the call names (its path, or a cache's body)


class _ClientGone(Exception):
    """The client closed its connection while its request waited for quota or a retry."""


class _Waits:
    """A request's waits, on the injected clock, cut short when the client hangs up: once the body
    is read, ``receive()`` returns only on disconnect, so one watcher (made at the first wait,
    never on the fast path) tells when to stop spending time and quota on it."""

    def __init__(self, clock: Clock, receive: Any) -> None:
        self.clock = clock
        self.receive = receive
        self.watch: asyncio.Future[Any] | None = None

    async def sleep(self, seconds: float) -> None:
        if self.watch is None:
            self.watch = asyncio.ensure_future(self.receive())
        if self.watch.done():
            raise _ClientGone
        sleeper = asyncio.ensure_future(self.clock.asleep(seconds))
        try:
            await asyncio.wait({sleeper, self.watch}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not sleeper.done():
                sleeper.cancel()
        if self.watch.done():
            raise _ClientGone

    def close(self) -> None:
        if self.watch is not None and not self.watch.done():
            self.watch.cancel()


class _TooLarge(Exception):
    """An upload's body went past ``MAX_UPLOAD_BYTES`` while it streamed upstream."""


class _Abort(Exception):
    """The upstream stream broke after bytes reached the client: cut the client's connection too."""


class GatewayApp:
    def __init__(self, upstream: Upstream, tokens: TokenBook, store: Store, *, config: GatewayConfig | None = None,
                 clock: Clock | None = None, ledger: Ledger | None = None, metrics: Metrics | None = None,
                 log: TextIO | None = None, owners: Owners | None = None) -> None:
        self.upstream = upstream
        self.tokens = tokens
        self.store = store
        self.config = config or GatewayConfig()
        self.clock: Clock = clock or SYSTEM_CLOCK
        self.ledger = ledger
        # Tenants are the tokens file's projects; with --pass-keys each client's own key scopes its
        # resources upstream, as it would without the gateway.
        self.owners = None if tokens.pass_keys else owners or Owners(":memory:")
        self.metrics = metrics or Metrics()
        self.log = log or sys.stderr
        self.rng = random.Random()
        Limits.parse(self.config.limits, DEFAULT_MODEL)  # a bad spec fails at startup, not per request
        self._limiters: dict[str, Limiter] = {}
        self._policies: dict[float, RetryPolicy] = {}
        self._uploads: dict[str, Principal] = {}
        self._pool = None if store.name == "memory" else ThreadPoolExecutor(STORE_THREADS, "flashlane-gateway-store")

    # ------------------------------------------------------------------ helpers

    def limiter(self, model: str) -> Limiter:
        """One limiter per model (tier presets differ by model), all on the one shared store."""
        lim = self._limiters.get(model)
        if lim is None:
            try:
                limits = Limits.parse(self.config.limits, model)
            except FlashlaneError:  # a tier preset the catalog lacks for this model: the default's numbers
                limits = Limits.parse(self.config.limits, DEFAULT_MODEL)
            lim = Limiter(self.store, limits, clock=self.clock, model=model)
            if len(self._limiters) < MAX_LIMITERS:  # client-chosen model names must not grow this forever
                self._limiters[model] = lim
        return lim

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        if self.owners is not None:
            self.owners.close()

    async def _io(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a limiter-store call: inline for the in-memory store (microseconds), on a thread for
        SQLite and Redis, whose calls wait on a file lock or a network round trip and must not stall
        every other request on the event loop."""
        if self._pool is None:
            return fn(*args)
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    async def _acquire(self, limiter: Limiter, key: str, tokens: int, waits: _Waits) -> Reservation:
        """``Limiter.aacquire`` with each admission attempt through ``_io``; waits on the clock,
        and gives up when the client hangs up (its request must not spend a quota slot)."""
        while True:
            got = await self._io(limiter.try_acquire, key, tokens)
            if isinstance(got, Reservation):
                return got
            await waits.sleep(got)

    def _policy(self, deadline_s: float) -> RetryPolicy:
        p = self._policies.get(deadline_s)
        if p is None:
            p = RetryPolicy(max_attempts=self.config.max_attempts, deadline_s=deadline_s)
            if len(self._policies) < 1024:
                self._policies[deadline_s] = p
        return p

    def _deadline(self, headers: list[tuple[bytes, bytes]]) -> float:
        """Seconds this request may take: the client's ``X-Server-Timeout`` (google-genai sends
        ``ceil(timeout)`` whenever ``HttpOptions.timeout`` is set: ``_api_client.py``
        ``populate_server_timeout_header``; @google/genai does the same), a little less, capped
        by the gateway maximum."""
        for name, value in headers:
            if name == b"x-server-timeout":
                try:
                    client = float(value)
                except ValueError:
                    break
                if client > 0:
                    margin = min(DEADLINE_MARGIN_S, client * DEADLINE_MARGIN_FRACTION)
                    return min(client - margin, self.config.max_wait_s)
        return self.config.max_wait_s

    @staticmethod
    async def _send(send: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]] | None = None) -> None:
        hdrs = headers if headers is not None else [(b"content-type", JSON)]
        await send({"type": "http.response.start", "status": status,
                    "headers": [*hdrs, (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def _reconcile(self, res: Reservation | None, tokens: int | None) -> None:
        """Settle an attempt's reservation (if it took one) at ``tokens`` (None: keep the estimate)."""
        if res is not None:
            await self._io(_reconcile, res, tokens, self.clock.time())

    async def _no_answer(self, send: Any, out: _Outcome, err: FlashlaneError, timed_out: bool = False) -> None:
        """The upstream gave no answer to pass on: 503 (504 when the deadline ran out) with the reason."""
        code, status = (504, "DEADLINE_EXCEEDED") if timed_out else (503, "UNAVAILABLE")
        out.code, out.upstream_error = code, True
        await self._send(send, code, error_body(code, status, f"flashlane gateway: {err.message}"))

    def _note(self, scope: dict[str, Any], principal: Principal | None, model: str, out: _Outcome,
              started: float) -> None:
        elapsed = time.perf_counter() - started
        if principal is not None and self.tokens.pass_keys and out.auth_refused:
            principal = None  # a key the upstream refused: not a project to keep metrics and ledger rows for
        project = principal.project if principal else "-"
        label = principal.label if principal else "-"
        cost = cost_of(model, out.usage) if out.usage is not None else None  # priced once, for both
        self.metrics.observe(project, model or "-", out.code, elapsed, usage=out.usage, cost=cost,
                             absorbed=out.absorbed, retries=out.retries, limiter_wait_s=out.limiter_wait_s)
        u = out.usage
        current_span_set({  # the request's server span (telemetry.py), when telemetry is on
            "flashlane.project": project, "gen_ai.request.model": model or None, "flashlane.cost_usd": cost,
            "gen_ai.usage.input_tokens": u.prompt_tokens if u else None,
            "gen_ai.usage.output_tokens": u.billed_output_tokens if u else None,
            "flashlane.retries": out.retries, "flashlane.rate_limited_absorbed": out.absorbed,
            "flashlane.limiter_wait_s": out.limiter_wait_s})
        if self.ledger is not None and principal is not None:
            self.ledger.record(label, project, model or "-", ok=200 <= out.code < 300, usage=out.usage, cost=cost,
                               absorbed=out.absorbed, retries=out.retries, upstream_error=out.upstream_error,
                               refused=out.refused, limiter_wait_s=out.limiter_wait_s)
        if self.config.access_log:
            # The path only: a ?key= query is never logged.
            print(f"gateway: {scope['method']} {scope['path']} {out.code} {elapsed * 1000:.1f}ms label={label} "
                  f"project={project} retries={out.retries} absorbed_429={out.absorbed} "
                  f"limiter_wait={out.limiter_wait_s:.3f}s", file=self.log, flush=True)

    # ------------------------------------------------------------------ ASGI entry

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope["path"]
        if path == "/healthz":
            await self._send(send, 200, b'{"status": "ok"}\n')
            return
        if path == "/metrics":
            await self._send(send, 200, self.metrics.render(), [(b"content-type", b"text/plain; version=0.0.4")])
            return
        try:
            route = parse_route(scope["method"], scope.get("raw_path") or path.encode("latin-1"))
        except BadPath as e:  # not forwarded, not counted against anyone: nothing was called
            status = "INVALID_ARGUMENT" if e.code == 400 else "NOT_FOUND"
            await self._send(send, e.code, error_body(e.code, status, f"{e} (flashlane gateway)"))
            return
        self.metrics.in_flight += 1
        started = time.perf_counter()
        out = _Outcome()
        principal: Principal | None = None
        try:
            principal = await self._authenticate(scope, send, route, out)
            if principal is not None:
                await self._handle(scope, receive, send, route, principal, out)
        except _Abort:
            out.upstream_error = True
            _close_client(send)
        finally:
            self.metrics.in_flight -= 1
            if principal is not None or out.code:
                self._note(scope, principal, _model_label(principal, out), out, started)

    async def _authenticate(self, scope: dict[str, Any], send: Any, route: Route, out: _Outcome) -> Principal | None:
        key = _client_key(scope)
        if key is None and route.kind == "upload":
            # google-genai sends no key with the upload chunks (gemini-api-wire.md §0.3); the
            # upload id we handed out identifies the principal.
            upload_id = _query_param(scope, "upload_id")
            p = self._uploads.get(upload_id) if upload_id else None
            if p is not None:
                return p
        if key is None:
            out.code = 403
            self.metrics.refused_auth += 1
            await self._send(send, 403, dumps_error(unregistered_caller().body))
            return None
        p = self.tokens.resolve(key)
        if p is None:
            out.code = 400
            self.metrics.refused_auth += 1
            # the live API's 400 for a bad key, as recorded (gemini-api-wire.md §4, wire sample 23)
            await self._send(send, 400, dumps_error(api_key_invalid().body))
        return p

    # ------------------------------------------------------------------ one request

    async def _handle(self, scope: dict[str, Any], receive: Any, send: Any, route: Route, principal: Principal,
                      out: _Outcome) -> None:
        method: str = scope["method"]
        if route.owned and not self._owns(principal, route.owned):
            # Another project's resource (or none at all): the same answer either way.
            out.code, out.refused = 404, True
            await self._send(send, 404, _gone_body(route.owned))
            return
        url = self.upstream.target(route, _strip_key(scope.get("query_string", b"")))
        if url is None:
            out.code, out.refused = 404, True
            await self._send(send, 404, error_body(404, "NOT_FOUND", f"{route.path} is not available on "
                                                   f"{self.upstream.describe} through the gateway"))
            return
        headers = [(k, v) for k, v in scope["headers"] if k not in DROP_REQUEST_HEADERS]
        headers += await self.upstream.auth_headers(principal.upstream_key)
        if route.kind == "upload":
            # File bytes stream upstream as they arrive, unread and unkept; once: the SDK resumes an
            # upload itself.
            length = [(k, v) for k, v in scope["headers"] if k == b"content-length"]
            await self._forward_once(scope, send, method, url, headers + length, _stream_body(receive), route,
                                     principal, out)
            return
        body = None if _declared_length(scope) > MAX_BODY_BYTES else await _read_body(receive)
        if body is None:  # refused before a byte of it is read when its length says so, else at the limit
            out.code = 400
            await self._send(send, 400, error_body(400, "INVALID_ARGUMENT", PAYLOAD_TOO_LARGE_MESSAGE))
            return
        model, est, obj = route.model, 0, None
        if route.spends:
            try:
                obj = json.loads(body) if body else {}
            except RecursionError:  # deeper than the parser goes: the API's own 400, never a 500
                out.code = 400
                await self._send(send, 400, error_body(400, "INVALID_ARGUMENT", NESTING_MESSAGE))
                return
            except ValueError:
                obj = None  # not JSON: it goes upstream as it is, and the API's 400 is the right answer
            if isinstance(obj, dict):
                if route.create_cache and isinstance(obj.get("model"), str):
                    model = canonical_id(obj["model"])
                used = references(obj) if mentions_owned(body) else ()
                foreign = next((r for r in sorted(used) if not self._owns(principal, r)), None)
                if foreign is not None:
                    out.model, out.code, out.refused = model, 404, True
                    await self._send(send, 404, _gone_body(foreign))
                    return
                est = estimate_input_tokens(obj, model)
        out.model = model
        info = lookup(model) if model else None
        if info is not None:
            out.known_model = info.id
        if info is not None and info.retired and (route.kind in ("op", "model") or route.create_cache):
            # The catalog knows it is gone: don't spend a request (or a quota slot) to hear so.
            out.code, out.refused = 404, True
            await self._send(send, 404, _not_found_body(route, model), _noted(None, model_not_found(model).message))
            return
        cfg = self.config
        if isinstance(obj, dict) and route.op in (GENERATE, STREAM) and (
                cfg.default_thinking or cfg.default_max_output_tokens) and apply_defaults(
                obj, info, thinking=cfg.default_thinking, max_output_tokens=cfg.default_max_output_tokens):
            body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        if isinstance(obj, dict) and b"/files/" in body and rebase_file_uris(
                obj, base_url(scope), self.upstream.base_url):  # file URIs named for the gateway: the upstream's
            body = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
        model_id = info.id if info is not None else model
        idempotent = route.kind in ("op", "model", "models") or method in ("GET", "HEAD", "DELETE")
        waits = _Waits(self.clock, receive)
        try:
            await self._attempts(scope, send, method, url, headers, body, route, model_id, principal, est, out,
                                 waits, retry=idempotent, priority=isinstance(obj, dict) and asks_priority(obj))
        except _ClientGone:
            out.code = CLIENT_GONE  # nothing to answer: the client hung up while the request waited
        finally:
            waits.close()

    async def _attempts(self, scope: dict[str, Any], send: Any, method: str, url: str,
                        headers: list[tuple[bytes, bytes]], body: bytes, route: Route, model: str,
                        principal: Principal, est: int, out: _Outcome, waits: _Waits, *, retry: bool,
                        priority: bool = False) -> None:
        clock = self.clock
        deadline = self._deadline(scope["headers"])
        policy = self._policy(deadline)
        limiter = self.limiter(model) if route.spends and model else None
        key = quota_key(principal.project, model, priority=priority)
        start = clock.monotonic()
        attempt = 0
        while True:
            attempt += 1
            remaining = deadline - (clock.monotonic() - start)
            res = None
            if limiter is not None:
                t0 = clock.monotonic()
                try:
                    if remaining <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(remaining):  # no task per request, unlike wait_for
                        res = await self._acquire(limiter, key, est, waits)
                except RateLimited as e:  # the day is used up (counted here, or reported by the server)
                    out.limiter_wait_s += clock.monotonic() - t0
                    out.code, out.refused = 429, True
                    await self._send(send, 429, _day_body(e, model), _noted(None, _reset_note(e)))
                    return
                except TimeoutError:
                    out.limiter_wait_s += clock.monotonic() - t0
                    out.code, out.refused = 504, True
                    await self._send(send, 504, error_body(
                        504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete. (flashlane "
                        f"gateway: the quota for {model} had no room within the request's deadline of "
                        f"{deadline:.1f} s)"))
                    return
                out.limiter_wait_s += clock.monotonic() - t0
                remaining = deadline - (clock.monotonic() - start)
            resp: UpstreamResponse | None = None
            raw = b""
            try:
                resp = await self.upstream.send(method, url, headers, body, max(remaining, 0.001))
            except Exception as exc:  # noqa: BLE001 - every transport failure is classified below
                err = _transport_error(exc, model, remaining)
            else:
                if resp.status < 400:
                    await self._deliver(send, resp, route, res, principal, scope, out)
                    return
                try:
                    raw = await resp.read(max(remaining, 0.001))
                except Exception as exc:  # noqa: BLE001
                    err = _transport_error(exc, model, remaining)
                    resp = None
                else:
                    err = from_status(resp.status, _error_obj(raw), headers=_header_map(resp.headers), model=model)
                finally:
                    if resp is not None:
                        await resp.close()
            # Settle the attempt's reservation as guard.Guard does.
            if res is not None and limiter is not None:
                if isinstance(err, RateLimited):
                    await self._io(_settle_429, limiter, key, err, res)
                else:
                    await self._reconcile(res, None)
                    if isinstance(err, ServiceUnavailable) and err.retry_after:
                        await self._io(limiter.backoff, key, clock.time() + err.retry_after)
            elif limiter is not None and isinstance(err, RateLimited) and err.kind == "rpd":
                await self._io(limiter.on_rate_limited, key, err)
            if isinstance(err, RateLimited) and err.kind == "rpd":
                out.code, out.upstream_error = 429, True
                if raw and resp is not None:  # the upstream's own body, unchanged: the note is a header
                    await self._send(send, 429, raw, _noted(_response_headers(resp.headers), _reset_note(err)))
                else:
                    await self._send(send, 429, _day_body(err, err.model or ""), _noted(None, _reset_note(err)))
                return
            delay = policy.delay_for(err, attempt, clock.monotonic() - start, self.rng) if retry else None
            if delay is None:
                out.upstream_error = True
                out.auth_refused = isinstance(err, AuthError)
                if resp is None:
                    await self._no_answer(send, out, err, timed_out=isinstance(err, Timeout))
                    return
                out.code = resp.status
                headers = _response_headers(resp.headers)
                if resp.status == 404 and route.kind in ("op", "model"):
                    headers = _noted(headers, model_not_found(route.model).message)
                await self._send(send, resp.status, raw, headers)
                return
            if isinstance(err, RateLimited):
                out.absorbed += 1
            out.retries += 1
            await waits.sleep(delay)

    async def _deliver(self, send: Any, resp: UpstreamResponse, route: Route, res: Any, principal: Principal,
                       scope: dict[str, Any], out: _Outcome) -> None:
        out.code = resp.status
        headers = _response_headers(resp.headers)
        if route.kind == "upload":
            headers = self._rewrite_upload_url(headers, scope, principal)
        stall = self.config.max_wait_s  # the longest the upstream may go quiet mid-answer
        if route.op != STREAM:
            try:
                raw = await resp.read(stall)
            except Exception as exc:  # noqa: BLE001 - a body lost before any byte reached the client
                await resp.close()
                await self._reconcile(res, None)
                await self._no_answer(send, out, _transport_error(exc, route.model, None))
                return
            await resp.close()
            if route.op == GENERATE:
                out.usage = usage_in(raw)
            await self._reconcile(res, out.usage.prompt_tokens if out.usage else None)
            if self.owners is not None and resp.status < 300 and (
                    route.create_cache or route.op == BATCH_CREATE or route.resource in OWNED and not route.name):
                raw = self._tenant_view(route, scope["method"], principal, raw)
            if resp.status < 300 and (route.resource == "files" and route.op != "download" or route.kind == "upload"):
                raw = self._gateway_uris(raw, scope)
            await self._send(send, resp.status, raw, headers)
            return
        # A stream: every chunk goes to the client as it arrives.
        await send({"type": "http.response.start", "status": resp.status, "headers": headers})
        prev = last = b""
        try:
            async for chunk in resp.chunks(stall):
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    prev, last = last, chunk
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-stream: so must the client's
            # Not an answer: the ledger counts an error, with the tokens the events so far reported.
            out.code = STREAM_CUT
            out.usage = usage_in((prev + last)[-TAIL_BYTES:])
            await self._reconcile(res, out.usage.prompt_tokens if out.usage else None)
            raise _Abort from exc
        finally:
            await resp.close()
        tail = last if b'"usageMetadata"' in last else (prev + last)[-TAIL_BYTES:]
        out.usage = usage_in(tail)
        await self._reconcile(res, out.usage.prompt_tokens if out.usage else None)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    def _owns(self, principal: Principal, name: str) -> bool:
        return self.owners is None or self.owners.owner(name) == principal.project

    def _tenant_view(self, route: Route, method: str, principal: Principal, raw: bytes) -> bytes:
        """Record who created a resource; cut a list down to the caller's own resources."""
        owners = self.owners
        assert owners is not None
        try:
            data = json.loads(raw)
        except ValueError:
            return raw
        if not isinstance(data, dict):
            return raw
        created = data.get("file") if route.kind == "upload" else data
        if (route.create_cache or route.op == BATCH_CREATE or route.kind == "upload") and isinstance(created, dict):
            name = created.get("name")
            if isinstance(name, str) and name.split("/", 1)[0] in OWNED:
                owners.claim(name, principal.project, self.clock.time())
            return raw
        key = OWNED[route.resource]
        if method == "GET" and not route.name and isinstance(data.get(key), list):
            data[key] = [r for r in data[key] if isinstance(r, dict) and owners.owner(str(r.get("name"))) ==
                         principal.project]
            return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()
        return raw

    async def _forward_once(self, scope: dict[str, Any], send: Any, method: str, url: str,
                            headers: list[tuple[bytes, bytes]], body: bytes | AsyncIterator[bytes], route: Route,
                            principal: Principal, out: _Outcome) -> None:
        try:
            resp = await self.upstream.send(method, url, headers, body, self._deadline(scope["headers"]))
        except _TooLarge:
            out.code = 400
            await self._send(send, 400, error_body(400, "INVALID_ARGUMENT", PAYLOAD_TOO_LARGE_MESSAGE))
            return
        except Exception as exc:  # noqa: BLE001
            await self._no_answer(send, out, _transport_error(exc, None, None))
            return
        if resp.status >= 400:
            out.upstream_error = True
        await self._deliver(send, resp, route, None, principal, scope, out)

    def _gateway_uris(self, raw: bytes, scope: dict[str, Any]) -> bytes:
        """A Files API answer whose ``uri``s name the gateway, not the upstream (issue 25)."""
        if b"/files/" not in raw:
            return raw
        try:
            data = json.loads(raw)
        except ValueError:
            return raw
        if not rebase_file_uris(data, self.upstream.base_url, base_url(scope)):
            return raw
        return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()

    def _rewrite_upload_url(self, headers: list[tuple[bytes, bytes]], scope: dict[str, Any],
                            principal: Principal) -> list[tuple[bytes, bytes]]:
        """The SDKs send file bytes to the ``x-goog-upload-url`` they are given: make it the gateway."""
        out = []
        for k, v in headers:
            if k.lower() == b"x-goog-upload-url":
                u = urlsplit(v.decode("latin-1"))
                v = (base_url(scope) + u.path + (f"?{u.query}" if u.query else "")).encode("latin-1")
                upload_id = dict(parse_qsl(u.query)).get("upload_id")
                if upload_id:
                    if len(self._uploads) >= UPLOAD_IDS_KEPT:
                        self._uploads.pop(next(iter(self._uploads)))
                    self._uploads[upload_id] = principal
            out.append((k, v))
        return out


# ---------------------------------------------------------------------- request helpers


def _reconcile(res: Reservation, tokens: int | None, at: float) -> None:
    res.reconcile(tokens, at=at)


def _settle_429(limiter: Limiter, key: str, err: RateLimited, res: Reservation) -> None:
    limiter.on_rate_limited(key, err, res)  # before release: it reads the window
    res.release()


def _model_label(principal: Principal | None, out: _Outcome) -> str:
    """The model as metrics and the ledger name it. Client-chosen names that no model answers
    to are folded into one label, so garbage paths cannot grow the metrics without bound."""
    if not out.model or principal is None:
        return "-"
    if out.known_model is not None:
        return out.known_model
    return out.model if out.code < 400 else "unknown"


def _client_key(scope: dict[str, Any]) -> str | None:
    for name, value in scope["headers"]:
        if name == b"x-goog-api-key":
            key = value.decode("latin-1").strip()
            if key:
                return key
        elif name == b"authorization" and value[:7].lower() == b"bearer ":
            key = value[7:].decode("latin-1").strip()
            if key:
                return key
    return _query_param(scope, "key")


def _query_param(scope: dict[str, Any], name: str) -> str | None:
    qs: bytes = scope.get("query_string", b"")
    if name.encode() + b"=" not in qs:
        return None
    for k, v in parse_qsl(qs.decode("latin-1")):
        if k == name and v.strip():
            return v.strip()
    return None


def _strip_key(qs: bytes) -> bytes:
    """The query without ``key=``: the client's token never goes upstream."""
    if b"key=" not in qs:
        return qs
    kept = [(k, v) for k, v in parse_qsl(qs.decode("latin-1"), keep_blank_values=True) if k != "key"]
    return urlencode(kept).encode("latin-1")


async def _read_body(receive: Any) -> bytes | None:
    """The whole body, or None as soon as it passes ``MAX_BODY_BYTES`` (the rest is never read)."""
    chunks: list[bytes] = []
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return b""
        part = msg.get("body", b"")
        size += len(part)
        if size > MAX_BODY_BYTES:
            return None
        if part:
            chunks.append(part)
        if not msg.get("more_body"):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _declared_length(scope: dict[str, Any]) -> int:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return int(value) if value.isdigit() else 0
    return 0


async def _stream_body(receive: Any) -> AsyncIterator[bytes]:
    """The body as it arrives (the server pauses reading the socket while it is not taken)."""
    size = 0
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            raise ConnectionResetError("the client closed the connection mid-upload")
        part = msg.get("body", b"")
        size += len(part)
        if size > MAX_UPLOAD_BYTES:
            raise _TooLarge
        if part:
            yield part
        if not msg.get("more_body"):
            return


def _close_client(send: Any) -> None:
    """Close the client's connection mid-response, so it sees a broken stream, not a short one."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.close()


# ---------------------------------------------------------------------- answer helpers


def _header_map(headers: list[tuple[bytes, bytes]]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in headers}


def _response_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    return [(k, v) for k, v in headers if k.lower() not in DROP_RESPONSE_HEADERS]


def _error_obj(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError:
        return {"message": raw[:200].decode("utf-8", "replace")}
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    err = data.get("error") if isinstance(data, dict) else None
    return err if isinstance(err, dict) else {}


def _transport_error(exc: BaseException, model: str | None, timeout_s: float | None) -> FlashlaneError:
    # The SDK boundary's table knows the transport types (httpx2 included); anything else
    # raised while forwarding is still a failed transport.
    return map_exception(exc, model=model, timeout_s=timeout_s) or TransportError(
        f"the upstream request failed: {type(exc).__name__}", hint="check the upstream base URL")


def _noted(headers: list[tuple[bytes, bytes]] | None, note: str) -> list[tuple[bytes, bytes]]:
    """``headers`` (default: JSON) with the gateway's note on an error. The note goes in a header, never
    into the body: clients match on the API's own message text (issue 25)."""
    value = " ".join(note.split()).encode("ascii", "replace")
    return [*(headers if headers is not None else [(b"content-type", JSON)]), (NOTE_HEADER, value)]


def _reset_note(err: RateLimited) -> str:
    when = describe_reset(err.reset_at) if err.reset_at else "midnight Pacific"
    return f"the per-day quota resets at {when}"


def _day_body(err: RateLimited, model: str) -> bytes:
    """The live API's per-day 429 (QuotaFailure + RetryInfo, gemini-api-wire.md §4) for a day the
    limiter already knows is used up."""
    wait = math.ceil(err.retry_after) if err.retry_after is not None else None
    details: list[dict[str, Any]] = [{
        "@type": "type.googleapis.com/google.rpc.QuotaFailure",
        "violations": [{"quotaMetric": DAY_QUOTA_METRIC, "quotaId": DAY_QUOTA_ID,
                        "quotaDimensions": {"location": "global", "model": model}}]}]
    if wait is not None:
        details.append({"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{wait}s"})
    msg = f"You exceeded your current quota. * Quota exceeded for metric: {DAY_QUOTA_METRIC}, model: {model}."
    return error_body(429, "RESOURCE_EXHAUSTED", msg, details)


def _not_found_body(route: Route, model: str) -> bytes:
    what = route.op or ("createCachedContent" if route.create_cache else "get")
    message = (f"models/{model} is not found for API version {route.version}, or is not supported for {what}. "
               "Call ModelService.ListModels to see the list of available models and their supported methods.")
    return error_body(404, "NOT_FOUND", message)


def _gone_body(name: str) -> bytes:
    """What a tenant hears of a resource that is not its own: that there is no such thing."""
    return error_body(404, "NOT_FOUND", f"{name} was not found. (flashlane gateway: no such resource "
                                        "belongs to this token's project)")
