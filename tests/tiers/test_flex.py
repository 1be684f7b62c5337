"""Flex runs: service_tier flex on each request, shed requests retried, the served tier and flex prices recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flashlane.models import Usage, cost_of
from flashlane.store.run import RunStore
from tests.pipeline.conftest import LABELS, read_jsonl, reviews, run_cli, write_csv

MODEL = "gemini-3.1-flash-lite"


def test_flex_run_records_served_tier_and_flex_prices_and_retries_shed_requests(cli_env: Any,
                                                                                tmp_path: Path) -> None:
    cli_env.configure(flex_shed_rate=0.25)
    inp = write_csv(tmp_path / "in.csv", reviews(9))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--tier", "flex",
                   "--no-cache", "-q") == 0
    rows = read_jsonl(out)
    assert len(rows) == 9 and all(r["status"] == "ok" for r in rows)
    stats = cli_env.stats()
    assert stats["by_status"].get("503", 0) >= 2  # shed, then retried to success
    store = RunStore(Path(f"{out}.flashlane.db"), create=False)
    try:
        tiers = [t for (t,) in store.db.execute("SELECT tier FROM request_tiers")]
        pt, ot, tt, cost = store.db.execute("SELECT SUM(prompt_tokens), SUM(output_tokens), SUM(thoughts_tokens), "
                                            "SUM(cost_usd) FROM usage").fetchone()
    finally:
        store.close()
    assert tiers == ["flex"] * 9  # usageMetadata.serviceTier, read from the raw body
    usage = Usage(prompt_tokens=pt, output_tokens=ot + tt)
    assert abs(cost - (cost_of(MODEL, usage, tier="flex") or 0)) < 1e-9
    assert cost < 0.6 * (cost_of(MODEL, usage) or 0)


def test_lane_generate_on_the_flex_tier(emu: Any) -> None:
    from flashlane import Lane

    with Lane(base_url=emu.base_url, limits="off", tier="flex") as ln:
        r = ln.generate("Say hi")
    assert r.service_tier == "flex"
    assert r.cost_usd == cost_of(MODEL, r.usage, tier="flex")
    assert ln.settings.timeout_s >= 15 * 60  # minutes, not 30 s: flex's target is 1-15 min
