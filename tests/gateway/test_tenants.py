"""Issue 21: a token holder cannot step around the gateway. One meaning per path (the limiter,
the ledger and the model checks see the parsed call), tenants kept apart, client headers that
select billing or carry credentials never forwarded, a cut stream an error in the ledger."""

from __future__ import annotations

import http.client
import json
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from google import genai
from google.genai import errors, types

from flashlane.clock import TestClock
from flashlane.emulator import Emulator, ProjectConfig
from flashlane.gateway import Gateway
from flashlane.gateway.ledger import read_ledger
from tests.conftest import control, scenario

from .conftest import MODEL, TOKEN, UPSTREAM_KEY, emulator_config, start_gateway

TOKEN_C = "gw-token-carol-31b0c4"  # another project, on alice's upstream key: only the gateway keeps them apart
GUIDE = "Label each review positive, negative or neutral. " * 120  # over the cache minimum


def raw(gw: Gateway, method: str, path: str, body: bytes = b"", **headers: str) -> tuple[int, dict[str, Any]]:
    """One request exactly as spelled (http.client does not normalise the path)."""
    u = urlsplit(gw.base_url)
    conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=30)
    try:
        conn.request(method, path, body=body, headers={"content-type": "application/json", **headers})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return resp.status, json.loads(data) if data.startswith(b"{") else {}


def sdk(gw: Gateway, key: str, **http: Any) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gw.base_url, **http))


@pytest.fixture
def shared_key_tokens(tmp_path: Path, tokens_file: Path) -> Path:
    """alice (team-a) and carol (team-c) on the same upstream key: one project upstream."""
    tokens_file.write_text(tokens_file.read_text() + f"""
[tokens.carol]
token = "{TOKEN_C}"
project = "team-c"
api_key = "{UPSTREAM_KEY}"
""")
    return tokens_file


def test_every_spelling_of_a_generate_path_is_refused_or_limited_and_priced(
        upstream: Emulator, tokens_file: Path, tmp_path: Path) -> None:
    clock = TestClock()  # the limiter's waits pass in virtual time
    ledger = tmp_path / "ledger.sqlite3"
    gw = start_gateway(upstream, tokens_file, limits="rpm=5,window=20", ledger=ledger, clock=clock)
    body = json.dumps({"contents": [{"parts": [{"text": "Name three rivers."}]}]}).encode()
    spellings = [f"/v1beta//models/{MODEL}:generateContent", f"/v1beta/./models/{MODEL}:generateContent",
                 f"/v1beta/models/x1/../{MODEL}:generateContent", f"/v1beta/models%2F{MODEL}:generateContent",
                 f"/v1beta/models/x1/%2e%2e/{MODEL}:generateContent",
                 f"/v1beta/models/{MODEL}-preview/../{MODEL}:generateContent", f"//v1beta/models/{MODEL}:generateContent"]
    try:
        for path in spellings:
            code, answer = raw(gw, "POST", path, body, **{"x-goog-api-key": TOKEN})
            assert code == 400 and answer["error"]["status"] == "INVALID_ARGUMENT", (path, answer)
        assert upstream.stats()["requests_total"] == 0  # none was forwarded, with the key or without
        t0 = clock.monotonic()
        c = sdk(gw, TOKEN)
        for i in range(10):
            assert c.models.generate_content(model=MODEL, contents=f"Name three rivers, {i}.").text
        assert clock.monotonic() - t0 >= 20  # ten requests at 5 per 20 s: at least one window waited
        metrics = urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()
    finally:
        gw.stop()
    rows = read_ledger(ledger)
    assert [(r["model"], r["requests"], r["ok"]) for r in rows] == [(MODEL, 10, 10)]
    assert rows[0]["prompt_tokens"] > 0 and rows[0]["cost_usd"] > 0
    models = {line.split('model="')[1].split('"')[0] for line in metrics.splitlines() if 'model="' in line}
    assert models == {MODEL}


def test_spending_methods_other_than_generate_are_limited_and_unknown_calls_not_forwarded(
        upstream: Emulator, tokens_file: Path) -> None:
    gw = start_gateway(upstream, tokens_file, limits="rpm=1,window=60")
    try:
        c = sdk(gw, TOKEN, timeout=2000)  # X-Server-Timeout: 2 s, far less than the next slot
        assert c.models.count_tokens(model=MODEL, contents="hello there").total_tokens
        with pytest.raises(errors.ServerError) as e:
            c.models.generate_content(model=MODEL, contents="hi")  # countTokens took the one slot
        assert e.value.code == 504
        for method, path in (("POST", f"/v1beta/models/{MODEL}:predict"), ("POST", "/v1beta/tunedModels/t:generateContent"),
                             ("GET", f"/v1beta/models/{MODEL}:generateContent"), ("POST", "/v1beta/corpora")):
            code, answer = raw(gw, method, path, b"{}", **{"x-goog-api-key": TOKEN})
            assert code == 404 and answer["error"]["status"] == "NOT_FOUND", path
    finally:
        gw.stop()
    assert upstream.stats()["by_method"] == {"countTokens": 1}


def test_one_tenant_cannot_see_use_or_remove_anothers_cache_file_or_batch(shared_key_tokens: Path,
                                                                         tmp_path: Path) -> None:
    cfg = emulator_config()
    cfg.projects["team-a"] = ProjectConfig("team-a", keys=[UPSTREAM_KEY], tier="tier1")  # caching is paid
    cfg._index()
    with Emulator(cfg).running() as emu:
        gw = start_gateway(emu, shared_key_tokens, ledger=tmp_path / "ledger.sqlite3")
        try:
            a, b = sdk(gw, TOKEN), sdk(gw, TOKEN_C)
            doc = tmp_path / "notes.txt"
            doc.write_text("carol's notes")
            f = b.files.upload(file=str(doc))
            cache = b.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction=GUIDE,
                                                                                        ttl="600s"))
            job = b.batches.create(model=MODEL, src=[{"contents": [{"parts": [{"text": "hi"}], "role": "user"}]}])
            assert f.name and cache.name and job.name
            mine = a.caches.create(model=MODEL, config=types.CreateCachedContentConfig(system_instruction=GUIDE,
                                                                                       ttl="600s"))
            # Upstream they are one project's; through the gateway, alice sees none of carol's.
            assert [x.name for x in a.caches.list()] == [mine.name]
            assert f.name not in [x.name for x in a.files.list()]
            assert job.name not in [x.name for x in a.batches.list()]
            attempts = [
                lambda: a.caches.get(name=cache.name), lambda: a.files.get(name=f.name),
                lambda: a.batches.get(name=job.name), lambda: a.files.download(file=f.name),
                lambda: a.models.generate_content(model=MODEL, contents="use it",
                                                  config=types.GenerateContentConfig(cached_content=cache.name)),
                lambda: a.models.generate_content(model=MODEL, contents=[f, "summarize"]),
                lambda: a.caches.update(name=cache.name, config=types.UpdateCachedContentConfig(ttl="60s")),
                lambda: a.batches.cancel(name=job.name),
                lambda: a.caches.delete(name=cache.name), lambda: a.files.delete(name=f.name),
                lambda: a.batches.delete(name=job.name),
            ]
            for i, attempt in enumerate(attempts):
                with pytest.raises(errors.ClientError) as e:
                    attempt()
                assert e.value.code == 404 and "flashlane gateway" in (e.value.message or ""), i
            # Carol's own are all still there and usable.
            assert b.caches.get(name=cache.name).name == cache.name and b.files.get(name=f.name).name == f.name
            assert b.batches.get(name=job.name).name == job.name
            r = b.models.generate_content(model=MODEL, contents="use it",
                                          config=types.GenerateContentConfig(cached_content=cache.name))
            assert r.usage_metadata is not None and r.usage_metadata.cached_content_token_count
        finally:
            gw.stop()
        methods = [x["method"] for x in emu.requests()]
    assert not any(m in methods for m in ("cachedContents.delete", "files.delete", "batches.delete"))


def test_billing_and_credential_headers_never_reach_the_upstream(gateway: Gateway, upstream: Emulator) -> None:
    sent = {"x-goog-user-project": "victim-project", "cookie": "SID=client-session",
            "proxy-authorization": "Basic cHJveHk6c2VjcmV0"}
    # A rule per header that fails any request arriving with it: proven live by a direct call first.
    scenario(upstream.base_url, *({"match": {"headers": {k: v}}, "action": {"error": 400, "message": f"got {k}"}}
                                  for k, v in sent.items()))
    direct = genai.Client(api_key=UPSTREAM_KEY, http_options=types.HttpOptions(base_url=upstream.base_url,
                                                                                headers=sent))
    with pytest.raises(errors.ClientError):
        direct.models.generate_content(model=MODEL, contents="hi")
    c = sdk(gateway, TOKEN, headers=sent)
    assert c.models.generate_content(model=MODEL, contents="hi").text
    assert list(c.models.generate_content_stream(model=MODEL, contents="a story"))
    log = control(upstream.base_url, "/_emulator/requests")["requests"]
    assert len(log) == 3 and all(k not in json.dumps(r).lower() for r in log[1:] for k in sent)


def test_a_stream_cut_by_the_upstream_is_an_error_with_its_tokens(upstream: Emulator, tokens_file: Path,
                                                                 tmp_path: Path) -> None:
    ledger = tmp_path / "ledger.sqlite3"
    gw = start_gateway(upstream, tokens_file, ledger=ledger)
    try:
        scenario(upstream.base_url, {"times": 1, "match": {"method": "streamGenerateContent"},
                                     "action": {"cut_after": 2}})
        c = sdk(gw, TOKEN)  # held: a collected client closes its connections
        with pytest.raises(Exception):  # noqa: B017 - whatever the SDK's transport raises for a cut body
            list(c.models.generate_content_stream(
                model=MODEL, contents="A long story about the sea", config={"max_output_tokens": 2000}))
    finally:
        gw.stop()
    (row,) = read_ledger(ledger)
    assert (row["requests"], row["ok"], row["upstream_errors"]) == (1, 0, 1)
    assert row["prompt_tokens"] > 0 and row["cost_usd"] > 0  # priced at what the two events reported
