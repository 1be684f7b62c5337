"""Context caching through the real google-genai SDK: cachedContents CRUD, use, expiry, errors,
implicit hits, and the counters a run test asserts on."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys

import httpx2 as httpx
import pytest
from google import genai
from google.genai import errors, types

from flashlane.emulator import Emulator
from flashlane.models import CATALOG, estimate_tokens

from .conftest import MODEL, make_client

GUIDE = "Label each review positive, negative or neutral. " * 120  # ~1,470 tokens
GUIDE_TOKENS = estimate_tokens(GUIDE)
EXAMPLE = "Example review: the parcel came late but support was kind."
PREFIX_TOKENS = GUIDE_TOKENS + estimate_tokens(EXAMPLE)


def _create(client: genai.Client, model: str = MODEL, **config: object) -> types.CachedContent:
    return client.caches.create(
        model=model,
        config=types.CreateCachedContentConfig(
            system_instruction=GUIDE, contents=[EXAMPLE], display_name="guide", ttl="600s", **config
        ),
    )


def test_sdk_cache_lifecycle_and_use(emu: Emulator, client: genai.Client) -> None:
    cache = _create(client)
    assert cache.name and cache.name.startswith("cachedContents/")
    assert cache.model == f"models/{MODEL}" and cache.display_name == "guide"
    assert cache.usage_metadata.total_token_count == PREFIX_TOKENS
    assert cache.expire_time - cache.create_time == dt.timedelta(seconds=600)
    assert client.caches.get(name=cache.name).expire_time == cache.expire_time
    assert [c.name for c in client.caches.list()] == [cache.name]

    rows = ["Great battery life.", "Broke after a week.", "It is a phone."]
    for row in rows:
        r = client.models.generate_content(
            model=MODEL, contents=row, config=types.GenerateContentConfig(cached_content=cache.name)
        )
        u = r.usage_metadata
        assert u.cached_content_token_count == PREFIX_TOKENS
        assert u.cache_tokens_details[0].token_count == PREFIX_TOKENS
        # promptTokenCount includes the cached prefix, as on the live API (gemini-api-wire.md §3, ws 13)
        assert u.prompt_token_count == PREFIX_TOKENS + estimate_tokens(row)
        assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + u.thoughts_token_count
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="A streamed row about a kettle that whistles",
            config=types.GenerateContentConfig(cached_content=cache.name),
        )
    )
    assert all(c.usage_metadata.cached_content_token_count == PREFIX_TOKENS for c in chunks)

    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="7200s"))
    assert updated.expire_time - updated.update_time == dt.timedelta(seconds=7200)
    assert updated.create_time == cache.create_time
    client.caches.delete(name=cache.name)
    assert list(client.caches.list()) == []

    stats = emu.caches()
    assert (stats["created"], stats["deleted"], stats["live"]) == (1, 1, 0)
    assert stats["references"] == {cache.name: len(rows) + 1} and stats["uncached_requests"] == 0
    assert stats["cached_tokens"] == {cache.name: (len(rows) + 1) * PREFIX_TOKENS}
    logged = [r["cached_content"] for r in emu.requests() if r["method"] == "generateContent"]
    assert logged == [cache.name] * len(rows)


def test_cached_answer_equals_inline_answer(emu: Emulator, client: genai.Client) -> None:
    """A cache is the prefix written into the request: same answer, same prompt count."""
    cache = _create(client)
    cached = client.models.generate_content(
        model=MODEL, contents="Review: loud fan.", config=types.GenerateContentConfig(cached_content=cache.name)
    )
    emu.caches(implicit_rate=0.0)
    inline = client.models.generate_content(
        model=MODEL, contents=[EXAMPLE, "Review: loud fan."],
        config=types.GenerateContentConfig(system_instruction=GUIDE),
    )
    assert cached.text == inline.text
    assert cached.usage_metadata.prompt_token_count == inline.usage_metadata.prompt_token_count
    assert inline.usage_metadata.cached_content_token_count is None


def test_list_pages_and_projects(emu: Emulator, client: genai.Client) -> None:
    names = {_create(client).name for _ in range(5)}
    paged = list(client.caches.list(config=types.ListCachedContentsConfig(page_size=2)))
    assert {c.name for c in paged} == names and len(paged) == 5
    emu.configure(projects={"other": {"keys": ["other-key"]}})
    other = make_client(emu, api_key="other-key")
    assert list(other.caches.list()) == []
    with pytest.raises(errors.ClientError) as ei:
        other.caches.get(name=sorted(names)[0])
    assert ei.value.code == 403 and ei.value.status == "PERMISSION_DENIED"
    other.close()


@pytest.mark.parametrize("model", [MODEL, "gemini-2.5-flash-lite"])
def test_too_small_is_the_documented_400(client: genai.Client, model: str) -> None:
    floor = CATALOG[model].min_cache_tokens
    text = "word " * (floor * 4 // 5 - 10)  # a little under the floor
    with pytest.raises(errors.ClientError) as ei:
        client.caches.create(model=model, config=types.CreateCachedContentConfig(system_instruction=text))
    assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"
    total = estimate_tokens(text)
    assert ei.value.message == (
        f"Cached content is too small. total_token_count={total}, min_total_token_count={floor}"
    )
    assert CATALOG["gemini-2.5-flash-lite"].min_cache_tokens == 2048


def test_missing_and_expired_cache_is_403(emu: Emulator, client: genai.Client) -> None:
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(
            model=MODEL, contents="x", config=types.GenerateContentConfig(cached_content="cachedContents/nope")
        )
    assert (ei.value.code, ei.value.status) == (403, "PERMISSION_DENIED")
    assert ei.value.message == "CachedContent not found (or permission denied)"

    cache = _create(client)
    cfg = types.GenerateContentConfig(cached_content=cache.name)
    assert client.models.generate_content(model=MODEL, contents="before", config=cfg).text
    emu.advance_clock(601)  # the TTL was 600 s, on the emulator's clock
    for call in (
        lambda: client.models.generate_content(model=MODEL, contents="after", config=cfg),
        lambda: client.caches.get(name=cache.name),
        lambda: client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="60s")),
        lambda: client.caches.delete(name=cache.name),
    ):
        with pytest.raises(errors.ClientError) as ei:
            call()
        assert ei.value.code == 403
    stats = emu.caches()
    assert (stats["created"], stats["expired"], stats["deleted"], stats["references"][cache.name]) == (1, 1, 0, 1)


def test_update_by_expire_time_keeps_a_cache_alive(emu: Emulator, client: genai.Client) -> None:
    cache = _create(client)
    later = cache.create_time + dt.timedelta(hours=3)
    updated = client.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(expire_time=later))
    assert updated.expire_time == later
    emu.advance_clock(3600)
    assert client.caches.get(name=cache.name).name == cache.name


def test_request_conflicts_with_cache(client: genai.Client) -> None:
    cache = _create(client)
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(
            model=MODEL, contents="x",
            config=types.GenerateContentConfig(cached_content=cache.name, system_instruction="extra"),
        )
    assert ei.value.code == 400 and ei.value.message.startswith(
        "CachedContent can not be used with GenerateContent request setting system_instruction, tools or tool_config."
    )
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(
            model="gemini-3-flash-preview", contents="x", config=types.GenerateContentConfig(cached_content=cache.name)
        )
    assert ei.value.code == 400 and "has to be the same" in ei.value.message


def test_count_tokens_with_cache_over_rest(emu: Emulator, client: genai.Client) -> None:
    cache = _create(client)
    body = {"generateContentRequest": {"model": f"models/{MODEL}", "cachedContent": cache.name,
                                       "contents": [{"role": "user", "parts": [{"text": "one more row"}]}]}}
    r = httpx.post(f"{emu.base_url}/v1beta/models/{MODEL}:countTokens", json=body, headers={"x-goog-api-key": "test-key"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["cachedContentTokenCount"] == PREFIX_TOKENS
    assert out["totalTokens"] == PREFIX_TOKENS + estimate_tokens("one more row")
    assert out["cacheTokensDetails"] == [{"modality": "TEXT", "tokenCount": PREFIX_TOKENS}]


def test_implicit_hits_on_repeated_prefix(emu: Emulator, client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(system_instruction=GUIDE)
    emu.caches(implicit_rate=1.0)
    first = client.models.generate_content(model=MODEL, contents="row one", config=cfg)
    assert first.usage_metadata.cached_content_token_count is None  # nothing seen yet
    second = client.models.generate_content(model=MODEL, contents="row two", config=cfg)
    assert second.usage_metadata.cached_content_token_count == GUIDE_TOKENS
    short = types.GenerateContentConfig(system_instruction="Be brief.")
    for _ in range(2):  # below the model's minimum: never cached
        r = client.models.generate_content(model=MODEL, contents="row", config=short)
        assert r.usage_metadata.cached_content_token_count is None
    emu.advance_clock(3600)  # the remembered prefix has gone cold
    assert client.models.generate_content(model=MODEL, contents="row three", config=cfg).usage_metadata.cached_content_token_count is None

    emu.caches(implicit_rate=0.0)
    r = client.models.generate_content(model=MODEL, contents="row four", config=cfg)
    assert r.usage_metadata.cached_content_token_count is None


def test_implicit_default_rate_hits_some_not_all(emu: Emulator, client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(system_instruction=GUIDE)
    hits = [
        client.models.generate_content(model=MODEL, contents=f"row {i}", config=cfg).usage_metadata.cached_content_token_count
        for i in range(24)
    ]
    n = sum(1 for h in hits[1:] if h == GUIDE_TOKENS)
    assert 3 <= n <= 20, hits  # default rate 0.5, chosen per request (deterministic)
    assert emu.caches()["implicit_hits"] == n


def test_flashlane_emulator_process_serves_caches() -> None:
    """The official SDK's client.caches calls against `flashlane emulator` as users run it."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flashlane", "emulator", "--port", "0", "--latency-scale", "0",
         "--implicit-cache-rate", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=url))
        cache = _create(client)
        r = client.models.generate_content(
            model=MODEL, contents="hello", config=types.GenerateContentConfig(cached_content=cache.name)
        )
        assert r.usage_metadata.cached_content_token_count == PREFIX_TOKENS
        client.caches.delete(name=cache.name)
        stats = json.loads(httpx.get(url + "/_emulator/caches").text)
        assert (stats["created"], stats["deleted"], stats["references"]) == (1, 1, {cache.name: 1})
        assert stats["implicit_rate"] == 0
        client.close()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def test_vertex_express_caches(emu: Emulator) -> None:
    c = genai.Client(vertexai=True, api_key="vertex-key", http_options={"base_url": emu.base_url})
    cache = c.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction=GUIDE, ttl="60s"))
    r = c.models.generate_content(model=MODEL, contents="hi", config=types.GenerateContentConfig(cached_content=cache.name))
    assert r.usage_metadata.cached_content_token_count == GUIDE_TOKENS
    assert [x.name for x in c.caches.list()] == [cache.name]
    c.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="120s"))
    c.caches.delete(name=cache.name)
    assert (emu.caches()["created"], emu.caches()["deleted"]) == (1, 1)
    c.close()


def test_free_tier_project_cannot_store_caches(emu: Emulator) -> None:
    emu.configure(projects={"hobby": {"keys": ["free-key"], "tier": "free"}})
    c = make_client(emu, api_key="free-key")
    with pytest.raises(errors.ClientError) as ei:  # too small is still the 400, checked first
        c.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction="tiny"))
    assert ei.value.code == 400
    with pytest.raises(errors.ClientError) as ei:
        c.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction=GUIDE))
    err = ei.value.details["error"]
    assert ei.value.code == 429 and err["status"] == "RESOURCE_EXHAUSTED"
    assert err["details"][0]["violations"][0]["quotaId"] == "TotalCachedContentStorageTokensPerModelFreeTier"
    assert f"limit=0, requested={GUIDE_TOKENS}" in err["message"]
    assert emu.caches()["created"] == 0
    c.close()


async def test_async_sdk_caches(emu: Emulator, aclient: genai.client.AsyncClient) -> None:
    cache = await aclient.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction=GUIDE))
    assert cache.expire_time - cache.create_time == dt.timedelta(hours=1)  # the documented default TTL
    r = await aclient.models.generate_content(
        model=MODEL, contents="async row", config=types.GenerateContentConfig(cached_content=cache.name)
    )
    assert r.usage_metadata.cached_content_token_count == GUIDE_TOKENS
    assert [c.name async for c in await aclient.caches.list()] == [cache.name]
    await aclient.caches.delete(name=cache.name)
    assert emu.caches()["deleted"] == 1
