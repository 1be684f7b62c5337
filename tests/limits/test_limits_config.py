from __future__ import annotations

import pytest

from flashlane.errors import ConfigError
from flashlane.limits import Limits, make_limiter
from flashlane.models import get_model


def test_tier_presets_come_from_the_catalog() -> None:
    q = get_model("gemini-3.1-flash-lite").quotas["free"]
    lim = Limits.from_tier("free", "gemini-3.1-flash-lite")
    assert (lim.rpm, lim.tpm, lim.rpd) == (q.rpm, q.tpm, q.rpd)
    assert not lim.adaptive
    for tier in ("tier1", "tier2", "tier3"):
        assert Limits.parse(tier).rpm == get_model("gemini-3.1-flash-lite").quotas[tier].rpm


@pytest.mark.parametrize(("spec", "expected"), [
    ("rpm=15,tpm=250000,rpd=1000", (15, 250_000, 1000, 60.0, False)),
    ("free,window=6", (15, 250_000, 1000, 6.0, False)),
    ("free,rpm=5", (5, 250_000, 1000, 60.0, False)),
    ("adaptive", (0, 0, 0, 60.0, True)),
    ("", (0, 0, 0, 60.0, True)),
    (None, (0, 0, 0, 60.0, True)),
    ("window=6", (0, 0, 0, 6.0, True)),
    ("adaptive,rpm=100", (100, 0, 0, 60.0, True)),
    ("off", (0, 0, 0, 60.0, False)),
    (" RPM = 10 ; window = 2 ", (10, 0, 0, 2.0, False)),
])
def test_parse(spec: str | None, expected: tuple[int, int, int, float, bool]) -> None:
    lim = Limits.parse(spec)
    assert (lim.rpm, lim.tpm, lim.rpd, lim.window_s, lim.adaptive) == expected


@pytest.mark.parametrize("spec", ["tier9", "rpm=abc", "qps=3", "rpm=-1", "window=0"])
def test_parse_errors_name_the_fix(spec: str) -> None:
    with pytest.raises(ConfigError):
        Limits.parse(spec)


def test_unknown_model_for_a_tier() -> None:
    with pytest.raises(ConfigError, match="no free quota"):
        Limits.from_tier("free", "not-a-model")


def test_describe() -> None:
    assert "adaptive" in make_limiter(None).describe()
    assert "RPM 15" in make_limiter("free").describe() and "free preset" in make_limiter("free").describe()
    assert "per 6 s" in make_limiter("rpm=3,window=6").describe()
    assert make_limiter("off").describe().startswith("off")
    assert "backend memory" in make_limiter("off").describe()


def test_make_limiter_backends(tmp_path) -> None:  # type: ignore[no-untyped-def]
    lim = make_limiter("free", "sqlite", path=tmp_path / "x" / "l.db")
    assert "backend sqlite" in lim.describe()
    lim.close()
    with pytest.raises(ConfigError):
        make_limiter("free", "etcd")


def test_sqlite_default_path_is_in_the_state_dir(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from flashlane.limits.sqlite import default_path

    monkeypatch.setenv("FLASHLANE_STATE_DIR", str(tmp_path))
    assert default_path() == tmp_path / "limits.sqlite3"
    monkeypatch.delenv("FLASHLANE_STATE_DIR")
    assert "flashlane" in str(default_path())
