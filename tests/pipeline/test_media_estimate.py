"""Cost known before the run (issue 22, deliverable 4): ``flashlane run --dry-run`` (items, pages,
tokens, dollars per tier; nothing sent) within 10 % of what the emulator then bills for the same
run, at two media resolutions; countTokens calibration; ``--budget-usd`` with media; ``--pages``
sending only some pages of each PDF (read back from the bytes the emulator received)."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from pypdf import PdfReader, PdfWriter

import flashlane as fl
from flashlane.media import GEMINI3_RESOLUTION_TOKENS
from tests.conftest import cli
from tests.pipeline.conftest import read_jsonl, run_cli
from tests.pipeline.test_media import INVOICE_SCHEMA, generate_log

TOLERANCE = 0.10  # the bar: the estimate within 10 % of the billed tokens


def _pdf(path: Path, pages: int, width: int) -> None:
    w = PdfWriter()
    for n in range(pages):
        w.add_blank_page(width + n, 792)  # distinct pages, distinct files: no two rows are the same
    w.write(path)


def _mixed_folder(root: Path, n: int = 12) -> Path:
    docs = root / "docs"
    docs.mkdir()
    for i in range(n):
        if i % 2:
            _pdf(docs / f"doc{i:02d}.pdf", 1 + i % 4, 600 + i)
        else:
            Image.new("RGB", (300 + 40 * i, 200 + 10 * i), (i * 20 % 255, 80, 120)).save(docs / f"scan{i:02d}.png")
    (root / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    return docs


def _figure(text: str, label: str) -> int:
    m = re.search(rf"^{label}: ([\d,]+)", text, re.M)
    assert m, text
    return int(m.group(1).replace(",", ""))


@pytest.mark.parametrize("resolution", ["low", "high"])
def test_dry_run_estimate_is_within_ten_percent_of_the_bill(cli_env: Any, tmp_path: Path, resolution: str,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    docs = _mixed_folder(tmp_path)
    out = tmp_path / "out.jsonl"
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out),
            "--media-resolution", resolution)
    code, text, _ = cli(capsys, *args, "--dry-run")
    assert code == 0
    # Nothing was sent (countTokens aside) and nothing written.
    assert generate_log(cli_env) == [] and not out.exists() and not Path(f"{out}.flashlane.db").exists()
    assert [r["method"] for r in cli_env.requests()] == ["countTokens"] * 3
    assert _figure(text, "items") == 12 and "PDF pages: 18" in text  # six PDFs of 2 and 4 pages
    assert "calibrated with countTokens on 3 request(s)" in text
    assert re.search(r"standard \$[\d.]+  flex \$[\d.]+  batch \$[\d.]+", text)
    estimated = _figure(text, "input tokens")
    assert run_cli(*args, "-q") == 0
    billed = sum(r["usage"]["prompt_tokens"] for r in read_jsonl(out))
    assert billed == cli_env.stats()["tokens"]["prompt"]
    assert abs(estimated - billed) <= TOLERANCE * billed, (estimated, billed)
    # The two resolutions differ by the documented counts, not by a rounding: the media dominate.
    per_unit = GEMINI3_RESOLUTION_TOKENS[resolution]
    assert _figure(text, "requests") == 12 and billed > 24 * per_unit  # 6 images + 18 pages


def test_dry_run_of_a_packed_media_run(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = _mixed_folder(tmp_path)
    out = tmp_path / "packed.jsonl"
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(out), "--pack", "4")
    code, text, _ = cli(capsys, *args, "--dry-run")
    assert code == 0 and _figure(text, "requests") == 3
    assert run_cli(*args, "-q") == 0
    assert len(generate_log(cli_env)) == 3
    billed = cli_env.stats()["tokens"]["prompt"]
    assert abs(_figure(text, "input tokens") - billed) <= TOLERANCE * billed


def test_dry_run_counts_repeats_and_cached_rows_as_the_run_will(cli_env: Any, tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    docs = _mixed_folder(tmp_path, 4)
    (docs / "copy.png").write_bytes((docs / "scan00.png").read_bytes())
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(tmp_path / "o.jsonl"))
    code, text, _ = cli(capsys, *args, "--dry-run")
    assert code == 0 and "requests: 4 " in text and "1 repeat an earlier item" in text
    assert run_cli(*args, "-q") == 0
    assert len(generate_log(cli_env)) == 4
    code, text, _ = cli(capsys, *args, "-o", str(tmp_path / "again.jsonl"), "--dry-run")
    assert code == 0 and "requests: 0 " in text and "5 answered before" in text  # the copy hits the cache too


def test_dry_run_budget_and_bad_input(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = _mixed_folder(tmp_path)
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(tmp_path / "o.jsonl"))
    code, text, _ = cli(capsys, *args, "--dry-run", "--budget-usd", "0.005")
    assert code == 0 and "passes --budget-usd 0.005 on standard" in text
    # The run itself honours the budget with media: it stops before passing it.
    code, _, err = cli(capsys, *args, "--budget-usd", "0.005", "-q")
    assert code == 1 and "budget" in err
    done = [r for r in read_jsonl(tmp_path / "o.jsonl") if r["status"] == "ok"]
    assert 0 < len(done) < 12 and sum(r["cost_usd"] for r in done) <= 0.005
    sent = len(generate_log(cli_env))
    code, _, err = cli(capsys, *args, "--dry-run", "--pages", "3-1")
    assert code == 2 and "--pages 3-1" in err
    rows = tmp_path / "rows.csv"
    rows.write_text("id,text\n1,hello\n")
    code, _, err = cli(capsys, "run", "extract", str(rows), "--schema", str(tmp_path / "invoice.json"),
                       "--pages", "1", "--dry-run")
    assert code == 2 and "--media-column" in err
    assert len(generate_log(cli_env)) == sent


def _sent_pdfs(emu: Any) -> list[bytes]:
    out = []
    for entry in generate_log(emu):
        for c in entry["contents"]:
            for p in c.get("parts", []):
                blob = p.get("inlineData") or p.get("inline_data")
                if blob and (blob.get("mimeType") or blob.get("mime_type")) == "application/pdf":
                    raw = blob["data"].translate(str.maketrans("-_", "+/"))
                    out.append(base64.b64decode(raw + "=" * (-len(raw) % 4)))
    return out


def test_pages_sends_only_those_pages(cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    _pdf(docs / "long.pdf", 6, 500)
    _pdf(docs / "short.pdf", 2, 700)
    (tmp_path / "invoice.json").write_text(json.dumps(INVOICE_SCHEMA))
    args = ("run", "extract", str(docs), "--schema", str(tmp_path / "invoice.json"), "-o", str(tmp_path / "o.jsonl"),
            "--pages", "2-3,5")
    code, text, _ = cli(capsys, *args, "--dry-run")
    assert code == 0 and "PDF pages: 4" in text  # 3 of the long one, 1 of the short one (page 2)
    assert run_cli(*args, "-q") == 0
    sent = sorted(_sent_pdfs(cli_env), key=len)
    widths = sorted([[round(float(p.mediabox.width)) for p in PdfReader(io.BytesIO(b)).pages] for b in sent])
    assert widths == [[501, 502, 504], [701]]
    billed = {r["id"]: r["usage"]["prompt_tokens"] for r in read_jsonl(tmp_path / "o.jsonl")}
    assert billed["long.pdf"] - billed["short.pdf"] == 2 * GEMINI3_RESOLUTION_TOKENS["medium"]  # 3 pages vs 1
    # Python: the same through fl.File; a range past the end of the document is refused.
    with fl.Lane(base_url=cli_env.base_url, limits="off") as lane:
        f = fl.File(docs / "long.pdf", pages="6-9")
        assert f.info.pages == 1 and f.page_spec == "6"
        lane.generate(["Read it.", f])
    assert [round(float(p.mediabox.width)) for p in PdfReader(io.BytesIO(_sent_pdfs(cli_env)[-1])).pages] == [505]
    with pytest.raises(fl.InputError, match="selects none"):
        fl.File(docs / "short.pdf", pages="3-4")
