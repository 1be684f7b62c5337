"""map_items and map_frame: the pipeline from Python."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import polars as pl
from pydantic import BaseModel

from flashlane import Classification
from flashlane.pipeline import amap_items, map_frame, map_items
from flashlane.tasks import Translation

from .conftest import LABELS, reviews, scenario

LABEL_LIST = LABELS.split(",")


class Contact(BaseModel):
    name: str
    city: str


def test_map_items_in_order_with_values(lane: Any, emu: Any) -> None:
    texts = [r["text"] for r in reviews(7)]
    out = map_items(lane._client, "classify", texts, pack=3, labels=LABEL_LIST, cache=False)
    assert [r.index for r in out] == list(range(7))
    assert all(r.ok and isinstance(r.value, Classification) for r in out)
    assert out.outcome.status == "done"
    assert emu.stats()["requests_total"] == 3


def test_map_items_failures_are_results_not_raises(lane: Any, emu: Any) -> None:
    scenario(emu.base_url, {"match": {"prompt_contains": "row-0001"}, "action": {"block": "PROHIBITED_CONTENT"}})
    out = map_items(lane._client, "classify", [r["text"] for r in reviews(3)], labels=LABEL_LIST, cache=False)
    assert [r.status for r in out] == ["ok", "failed", "ok"]
    assert out[1].reason == "safety" and out[1].value is None and "blocked" in (out[1].error or "")


def test_map_items_extract_with_pydantic_and_translate(lane: Any) -> None:
    out = map_items(lane._client, "extract", ["Ann lives in Paris", "Bo lives in Oslo"], pack=2, schema=Contact,
                    cache=False)
    assert all(isinstance(r.value, Contact) for r in out)
    tr = map_items(lane._client, "translate", ["hello", "goodbye"], pack="auto", to="fr", cache=False)
    assert all(isinstance(r.value, Translation) and r.value.text for r in tr)


def test_map_items_inside_an_event_loop(lane: Any) -> None:
    async def inner() -> Any:
        direct = await amap_items(lane._client, "classify", ["a b", "c d"], labels=LABEL_LIST, cache=False)
        nested = map_items(lane._client, "classify", ["e f"], labels=LABEL_LIST, cache=False)  # runs on its own loop
        return direct, nested

    direct, nested = asyncio.run(inner())
    assert all(r.ok for r in [*direct, *nested])


def test_map_frame_pandas(lane: Any) -> None:
    df = pd.DataFrame(reviews(5)).rename(columns={"text": "review"})
    out = map_frame(lane._client, "classify", df, column="review", labels=LABEL_LIST, pack=5)
    assert isinstance(out, pd.DataFrame) and len(out) == 5
    assert list(out.columns[:2]) == ["id", "review"]
    assert {"label", "confidence", "reasoning", "status", "error", "cost_usd"} <= set(out.columns)
    assert set(out["label"]) <= set(LABEL_LIST) and (out["status"] == "ok").all()
    assert "label" not in df.columns  # the input frame is untouched


def test_map_frame_polars(lane: Any) -> None:
    df = pl.DataFrame([{**r, "status": "shipped"} for r in reviews(4)])
    out = map_frame(lane._client, "classify", df, column="text", labels=LABEL_LIST)
    assert isinstance(out, pl.DataFrame) and out.height == 4
    assert out["status"].to_list() == ["shipped"] * 4  # the input's own column is kept...
    assert out["status_result"].to_list() == ["ok"] * 4  # ...and the clashing result column gets the suffix
    assert set(out["label"].to_list()) <= set(LABEL_LIST)



def test_lane_map_reads_results_from_its_database_not_from_memory(lane: Any, emu: Any) -> None:
    texts = (f"review {i}: {'great' if i % 2 else 'awful'}" for i in range(12))  # a generator, never listed
    out = lane.map("classify", texts, pack=4, labels=LABEL_LIST, cache=False)
    assert len(out) == 12 and out.outcome.values == {}  # nothing held: each value is read back when asked for
    assert isinstance(out[0].value, Classification) and isinstance(out[-1].value, Classification)
    assert [r.index for r in out[2:5]] == [2, 3, 4] and out[-1].index == 11
    assert [r.value for r in out] == [r.value for r in out]  # the same answers on every read
    out.close()
