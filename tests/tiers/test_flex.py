"""Flex runs: service_tier flex on each request, shed requests retried, the served tier and flex prices recorded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from flashlane.models import Usage, cost_of
from flashlane.pipeline.report import load_report
from flashlane.store.run import RunStore
from tests.pipeline.conftest import LABELS, read_jsonl, reviews, run_cli, write_csv

MODEL = "gemini-3.1-flash-lite"


def test_flex_run_records_served_tier_and_flex_prices_and_retries_shed_requests(cli_env: Any,
                                                                                tmp_path: Path) -> None:
    cli_env.configure(flex_shed_rate=0.25)
    inp = write_csv(tmp_path / "in.csv", reviews(9))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--service-tier", "flex",
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
    assert abs(cost - (cost_of(MODEL, usage, service_tier="flex") or 0)) < 1e-9
    assert cost < 0.6 * (cost_of(MODEL, usage) or 0)


def test_lane_generate_on_the_flex_tier(emu: Any) -> None:
    from flashlane import Lane

    with Lane(base_url=emu.base_url, limits="off", service_tier="flex") as ln:
        r = ln.generate("Say hi")
    assert r.service_tier == "flex"
    assert r.cost_usd == cost_of(MODEL, r.usage, service_tier="flex")
    assert ln.settings.timeout_s >= 15 * 60  # minutes, not 30 s: flex's target is 1-15 min


def test_the_old_tier_spellings_still_work_and_name_the_new_one(cli_env: Any, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """``tier`` was renamed ``service_tier`` (it also meant the quota tier), ``cache_ttl_s``
    ``context_cache_ttl_s``: the flag, the environment variable, the config key and the Python
    keywords still work and say the new name."""
    from flashlane import Lane, config

    monkeypatch.setattr(config, "_noted", set())  # each stderr note shows once per process
    inp = write_csv(tmp_path / "in.csv", reviews(3))
    out = tmp_path / "out.jsonl"
    assert run_cli("run", "classify", str(inp), "--labels", LABELS, "-o", str(out), "--tier", "flex",
                   "--no-cache", "-q") == 0
    assert "--tier is deprecated; use --service-tier" in capsys.readouterr().err
    assert load_report(f"{out}.flashlane.db")["requests_by_tier"] == {"flex": 3}

    monkeypatch.setenv("FLASHLANE_TIER", "flex")
    assert config.load_settings().service_tier == "flex"
    assert "FLASHLANE_TIER is deprecated; use FLASHLANE_SERVICE_TIER" in capsys.readouterr().err
    monkeypatch.delenv("FLASHLANE_TIER")

    (tmp_path / "flashlane.toml").write_text('tier = "batch"\ncache_ttl_s = 60\n')
    monkeypatch.chdir(tmp_path)
    s = config.load_settings()
    assert (s.service_tier, s.context_cache_ttl_s) == ("batch", 60.0)
    assert "'tier' key in" in (err := capsys.readouterr().err) and "use 'service_tier'" in err
    assert "use 'context_cache_ttl_s'" in err
    (tmp_path / "flashlane.toml").write_text('tiers = "batch"\n')
    with pytest.raises(config.ConfigError, match="unknown setting 'tiers'"):  # unknown keys stay errors
        config.load_settings()
    (tmp_path / "flashlane.toml").unlink()

    with pytest.warns(DeprecationWarning, match="use service_tier="):
        ln = Lane(base_url=cli_env.base_url, limits="off", tier="flex")
    with ln, pytest.warns(DeprecationWarning, match="use Settings.service_tier"):
        assert ln.settings.tier == ln.settings.service_tier == "flex"
    with Lane(base_url=cli_env.base_url, limits="off") as ln, \
            pytest.warns(DeprecationWarning, match="use service_tier="):
        res = ln.map("classify", ["great", "awful"], labels=LABELS.split(","), tier="flex", cache=False)
    assert [r.status for r in res] == ["ok", "ok"] and res.report["requests_by_tier"] == {"flex": 2}


def test_priority_calls_are_paced_under_their_own_share_of_the_quota(emu: Any, tmp_path: Path) -> None:
    """With the quota known (10 a minute), priority calls go at 3 a minute (its own limits, 0.3x),
    none refused, while a standard call sharing the limiter is not held back by them."""
    from flashlane import Lane
    from flashlane.emulator.clock import FollowingClock

    emu.configure(rpm=10, window_seconds=60)
    clock = FollowingClock(emu)
    shared = dict(base_url=emu.base_url, limits="rpm=10", clock=clock, limiter="sqlite",
                  limiter_path=str(tmp_path / "limits.sqlite3"))
    with Lane(service_tier="priority", **shared) as priority, Lane(**shared) as standard:
        start = clock.time()
        sent = []
        for _ in range(7):
            assert priority.generate("hi").service_tier == "priority"
            sent.append(clock.time() - start)
        assert [int(t // 60) for t in sent] == [0, 0, 0, 1, 1, 1, 2]  # 3, 3, then the seventh
        before = clock.time()
        assert standard.generate("hi").text and clock.time() - before < 1  # standard's quota is its own: no wait
    assert emu.stats()["by_status"].get("429", 0) == 0
