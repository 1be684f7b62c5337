"""In-process server: fast start on a free port, the latency model, control helpers."""

from __future__ import annotations

import time

from google.genai import types

from flashlane.emulator import Emulator, EmulatorConfig
from flashlane.models import CATALOG

from .conftest import MODEL, make_client


def test_starts_fast_on_free_port_and_stops() -> None:
    t = time.perf_counter()
    emu = Emulator(EmulatorConfig(latency_scale=0)).start()
    try:
        assert time.perf_counter() - t < 0.5
        assert emu.port > 0 and emu.base_url == f"http://127.0.0.1:{emu.port}"
        c = make_client(emu)
        assert c.models.generate_content(model=MODEL, contents="hi").text
        c.close()
    finally:
        emu.stop()


def test_latency_model_scaled() -> None:
    info = CATALOG[MODEL]
    with Emulator(EmulatorConfig(latency_scale=0.1)).running() as emu:
        c = make_client(emu)
        t = time.perf_counter()
        r = c.models.generate_content(
            model=MODEL,
            contents="hi",
            config=types.GenerateContentConfig(
                thinking_config=types.ThinkingConfig(thinking_level="minimal")
            ),
        )
        took = time.perf_counter() - t
        out = r.usage_metadata.candidates_token_count + r.usage_metadata.thoughts_token_count
        expected = (info.ttft_s + out / info.output_tokens_per_s) * 0.1
        assert expected <= took < expected + 0.5
        t = time.perf_counter()
        arrivals = []
        for _ in c.models.generate_content_stream(
            model=MODEL, contents="a long question about the sea and ships"
        ):
            arrivals.append(time.perf_counter() - t)
        assert arrivals[0] >= info.ttft_s * 0.1 and arrivals[-1] > arrivals[0]
        c.close()


def test_request_log_and_stats(gemini_emulator: Emulator) -> None:
    c = make_client(gemini_emulator)
    for p in ("row one", "row two"):
        c.models.generate_content(model=MODEL, contents=p)
    log = gemini_emulator.requests()
    assert [e["prompt"] for e in log] == ["row one", "row two"]
    assert {"ts", "method", "model", "project", "status", "prompt"} <= set(log[0])
    assert not any("key" in k.lower() for k in log[0]["headers"])
    s = gemini_emulator.stats()
    assert (
        s["requests_total"] == 2 and s["by_method"] == {"generateContent": 2} and s["by_status"] == {"200": 2}
    )
    assert s["tokens"]["prompt"] == 4
    gemini_emulator.reset()
    assert gemini_emulator.stats()["requests_total"] == 0 and gemini_emulator.requests() == []
    c.close()
