"""flashlane eval's --media-resolution axis (issue 24): rows with images and PDFs run at each
level; the emulator bills each image or PDF page by the level (media.py, the Gemini 3 counts of
docs/documents.md "What a file costs": low 280, high 1120), so the configurations' billed input
tokens and cost differ by exactly those counts, and --write-task keeps the chosen level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from flashlane.models import DEFAULT_MODEL, Usage, cost_of

from .conftest import run_cli, scenario, write_csv
from .test_media import pdf_bytes, png_bytes

LOW, HIGH = 280, 1_120  # tokens per image or PDF page, Gemini 3 (docs/documents.md)


def _files(tmp_path: Path) -> tuple[Path, int]:
    """Two PNGs and two PDFs (1 and 2 pages) beside a labelled CSV naming them relative to it:
    5 images or pages in all."""
    (tmp_path / "scans").mkdir()
    rows = []
    for i, color in enumerate(("white", "black")):
        (tmp_path / "scans" / f"p{i}.png").write_bytes(png_bytes(color=color))
        rows.append({"id": f"p{i}", "scan": f"scans/p{i}.png", "label": "positive"})
    for n in (1, 2):
        (tmp_path / "scans" / f"d{n}.pdf").write_bytes(pdf_bytes(n))
        rows.append({"id": f"d{n}", "scan": f"scans/d{n}.pdf", "label": "negative"})
    return write_csv(tmp_path / "labelled.csv", rows), 5


@pytest.mark.timeout(300)  # the eval loads scikit-learn
def test_media_resolution_axis_bills_each_level_and_is_written_to_the_task(
        cli_env: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario(cli_env.base_url, {"action": {"json": {"reasoning": "scripted", "label": "positive",
                                                    "confidence": 0.9}}})
    path, pages = _files(tmp_path)
    chosen = tmp_path / "chosen.yaml"
    code = run_cli("eval", "classify", str(path), "--truth", "label", "--labels", "positive,negative",
                   "--media-column", "scan", "--media-resolution", "low,high", "--model", DEFAULT_MODEL,
                   "--id-column", "id", "--tolerance", "1", "--eval-dir", str(tmp_path / "ev"),
                   "--write-task", str(chosen), "--json")
    out = capsys.readouterr()
    assert code == 0, out.err
    report = json.loads(out.out)
    low, high = report["configs"]
    assert [low["config"]["media_resolution"], high["config"]["media_resolution"]] == ["low", "high"]
    assert "media-resolution=low" in low["name"]
    # the same 4 rows, the same text: only the files' tokens differ, by (1120 - 280) per image or page
    assert low["requests"] == high["requests"] == 4  # a level is another request: not answered from the cache
    assert high["tokens"]["input"] - low["tokens"]["input"] == (HIGH - LOW) * pages
    # and the cost by exactly those tokens at the model's input price
    extra = cost_of(DEFAULT_MODEL, Usage(prompt_tokens=(HIGH - LOW) * pages))
    assert extra and high["cost_usd"] - low["cost_usd"] == pytest.approx(extra, rel=1e-6)
    # both score the same (2 of 4 right): the tolerance picks the cheaper, low, and the task file keeps it
    assert report["recommended"] == 0
    task = yaml.safe_load(chosen.read_text(encoding="utf-8"))
    assert task["defaults"]["media_resolution"] == "low"
    # the written task file runs as it is, at its level: each file billed at 280 tokens again
    sent = len(cli_env.requests())
    assert run_cli("run", str(chosen), str(path), "--media-column", "scan", "--no-cache",
                   "-o", str(tmp_path / "out.jsonl")) == 0
    levels = {r["generation_config"].get("mediaResolution") for r in cli_env.requests()[sent:]
              if r["method"] == "generateContent"}
    assert levels == {"MEDIA_RESOLUTION_LOW"}


def test_a_bad_media_resolution_is_one_line_before_any_request(cli_env: Any, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = _files(tmp_path)
    sent = cli_env.stats()["requests_total"]
    assert run_cli("eval", "classify", str(path), "--truth", "label", "--labels", "positive,negative",
                   "--media-column", "scan", "--media-resolution", "low,tiny") == 2
    assert "--media-resolution" in capsys.readouterr().err
    assert cli_env.stats()["requests_total"] == sent
