"""Packing: per-item ids, per-item validation, bad items re-requested alone; auto sizing."""

from __future__ import annotations

from typing import Any

import pytest

from flashlane.call.schema import Schema
from flashlane.models import Quota
from flashlane.pipeline import map_items
from flashlane.pipeline.packing import auto_pack_size, pack_schema, quota_from_limits
from flashlane.tasks import CLASSIFY

from .conftest import LABELS, reviews, scenario

LABEL_LIST = LABEL = LABELS.split(",")


def _entry(i: str, label: str) -> dict[str, Any]:
    return {"id": i, "reasoning": "scripted", "label": label, "confidence": 0.9}


def _texts(n: int) -> list[str]:
    return [r["text"] for r in reviews(n)]


def _singles(emu: Any) -> list[str]:
    return [e["prompt"] for e in emu.requests() if e["prompt"] and "### id:" not in e["prompt"]]


def test_packed_results_follow_ids_not_positions(lane: Any, emu: Any) -> None:
    # The answer lists the items out of order; each must land on its own row.
    scenario(emu.base_url, {"match": {"prompt_contains": "### id: i3"}, "times": 1, "action": {"json": {"results": [
        _entry("i3", "neutral"), _entry("i1", "positive"), _entry("i2", "negative")]}}})
    out = map_items(lane._client, "classify", _texts(3), pack=3, labels=LABEL_LIST, cache=False)
    assert [r.value.label for r in out] == ["positive", "negative", "neutral"]
    assert emu.stats()["requests_total"] == 1
    assert all(r.usage.prompt_tokens > 0 and r.cost_usd > 0 for r in out)


@pytest.mark.parametrize("answer,why", [
    ([_entry("i1", "positive"), _entry("i3", "neutral")], "missing"),
    ([_entry("i1", "positive"), _entry("i2", "bogus"), _entry("i3", "neutral")], "invalid"),
    ([_entry("i1", "positive"), _entry("i1", "negative"), _entry("i3", "neutral")], "duplicated"),
])
def test_bad_item_requeued_alone(lane: Any, emu: Any, answer: list[dict[str, Any]], why: str) -> None:
    scenario(emu.base_url, {"match": {"prompt_contains": "### id: i3"}, "times": 1,
                            "action": {"json": {"results": answer}}})
    texts = _texts(3)
    out = map_items(lane._client, "classify", texts, pack=3, labels=LABEL_LIST, cache=False)
    assert all(r.ok for r in out), [r.error for r in out]
    singles = _singles(emu)
    expected = ["row-0001"] if why != "duplicated" else ["row-0000", "row-0001"]
    assert sorted(m for m in ("row-0000", "row-0001", "row-0002") if any(m in p for p in singles)) == expected
    if why == "duplicated":  # i1 was asked again alone: its answer is the single request's, a valid label
        assert out[0].value.label in LABEL_LIST
    else:  # i1's answer in the pack was good and kept
        assert out[0].value.label == "positive"
    assert out[2].value.label == "neutral"


def test_whole_pack_failure_falls_back_to_singles(lane: Any, emu: Any) -> None:
    scenario(emu.base_url, {"match": {"prompt_contains": "### id:"}, "action": {"malformed_json": True}})
    out = map_items(lane._client, "classify", _texts(4), pack=4, labels=LABEL_LIST, cache=False)
    assert all(r.ok for r in out)
    assert len(_singles(emu)) == 4


def test_auto_pack_on_cli_and_real_ids(lane: Any, emu: Any) -> None:
    out = map_items(lane._client, "classify", _texts(40), pack="auto", labels=LABEL_LIST, cache=False)
    assert all(r.ok for r in out)
    assert emu.stats()["requests_total"] == 4  # no quota known: DEFAULT_AUTO_PACK = 10


def test_free_text_does_not_pack(lane: Any, emu: Any) -> None:
    out = map_items(lane._client, "summarize", _texts(5), pack=5, max_words=10, cache=False)
    assert all(r.ok for r in out)
    assert emu.stats()["requests_total"] == 5


def test_pack_schema_shape() -> None:
    item = CLASSIFY.schema({"labels": LABEL_LIST})
    assert item is not None
    s = pack_schema(item, ["i1", "i2"])
    arr = s["properties"]["results"]
    assert arr["minItems"] == arr["maxItems"] == 2
    assert arr["items"]["properties"]["id"] == {"type": "string", "enum": ["i1", "i2"]}
    assert arr["items"]["required"][0] == "id"
    Schema.of(s)  # a valid JSON Schema


def test_auto_pack_sizing() -> None:
    kw = dict(model="gemini-3.1-flash-lite", thinking=None, shared_input=200, per_item_answer=64,
              output_ceiling=16384)
    free = quota_from_limits("free", "gemini-3.1-flash-lite")
    assert free == Quota(rpm=15, tpm=250_000, rpd=1_000)
    assert auto_pack_size(per_item_input=30, quota=free, **kw).size == 25  # request-bound: pack the most
    assert auto_pack_size(per_item_input=3000, quota=free, **kw).size < 10  # token-bound: less
    assert auto_pack_size(per_item_input=30, quota=None, **kw).size == 10
    big_answers = auto_pack_size(per_item_input=30, quota=free, **{**kw, "per_item_answer": 2000})
    assert big_answers.size < 5  # output-bound


def test_auto_concurrency_follows_the_quota() -> None:
    from flashlane.pipeline.packing import (
        MAX_AUTO_CONCURRENCY,
        MIN_AUTO_CONCURRENCY,
        UNKNOWN_QUOTA_CONCURRENCY,
        auto_concurrency,
    )

    assert auto_concurrency("free", "gemini-3.1-flash-lite") == MIN_AUTO_CONCURRENCY  # 15 RPM: a few suffice
    assert auto_concurrency("tier1", "gemini-3.1-flash-lite") == MAX_AUTO_CONCURRENCY  # 4,000 RPM x 2 s latency
    assert 4 < auto_concurrency("rpm=600", "gemini-3.1-flash-lite") < 64
    assert auto_concurrency("adaptive", "gemini-3.1-flash-lite") == UNKNOWN_QUOTA_CONCURRENCY
