"""Packing media (issue 22, deliverable 5): several small images or short documents in one request,
each item's parts after its own ``### id:`` header, answers attributed per item, a bad or missing
item asked again alone, and the emulator answering each packed document from its own bytes. Real
SDK over real HTTP against the emulator (scripted answers through its scenario API)."""

from __future__ import annotations

from typing import Any

import pytest

import flashlane as fl
from flashlane.pipeline.api import map_items
from flashlane.pipeline.items import ItemBuilder
from flashlane.pipeline.job import Job
from flashlane.pipeline.packing import MAX_PACK_FILES
from flashlane.tasks import get_task
from tests.pipeline.conftest import scenario
from tests.pipeline.test_media import Invoice, generate_log, pdf_bytes, png_bytes


def _scans(n: int) -> list[fl.File]:
    return [fl.File(png_bytes(200 + 10 * i, 150, (i * 37 % 255, 90, 140))) for i in range(n)]  # type: ignore[arg-type]


def _pieces(entry: dict[str, Any]) -> list[str]:
    """The request's user turn as a sequence: 'id:X' for a header, 'file' for a media part."""
    out: list[str] = []
    for c in entry["contents"]:
        for p in c.get("parts", []):
            if "inlineData" in p or "inline_data" in p:
                out.append("file")
    headers = [line.removeprefix("### id: ") for line in entry["prompt"].splitlines() if line.startswith("### id: ")]
    return headers + out


def _blobs(entry: dict[str, Any]) -> list[str]:
    return [(p.get("inlineData") or p.get("inline_data"))["data"] for c in entry["contents"]
            for p in c.get("parts", []) if "inlineData" in p or "inline_data" in p]


def test_small_media_pack_with_each_file_after_its_own_header(emu: Any, lane: fl.Lane) -> None:
    files = [*_scans(4), fl.File(pdf_bytes(1)), fl.File(pdf_bytes(2))]
    out = map_items(lane._client, "extract", files, pack=3, schema=Invoice, cache=False)
    assert [r.status for r in out] == ["ok"] * 6
    log = generate_log(emu)
    assert len(log) == 2  # six items, three to a request
    for entry in log:
        assert _pieces(entry) == ["i1", "i2", "i3", "file", "file", "file"]
    # In the request itself each file part follows the text part that opens its item.
    job = Job.create(lane._client, get_task("extract"), {"schema": Invoice})
    builder = ItemBuilder(get_task("extract"))
    call = job.pack_call([builder.build(i, {"text": f}) for i, f in enumerate(files[:3])])
    parts = call.contents[-1].parts or []
    order = ["file" if p.inline_data is not None else p.text.rstrip().splitlines()[-2] for p in parts if
             p.inline_data is not None or "### id:" in (p.text or "")]
    assert order == ["### id: i1", "file", "### id: i2", "file", "### id: i3", "file"]
    # Usage is shared between a request's items; the packed requests bill every file once.
    assert sum(r.usage.prompt_tokens for r in out) <= emu.stats()["tokens"]["prompt"]


def test_a_document_gets_its_own_answer_in_any_pack(emu: Any, lane: fl.Lane) -> None:
    a, b, c, d = _scans(4)
    first = map_items(lane._client, "extract", [a, b, c], pack=3, schema=Invoice, cache=False)
    second = map_items(lane._client, "extract", [d, c, a], pack=3, schema=Invoice, cache=False)
    assert first[0].value == second[2].value and first[2].value == second[1].value
    assert first[0].value != first[1].value


@pytest.mark.parametrize("why", ["missing", "invalid"])
def test_a_bad_packed_media_item_is_asked_again_alone(emu: Any, lane: fl.Lane, why: str) -> None:
    good = {"vendor": "ACME", "total": 12.5}
    second = {"id": "i2", "vendor": "Bolt", "total": "not a number"} if why == "invalid" else None
    answer = [{"id": "i1", **good}, *([second] if second else []), {"id": "i3", "vendor": "Cog", "total": 3.0}]
    scenario(emu.base_url, {"match": {"prompt_contains": "### id: i3"}, "times": 1,
                            "action": {"json": {"results": answer}}})
    files = _scans(3)
    out = map_items(lane._client, "extract", files, pack=3, schema=Invoice, cache=False)
    assert [r.status for r in out] == ["ok"] * 3
    assert out[0].value == Invoice(**good) and out[2].value == Invoice(vendor="Cog", total=3.0)
    log = generate_log(emu)
    assert len(log) == 2 and "### id:" not in log[1]["prompt"]
    assert _pieces(log[1]) == ["file"]  # the second item alone, with its file
    assert _blobs(log[1]) == _blobs(log[0])[1:2]  # the pack's second file


def test_packs_stop_at_the_file_limit(emu: Any, lane: fl.Lane) -> None:
    out = map_items(lane._client, "extract", _scans(MAX_PACK_FILES + 2), pack=25, schema=Invoice, cache=False)
    assert all(r.ok for r in out)
    # The log is in the order answers finished: the two requests are in flight together.
    assert sorted(len([p for p in _pieces(e) if p == "file"]) for e in generate_log(emu)) == [2, MAX_PACK_FILES]
