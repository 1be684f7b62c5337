"""Per-call overhead of Lane.generate over a bare google-genai generate_content call, with
telemetry off (no OpenTelemetry SDK configured: the default) and on (an SDK tracer provider with
a batch span processor and a meter provider, exporting to a sink that drops what it gets, so the
figure is the cost of recording, not of a network).

Same emulator process (latency 0), same request shape (minimal thinking, an output cap),
sequential calls, the clients interleaved in rounds so drift hits them equally.
Goal: Lane / bare <= 1.10 with telemetry off.

    python bench/overhead.py [--calls 400]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))

from _emu import emulator_process, table
from google import genai
from google.genai import types

import flashlane as fl
from flashlane import telemetry

PROMPT = "Classify the sentiment of: Fast shipping, great quality."


def sdk_providers() -> tuple[object, object] | None:
    """An SDK tracer and meter provider whose exports go nowhere; None without the SDK."""
    try:
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.metrics.export import InMemoryMetricReader
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
    except ImportError:
        return None

    class Sink(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

    tp = TracerProvider()
    tp.add_span_processor(BatchSpanProcessor(Sink()))
    return tp, MeterProvider(metric_readers=[InMemoryMetricReader()])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=40)
    args = ap.parse_args()
    with emulator_process("--latency-scale", "0") as url:
        bare = genai.Client(api_key="bench", http_options=types.HttpOptions(base_url=url, timeout=30_000))
        cfg = types.GenerateContentConfig(max_output_tokens=2048,
                                          thinking_config=types.ThinkingConfig(thinking_level="MINIMAL"))  # type: ignore[arg-type]
        lane = fl.Lane(base_url=url, api_key="bench", cache=False)

        def run_bare() -> None:
            bare.models.generate_content(model="gemini-3.1-flash-lite", contents=PROMPT, config=cfg)

        def run_lane() -> None:
            lane.generate(PROMPT)

        providers = sdk_providers()

        for _ in range(20):  # warm the connection pools
            run_bare()
            run_lane()
        per = args.calls // args.rounds
        t_bare: list[float] = []
        t_lane: list[float] = []
        t_otel: list[float] = []
        # (call, where its times go, the providers flashlane records into: None = telemetry off)
        clients = [(run_bare, t_bare, None), (run_lane, t_lane, None)] + (
            [(run_lane, t_otel, providers)] if providers else [])
        for r in range(args.rounds):
            for fn, sink, prov in (clients[r % len(clients):] + clients[:r % len(clients)]):  # rotate who goes first
                telemetry.use(*prov) if prov else telemetry.use()
                t0 = time.perf_counter()
                for _ in range(per):
                    fn()
                sink.append((time.perf_counter() - t0) / per)
        telemetry.use()
        lane.close()
    b, lane_t = statistics.median(t_bare), statistics.median(t_lane)
    rows = [
        ["google-genai generate_content (baseline)", per * args.rounds, f"{b * 1000:.3f}", "1.00"],
        ["flashlane Lane.generate, telemetry off (no SDK)", per * args.rounds, f"{lane_t * 1000:.3f}",
         f"{lane_t / b:.3f}"],
    ]
    if t_otel:
        otel_t = statistics.median(t_otel)
        rows.append(["flashlane Lane.generate, telemetry on (SDK)", per * args.rounds, f"{otel_t * 1000:.3f}",
                     f"{otel_t / b:.3f}"])
    print(table(["client", "calls", "median ms/call", "ratio vs bare"], rows))
    print(f"\nLane adds {(lane_t - b) * 1000:.3f} ms per call with telemetry off (goal: ratio <= 1.10)")
    if t_otel:
        print(f"telemetry on / off: {otel_t / lane_t:.3f} ({(otel_t - lane_t) * 1000:.3f} ms per call for a span "
              "and its metrics)")
    else:
        print("telemetry on: not measured (pip install opentelemetry-sdk)")


if __name__ == "__main__":
    main()
