"""OpenTelemetry spans and metrics (issue 27, docs/telemetry.md), read back with the SDK's own
in-memory exporters: real SDK calls over real HTTP to the emulator, a real ``flashlane run``,
a real gateway. ``telemetry.use`` hands flashlane the test's providers, so nothing global is set
and the other tests keep telemetry off."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import types
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flashlane import Lane, ServiceUnavailable, telemetry
from flashlane.clock import TestClock
from flashlane.pipeline.report import load_report
from tests.conftest import run_cli, scenario
from tests.gateway.conftest import MODEL, TOKEN, UPSTREAM_KEY, start_gateway, tokens_file, upstream  # noqa: F401
from tests.pipeline.conftest import AIOHTTP_SUBCLASS_WARNING, LABELS, reviews, write_csv

pytestmark = pytest.mark.filterwarnings(AIOHTTP_SUBCLASS_WARNING)

RETRY_DELAY_S = 0.3  # the scripted 429s' RetryInfo: the limiter's gate stays closed this long


class Otel:
    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.reader])

    def spans(self, prefix: str = "") -> list[ReadableSpan]:
        return [s for s in self.exporter.get_finished_spans() if s.name.startswith(prefix)]

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        out = []
        for rm in data.resource_metrics if data else []:
            for sm in rm.scope_metrics:
                for m in sm.metrics:
                    if m.name == name:
                        out.extend(m.data.data_points)
        return out

    def total(self, name: str, **attrs: Any) -> float:
        """The sum of a counter's or a histogram's points whose attributes include ``attrs``."""
        pts = [p for p in self.points(name) if all(p.attributes.get(k) == v for k, v in attrs.items())]
        return sum(getattr(p, "sum", None) if hasattr(p, "bucket_counts") else p.value for p in pts)

    def dump(self) -> str:
        """Everything recorded, as text: what a collector would receive."""
        spans = "\n".join(s.to_json() for s in self.exporter.get_finished_spans())
        data = self.reader.get_metrics_data()
        return spans + "\n" + (data.to_json() if data else "")


@pytest.fixture
def otel() -> Iterator[Otel]:
    o = Otel()
    telemetry.use(o.tracer_provider, o.meter_provider)
    try:
        yield o
    finally:
        telemetry.use()
        o.tracer_provider.shutdown()
        o.meter_provider.shutdown()


def test_off_without_an_sdk() -> None:
    """No provider set (the API's proxies): the hooks get None and record nothing."""
    assert telemetry.current() is None


def test_packed_run_spans_events_and_metrics_match_the_report(tmp_path: Path, gemini_emulator: Any, otel: Otel,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    # The first two requests get a per-minute 429 with RetryInfo (the limiter then closes its gate
    # for everyone that long); 4 requests per 1-second window make the rest wait for the window.
    scenario(gemini_emulator.base_url, {"times": 2, "action": {"error": 429, "quota": "rpm",
                                                               "retry_delay": RETRY_DELAY_S}})
    src = write_csv(tmp_path / "r.csv", reviews(50))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", "classify", str(src), "--labels", LABELS, "-q", "--column", "text", "-o", str(out),
                   "--pack", "5", "--concurrency", "4", "--no-cache", "--limits", "rpm=4,window=1") == 0
    report = load_report(f"{out}.flashlane.db")
    assert report["items"]["ok"] == 50 and report["rate_limited"] == 2 and report["packed_requests"] == 10

    (run,) = otel.spans("flashlane.run")
    calls = otel.spans("generate_content ")
    assert len(calls) == report["requests"] == 10
    for c in calls:  # children of the run span, in its trace, across the engine's asyncio tasks
        assert c.parent is not None and c.parent.span_id == run.context.span_id
        assert c.context.trace_id == run.context.trace_id
        a = c.attributes
        assert a["gen_ai.operation.name"] == "generate_content" and a["gen_ai.provider.name"] == "gcp.gemini"
        assert a["gen_ai.request.model"] == report["model"] and a["gen_ai.response.model"]
        assert a["flashlane.items"] == 5 and a["flashlane.service_tier"] == "standard"
        assert a["gen_ai.usage.input_tokens"] > 0 and a["gen_ai.usage.output_tokens"] > 0
        assert a["server.address"] == "127.0.0.1"
    tok = report["tokens"]
    assert sum(c.attributes["gen_ai.usage.input_tokens"] for c in calls) == tok["input"]
    assert sum(c.attributes["gen_ai.usage.output_tokens"] for c in calls) == tok["output"] + tok["thinking"]
    assert sum(c.attributes["gen_ai.usage.reasoning.output_tokens"] for c in calls) == tok["thinking"]
    assert sum(c.attributes["gen_ai.usage.cache_read.input_tokens"] for c in calls) == tok["cached"]
    assert sum(c.attributes["flashlane.cost_usd"] for c in calls) == pytest.approx(report["cost_usd"])
    assert sum(c.attributes["flashlane.attempts"] for c in calls) == report["api_calls"] == 12

    retries = [e for c in calls for e in c.events if e.name == "flashlane.retry"]
    assert len(retries) == 2
    for e in retries:
        assert e.attributes["http.response.status_code"] == 429 and e.attributes["error.type"] == "rate_limited"
        assert e.attributes["flashlane.quota.kind"] == "rpm"
        assert e.attributes["flashlane.retry_info.retry_delay_s"] == pytest.approx(RETRY_DELAY_S)
        assert e.attributes["flashlane.retry.wait_s"] >= RETRY_DELAY_S
    waits = [e for c in calls for e in c.events if e.name == "flashlane.limiter.wait"]
    assert waits and {e.attributes["flashlane.quota.kind"] for e in waits} <= {"rpm", "backoff"}
    assert all(0 < e.attributes["flashlane.wait_s"] <= 2 for e in waits)
    assert sum(e.attributes["flashlane.wait_s"] for e in waits if e.attributes["flashlane.quota.kind"] == "rpm") > 0.5

    ra = run.attributes
    assert ra["flashlane.items.ok"] == 50 and ra["flashlane.items.failed"] == 0
    assert ra["flashlane.cost_usd"] == pytest.approx(report["cost_usd"]) and ra["flashlane.requests"] == 10

    # The metrics add up to the report.
    assert otel.total("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}) == tok["input"]
    assert otel.total("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == tok["output"] + tok["thinking"]
    assert otel.total("flashlane.cost") == pytest.approx(report["cost_usd"])
    assert otel.total("flashlane.rate_limited", **{"flashlane.quota.kind": "rpm"}) == report["rate_limited"]
    assert otel.total("flashlane.rows", **{"flashlane.row.status": "ok"}) == report["items"]["ok"]
    assert sum(p.count for p in otel.points("gen_ai.client.operation.duration")) == report["requests"]
    assert sum(p.count for p in otel.points("flashlane.limiter.wait")) == len(waits)
    assert otel.total("flashlane.limiter.wait") == pytest.approx(sum(e.attributes["flashlane.wait_s"] for e in waits))


CANARY_KEY = "AIzaSy-canary-key-0000111122223333"
PROMPT = "Say something about the canary-prompt-7f3e marker."


def test_no_content_or_key_unless_capture_is_on(gemini_emulator: Any, otel: Otel,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(telemetry.CAPTURE_CONTENT_ENV, raising=False)
    with Lane(base_url=gemini_emulator.base_url, api_key=CANARY_KEY, cache=False, limits="off") as lane:
        answer = lane.generate(PROMPT).text
        assert len(answer) > 8
        recorded = otel.dump()
        assert otel.spans("generate_content ") and "gen_ai.client.token.usage" in recorded
        for secret in (CANARY_KEY, "canary-prompt-7f3e", answer):
            assert secret not in recorded
        # Opted in, the conventions' content attributes hold them (and still never the key).
        monkeypatch.setenv(telemetry.CAPTURE_CONTENT_ENV, "SPAN_ONLY")
        answer = lane.generate(PROMPT).text
    span = otel.spans("generate_content ")[-1]
    assert "canary-prompt-7f3e" in span.attributes["gen_ai.input.messages"]
    assert json.loads(span.attributes["gen_ai.output.messages"])[0]["parts"][0]["content"] == answer
    assert CANARY_KEY not in otel.dump()


def test_gateway_spans_continue_the_callers_trace(upstream: Any, tokens_file: Path, otel: Otel) -> None:  # noqa: F811
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    gw = start_gateway(upstream, tokens_file)
    try:
        client = genai.Client(api_key=TOKEN, http_options=types.HttpOptions(
            base_url=gw.base_url, headers={"traceparent": f"00-{trace_id}-{parent_id}-01"}))
        resp = client.models.generate_content(model=MODEL, contents=PROMPT)
        assert resp.text
    finally:
        gw.stop()
    (server,) = [s for s in otel.spans("POST") if s.kind.name == "SERVER"]
    assert format(server.context.trace_id, "032x") == trace_id
    assert server.parent is not None and format(server.parent.span_id, "016x") == parent_id
    a = server.attributes
    assert a["http.response.status_code"] == 200 and a["flashlane.project"] == "team-a"
    assert a["gen_ai.usage.input_tokens"] > 0 and a["url.path"].endswith(":generateContent")
    (up,) = [s for s in otel.spans("POST") if s.kind.name == "CLIENT"]
    assert up.parent is not None and up.parent.span_id == server.context.span_id
    assert up.context.trace_id == server.context.trace_id and up.attributes["http.response.status_code"] == 200
    recorded = otel.dump()
    for secret in (TOKEN, UPSTREAM_KEY, "canary-prompt-7f3e"):
        assert secret not in recorded


class OtlpReceiver:
    """A stand-in OpenTelemetry Collector: OTLP/HTTP protobuf on /v1/traces and /v1/metrics."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.bodies: dict[str, list[bytes]] = {"/v1/traces": [], "/v1/metrics": []}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.bodies.setdefault(self.path, []).append(body)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_otel_env_variables_export_over_otlp_http(gemini_emulator: Any) -> None:
    """``flashlane ask`` with only the standard OTEL_* variables set: spans and metrics reach a
    collector over OTLP/HTTP (the CLI builds the SDK's providers from them), without the key."""
    import os
    import subprocess
    import sys

    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    rx = OtlpReceiver()
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLASHLANE_", "GEMINI_", "GOOGLE_", "OTEL_"))}
        env.update({"GOOGLE_GEMINI_BASE_URL": gemini_emulator.base_url, "GEMINI_API_KEY": CANARY_KEY,
                    "FLASHLANE_LIMITS": "off", "OTEL_EXPORTER_OTLP_ENDPOINT": rx.url,
                    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf", "OTEL_SERVICE_NAME": "reviews-job"})
        done = subprocess.run([sys.executable, "-m", "flashlane", "ask", PROMPT], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    finally:
        rx.close()
    spans = []
    for body in rx.bodies["/v1/traces"]:
        req = ExportTraceServiceRequest.FromString(body)
        for rs in req.resource_spans:
            assert {a.key: a.value.string_value for a in rs.resource.attributes}["service.name"] == "reviews-job"
            spans += [s for ss in rs.scope_spans for s in ss.spans]
    (call,) = spans
    attrs = {a.key: a.value for a in call.attributes}
    assert call.name.startswith("generate_content ") and attrs["gen_ai.provider.name"].string_value == "gcp.gemini"
    assert attrs["gen_ai.usage.input_tokens"].int_value > 0
    metrics = {m.name for body in rx.bodies["/v1/metrics"]
               for rm in ExportMetricsServiceRequest.FromString(body).resource_metrics
               for sm in rm.scope_metrics for m in sm.metrics}
    assert {"gen_ai.client.token.usage", "gen_ai.client.operation.duration", "flashlane.cost"} <= metrics
    raw = b"".join(rx.bodies["/v1/traces"] + rx.bodies["/v1/metrics"])
    assert CANARY_KEY.encode() not in raw and b"canary-prompt-7f3e" not in raw and done.stdout.strip().encode() not in raw


def test_batch_run_spans_and_metrics(tmp_path: Path, gemini_emulator: Any, otel: Otel,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """A batch run: the job's create, poll and results spans under the run span; its answers'
    tokens and cost in the same metrics, adding up to the report."""
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    src = write_csv(tmp_path / "r.csv", reviews(12))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", "classify", str(src), "--labels", LABELS, "-q", "--column", "text", "-o", str(out),
                   "--service-tier", "batch", "--pack", "3", "--no-cache") == 0
    report = load_report(f"{out}.flashlane.db")
    (run,) = otel.spans("flashlane.run")
    (create,) = otel.spans("flashlane.batch.create")
    (results,) = otel.spans("flashlane.batch.results")
    assert otel.spans("flashlane.batch.poll")
    for s in (create, results, *otel.spans("flashlane.batch.poll")):
        assert s.parent is not None and s.parent.span_id == run.context.span_id
    assert create.attributes["flashlane.requests"] == 4 and create.attributes["flashlane.items"] == 12
    assert results.attributes["flashlane.batch.answered"] == 4 and results.attributes["flashlane.batch.state"] == "SUCCEEDED"
    assert run.attributes["flashlane.items.ok"] == 12 and run.attributes["flashlane.service_tier"] == "batch"
    tok = report["tokens"]
    assert otel.total("gen_ai.client.token.usage", **{"gen_ai.token.type": "input"}) == tok["input"]
    assert otel.total("flashlane.cost", **{"flashlane.service_tier": "batch"}) == pytest.approx(report["cost_usd"])


def test_context_cache_creation_span(tmp_path: Path, gemini_emulator: Any, otel: Otel,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.pipeline.test_context_cache import write_task

    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    monkeypatch.setenv("FLASHLANE_LIMITS", "off")
    src = write_csv(tmp_path / "r.csv", reviews(2))
    assert run_cli("run", str(write_task(tmp_path)), str(src), "--column", "text", "-o", str(tmp_path / "o.jsonl"),
                   "-q", "--no-cache", "--cache-prefix", "on") == 0
    (made,) = otel.spans("flashlane.cache.create")  # made as the run opens, before the run's span
    assert made.attributes["flashlane.cache.tokens"] > 4000 and made.attributes["gen_ai.provider.name"] == "gcp.gemini"
    calls = otel.spans("generate_content ")
    assert len(calls) == 2 and all(c.attributes["gen_ai.usage.cache_read.input_tokens"] > 4000 for c in calls)


STREAM_PROMPT = "Write a paragraph about the canary-stream-5c1d sea."


def test_a_stream_has_one_call_span_with_its_usage_cost_and_retries(gemini_emulator: Any, otel: Otel,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """``lane.stream``: one ``generate_content`` span like a generate call's, marked as streamed, its
    retry an event, its tokens and cost those of the result; no prompt or answer text (capture off)."""
    monkeypatch.delenv(telemetry.CAPTURE_CONTENT_ENV, raising=False)
    scenario(gemini_emulator.base_url, {"match": {}, "action": {"error": 503}, "times": 1})
    with Lane(base_url=gemini_emulator.base_url, api_key=CANARY_KEY, cache=False, limits="off",
              clock=TestClock()) as lane:
        s = lane.stream(STREAM_PROMPT)
        chunks = list(s)
    assert len(chunks) > 1 and s.result is not None
    (span,) = otel.spans("generate_content ")
    a, usage = span.attributes, s.result.usage
    assert span.name.startswith("generate_content gemini") and span.kind.name == "CLIENT"
    assert a["gen_ai.operation.name"] == "generate_content" and a["gen_ai.request.stream"] is True
    assert a["gen_ai.provider.name"] == "gcp.gemini" and a["gen_ai.response.model"]
    assert a["gen_ai.usage.input_tokens"] == usage.prompt_tokens > 0
    assert a["gen_ai.usage.output_tokens"] == usage.billed_output_tokens > 0
    assert a["gen_ai.usage.reasoning.output_tokens"] == usage.thoughts_tokens
    assert a["gen_ai.response.finish_reasons"] == ("STOP",)
    assert a["flashlane.cost_usd"] == pytest.approx(s.result.cost_usd) and s.result.cost_usd
    assert a["flashlane.attempts"] == 2 and "error.type" not in a and span.status.is_ok
    (retry,) = [e for e in span.events if e.name == "flashlane.retry"]
    assert retry.attributes["http.response.status_code"] == 503
    assert otel.total("gen_ai.client.token.usage", **{"gen_ai.token.type": "output"}) == usage.billed_output_tokens
    assert otel.total("flashlane.cost") == pytest.approx(s.result.cost_usd)
    recorded = otel.dump()
    for secret in (CANARY_KEY, "canary-stream-5c1d", chunks[0].strip(), s.result.text):
        assert secret not in recorded


def test_an_async_stream_span_ends_when_its_reader_stops_or_it_fails(gemini_emulator: Any, otel: Otel) -> None:
    """``lane.astream`` read to its end, closed after its first chunk (the span ends, not as an
    error), and failing (the span ends with the error's reason code)."""

    async def go(lane: Lane) -> tuple[list[str], Any]:
        s = lane.astream(STREAM_PROMPT)
        chunks = [c async for c in s]
        stopped = aiter(lane.astream(STREAM_PROMPT))
        await anext(stopped)
        await stopped.aclose()  # type: ignore[attr-defined]
        return chunks, s.result

    with Lane(base_url=gemini_emulator.base_url, cache=False, limits="off", clock=TestClock(),
              max_attempts=2) as lane:
        chunks, result = asyncio.run(go(lane))
        done, stopped = otel.spans("generate_content ")
        assert done.attributes["gen_ai.usage.output_tokens"] == result.usage.billed_output_tokens > 0
        assert done.attributes["flashlane.cost_usd"] == pytest.approx(result.cost_usd)
        assert stopped.attributes["gen_ai.request.stream"] is True and stopped.status.is_ok
        assert "error.type" not in stopped.attributes and "gen_ai.usage.output_tokens" not in stopped.attributes

        scenario(gemini_emulator.base_url, {"match": {}, "action": {"error": 503}})
        with pytest.raises(ServiceUnavailable):
            list(lane.stream(STREAM_PROMPT))
    failed = otel.spans("generate_content ")[-1]
    assert failed.attributes["error.type"] == "unavailable" and not failed.status.is_ok
    assert failed.attributes["flashlane.attempts"] == 2
    assert [e.name for e in failed.events] == ["flashlane.retry", "flashlane.attempt.failed"]
    assert sum(p.count for p in otel.points("gen_ai.client.operation.duration")) == 3
