"""Inline documents in the emulator (issue 22, deliverable 7): MIME types and bad data refused with
the live API's 400s (errors.py cites where each wording was seen), and extractions answered from
what the documents say (documents.py), exactly and deterministically. Real google-genai client over
real HTTP; documents made here (fpdf2 for a text layer, Pillow for PNGs)."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from google import genai
from google.genai import errors, types
from PIL import Image
from PIL.PngImagePlugin import PngInfo

from flashlane.emulator import Emulator
from flashlane.emulator.errors import PAYLOAD_LIMIT_BYTES, PAYLOAD_TOO_LARGE_MESSAGE
from tests.conftest import text_pdf

from .conftest import MODEL

SCHEMA = {"type": "object", "properties": {
    "invoice_number": {"type": "string"}, "vendor": {"type": "string"}, "total": {"type": "number"},
    "items": {"type": "integer"}, "paid": {"type": "boolean"}, "currency": {"type": "string", "enum": ["EUR", "USD"]},
    "due": {"type": "string", "format": "date"}},
    "required": ["invoice_number", "vendor", "total", "items", "paid", "currency", "due"]}
LINES = ["Invoice number: INV-2026-0042", "Vendor: ACME Ltd", "Total: 1,234.50", "Items: 3", "Paid: yes",
         "Currency: eur", "Due: 1 March 2026"]


def png(text: str | None = None, color: str = "white") -> bytes:
    info = PngInfo()
    if text is not None:
        info.add_text("Description", text)
    buf = io.BytesIO()
    Image.new("RGB", (200, 100), color).save(buf, "PNG", pnginfo=info)
    return buf.getvalue()


def extract(client: genai.Client, data: bytes, mime: str, schema: dict[str, Any] = SCHEMA) -> Any:
    r = client.models.generate_content(
        model=MODEL, contents=[types.Part.from_bytes(data=data, mime_type=mime), "Extract the invoice."],
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=schema))
    return json.loads(r.text or "")


# ------------------------------------------------------------------ refused as the API refuses


@pytest.mark.parametrize(("mime", "data", "message"), [
    ("png", None, "Unsupported MIME type: png"),
    ("image/jpg", None, "Unsupported MIME type: image/jpg"),  # an alias the API does not take
    ("application/zip", None, "Unsupported MIME type: application/zip"),
    ("application/pdf", b"%PDF-1.4 cut short", "The document has no pages."),
    ("image/png", b"\x89PNG\r\n\x1a\n not really", "Provided image is not valid"),
])
def test_inline_data_the_api_refuses(client: genai.Client, mime: str, data: bytes | None, message: str) -> None:
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(
            model=MODEL, contents=[types.Part.from_bytes(data=data or png(), mime_type=mime), "What is this?"])
    assert e.value.code == 400 and e.value.status == "INVALID_ARGUMENT" and e.value.message == message


def test_media_over_the_request_limit(client: genai.Client) -> None:
    # Inline data travels base64-encoded: a file of 3/4 of the limit already makes the body too large.
    data = png() + b"\0" * (PAYLOAD_LIMIT_BYTES * 3 // 4)
    with pytest.raises(errors.ClientError) as e:
        client.models.generate_content(model=MODEL, contents=[types.Part.from_bytes(data=data, mime_type="image/png")])
    assert e.value.code == 400 and e.value.message == PAYLOAD_TOO_LARGE_MESSAGE


def _post(emu: Emulator, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{emu.base_url}/v1beta/models/{MODEL}:generateContent", method="POST",
                                 headers={"x-goog-api-key": "k", "content-type": "application/json"},
                                 data=json.dumps(body).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_bad_base64_and_the_accepted_alias(emu: Emulator) -> None:
    code, body = _post(emu, {"contents": [{"parts": [{"inlineData": {"mimeType": "image/png", "data": "@@not base64@@"}}]}]})
    assert code == 400 and body["error"]["message"] == (
        "Invalid value at 'contents[0].parts[0].inline_data.data' (TYPE_BYTES), Base64 decoding failed for "
        '"@@not base64@@"')
    # audio/mpeg is the API's other name for MP3: taken, priced as MP3.
    mp3 = base64.b64encode(b"ID3\x03\x00\x00\x00" + b"\0" * 16_000).decode()
    code, body = _post(emu, {"contents": [{"parts": [{"inlineData": {"mimeType": "audio/mpeg", "data": mp3}}]}]})
    assert code == 200, body


# ------------------------------------------------------------------ answers from the document


def test_extraction_from_a_pdf_text_layer_is_exact(client: genai.Client) -> None:
    got = extract(client, text_pdf([LINES[:3], LINES[3:]]), "application/pdf")
    due = got.pop("due")
    assert got == {"invoice_number": "INV-2026-0042", "vendor": "ACME Ltd", "total": 1234.5, "items": 3,
                   "paid": True, "currency": "EUR"}
    # "1 March 2026" is not a date in the schema's format: generated (valid) instead of copied.
    assert isinstance(due, str) and due != "1 March 2026" and len(due) == 10


def test_png_text_chunks_stand_in_for_ocr_and_other_documents_are_seeded(client: genai.Client) -> None:
    got = extract(client, png("\n".join(LINES)), "image/png")
    assert (got["invoice_number"], got["vendor"], got["total"]) == ("INV-2026-0042", "ACME Ltd", 1234.5)
    # No text in the document: every value generated, the same for the same bytes, others for others.
    blank = extract(client, png(), "image/png")
    assert blank == extract(client, png(), "image/png") != extract(client, png(color="blue"), "image/png")
    assert blank["vendor"] != "ACME Ltd"


def test_answers_from_the_users_text_and_packs_untouched(client: genai.Client) -> None:
    r = client.models.generate_content(
        model=MODEL, contents="Vendor: Globex\nTotal: 99",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=SCHEMA))
    got = json.loads(r.text or "")
    assert (got["vendor"], got["total"]) == ("Globex", 99)
    # A packed request (one row per id): the rows are not all given the first item's labels.
    packed = {"type": "object", "properties": {"results": {"type": "array", "minItems": 2, "maxItems": 2, "items": {
        "type": "object", "properties": {"id": {"type": "string", "enum": ["i1", "i2"]}, "vendor": {"type": "string"}},
        "required": ["id", "vendor"]}}}, "required": ["results"]}
    r = client.models.generate_content(
        model=MODEL, contents="### id: i1\nVendor: Globex\n### id: i2\nVendor: Initech",
        config=types.GenerateContentConfig(response_mime_type="application/json", response_json_schema=packed))
    rows = json.loads(r.text or "")["results"]
    assert [row["id"] for row in rows] == ["i1", "i2"] and "Globex" not in {row["vendor"] for row in rows}
