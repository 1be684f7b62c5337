"""OpenTelemetry spans and metrics: model calls, runs, batch jobs, context caches and the gateway
(docs/telemetry.md says what each one holds).

**Off unless an OpenTelemetry SDK is configured.** ``current()`` is the one check every hook
makes: ``None`` while the global tracer and meter providers are the API's proxies (no SDK set
up, or ``opentelemetry-api`` not installed), so a call then costs two attribute reads more than
before. An SDK counts as configured when the application set its own providers
(``trace.set_tracer_provider``) or when the standard ``OTEL_*`` exporter variables are set, in
which case ``setup_from_env`` builds the SDK's providers from them once (the CLI and ``Client``
call it before any request).

**The conventions followed**: the OpenTelemetry GenAI semantic conventions, which left
open-telemetry/semantic-conventions after v1.41 for open-telemetry/semantic-conventions-genai
(opentelemetry-semantic-conventions 0.66b2, schema 1.44, marks every ``gen_ai.*`` name "Moved to
the GenAI repository"). That repository has no tagged release yet; the names here are those of
its ``docs/gen-ai/gen-ai-spans.md`` at commit 9430220e and ``docs/gen-ai/gen-ai-metrics.md`` at
commit 7269173e (both link the stable attributes of semantic-conventions v1.41.1):

- span ``generate_content {gen_ai.request.model}``, kind CLIENT, covering the logical call with
  all its retries ("If a transient issue happened and the request was retried automatically,
  the corresponding span SHOULD cover the duration of the logical operation with all retries");
  a streamed request's span (call/stream.py) is the same, with ``gen_ai.request.stream`` true;
- ``gen_ai.provider.name`` ``gcp.gemini`` (generativelanguage.googleapis.com) or
  ``gcp.vertex_ai`` (aiplatform.googleapis.com);
- ``gen_ai.usage.input_tokens`` includes cached tokens (``cache_read`` is "SHOULD be included
  in input_tokens") and ``gen_ai.usage.output_tokens`` includes reasoning tokens ("SHOULD be
  included in output_tokens"): Gemini's ``candidatesTokenCount`` does not, so output is
  candidates + thoughts, the billed output;
- metrics ``gen_ai.client.token.usage`` (histogram, ``{token}``, by ``gen_ai.token.type``) and
  ``gen_ai.client.operation.duration`` (histogram, ``s``), with the advised bucket boundaries.

**Content** (prompt, system instruction, answer) is recorded only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` asks for it on spans (``true``,
``SPAN_ONLY`` or ``SPAN_AND_EVENT``: the setting opentelemetry-python-contrib's GenAI
instrumentations read, util/opentelemetry-util-genai/README.rst), as the conventions'
``gen_ai.input.messages`` / ``gen_ai.output.messages`` / ``gen_ai.system_instructions`` JSON.
Keys and gateway tokens are never recorded: no hook is handed one, the gateway's server span
records the path without its query (``?key=``) and no header.
"""

from __future__ import annotations

import json
import os
import time
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from .errors import FlashlaneError, RateLimited
from .models import Usage

try:  # the optional extra ``otel``: without it telemetry is simply off
    from opentelemetry import context as otel_context
    from opentelemetry import metrics as otel_metrics
    from opentelemetry import propagate
    from opentelemetry import trace as otel_trace
    from opentelemetry.metrics import _internal as _metrics_internal
except ImportError:  # pragma: no cover - exercised by installs without the extra
    otel_trace = None  # type: ignore[assignment]

__all__ = ["CAPTURE_CONTENT_ENV", "Telemetry", "CallSpan", "current", "use", "setup_from_env", "span",
           "traced_asgi", "client_span", "current_span_set", "peer", "GEMINI", "VERTEX"]

INSTRUMENTATION = "flashlane"
OPERATION = "generate_content"  # gen_ai.operation.name for Gemini's generateContent (gen-ai-spans.md)
GEMINI = "gcp.gemini"
VERTEX = "gcp.vertex_ai"
GEMINI_HOST = "generativelanguage.googleapis.com"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
CAPTURE_ON = frozenset({"true", "span_only", "span_and_event"})
# gen-ai-metrics.md: "SHOULD be specified with ExplicitBucketBoundaries of ..."
TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
# The variables that say "export telemetry" (OpenTelemetry SDK environment variables,
# opentelemetry.sdk.environment_variables); any of them set makes setup_from_env build providers.
EXPORT_ENV = ("OTEL_TRACES_EXPORTER", "OTEL_METRICS_EXPORTER", "OTEL_EXPORTER_OTLP_ENDPOINT",
              "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
# The API's stand-ins until an SDK is set (opentelemetry.trace / opentelemetry.metrics._internal).
_UNSET = frozenset({"ProxyTracerProvider", "NoOpTracerProvider", "_ProxyMeterProvider", "NoOpMeterProvider"})


# ---------------------------------------------------------------------- is it on?

_cache: tuple[Any, Any, Telemetry | None] = (None, None, None)
_env_done = False
_own: tuple[Any, Any] | None = None  # use(): providers for flashlane alone, instead of the global ones


# Until a provider is set, the API's getters test ``os.environ`` on every call (for
# OTEL_PYTHON_TRACER_PROVIDER), which costs microseconds; the globals they return once set are
# module attributes, read in nanoseconds. So the check reads those (None: nothing set) and falls
# back to the getters if an API release renames them. A provider named by those variables is
# loaded once, here.
_FAST = otel_trace is not None and all(hasattr(m, name) for m, name in (
    (otel_trace, "_TRACER_PROVIDER"), (otel_trace, "_PROXY_TRACER_PROVIDER"),
    (_metrics_internal, "_METER_PROVIDER"), (_metrics_internal, "_PROXY_METER_PROVIDER")))
if otel_trace is not None and ("OTEL_PYTHON_TRACER_PROVIDER" in os.environ
                               or "OTEL_PYTHON_METER_PROVIDER" in os.environ):
    otel_trace.get_tracer_provider(), otel_metrics.get_meter_provider()


def current() -> Telemetry | None:
    """The telemetry to record into, or None (no SDK configured): the one check every hook makes."""
    if otel_trace is None:
        return None
    if _own is not None:
        tp, mp = _own
    elif _FAST:
        tp, mp = otel_trace._TRACER_PROVIDER, _metrics_internal._METER_PROVIDER
        if tp is None and mp is None:
            return None  # no SDK: the common case, two attribute reads
        tp = tp or otel_trace._PROXY_TRACER_PROVIDER  # what the getter returns while unset
        mp = mp or _metrics_internal._PROXY_METER_PROVIDER
    else:
        tp, mp = otel_trace.get_tracer_provider(), otel_metrics.get_meter_provider()
    cached = _cache
    if tp is cached[0] and mp is cached[1]:
        return cached[2]
    return _rebuild(tp, mp)


def _rebuild(tp: Any, mp: Any) -> Telemetry | None:
    global _cache
    traced, metered = type(tp).__name__ not in _UNSET, type(mp).__name__ not in _UNSET
    tel = Telemetry(tp, mp) if traced or metered else None
    _cache = (tp, mp, tel)
    return tel


def use(tracer_provider: Any = None, meter_provider: Any = None) -> None:
    """Record flashlane's spans and metrics with these SDK providers rather than the global ones
    (one left None: the global one); ``use()`` with neither goes back to the globals."""
    global _own
    if tracer_provider is None and meter_provider is None:
        _own = None
        return
    if otel_trace is None:
        from .errors import ConfigError

        raise ConfigError("telemetry.use needs the OpenTelemetry API", hint="pip install 'flashlane[otel]'")
    _own = (tracer_provider or otel_trace.get_tracer_provider(), meter_provider or otel_metrics.get_meter_provider())


def setup_from_env(environ: Mapping[str, str] | None = None) -> bool:
    """Build the SDK's tracer and meter providers from the standard ``OTEL_*`` variables, once,
    when one of ``EXPORT_ENV`` is set and the application set no provider of its own. Exporters
    are found by name as the SDK's auto-configuration finds them (entry points
    ``opentelemetry_traces_exporter`` / ``opentelemetry_metrics_exporter``: ``console`` ships
    with the SDK, ``otlp`` / ``otlp_proto_http`` with opentelemetry-exporter-otlp). True when
    providers were built. Raises ConfigError naming the package to install."""
    global _env_done
    env = os.environ if environ is None else environ
    if _env_done or otel_trace is None or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    if not any(env.get(name) for name in EXPORT_ENV):
        return False
    _env_done = True
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        from .errors import ConfigError

        raise ConfigError("OTEL_* export variables are set but the OpenTelemetry SDK is not installed",
                          hint="pip install 'flashlane[otel]' opentelemetry-sdk, or unset the OTEL_* variables") from None
    named = env.get("OTEL_SERVICE_NAME") or "service.name=" in env.get("OTEL_RESOURCE_ATTRIBUTES", "")
    resource = Resource.create({} if named else {"service.name": INSTRUMENTATION})  # reads OTEL_RESOURCE_*
    built = False
    if type(otel_trace.get_tracer_provider()).__name__ in _UNSET:
        names = _exporters(env, "traces")
        if names:
            tp = TracerProvider(resource=resource)
            for name in names:
                tp.add_span_processor(BatchSpanProcessor(_exporter("opentelemetry_traces_exporter", name)()))
            otel_trace.set_tracer_provider(tp)
            built = True
    if type(otel_metrics.get_meter_provider()).__name__ in _UNSET:
        names = _exporters(env, "metrics")
        if names:
            readers = [PeriodicExportingMetricReader(_exporter("opentelemetry_metrics_exporter", n)()) for n in names]
            otel_metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
            built = True
    return built


def _exporters(env: Mapping[str, str], signal: str) -> list[str]:
    """The exporter entry points ``OTEL_{SIGNAL}_EXPORTER`` names ("otlp" when unset; "none":
    none), "otlp" resolved by ``OTEL_EXPORTER_OTLP[_{SIGNAL}]_PROTOCOL`` as the SDK resolves it
    (opentelemetry.sdk._configuration._get_exporter_entry_point: grpc unless http/protobuf)."""
    names = [n.strip() for n in (env.get(f"OTEL_{signal.upper()}_EXPORTER") or "otlp").split(",") if n.strip()]
    protocol = (env.get(f"OTEL_EXPORTER_OTLP_{signal.upper()}_PROTOCOL") or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
                or "grpc").strip()
    otlp = "otlp_proto_http" if protocol == "http/protobuf" else "otlp_proto_grpc"
    return [otlp if n == "otlp" else n for n in names if n != "none"]


def _exporter(group: str, name: str) -> Any:
    from importlib.metadata import entry_points

    from .errors import ConfigError

    for ep in entry_points(group=group):
        if ep.name == name:
            return ep.load()
    var = "OTEL_TRACES_EXPORTER" if "traces" in group else "OTEL_METRICS_EXPORTER"
    raise ConfigError(f"{var} asks for the exporter {name!r}, which is not installed",
                      hint="pip install opentelemetry-exporter-otlp for otlp, or set it to 'console' or 'none'")


def peer(backend: str, base_url: str | None, vertex_location: str | None = None) -> tuple[str, str, int]:
    """(gen_ai.provider.name, server.address, server.port) of a client's endpoint."""
    provider = VERTEX if backend == "vertex" else GEMINI
    if base_url:
        parts = urllib.parse.urlsplit(base_url)
        return provider, parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80)
    if backend == "vertex":
        loc = vertex_location or "global"
        return provider, ("aiplatform.googleapis.com" if loc == "global" else f"{loc}-aiplatform.googleapis.com"), 443
    return provider, GEMINI_HOST, 443


def capture_content() -> bool:
    return os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() in CAPTURE_ON


def error_type(error: BaseException) -> str:
    """error.type: flashlane's reason code (a short stable name), else the exception's class."""
    return error.reason_code if isinstance(error, FlashlaneError) else type(error).__qualname__


# ---------------------------------------------------------------------- recording


class Telemetry:
    """The tracer and the instruments, made once per pair of providers."""

    def __init__(self, tracer_provider: Any, meter_provider: Any) -> None:
        self.tracer = tracer_provider.get_tracer(INSTRUMENTATION)
        meter = meter_provider.get_meter(INSTRUMENTATION)
        self.token_usage = meter.create_histogram(
            "gen_ai.client.token.usage", unit="{token}", description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=TOKEN_BUCKETS)
        self.duration = meter.create_histogram(
            "gen_ai.client.operation.duration", unit="s", description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.cost = meter.create_counter("flashlane.cost", unit="USD",
                                         description="What answers cost at the catalog's prices (the tier served).")
        self.rate_limited = meter.create_counter("flashlane.rate_limited", unit="{response}",
                                                 description="429 answers, by quota kind (rpm, tpm, rpd, ...).")
        self.limiter_wait = meter.create_histogram(
            "flashlane.limiter.wait", unit="s", description="Time a request waited in the quota limiter, by quota.",
            explicit_bucket_boundaries_advisory=DURATION_BUCKETS)
        self.rows = meter.create_counter("flashlane.rows", unit="{row}",
                                         description="Rows a run settled, by status (ok, failed).")

    def call(self, model: str, peer_: tuple[str, str, int], *, items: int = 1, max_tokens: int = 0,
             json_output: bool = False, requested_tier: str = "standard", contents: Any = None,
             system: Any = None, stream: bool = False) -> CallSpan:
        return CallSpan(self, model, peer_, items=items, max_tokens=max_tokens, json_output=json_output,
                        requested_tier=requested_tier, contents=contents, system=system, stream=stream)

    def record_usage(self, attrs: dict[str, Any], usage: Usage, cost: float | None) -> None:
        """The token and cost metrics of one answer (a call's, or a batch job's request's)."""
        self.token_usage.record(usage.prompt_tokens, {**attrs, "gen_ai.token.type": "input"})
        self.token_usage.record(usage.billed_output_tokens, {**attrs, "gen_ai.token.type": "output"})
        if cost is not None:
            self.cost.add(cost, attrs)


class CallSpan:
    """One model call: its span (retries and limiter waits as events) and its metrics.

    A generate call holds it as the current span (``with``); a stream does not (its span lives
    across the reader's code between chunks, which must not become its children) and calls
    ``end`` itself."""

    def __init__(self, tel: Telemetry, model: str, peer_: tuple[str, str, int], *, items: int, max_tokens: int,
                 json_output: bool, requested_tier: str, contents: Any, system: Any, stream: bool = False) -> None:
        self.tel = tel
        provider, address, port = peer_
        self.attrs: dict[str, Any] = {"gen_ai.operation.name": OPERATION, "gen_ai.provider.name": provider,
                                      "gen_ai.request.model": model}
        span_attrs: dict[str, Any] = {**self.attrs, "server.address": address, "server.port": port,
                                      "gen_ai.output.type": "json" if json_output else "text",
                                      "flashlane.items": items, "flashlane.service_tier.requested": requested_tier}
        if max_tokens:
            span_attrs["gen_ai.request.max_tokens"] = max_tokens
        if stream:  # streamGenerateContent (opentelemetry-semantic-conventions 0.66b2: GEN_AI_REQUEST_STREAM)
            span_attrs["gen_ai.request.stream"] = True
        self.capture = capture_content()
        if self.capture:
            span_attrs.update(_input_messages(contents, system))
        self.span = tel.tracer.start_span(f"{OPERATION} {model}", kind=otel_trace.SpanKind.CLIENT,
                                          attributes=span_attrs)
        self.attempts = 0
        self.t0 = time.perf_counter()
        self._token: Any = None

    def __enter__(self) -> CallSpan:
        self._token = otel_context.attach(otel_trace.set_span_in_context(self.span))
        return self

    def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        otel_context.detach(self._token)
        self.end(exc)

    def end(self, exc: BaseException | None = None) -> None:
        """The span ends (``exc``: the error that ended the call). A stream its reader stopped
        reading (``GeneratorExit``) ended without an error: nothing failed."""
        self.span.set_attribute("flashlane.attempts", self.attempts)
        attrs = self.attrs
        if exc is not None and not isinstance(exc, GeneratorExit):
            kind = error_type(exc)
            attrs = {**attrs, "error.type": kind}
            self.span.set_attribute("error.type", kind)
            self.span.set_status(otel_trace.StatusCode.ERROR, kind)  # the reason code, never a message
        self.tel.duration.record(time.perf_counter() - self.t0, attrs)
        self.span.end()

    # the guard's hooks ------------------------------------------------------------------

    def attempt(self, waited: Mapping[str, float]) -> None:
        """An attempt is about to be sent, after ``waited`` seconds in the limiter by quota."""
        self.attempts += 1
        for quota, seconds in waited.items():
            self.span.add_event("flashlane.limiter.wait", {"flashlane.quota.kind": quota,
                                                           "flashlane.wait_s": seconds})
            self.tel.limiter_wait.record(seconds, {"gen_ai.request.model": self.attrs["gen_ai.request.model"],
                                                   "flashlane.quota.kind": quota})

    def failed(self, error: FlashlaneError, delay: float | None) -> None:
        """An attempt failed; ``delay``: the wait before the next one (None: no retry)."""
        attrs: dict[str, Any] = {"flashlane.attempt": self.attempts, "error.type": error.reason_code}
        if error.status_code is not None:
            attrs["http.response.status_code"] = error.status_code
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:  # the server's RetryInfo.retryDelay (or Retry-After)
            attrs["flashlane.retry_info.retry_delay_s"] = float(retry_after)
        if isinstance(error, RateLimited):
            attrs["flashlane.quota.kind"] = error.kind
            self.tel.rate_limited.add(1, {"gen_ai.request.model": self.attrs["gen_ai.request.model"],
                                          "flashlane.quota.kind": error.kind})
        if delay is not None:
            attrs["flashlane.retry.wait_s"] = delay
            self.span.add_event("flashlane.retry", attrs)
        else:
            self.span.add_event("flashlane.attempt.failed", attrs)

    # the answer ---------------------------------------------------------------------------

    def answered(self, response: Any, usage: Usage, cost: float | None, tier: str) -> None:
        model_version = getattr(response, "model_version", None)
        self.attrs["flashlane.service_tier"] = tier
        if model_version:
            self.attrs["gen_ai.response.model"] = model_version
        attrs: dict[str, Any] = {
            "gen_ai.usage.input_tokens": usage.prompt_tokens,
            "gen_ai.usage.output_tokens": usage.billed_output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cached_tokens,
            "gen_ai.usage.reasoning.output_tokens": usage.thoughts_tokens,
            "flashlane.service_tier": tier,
        }
        if model_version:
            attrs["gen_ai.response.model"] = model_version
        if (rid := getattr(response, "response_id", None)) is not None:
            attrs["gen_ai.response.id"] = rid
        finish = _finish_reasons(response)
        if finish:
            attrs["gen_ai.response.finish_reasons"] = finish
        if cost is not None:
            attrs["flashlane.cost_usd"] = cost
        if self.capture:
            attrs.update(_output_messages(response))
        self.span.set_attributes(attrs)
        self.tel.record_usage(self.attrs, usage, cost)


class _NoSpan:
    def set(self, attributes: Mapping[str, Any]) -> None:
        pass


class _Span:
    def __init__(self, span: Any) -> None:
        self.span = span

    def set(self, attributes: Mapping[str, Any]) -> None:
        self.span.set_attributes({k: v for k, v in attributes.items() if v is not None})


NO_SPAN = _NoSpan()


@contextmanager
def span(name: str, attributes: Mapping[str, Any] | None = None, *, kind: str = "INTERNAL") -> Iterator[Any]:
    """An internal span (a run, a batch job's create / poll / results, a cache's creation) as the
    current span, or nothing when telemetry is off; ``.set({...})`` adds attributes at the end."""
    tel = current()
    if tel is None:
        yield NO_SPAN
        return
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with tel.tracer.start_as_current_span(name, kind=getattr(otel_trace.SpanKind, kind), attributes=attrs,
                                          record_exception=False, set_status_on_exception=False) as sp:
        try:
            yield _Span(sp)
        except BaseException as e:
            sp.set_attribute("error.type", error_type(e))
            sp.set_status(otel_trace.StatusCode.ERROR, error_type(e))
            raise


def current_span_set(attributes: Mapping[str, Any]) -> None:
    """Attributes on the current span (the gateway's server span), when telemetry is on."""
    if current() is not None:
        otel_trace.get_current_span().set_attributes({k: v for k, v in attributes.items() if v is not None})


# ---------------------------------------------------------------------- content (opt-in only)


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = getattr(content, "parts", None) or []
    return [{"type": "text", "content": p.text} for p in parts if getattr(p, "text", None)]


def _input_messages(contents: Any, system: Any) -> dict[str, str]:
    """gen_ai.input.messages / gen_ai.system_instructions as JSON strings (text parts only)."""
    if isinstance(contents, str):
        messages = [{"role": "user", "parts": [{"type": "text", "content": contents}]}]
    else:
        messages = [{"role": "assistant" if getattr(c, "role", "user") == "model" else "user", "parts": _parts(c)}
                    for c in contents or []]
    out = {"gen_ai.input.messages": json.dumps(messages, ensure_ascii=False)}
    if system is not None:
        text = system if isinstance(system, str) else " ".join(p["content"] for p in _parts(system))
        out["gen_ai.system_instructions"] = json.dumps([{"type": "text", "content": text}], ensure_ascii=False)
    return out


def _output_messages(response: Any) -> dict[str, str]:
    messages = []
    for cand in getattr(response, "candidates", None) or []:
        finish = getattr(cand.finish_reason, "name", None) or str(cand.finish_reason or "")
        messages.append({"role": "assistant", "parts": _parts(cand.content), "finish_reason": finish.lower()})
    return {"gen_ai.output.messages": json.dumps(messages, ensure_ascii=False)}


def _finish_reasons(response: Any) -> list[str]:
    out = []
    for cand in getattr(response, "candidates", None) or []:
        reason = getattr(cand, "finish_reason", None)
        if reason is not None:
            out.append(str(getattr(reason, "name", reason)))
    return out


# ---------------------------------------------------------------------- HTTP servers (the gateway)


class _HeaderGetter:
    """W3C trace context from ASGI headers (a list of (bytes, bytes))."""

    def get(self, carrier: list[tuple[bytes, bytes]], key: str) -> list[str] | None:
        name = key.lower().encode("latin-1")
        found = [v.decode("latin-1") for k, v in carrier if k.lower() == name]
        return found or None

    def keys(self, carrier: list[tuple[bytes, bytes]]) -> list[str]:
        return [k.decode("latin-1") for k, _ in carrier]


_GETTER = _HeaderGetter()


def traced_asgi(app: Any) -> Any:
    """``app`` with a SERVER span per HTTP request that continues the caller's trace
    (``traceparent``), when telemetry is on; a pass-through when it is off. The span holds the
    method, the path (never the query: ``?key=`` carries credentials) and the status."""

    async def traced(scope: dict[str, Any], receive: Any, send: Any) -> None:
        tel = current() if scope.get("type") == "http" else None
        if tel is None:
            await app(scope, receive, send)
            return
        method = scope.get("method", "")
        parent = propagate.extract(scope.get("headers") or [], getter=_GETTER)  # type: ignore[arg-type]
        attrs = {"http.request.method": method, "url.path": scope.get("path", ""),
                 "url.scheme": scope.get("scheme", "http")}
        with tel.tracer.start_as_current_span(method or "HTTP", context=parent, kind=otel_trace.SpanKind.SERVER,
                                              attributes=attrs) as sp:

            async def send_(message: dict[str, Any]) -> None:
                if message.get("type") == "http.response.start":
                    status = int(message.get("status", 0))
                    sp.set_attribute("http.response.status_code", status)
                    if status >= 500:
                        sp.set_attribute("error.type", str(status))
                        sp.set_status(otel_trace.StatusCode.ERROR)
                await send(message)

            await app(scope, receive, send_)

    return traced


@contextmanager
def client_span(method: str, url: str) -> Iterator[Any]:
    """A CLIENT span for one upstream HTTP request (the gateway's forwarding), up to its headers;
    the URL's path only, never its query."""
    tel = current()
    if tel is None:
        yield NO_SPAN
        return
    parts = urllib.parse.urlsplit(url)
    attrs = {"http.request.method": method, "server.address": parts.hostname or "",
             "server.port": parts.port or (443 if parts.scheme == "https" else 80), "url.path": parts.path}
    with tel.tracer.start_as_current_span(method, kind=otel_trace.SpanKind.CLIENT, attributes=attrs,
                                          record_exception=False, set_status_on_exception=False) as sp:
        try:
            yield _Span(sp)
        except BaseException as e:
            sp.set_attribute("error.type", error_type(e))
            sp.set_status(otel_trace.StatusCode.ERROR)
            raise
