"""What media cost (issue 22, deliverable 4): media_resolution per call, per run, per task and (Gemini 3)
per file, read back from what the emulator received; the token counts per level billed by the
emulator as the client estimates them; audio priced at its own rate; media tokens in the too-large
check. Real SDK over real HTTP against the emulator; files generated here."""

from __future__ import annotations

import io
import json
import wave
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import flashlane as fl
from flashlane.media import AUDIO_TOKENS_PER_SECOND, EARLIER_RESOLUTION_TOKENS, GEMINI3_RESOLUTION_TOKENS
from flashlane.models import Usage, cost_of, estimate_tokens, lookup
from flashlane.pipeline.items import ItemBuilder
from flashlane.pipeline.job import Job
from flashlane.tasks import get_task
from tests.pipeline.conftest import read_jsonl, run_cli
from tests.pipeline.test_media import INVOICE_SCHEMA, MODEL, Invoice, generate_log, pdf_bytes, png_bytes

LOW, MEDIUM, HIGH = (GEMINI3_RESOLUTION_TOKENS[k] for k in ("low", "medium", "high"))


def wav_bytes(seconds: float, rate: int = 8000) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(b"\0\0" * int(seconds * rate))
    return buf.getvalue()


def _media_parts(entry: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for c in entry["contents"] for p in c.get("parts", []) if "inlineData" in p or "inline_data" in p]


def _levels(entry: dict[str, Any]) -> list[str | None]:
    """Each media part's own mediaResolution level as it went on the wire."""
    return [(p.get("mediaResolution") or p.get("media_resolution") or {}).get("level") for p in _media_parts(entry)]


def _request_level(entry: dict[str, Any]) -> str | None:
    gc = entry["generation_config"]
    return gc.get("mediaResolution", gc.get("media_resolution"))


def test_media_resolution_per_call_and_per_file_on_the_wire_and_billed_as_estimated(emu: Any) -> None:
    text = "What is the total?"
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        plain = lane.generate([text, fl.File(png_bytes()), fl.File(pdf_bytes(2))])
        call = lane._client.build([text, fl.File(png_bytes(), media_resolution="low"), fl.File(pdf_bytes(2))],
                                  media_resolution="high")
        mixed = lane.generate([text, fl.File(png_bytes(), media_resolution="low"), fl.File(pdf_bytes(2))],
                              media_resolution="high")
    first, second = generate_log(emu)
    # Unset: nothing on the wire, the Gemini 3 defaults (an image at HIGH, a PDF page at MEDIUM).
    assert _request_level(first) is None and _levels(first) == [None, None]
    assert plain.usage.prompt_tokens == estimate_tokens(text + "\n") + HIGH + 2 * MEDIUM
    # The call's level in generationConfig; the file's own on its part, which wins for that part.
    assert _request_level(second) == "MEDIA_RESOLUTION_HIGH"
    assert _levels(second) == ["MEDIA_RESOLUTION_LOW", None]
    assert mixed.usage.prompt_tokens == plain.usage.prompt_tokens - HIGH + LOW - 2 * MEDIUM + 2 * HIGH
    assert mixed.usage.prompt_tokens == call.est_tokens  # the estimate is the bill


def test_a_file_level_on_a_model_without_per_part_levels_is_refused_before_sending(emu: Any) -> None:
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        with pytest.raises(fl.ConfigError, match="Gemini 3 feature"):
            lane.generate(["x", fl.File(png_bytes(), media_resolution="low")], model="gemini-2.5-flash-lite")
        with pytest.raises(fl.ConfigError, match="media_resolution must be one of"):
            lane.generate(["x", fl.File(png_bytes())], media_resolution="tiny")
        with pytest.raises(fl.InputError, match="media_resolution must be one of"):
            fl.File(png_bytes(), media_resolution="ultra")
        # Per request it works on earlier models too: LOW and MEDIUM are a fixed count per image.
        low = lane.generate(["x", fl.File(png_bytes(800, 800))], model="gemini-2.5-flash-lite", media_resolution="low")
    assert low.usage.prompt_tokens == estimate_tokens("x\n") + EARLIER_RESOLUTION_TOKENS["low"]
    assert len(generate_log(emu)) == 1


def test_the_same_bytes_at_two_file_levels_are_two_items(emu: Any) -> None:
    data = png_bytes()
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        results = lane.map("extract", [fl.File(data, media_resolution="low"), fl.File(data, media_resolution="high"),
                                       fl.File(data, media_resolution="low")], schema=Invoice)
    assert [r.status for r in results] == ["ok"] * 3
    assert sorted(_levels(e)[0] for e in generate_log(emu)) == ["MEDIA_RESOLUTION_HIGH", "MEDIA_RESOLUTION_LOW"]


def test_map_and_extract_take_a_media_resolution(emu: Any) -> None:
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        lane.extract(fl.File(pdf_bytes(1)), schema=Invoice, media_resolution="low")
        results = lane.map("extract", [fl.File(png_bytes(color="red")), fl.File(pdf_bytes(3))], schema=Invoice,
                           media_resolution="medium")
    log = generate_log(emu)
    assert [_request_level(e) for e in log] == ["MEDIA_RESOLUTION_LOW", "MEDIA_RESOLUTION_MEDIUM",
                                                "MEDIA_RESOLUTION_MEDIUM"]
    media = sorted(r.usage.prompt_tokens for r in results)
    assert media[1] - media[0] == 3 * MEDIUM - MEDIUM  # three pages vs one image, both at MEDIUM


def _folder(root: Path) -> Path:
    docs = root / "docs"
    docs.mkdir()
    (docs / "a.png").write_bytes(png_bytes())
    (docs / "b.pdf").write_bytes(pdf_bytes(2))
    (root / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    return docs


def test_run_media_resolution_per_run_and_per_task(cli_env: Any, tmp_path: Path) -> None:
    docs = _folder(tmp_path)
    out = tmp_path / "low.jsonl"
    assert run_cli("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out),
                   "--media-resolution", "low", "-q") == 0
    log = generate_log(cli_env)
    assert [_request_level(e) for e in log] == ["MEDIA_RESOLUTION_LOW"] * 2
    rows = {r["id"]: r["usage"]["prompt_tokens"] for r in read_jsonl(out)}
    assert rows["b.pdf"] - rows["a.png"] == 2 * LOW - LOW
    # A task file's default: its runs send it without a flag; the flag still wins.
    task = tmp_path / "invoice_task.toml"
    task.write_text('name = "scan"\ninstructions = "Read the scan."\ntemplate = "{text}"\n'
                    '[defaults]\nmedia_resolution = "medium"\n'
                    '[output]\ntype = "object"\nrequired = ["total"]\n[output.properties.total]\ntype = "number"\n')
    assert run_cli("run", str(task), str(docs), "-o", str(tmp_path / "task.jsonl"), "-q") == 0
    assert [_request_level(e) for e in generate_log(cli_env)[2:]] == ["MEDIA_RESOLUTION_MEDIUM"] * 2
    assert run_cli("run", str(task), str(docs), "-o", str(tmp_path / "task_high.jsonl"),
                   "--media-resolution", "high", "-q") == 0
    assert [_request_level(e) for e in generate_log(cli_env)[4:]] == ["MEDIA_RESOLUTION_HIGH"] * 2
    assert run_cli("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out),
                   "--media-resolution", "huge", "-q") == 2


def test_audio_is_priced_at_its_own_rate(emu: Any) -> None:
    seconds = 10
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        call = lane._client.build(["Transcribe.", fl.File(wav_bytes(seconds))])
        result = lane.generate(["Transcribe.", fl.File(wav_bytes(seconds))])
    audio = seconds * AUDIO_TOKENS_PER_SECOND
    # The estimate a budget reserves with prices the audio as the bill does.
    assert call.est_audio_tokens == audio and call.est_tokens == result.usage.prompt_tokens
    assert cost_of(MODEL, call.worst_usage()) > cost_of(MODEL, replace(call.worst_usage(), audio_tokens=0))  # type: ignore[operator]
    assert result.usage.audio_tokens == audio
    prices = lookup(MODEL).prices  # type: ignore[union-attr]
    assert prices is not None and prices.audio_input == 2 * prices.input  # $0.50 vs $0.25 (model-facts 1)
    as_text = cost_of(MODEL, replace(result.usage, audio_tokens=0))
    assert as_text is not None and result.cost_usd is not None
    assert result.cost_usd == pytest.approx(as_text + audio * (prices.audio_input - prices.input) / 1e6)
    # On the batch tier: its own audio rate; a model with no separate audio price: the text rate.
    batch = cost_of(MODEL, result.usage, service_tier="batch")
    assert batch == pytest.approx(result.cost_usd / 2)
    assert cost_of("gemini-3.5-flash-lite", Usage(100, 10, audio_tokens=100)) == \
        cost_of("gemini-3.5-flash-lite", Usage(100, 10))
    # A model whose audio price is known but not on this tier: unknown, never guessed.
    assert cost_of("gemini-3-flash-preview", Usage(100, 10, audio_tokens=50), service_tier="batch") is None


def test_too_large_counts_the_files_tokens(emu: Any) -> None:
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        job = Job.create(lane._client, get_task("extract"), {"schema": Invoice})
        builder = ItemBuilder(get_task("extract"))  # holds the row's file while its item is used
        item = builder.build(0, {"text": fl.File(pdf_bytes(4))})
        limit = job.shared_tokens + 4 * MEDIUM - 1  # the text of the row alone is far below it
        small = replace(job, _in_limit=limit)
        assert estimate_tokens(item.rendered) + job.shared_tokens < limit
        assert small.too_large(item) and not replace(job, _in_limit=limit + 100).too_large(item)
        assert job.item_tokens(item).pages == 4
        low = Job.create(lane._client, get_task("extract"), {"schema": Invoice, "media_resolution": "low"})
        assert not replace(low, _in_limit=limit).too_large(item)
