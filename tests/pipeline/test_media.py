"""Documents and media as inputs (issue 22): fl.File and Path wherever an item's text goes, the
emulator pricing inline media as the API documents, and `flashlane run` over folders and file
columns. Real SDK over real HTTP against the emulator; test files generated here (Pillow, pypdf)."""

from __future__ import annotations

import base64
import io
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pydantic import BaseModel
from pypdf import PdfWriter

import flashlane as fl
from flashlane.media import (
    FILES_API_MAX_FILE_BYTES,
    GEMINI3_IMAGE_TOKENS,
    GEMINI3_PDF_PAGE_TOKENS,
    TILE_TOKENS,
)
from flashlane.models import estimate_tokens
from tests.conftest import cli
from tests.pipeline.conftest import read_jsonl, run_cli, write_csv

MODEL = "gemini-3.1-flash-lite"


class Invoice(BaseModel):
    vendor: str
    total: float


INVOICE_SCHEMA = {"type": "object", "properties": {"vendor": {"type": "string"}, "total": {"type": "number"}},
                  "required": ["vendor", "total"]}


def png_bytes(w: int = 300, h: int = 200, color: str = "white") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, "PNG")
    return buf.getvalue()


def pdf_bytes(pages: int) -> bytes:
    w = PdfWriter()
    for _ in range(pages):
        w.add_blank_page(612, 792)
    buf = io.BytesIO()
    w.write(buf)
    return buf.getvalue()


def generate_log(emu: Any) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["method"] == "generateContent"]


# ------------------------------------------------------------------ fl.File: type, size, errors


def test_file_type_comes_from_the_content_not_the_name(tmp_path: Path) -> None:
    disguised = tmp_path / "scan.txt"  # a PNG under a misleading name
    disguised.write_bytes(png_bytes())
    f = fl.File(disguised)
    assert f.mime_type == "image/png" and (f.info.width, f.info.height) == (300, 200)
    pdf = fl.File(pdf_bytes(3))
    assert pdf.mime_type == "application/pdf" and pdf.info.pages == 3
    assert pdf.tokens(MODEL) == 3 * GEMINI3_PDF_PAGE_TOKENS
    assert pdf.tokens("gemini-2.5-flash-lite") == 3 * TILE_TOKENS
    # Before Gemini 3, an image over 384 px is tiled in 768 px tiles of 258 tokens (2 x 1 here).
    assert fl.File(png_bytes(800, 600)).tokens("gemini-2.5-flash-lite") == 2 * TILE_TOKENS
    assert fl.File(png_bytes(800, 600)).tokens(MODEL) == GEMINI3_IMAGE_TOKENS
    assert fl.File(pdf_bytes(1), mime_type="application/pdf").mime_type == "application/pdf"


@pytest.mark.parametrize("make, message", [
    (lambda p: p / "missing.pdf", "does not exist"),
    (lambda p: p, "is a directory"),
    (lambda p: (p / "notes.pdf").write_text("just text, named .pdf") and p / "notes.pdf", "unrecognised type"),
    (lambda p: (p / "empty.png").write_bytes(b"") or p / "empty.png", "is empty"),
    (lambda p: (p / "a.zip").write_bytes(b"PK\x03\x04" + b"\0" * 40) and p / "a.zip", "application/zip"),
    (lambda p: (p / "bad.pdf").write_bytes(b"%PDF-1.4\nnot really a pdf") and p / "bad.pdf", "not a readable PDF"),
])
def test_unusable_files_are_one_line_input_errors(tmp_path: Path, make: Any, message: str) -> None:
    with pytest.raises(fl.InputError) as e:
        fl.File(make(tmp_path))
    assert message in str(e.value) and "\n" not in str(e.value)


def test_a_file_over_the_files_api_limit_is_refused_before_reading(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    with big.open("wb") as f:
        f.write(png_bytes())
        f.truncate(FILES_API_MAX_FILE_BYTES + 1)  # sparse: a valid PNG head, then zeros (never read)
    with pytest.raises(fl.InputError, match="Files API takes files of at most 2 GiB"):
        fl.File(big)


# ------------------------------------------------------------------ one call, tasks, map


def test_extract_from_a_pdf_sends_one_inline_part_and_bills_its_pages(emu: Any, tmp_path: Path) -> None:
    path = tmp_path / "inv.pdf"
    path.write_bytes(pdf_bytes(2))
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        value = lane.extract(fl.File(path), schema=Invoice)
        result = lane.generate(["What is the total?", path])  # a plain Path works too
    assert isinstance(value, Invoice)
    assert len(generate_log(emu)) == 2
    # The second prompt: its text tokens plus 2 pages at the Gemini 3 default (560 each).
    assert result.usage.prompt_tokens == estimate_tokens("What is the total?\n") + 2 * GEMINI3_PDF_PAGE_TOKENS
    assert emu.stats()["tokens"]["prompt"] > 2 * (2 * GEMINI3_PDF_PAGE_TOKENS)


def test_classify_an_image_with_a_caption_and_map_over_media(emu: Any) -> None:
    cat, dog = fl.File(png_bytes(color="black")), fl.File(png_bytes(color="red"))
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        label = lane.classify([cat, "caption: a cat on a mat"], labels=["cat", "dog"])
        results = lane.map("extract", [cat, {"text": dog}, "plain text invoice: ACME 12.50"], schema=Invoice,
                           pack=4)
    assert label.label in ("cat", "dog")
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    # Media items pack with text items (test_media_packing.py): one request for the three, whose
    # prompt holds both images and is shared out between the items.
    assert len(generate_log(emu)) == 1 + 1
    assert sum(r.usage.prompt_tokens for r in results) >= 2 * GEMINI3_IMAGE_TOKENS - 3


def test_answers_depend_on_the_document_bytes(emu: Any) -> None:
    with fl.Lane(base_url=emu.base_url, limits="off") as lane:
        a = lane.extract(fl.File(pdf_bytes(1)), schema=Invoice)
        a2 = lane.extract(fl.File(pdf_bytes(1)), schema=Invoice)
        b = lane.extract(fl.File(png_bytes(color="blue")), schema=Invoice)
    assert a == a2 and a != b


# ------------------------------------------------------------------ the emulator's wire


def _post(emu: Any, method: str, parts: list[dict[str, Any]]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(f"{emu.base_url}/v1beta/models/{MODEL}:{method}", method="POST",
                                 headers={"x-goog-api-key": "k", "content-type": "application/json"},
                                 data=json.dumps({"contents": [{"role": "user", "parts": parts}]}).encode())
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_emulator_counts_and_refuses_inline_data_as_the_api_does(emu: Any) -> None:
    pdf = base64.b64encode(pdf_bytes(4)).decode()
    code, body = _post(emu, "countTokens", [{"text": "abcd"},
                                            {"inlineData": {"mimeType": "application/pdf", "data": pdf}}])
    assert code == 200 and body["totalTokens"] == 1 + 4 * GEMINI3_PDF_PAGE_TOKENS
    code, body = _post(emu, "generateContent", [{"inlineData": {"mimeType": "application/zip", "data": pdf}}])
    assert code == 400 and "Unsupported MIME type: application/zip" in body["error"]["message"]
    code, body = _post(emu, "generateContent", [{"inlineData": {"mimeType": "image/png", "data": "@@not base64@@"}}])
    assert code == 400 and "Base64 decoding failed" in body["error"]["message"]
    bad = base64.b64encode(b"%PDF-1.4 broken").decode()
    code, body = _post(emu, "generateContent", [{"inlineData": {"mimeType": "application/pdf", "data": bad}}])
    assert code == 400 and "no pages" in body["error"]["message"]


# ------------------------------------------------------------------ flashlane run over folders and columns


def _folder(root: Path) -> Path:
    docs = root / "invoices"
    (docs / "2026" / "march").mkdir(parents=True)
    (docs / "a.png").write_bytes(png_bytes())
    (docs / "2026" / "b.pdf").write_bytes(pdf_bytes(2))
    (docs / "2026" / "march" / "c.pdf").write_bytes(pdf_bytes(1))
    (docs / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")  # hidden: skipped
    (root / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    return docs


def test_run_extract_over_a_folder_resumes_and_reports(cli_env: Any, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    docs = _folder(tmp_path)
    out = tmp_path / "out.jsonl"
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out), "-q")
    assert run_cli(*args) == 0
    rows = read_jsonl(out)
    assert [r["id"] for r in rows] == ["2026/b.pdf", "2026/march/c.pdf", "a.png"]
    assert all(r["status"] == "ok" and set(r["result"]) == {"vendor", "total"} for r in rows)
    assert len(generate_log(cli_env)) == 3
    # Each row's prompt: its media at the Gemini 3 defaults plus the same instructions' text.
    text = [r["usage"]["prompt_tokens"] - m for r, m in zip(rows, (2 * GEMINI3_PDF_PAGE_TOKENS,
                                                                    GEMINI3_PDF_PAGE_TOKENS, GEMINI3_IMAGE_TOKENS), strict=True)]
    assert len(set(text)) == 1 and 0 < text[0] < 200
    assert sum(r["usage"]["prompt_tokens"] for r in rows) == cli_env.stats()["tokens"]["prompt"]
    # Rerun: nothing is asked again.
    assert run_cli(*args) == 0
    assert len(generate_log(cli_env)) == 3
    # A changed file: the run refuses to mix answers (its fingerprint holds the files' hashes).
    (docs / "a.png").write_bytes(png_bytes(color="green"))
    code, _, err = cli(capsys, *args)
    assert code == 2 and "other settings" in err
    code, out_text, err = cli(capsys, "report", f"{out}.flashlane.db")
    assert code == 0 and "3" in out_text + err


def test_run_with_glob_and_an_unsupported_file_in_the_folder(cli_env: Any, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    docs = _folder(tmp_path)
    (docs / "readme.docx").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    schema = str(tmp_path / "invoice.json")
    code, _, err = cli(capsys, "run", "extract", str(docs), "--schema", schema, "-o", str(tmp_path / "x.jsonl"))
    assert code == 2 and "readme.docx" in err and "which Gemini does not read" in err
    assert generate_log(cli_env) == []  # refused before anything was sent
    out = tmp_path / "pdfs.jsonl"
    assert run_cli("run", "extract", str(docs), "--glob", "**/*.pdf", "--schema", schema, "-o", str(out), "-q") == 0
    assert [r["id"] for r in read_jsonl(out)] == ["2026/b.pdf", "2026/march/c.pdf"]
    code, _, err = cli(capsys, "run", "extract", str(docs), "--glob", "*.tiff", "--schema", schema,
                       "-o", str(tmp_path / "none.jsonl"))
    assert code == 2 and "no files" in err


def test_run_with_a_media_column_in_csv(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _folder(tmp_path)
    src = write_csv(tmp_path / "scans.csv", [
        {"id": "r1", "scan": "invoices/a.png", "note": "paid"},
        {"id": "r2", "scan": str((tmp_path / "invoices/2026/b.pdf").resolve()), "note": "due"},
    ])
    out = tmp_path / "scans.out.jsonl"
    assert run_cli("run", "extract", str(src), "--media-column", "scan", "--column", "note",
                   "--schema", str(tmp_path / "invoice.json"), "-o", str(out), "-q") == 0
    assert [(r["id"], r["status"]) for r in read_jsonl(out)] == [("r1", "ok"), ("r2", "ok")]
    bad = write_csv(tmp_path / "bad.csv", [{"id": "r1", "scan": "invoices/missing.pdf"}])
    code, _, err = cli(capsys, "run", "extract", str(bad), "--media-column", "scan",
                       "--schema", str(tmp_path / "invoice.json"), "-o", str(tmp_path / "bad.jsonl"))
    assert code == 2 and "does not exist" in err and len(generate_log(cli_env)) == 2
    code, _, err = cli(capsys, "run", "extract", str(bad), "--media-column", "image",
                       "--schema", str(tmp_path / "invoice.json"), "-o", str(tmp_path / "bad2.jsonl"))
    assert code == 2 and "--media-column 'image' is not in the input" in err
