"""Provenance (issue 22, deliverable 6): where each extracted value was found in its source,
checked locally. The matching on its own; then lane.extract, lane.map and `flashlane run` (JSONL,
CSV, Parquet) against the emulator, with answers scripted so the tests know which values the
source holds; PDF pages from a text layer made with fpdf2."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
from pydantic import BaseModel

import flashlane as fl
from flashlane.tasks.provenance import locate
from tests.conftest import cli, text_pdf
from tests.pipeline.conftest import read_jsonl, run_cli, scenario, write_csv

TEXT = "Invoice INV-0042\nVendor:  ACME   Ltd.\nDate: 1 March 2026\nTotal due: $1,234.50\nQty 2 at 12,50 EUR"


class Invoice(BaseModel):
    number: str
    vendor: str
    total: float
    date: str | None = None


INVOICE_SCHEMA = {"type": "object", "properties": {
    "number": {"type": "string"}, "vendor": {"type": "string"}, "total": {"type": "number"},
    "date": {"type": ["string", "null"]}}, "required": ["number", "vendor", "total", "date"]}


def pdf_with_text(path: Path, pages: list[list[str]]) -> Path:
    path.write_bytes(text_pdf(pages))
    return path


# ------------------------------------------------------------------ the matching


def test_found_values_carry_offsets_into_the_text() -> None:
    prov = locate({"number": "INV-0042", "vendor": "acme ltd", "total": 1234.5, "qty": 2, "price": 12.5}, {"text": TEXT})
    got = {k: (v.status, v.start, v.end, v.quote) for k, v in prov.items()}
    assert got == {
        "number": ("found", 8, 16, "INV-0042"),  # as written
        "vendor": ("found", 26, 36, "ACME   Ltd"),  # case and whitespace normalised; the value's period ignored
        "total": ("found", 69, 77, "1,234.50"),  # a number, with thousands separator
        "qty": ("found", 82, 83, "2"),
        "price": ("found", 87, 92, "12,50"),  # decimal comma
    }
    for v in prov.values():
        assert TEXT[v.start:v.end] == v.quote
    assert prov.unverified == []
    # An ISO date is found as the source writes it (day or month first, or the month's name).
    dates = locate({"a": "2026-03-01", "b": "2026-01-03", "c": "2026-12-25", "d": "2026-03-02"},
                   {"text": "Date: 1 March 2026", "due": "due 03/01/2026", "sent": "sent Dec 25th, 2026"})
    assert [(v.status, v.quote, v.source) for v in dates.values()] == [
        ("found", "1 March 2026", "text"), ("found", "03/01/2026", "due"), ("found", "Dec 25th, 2026", "sent"),
        ("not_found", None, None)]
    # A hyphen is not a minus sign; a minus sign is.
    hyphens = locate({"year": 2026, "last": 3, "balance": -5}, {"text": "INV-2026-0042, pages 1-3, balance -5"})
    assert [(v.status, v.quote) for v in hyphens.values()] == [("found", "2026"), ("found", "3"), ("found", "-5")]


def test_values_the_source_does_not_hold_are_flagged() -> None:
    prov = locate({"date": "2026-03-02", "total": 1234.0, "vendor": "ACME Inc", "lines": [{"sku": "X-1"}],
                   "paid": True, "note": None, "memo": ""}, {"text": TEXT})
    assert {k: v.status for k, v in prov.items()} == {
        "date": "not_found", "total": "not_found", "vendor": "not_found", "lines[0].sku": "not_found",
        "paid": "unchecked", "note": "empty", "memo": "empty"}
    assert prov.unverified == ["date", "total", "vendor", "lines[0].sku"]
    # Not inside another word or number: 12 is not in "2012", 12.5 not in "112.5".
    assert locate({"a": "12", "b": 12.5}, {"text": "in 2012, 112.5 left"}).unverified == ["a", "b"]
    # Unicode: NFKC, case folded, typographic dashes as ASCII.
    got = locate({"a": "ÉCOLE – Paris"}, {"text": "the école - paris branch"})["a"]
    assert (got.status, got.quote) == ("found", "école - paris")


def test_several_fields_say_which_and_round_trip_as_json() -> None:
    prov = locate({"t": "Hello", "b": "world"}, {"title": "Hello there", "body": "big world"})
    assert prov.as_dict() == {"t": {"status": "found", "start": 0, "end": 5, "quote": "Hello", "source": "title"},
                              "b": {"status": "found", "start": 4, "end": 9, "quote": "world", "source": "body"}}
    assert fl.Provenance.from_dict(json.loads(json.dumps(prov.as_dict()))).as_dict() == prov.as_dict()


def test_pdf_values_carry_their_page_checked_against_that_page(tmp_path: Path) -> None:
    pdf = pdf_with_text(tmp_path / "inv.pdf", [["Invoice number: INV-7", "Vendor: ACME Ltd"],
                                               ["Total: 1,234.50", "Thank you"]])
    f = fl.File(pdf)
    prov = locate({"number": "INV-7", "vendor": "ACME Ltd", "total": 1234.5, "iban": "DE00"}, {"text": str(f)})
    got = {k: (v.status, v.page, v.quote) for k, v in prov.items()}
    assert got == {"number": ("found", 1, "INV-7"), "vendor": ("found", 1, "ACME Ltd"),
                   "total": ("found", 2, "1,234.50"), "iban": ("not_found", None, None)}
    from pypdf import PdfReader

    page2 = PdfReader(pdf).pages[1].extract_text()
    assert page2[prov["total"].start:prov["total"].end] == "1,234.50"
    # An image has no text to check against: its values are unchecked, not flagged.
    from tests.pipeline.test_media import png_bytes

    img = fl.File(png_bytes())
    assert {v.status for v in locate({"vendor": "ACME"}, {"text": str(img)}).values()} == {"unchecked"}


# ------------------------------------------------------------------ through the API and the run store


def _script(emu: Any, answer: dict[str, Any]) -> None:
    scenario(emu.base_url, {"action": {"json": answer}})


def test_lane_extract_and_map_return_provenance(lane: fl.Lane, emu: Any) -> None:
    _script(emu, {"number": "INV-0042", "vendor": "ACME Ltd", "total": 1234.5, "date": "2026-03-02"})
    p0 = emu.stats()["tokens"]["prompt"]
    plain = lane.extract(TEXT, schema=Invoice)
    assert isinstance(plain, Invoice)  # off by default: the value alone
    p1 = emu.stats()["tokens"]["prompt"]
    got = lane.extract(TEXT, schema=Invoice, provenance=True)
    assert isinstance(got, fl.Extraction) and got.value == plain
    assert got.provenance["vendor"].quote == "ACME   Ltd" and got.unverified == ["date"]
    # It costs nothing: the same request as without it.
    assert emu.stats()["tokens"]["prompt"] - p1 == p1 - p0 > 0
    results = lane.map("extract", [TEXT, "nothing here"], schema=Invoice, provenance=True)
    assert [r.provenance.unverified if r.provenance else None for r in results] == [
        ["date"], ["number", "vendor", "total", "date"]]
    assert results[0].value == plain
    rec = next(iter(results.records()))
    assert rec["unverified"] == ["date"] and rec["provenance"]["number"]["start"] == 8
    assert lane.map("extract", [TEXT], schema=Invoice)[0].provenance is None
    import pandas as pd

    frame = lane.map_frame("extract", pd.DataFrame({"text": [TEXT]}), schema=Invoice, provenance=True)
    assert json.loads(frame["unverified"][0]) == ["date"]
    assert json.loads(frame["provenance"][0])["total"]["quote"] == "1,234.50"


@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet"])
def test_run_writes_provenance_columns(cli_env: Any, tmp_path: Path, suffix: str) -> None:
    _script(cli_env, {"number": "INV-0042", "vendor": "ACME Ltd", "total": 1234.5, "date": "2026-03-02"})
    (tmp_path / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    src = write_csv(tmp_path / "in.csv", [{"id": "a", "body": TEXT}])
    out = tmp_path / f"out{suffix}"
    args = ("run", "extract", str(src), "--column", "body", "--schema", str(tmp_path / "invoice.json"),
            "-o", str(out), "-q", "--provenance")
    assert run_cli(*args) == 0
    if suffix == ".jsonl":
        row = read_jsonl(out)[0]
        prov, unverified = row["provenance"], row["unverified"]
    elif suffix == ".csv":
        with open(out, newline="", encoding="utf-8") as f:
            row = next(csv.DictReader(f))
        prov, unverified = json.loads(row["provenance"]), json.loads(row["unverified"])
    else:
        row = pq.read_table(out).to_pylist()[0]
        prov, unverified = json.loads(row["provenance"]), json.loads(row["unverified"])
    assert (row["result"] if suffix == ".jsonl" else row)["vendor"] == "ACME Ltd"
    assert prov["total"] == {"status": "found", "start": 69, "end": 77, "quote": "1,234.50"}
    assert unverified == ["date"]


def test_run_over_pdfs_gives_pages_and_resumes_with_provenance_turned_on(cli_env: Any, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    pdf_with_text(docs / "a.pdf", [["Invoice number: INV-0042"], ["Vendor: ACME Ltd", "Total: 1,234.50"]])
    (tmp_path / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    _script(cli_env, {"number": "INV-0042", "vendor": "ACME Ltd", "total": 1234.5, "date": None})
    out = tmp_path / "out.jsonl"
    base = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out), "-q")
    assert run_cli(*base) == 0
    assert "provenance" not in read_jsonl(out)[0]
    sent = cli_env.stats()["by_method"]["generateContent"]
    # The same run with --provenance resumes (nothing is asked again) ...
    assert run_cli(*base, "--provenance") == 0
    assert cli_env.stats()["by_method"]["generateContent"] == sent == 1
    # ... and a new output with it is answered from the response cache, with provenance, for free.
    out2 = tmp_path / "out2.jsonl"
    assert run_cli(*base[:-3], "-o", str(out2), "-q", "--provenance") == 0
    row = read_jsonl(out2)[0]
    assert row["cached"] is True and row["cost_usd"] == 0
    assert {k: (v["status"], v.get("page")) for k, v in row["provenance"].items()} == {
        "number": ("found", 1), "vendor": ("found", 2), "total": ("found", 2), "date": ("empty", None)}
    assert row["unverified"] == []


def test_one_shot_extract_prints_provenance(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _script(cli_env, {"number": "INV-0042", "vendor": "ACME Ltd", "total": 1234.5, "date": "2026-03-02"})
    (tmp_path / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    code, out, _ = cli(capsys, "extract", TEXT, "--schema", str(tmp_path / "invoice.json"), "--provenance", "--json")
    assert code == 0
    got = json.loads(out)
    assert got["result"]["number"] == "INV-0042" and got["unverified"] == ["date"]
    assert got["provenance"]["number"] == {"status": "found", "start": 8, "end": 16, "quote": "INV-0042"}
    assert got["usage"]["prompt_tokens"] > 0
