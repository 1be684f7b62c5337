"""Media through the gateway (issue 22, deliverable 8): the official SDK's ``files.upload`` and image
parts (inline and by reference) pass unchanged to the upstream emulator, and are priced by the
shared media rule (media.media_tokens), in the limiter's estimate and in the ledger."""

from __future__ import annotations

import base64
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from google.genai import types
from PIL import Image

from flashlane.emulator import Emulator
from flashlane.gateway import Gateway
from flashlane.gateway.ledger import read_ledger
from flashlane.gateway.wire import estimate_input_tokens
from flashlane.media import GEMINI3_IMAGE_TOKENS, TILE_TOKENS
from flashlane.models import Usage, cost_of, estimate_tokens
from tests.pipeline.test_media_cost import wav_bytes

from .conftest import MODEL, start_gateway
from .test_gateway import client, keep


def _png(w: int, h: int) -> bytes:
    buf = io.BytesIO()
    Image.frombytes("RGB", (w, h), os.urandom(w * h * 3)).save(buf, "PNG")
    return buf.getvalue()


def _sent_parts(emu: Emulator) -> list[dict[str, Any]]:
    return [p for r in emu.requests() if r["method"] == "generateContent" for c in r["contents"]
            for p in c.get("parts") or []]


def test_sdk_upload_and_image_parts_pass_unchanged_and_are_priced(upstream: Emulator, tokens_file: Path,
                                                                  tmp_path: Path) -> None:
    photo = tmp_path / "receipt.png"
    photo.write_bytes(_png(200, 150))
    ledger = tmp_path / "usage.db"
    gateway = start_gateway(upstream, tokens_file, ledger=ledger)
    try:
        prompts = _upload_and_ask(gateway, upstream, photo)
    finally:
        gateway.stop()
    # The ledger prices each answer from its usage, image tokens included.
    (row,) = [r for r in read_ledger(ledger) if r["model"] == MODEL]
    assert row["requests"] == 2 and row["prompt_tokens"] == sum(prompts)
    assert row["cost_usd"] == pytest.approx(cost_of(MODEL, Usage(prompt_tokens=sum(prompts),
                                                                 output_tokens=row["output_tokens"]
                                                                 + row["thoughts_tokens"])), rel=1e-6)


def _upload_and_ask(gateway: Gateway, upstream: Emulator, photo: Path) -> list[int]:
    """Upload ``photo`` and ask about it and about an inline image; the answers' prompt token counts."""
    c = keep(client(gateway))
    f = c.files.upload(file=str(photo))  # the official SDK's resumable upload, streamed through the gateway
    assert f.mime_type == "image/png" and f.size_bytes == photo.stat().st_size
    inline = _png(64, 48)
    r1 = c.models.generate_content(model=MODEL, contents=[types.Part.from_bytes(data=inline, mime_type="image/png"),
                                                          "what is on this receipt?"])
    r2 = c.models.generate_content(model=MODEL, contents=[f, "and on this one?"])
    # Billed as the API documents an image on Gemini 3 (1,120 tokens at the default resolution) plus the text.
    assert r1.usage_metadata.prompt_token_count == GEMINI3_IMAGE_TOKENS + estimate_tokens("what is on this receipt?")
    assert r2.usage_metadata.prompt_token_count == GEMINI3_IMAGE_TOKENS + estimate_tokens("and on this one?")
    # The upstream got the very bytes: the inline part's, and the uploaded file's (by its sha256).
    sent = _sent_parts(upstream)
    blobs = [p.get("inlineData") or p.get("inline_data") for p in sent if p.get("inlineData") or p.get("inline_data")]
    raw = blobs[0]["data"].replace("-", "+").replace("_", "/")
    assert base64.b64decode(raw + "=" * (-len(raw) % 4)) == inline
    refs = [p.get("fileData") or p.get("file_data") for p in sent if p.get("fileData") or p.get("file_data")]
    # The file's uri names the gateway to its clients (issue 25) and the upstream to the upstream.
    assert f.uri is not None and f.uri.startswith(gateway.base_url)
    assert [(r.get("fileUri") or r.get("file_uri")) for r in refs] == [f.uri.replace(gateway.base_url, upstream.base_url)]
    assert base64.b64decode(f.sha256_hash or "").decode() == hashlib.sha256(photo.read_bytes()).hexdigest()
    c.files.delete(name=f.name)
    return [r1.usage_metadata.prompt_token_count, r2.usage_metadata.prompt_token_count]


def test_the_limiters_estimate_prices_media_by_the_shared_rule() -> None:
    png = _png(800, 600)
    body = {"contents": [{"role": "user", "parts": [
        {"inlineData": {"mimeType": "image/png", "data": base64.urlsafe_b64encode(png).decode()}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.invalid/v1beta/files/abc"}},
        {"text": "total?"}]}]}
    # Gemini 3: 1,120 for the image, 560 for one page of the referenced PDF (its page count stays upstream).
    assert estimate_input_tokens(body, MODEL) == GEMINI3_IMAGE_TOKENS + 560 + estimate_tokens("total?")
    # Earlier models: an 800 x 600 image is 2 x 1 tiles of 258.
    assert estimate_input_tokens(body, "gemini-2.5-flash-lite") == 2 * TILE_TOKENS + TILE_TOKENS + \
        estimate_tokens("total?")


def test_the_ledger_prices_audio_at_the_audio_rate(upstream: Emulator, tokens_file: Path, tmp_path: Path) -> None:
    """The emulator bills audio at 32 tokens a second (media.py) and lists them under
    promptTokensDetails AUDIO; the gateway reads that share (call/result.py usage_from_response),
    so its ledger prices it at the model's audio rate ($0.50 / 1M on Gemini 3.1 Flash-Lite, not
    the text's $0.25), unary and streamed alike."""
    ledger = tmp_path / "usage.db"
    gateway = start_gateway(upstream, tokens_file, ledger=ledger)
    try:
        c = keep(client(gateway))
        clip = types.Part.from_bytes(data=wav_bytes(2.0), mime_type="audio/wav")
        r1 = c.models.generate_content(model=MODEL, contents=[clip, "transcribe this"])
        chunks = list(c.models.generate_content_stream(model=MODEL, contents=[clip, "and this, streamed"]))
    finally:
        gateway.stop()
    answers = [r1.usage_metadata, chunks[-1].usage_metadata]
    audio = [sum(d.token_count or 0 for d in u.prompt_tokens_details or [] if d.modality == types.MediaModality.AUDIO)
             for u in answers]
    assert audio == [64, 64]  # 2 s at 32 tokens a second
    usage = [Usage(u.prompt_token_count or 0, (u.candidates_token_count or 0) + (u.thoughts_token_count or 0),
                   audio_tokens=a) for u, a in zip(answers, audio, strict=True)]
    (row,) = [r for r in read_ledger(ledger) if r["model"] == MODEL]
    assert row["requests"] == 2 and row["prompt_tokens"] == sum(u.prompt_tokens for u in usage)
    at_audio_rate = sum(cost_of(MODEL, u) or 0.0 for u in usage)
    at_text_rate = sum(cost_of(MODEL, Usage(u.prompt_tokens, u.output_tokens)) or 0.0 for u in usage)
    assert at_audio_rate > at_text_rate
    assert row["cost_usd"] == pytest.approx(at_audio_rate, rel=1e-6)
