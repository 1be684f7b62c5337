"""The model catalog: current facts (model-facts.md, 2026-11-26 addendum), prices by service
tier, and unknown prices that stay unknown all the way to results, outputs and reports."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

import flashlane as fl
from flashlane.emulator.config import EmulatorConfig
from flashlane.emulator.server import Emulator
from flashlane.models import CATALOG, DEFAULT_MODEL, Usage, cost_of, lookup
from tests.conftest import cli

NEW_MODEL = "gemini-9.9-flash-lite"  # what the API may list after this release: not in the catalog
REVIEWS = "id,text,stars\nr1,Great lamp,5\nr2,Broke in a week,1\nr3,It is fine,3\n"


def test_catalog_facts() -> None:
    assert DEFAULT_MODEL == "gemini-3.1-flash-lite"  # DESIGN.md; model-facts does not say to change it
    lite = CATALOG["gemini-3.5-flash-lite"]
    assert lite.status == "ga" and (lite.input_token_limit, lite.output_token_limit) == (1_048_576, 65_536)
    assert lite.default_thinking_level == "minimal" and lite.prices is not None
    assert (lite.prices.input, lite.prices.output) == (0.30, 2.50)
    assert lite.prices.rates("batch") == lite.prices.rates("flex") == (0.15, 1.25)
    preview = CATALOG["gemini-3.1-flash-lite-preview"]
    assert preview.retired and str(preview.shutdown) == "2026-05-25" and preview.replacement == "gemini-3.1-flash-lite"
    old = CATALOG["gemini-2.5-flash-lite"]
    assert not old.retired and "unconfirmed" in old.note  # reported withdrawn, not confirmed: still served
    for newer in ("gemini-3.5-flash", "gemini-3.6-flash", "gemini-3.7-flash", "gemini-3.8-flash"):
        assert CATALOG[newer].prices is None  # no published price in model-facts.md: unknown, not guessed
    assert "minimal" not in CATALOG["gemini-3.8-flash"].thinking_levels
    assert all(m.source for m in CATALOG.values())


def test_costs_by_tier_and_unknown_prices() -> None:
    usage = Usage(prompt_tokens=1_000_000, output_tokens=1_000_000)
    assert cost_of("gemini-3.5-flash-lite", usage) == pytest.approx(2.80)
    assert cost_of("gemini-3.5-flash-lite", usage, service_tier="flex") == pytest.approx(1.40)
    assert cost_of("gemini-3.5-flash-lite", usage, batch=True) == pytest.approx(1.40)
    assert cost_of("gemini-3.1-flash-lite", usage, service_tier="flex") == pytest.approx(0.875)
    assert cost_of(NEW_MODEL, usage) is None and lookup(NEW_MODEL) is None
    assert cost_of("gemini-3.8-flash", usage) is None
    # 3.5 Flash-Lite's cached-input price is unpublished: a call that used the cache has no known cost
    assert cost_of("gemini-3.5-flash-lite", Usage(prompt_tokens=2_000, cached_tokens=1_500)) is None


@pytest.fixture(scope="module")
def newer_api() -> Iterator[Emulator]:
    """An API that lists a model the catalog does not know."""
    with Emulator(EmulatorConfig(latency_scale=0.0, extra_models=[NEW_MODEL])).running() as emu:
        yield emu


def test_a_model_the_catalog_does_not_know_still_works_with_unknown_cost(newer_api: Emulator) -> None:
    with fl.Lane(base_url=newer_api.base_url, api_key="k", model=NEW_MODEL) as lane:
        r = lane.generate("hi")
        assert r.text and r.usage.prompt_tokens > 0 and r.cost_usd is None
        assert r.as_dict()["cost_usd"] is None
        assert lane.classify("Great lamp", labels=["positive", "negative"]).label in ("positive", "negative")
        assert lane.totals.unpriced_calls == 2 and lane.totals.cost_usd == 0.0
        mapped = lane.map("classify", ["Great", "Bad"], labels=["positive", "negative"])
        assert [m.status for m in mapped] == ["ok", "ok"] and all(m.cost_usd is None for m in mapped)


def test_cli_shows_unknown_costs_and_models_the_catalog_lacks(newer_api: Emulator, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", newer_api.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "k")
    code, out, _ = cli(capsys, "models", "--json")
    rows = {r["id"]: r for r in json.loads(out)}
    assert code == 0 and rows[NEW_MODEL]["in_catalog"] is False and rows[NEW_MODEL]["input_per_1m"] is None
    assert rows["gemini-3.1-flash-lite-preview"]["listed_by_api"] is False
    code, out, _ = cli(capsys, "ask", "hi", "--model", NEW_MODEL, "--json")
    assert code == 0 and json.loads(out)["cost_usd"] is None
    code, out, _ = cli(capsys, "classify", "Great lamp", "--labels", "positive,negative", "--model", NEW_MODEL, "--json")
    assert code == 0 and json.loads(out)["cost_usd"] is None
    src = tmp_path / "reviews.csv"
    src.write_text(REVIEWS)
    out_path = tmp_path / "out.jsonl"
    code, _, err = cli(capsys, "run", "classify", str(src), "--column", "text", "--labels", "positive,negative,neutral",
                       "--model", NEW_MODEL, "-o", str(out_path), "-q")
    rows_out = [json.loads(line) for line in out_path.read_text().splitlines()]
    assert code == 0, err
    assert len(rows_out) == 3 and all(r["status"] == "ok" and r["cost_usd"] is None for r in rows_out)
    code, out, _ = cli(capsys, "report", str(out_path) + ".flashlane.db")
    assert code == 0 and "cost      unknown" in out
    code, out, _ = cli(capsys, "report", str(out_path) + ".flashlane.db", "--json")
    assert json.loads(out)["cost_usd"] is None
    code, _, err = cli(capsys, "run", "classify", str(src), "--column", "text", "--labels", "positive,negative",
                       "--model", NEW_MODEL, "-o", str(tmp_path / "b.jsonl"), "--budget-usd", "1", "-q")
    assert code == 2 and err.startswith("error: the price of gemini-9.9-flash-lite is unknown")
