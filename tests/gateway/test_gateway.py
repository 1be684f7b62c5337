"""The gateway in front of a real emulator, driven by the real google-genai SDK over HTTP."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from google import genai
from google.genai import errors, types

from flashlane.clock import TestClock
from flashlane.config import load_settings
from flashlane.emulator import Emulator, EmulatorConfig
from flashlane.gateway import Gateway, GatewayConfig, load_tokens
from flashlane.gateway.ledger import is_ledger, read_ledger
from flashlane.gateway.tokens import label_for
from tests.conftest import ManualClock, cli, control, scenario, wait_for

from .conftest import MODEL, TOKEN, TOKEN_B, UPSTREAM_KEY, start_gateway


def client(gw: Gateway, key: str = TOKEN, **http: Any) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gw.base_url, **http))


_KEPT: list[genai.Client] = []


def keep(c: genai.Client) -> genai.Client:
    """Hold the client: a temporary genai.Client closes its HTTP client when collected."""
    _KEPT.append(c)
    return c


def by_status(emu: Emulator) -> dict[str, int]:
    return dict(emu.stats()["by_status"])


def test_sdk_calls_pass_through_with_the_mapped_key(gateway: Gateway, upstream: Emulator) -> None:
    c = client(gateway)
    r = c.models.generate_content(model=MODEL, contents="Name three rivers.")
    assert r.text and r.usage_metadata is not None and r.usage_metadata.prompt_token_count
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="Tell a story about the sea"))
    assert len(chunks) > 1 and chunks[-1].candidates[0].finish_reason == "STOP"
    assert c.models.count_tokens(model=MODEL, contents="hello there").total_tokens == 3
    assert f"models/{MODEL}" in [m.name for m in c.models.list()]
    assert c.models.get(model=MODEL).name == f"models/{MODEL}"
    # The emulator only knows the upstream keys (strict), so these reached it with alice's key, as team-a.
    stats = upstream.stats()
    assert stats["by_project_model"][f"team-a/{MODEL}"]["requests"] == 4
    assert set(stats["by_status"]) == {"200"}
    keep(client(gateway, TOKEN_B)).models.generate_content(model=MODEL, contents="hi")
    assert upstream.stats()["by_project_model"][f"team-b/{MODEL}"]["requests"] == 1


def test_a_bad_or_missing_token_is_refused_in_the_real_shapes(gateway: Gateway, upstream: Emulator) -> None:
    with pytest.raises(errors.ClientError) as e:
        keep(client(gateway, UPSTREAM_KEY)).models.generate_content(model=MODEL, contents="hi")  # a real key is no token
    assert e.value.code == 400
    assert e.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert e.value.message == "API key not valid. Please pass a valid API key."
    req = urllib.request.Request(f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent", method="POST",
                                 data=b'{"contents": "hi"}', headers={"content-type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as h:
        urllib.request.urlopen(req, timeout=10)
    assert h.value.code == 403 and json.loads(h.value.read())["error"]["status"] == "PERMISSION_DENIED"
    assert upstream.stats()["requests_total"] == 0  # refused at the gateway


def test_key_query_parameter_is_accepted_and_not_forwarded(gateway: Gateway, upstream: Emulator) -> None:
    url = f"{gateway.base_url}/v1beta/models/{MODEL}:generateContent?key={TOKEN}"
    req = urllib.request.Request(url, method="POST", data=b'{"contents": [{"parts": [{"text": "hi"}]}]}',
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert json.loads(resp.read())["candidates"]
    assert upstream.stats()["by_project_model"][f"team-a/{MODEL}"]["requests"] == 1


def test_retired_model_is_answered_by_the_gateway_naming_the_replacement(gateway: Gateway,
                                                                        upstream: Emulator) -> None:
    with pytest.raises(errors.ClientError) as e:
        keep(client(gateway)).models.generate_content(model="gemini-3.1-flash-lite-preview", contents="hi")
    assert e.value.code == 404 and e.value.status == "NOT_FOUND"
    assert "use 'gemini-3.1-flash-lite' instead" in e.value.response.headers["x-flashlane-gateway-note"]
    assert e.value.message == ("models/gemini-3.1-flash-lite-preview is not found for API version v1, or is not "
                               "supported for generateContent. Call ModelService.ListModels to see the list of "
                               "available models and their supported methods.")  # the API's words, nothing added
    assert upstream.stats()["requests_total"] == 0  # the catalog knew: nothing was forwarded


def test_unknown_model_keeps_the_upstream_404_and_names_the_closest(gateway: Gateway, upstream: Emulator) -> None:
    with pytest.raises(errors.ClientError) as e:
        keep(client(gateway)).models.generate_content(model="gemini-3.1-flash-lyte", contents="hi")
    assert e.value.code == 404 and "flashlane" not in e.value.message  # the upstream's body, unchanged
    assert "did you mean 'gemini-3.1-flash-lite'" in e.value.response.headers["x-flashlane-gateway-note"]
    assert upstream.stats()["by_status"] == {"404": 1}


def test_per_minute_429_is_absorbed_with_the_servers_wait(upstream: Emulator, tokens_file: Path,
                                                         tmp_path: Path) -> None:
    clock = TestClock()
    settings = load_settings(env={"GOOGLE_GEMINI_BASE_URL": upstream.base_url})
    gw = Gateway.from_settings(settings, tokens_file=tokens_file, ledger=tmp_path / "l.sqlite3", clock=clock,
                               config=GatewayConfig()).start()
    try:
        scenario(upstream.base_url, {"times": 2, "action": {"error": 429, "retry_delay": 17}},
                 {"times": 1, "action": {"error": 503}})
        r = keep(client(gw)).models.generate_content(model=MODEL, contents="hi")
        assert r.text
        assert by_status(upstream) == {"429": 2, "503": 1, "200": 1}
        assert clock.sleeps[:2] == [17.0, 17.0]  # RetryInfo.retryDelay honoured, on the injected clock
        metrics = urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()
        assert f'flashlane_gateway_rate_limited_absorbed_total{{project="team-a",model="{MODEL}"}} 2' in metrics
        assert f'flashlane_gateway_retries_total{{project="team-a",model="{MODEL}"}} 3' in metrics
    finally:
        gw.stop()
    (row,) = read_ledger(tmp_path / "l.sqlite3")
    assert (row["label"], row["requests"], row["ok"], row["rate_limited_absorbed"], row["retries"]) == \
        ("alice", 1, 1, 2, 3)


def test_client_deadline_bounds_the_wait(gateway: Gateway, upstream: Emulator) -> None:
    scenario(upstream.base_url, {"times": 1, "action": {"error": 429, "retry_delay": 30}})
    t0 = time.monotonic()
    with pytest.raises(errors.ClientError) as e:
        keep(client(gateway, timeout=3000)).models.generate_content(model=MODEL, contents="hi")  # X-Server-Timeout: 3
    assert e.value.code == 429  # a 30 s wait does not fit in 3 s: the real 429 is passed on at once
    assert e.value.details["error"]["details"][-1]["retryDelay"] == "30s"
    assert time.monotonic() - t0 < 2.5


def test_per_day_exhaustion_is_answered_at_once_with_the_reset_time(gateway: Gateway, upstream: Emulator) -> None:
    scenario(upstream.base_url, {"times": 1, "action": {"error": 429, "quota": "rpd", "retry_delay": 3600}})
    for _ in range(2):
        with pytest.raises(errors.ClientError) as e:
            keep(client(gateway)).models.generate_content(model=MODEL, contents="hi")
        assert e.value.code == 429 and e.value.status == "RESOURCE_EXHAUSTED"
        note = e.value.response.headers["x-flashlane-gateway-note"]
        assert "per-day quota resets at" in note and "Pacific" in note and "flashlane" not in e.value.message
        violation = e.value.details["error"]["details"][0]["violations"][0]
        assert "PerDay" in violation["quotaId"]
    # The first came from upstream; the second was answered by the gateway's limiter, which
    # now knows the day is used up, without spending a request.
    assert by_status(upstream) == {"429": 1}


def test_defaults_are_added_only_to_requests_that_set_none(upstream: Emulator, tokens_file: Path) -> None:
    gw = start_gateway(upstream, tokens_file, default_thinking="low", default_max_output_tokens=300)
    try:
        c = client(gw)
        c.models.generate_content(model=MODEL, contents="bare")
        c.models.generate_content(model=MODEL, contents="configured", config=types.GenerateContentConfig(
            max_output_tokens=50, thinking_config=types.ThinkingConfig(thinking_level="minimal")))
    finally:
        gw.stop()
    log = {r["contents"][0]["text"]: r["generation_config"] for r in control(upstream.base_url,
                                                                            "/_emulator/requests")["requests"]}
    assert log["bare"] == {"thinkingConfig": {"thinkingLevel": "LOW"}, "maxOutputTokens": 300}
    assert log["configured"]["maxOutputTokens"] == 50
    assert log["configured"]["thinkingConfig"] == {"thinking_level": "MINIMAL"}  # the SDK's own casing, kept


def test_stream_chunks_reach_the_client_as_they_arrive(tokens_file: Path) -> None:
    # Modelled latency: first token after ~0.4 s, then a chunk every ~0.2 s.
    with Emulator(EmulatorConfig(latency_scale=0.3)).running() as emu:
        gw = start_gateway(emu, None)  # --pass-keys
        try:
            c = genai.Client(api_key="k", http_options={"base_url": gw.base_url})
            t0 = time.perf_counter()
            arrivals = [time.perf_counter() - t0 for _ in c.models.generate_content_stream(
                model=MODEL, contents="Write a long story about a lighthouse keeper",
                config={"max_output_tokens": 4000, "thinking_config": {"thinking_level": "high"}})]
        finally:
            gw.stop()
    assert len(arrivals) >= 4
    # Buffering would deliver every chunk at the end; passed through, the first arrives well before.
    assert arrivals[-1] - arrivals[0] > 0.5, arrivals


def test_healthz_and_metrics_have_no_secrets(gateway: Gateway) -> None:
    keep(client(gateway)).models.generate_content(model=MODEL, contents="hi")
    assert json.loads(urllib.request.urlopen(f"{gateway.base_url}/healthz", timeout=10).read()) == {"status": "ok"}
    text = urllib.request.urlopen(f"{gateway.base_url}/metrics", timeout=10).read().decode()
    assert f'flashlane_gateway_requests_total{{project="team-a",model="{MODEL}",code="200"}} 1' in text
    assert "flashlane_gateway_request_duration_seconds_bucket" in text
    assert 'kind="input"' in text and "flashlane_gateway_cost_usd_total" in text
    assert TOKEN not in text and UPSTREAM_KEY not in text


def test_report_prints_the_ledger(upstream: Emulator, tokens_file: Path, tmp_path: Path,
                                  capsys: pytest.CaptureFixture[str]) -> None:
    ledger = tmp_path / "usage.db"
    gw = start_gateway(upstream, tokens_file, ledger=ledger)
    try:
        for _ in range(3):
            keep(client(gw)).models.generate_content(model=MODEL, contents="Name three rivers.")
        keep(client(gw, TOKEN_B)).models.generate_content(model=MODEL, contents="hi")
    finally:
        gw.stop()
    assert is_ledger(ledger)
    rows = {r["label"]: r for r in read_ledger(ledger)}
    assert rows["alice"]["requests"] == 3 and rows["alice"]["project"] == "team-a"
    assert rows["alice"]["prompt_tokens"] > 0 and rows["alice"]["cost_usd"] > 0
    assert rows["bob"]["requests"] == 1
    code, out, err = cli(capsys, "report", str(ledger))
    assert code == 0, err
    assert "gateway ledger" in out and "alice" in out and "team-b" in out
    code, out, _ = cli(capsys, "report", str(ledger), "--json")
    assert {r["label"] for r in json.loads(out)} == {"alice", "bob"}


@pytest.mark.parametrize(("text", "message"), [
    ('[tokens.a]\ntoken = "t"\nprojct = "x"\n', "unknown key 'projct' in tokens.a"),
    ('[tokens.a]\ntoken = "t"\napi_key_env = "NOPE_UNSET_VAR"\n', "NOPE_UNSET_VAR is not set"),
    ('[tokenz.a]\ntoken = "t"\n', "unknown key 'tokenz'"),
    ('[tokens.a]\nproject = "p"\n', "tokens.a in"),
])
def test_bad_tokens_files_are_one_line_errors(tmp_path: Path, text: str, message: str,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "tokens.toml"
    f.write_text(text)
    code, _, err = cli(capsys, "gateway", "--emulator", "--port", "0", "--tokens", str(f))
    assert code == 2
    assert message in err.splitlines()[0], err
    assert "Traceback" not in err


def test_tokens_and_pass_keys_are_exclusive(tmp_path: Path, tokens_file: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    for args in ((), ("--pass-keys", "--tokens", str(tokens_file))):
        code, _, err = cli(capsys, "gateway", "--emulator", "--port", "0", *args)
        assert code == 2 and "exactly one of --tokens FILE or --pass-keys" in err


def test_yaml_tokens_file(tmp_path: Path) -> None:
    f = tmp_path / "tokens.yaml"
    f.write_text("tokens:\n  carol: {token: tok-c, project: team-c, api_key: k-c}\n")
    book = load_tokens(f)
    p = book.resolve("tok-c")
    assert p is not None and (p.label, p.project, p.upstream_key) == ("carol", "team-c", "k-c")
    assert book.resolve("k-c") is None and "k-c" not in repr(p)


def test_files_and_batches_pass_through_with_upload_urls_on_the_gateway(gateway: Gateway, upstream: Emulator,
                                                                      tmp_path: Path) -> None:
    doc = tmp_path / "notes.txt"
    doc.write_text("The gateway forwards file bytes too.")
    c = keep(client(gateway))
    f = c.files.upload(file=str(doc))  # the SDK sends the bytes to the x-goog-upload-url it was given
    assert f.name and f.size_bytes == doc.stat().st_size
    assert f.name in [x.name for x in c.files.list()]
    # A file's uri names the gateway, wherever the client meets it; upstream it names the upstream.
    assert f.uri == f"{gateway.base_url}/v1beta/{f.name}" or f.uri == f"{gateway.base_url}/v1/{f.name}"
    assert c.files.get(name=f.name).uri == f.uri and [x.uri for x in c.files.list() if x.name == f.name] == [f.uri]
    assert c.models.generate_content(model=MODEL, contents=[f, "summarize"]).text
    sent = [p for r in upstream.requests() if r["method"] == "generateContent" for p in r["contents"][0]["parts"]]
    uri = sent[0]["fileData"].get("fileUri", sent[0]["fileData"].get("file_uri"))  # Python sends file_uri
    assert uri == f.uri.replace(gateway.base_url, upstream.base_url)
    job = c.batches.create(model=MODEL, src=[{"contents": [{"parts": [{"text": "hi"}], "role": "user"}]}])
    assert job.name and c.batches.get(name=job.name).name == job.name
    c.files.delete(name=f.name)
    # (the emulator also logs each inlined batch request as "….request": not HTTP calls)
    methods = [r["method"] for r in upstream.requests() if not r["method"].endswith(".request")]
    assert methods[:2] == ["files.create", "files.upload"] and "files.delete" in methods
    metrics = urllib.request.urlopen(f"{gateway.base_url}/metrics", timeout=10).read().decode()
    # Every one of those went through the gateway, the upload's bytes included (not straight upstream).
    answered = sum(int(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("flashlane_gateway_requests_total{") and 'code="200"' in line)
    assert answered == len(methods)


def test_a_stream_is_retried_before_its_first_byte_and_cut_after_it(gateway: Gateway, upstream: Emulator) -> None:
    c = keep(client(gateway))
    scenario(upstream.base_url, {"times": 1, "match": {"method": "streamGenerateContent"}, "action": {"error": 503}})
    chunks = list(c.models.generate_content_stream(model=MODEL, contents="a story"))
    assert chunks[-1].candidates[0].finish_reason == "STOP"  # the 503 came before any byte: retried
    scenario(upstream.base_url, {"times": 1, "match": {"method": "streamGenerateContent"}, "action": {"cut_after": 1}})
    got = []
    with pytest.raises(Exception) as e:  # noqa: B017 - whatever the SDK's transport raises for a cut body
        for ch in c.models.generate_content_stream(model=MODEL, contents="another story"):
            got.append(ch)
    assert len(got) <= 1 and not isinstance(e.value, errors.APIError)  # cut, not an ordinary end
    assert by_status(upstream) == {"503": 1, "200": 1, "0": 1}


def test_vertex_express_upstream(upstream: Emulator, tokens_file: Path) -> None:
    """With Vertex selected and an API key, model calls go to Vertex express paths."""
    settings = load_settings(env={"GOOGLE_GENAI_USE_VERTEXAI": "true", "GOOGLE_GEMINI_BASE_URL": upstream.base_url,
                                  "GEMINI_API_KEY": UPSTREAM_KEY})
    gw = Gateway.from_settings(settings, tokens_file=tokens_file, config=GatewayConfig()).start()
    try:
        c = client(gw)
        assert c.models.generate_content(model=MODEL, contents="hi").text
        with pytest.raises(errors.ClientError) as e:
            c.files.list()  # the Gemini API's files have no Vertex equivalent at that path
        assert e.value.code == 404 and "Vertex AI" in e.value.message
    finally:
        gw.stop()
    (entry,) = upstream.requests()
    assert entry["method"] == "generateContent" and entry["project"] == "team-a"


def test_no_room_in_the_quota_within_the_deadline_is_a_504_before_the_client_gives_up(
        upstream: Emulator, tokens_file: Path) -> None:
    gw = start_gateway(upstream, tokens_file, limits="rpm=1")
    try:
        c = keep(client(gw, timeout=2000))  # X-Server-Timeout: 2
        assert c.models.generate_content(model=MODEL, contents="first").text
        t0 = time.monotonic()
        with pytest.raises(errors.ServerError) as e:
            c.models.generate_content(model=MODEL, contents="second")  # the next slot is a minute away
        assert e.value.code == 504 and e.value.status == "DEADLINE_EXCEEDED"
        assert 1.0 < time.monotonic() - t0 < 2.0
    finally:
        gw.stop()
    assert by_status(upstream) == {"200": 1}  # the second never went upstream


def test_ledger_says_unknown_for_a_model_without_a_price(tmp_path: Path) -> None:
    from flashlane.gateway.ledger import Ledger, format_ledger
    from flashlane.models import Usage

    ledger = Ledger(tmp_path / "l.sqlite3")
    ledger.record("alice", "team-a", MODEL, ok=True, usage=Usage(1000, 100, 50, 0, 1150))
    ledger.record("alice", "team-a", "my-tuned-model", ok=True, usage=Usage(1000, 100, 0, 0, 1100))
    ledger.close()
    text = format_ledger(tmp_path / "l.sqlite3")
    priced = next(line for line in text.splitlines() if MODEL in line)
    assert "0.000475" in priced  # 1,000 in at $0.25/M + 150 out (incl. thinking) at $1.50/M
    assert "unknown" in next(line for line in text.splitlines() if "my-tuned-model" in line)
    assert "≥ 0.000475" in next(line for line in text.splitlines() if line.startswith("total"))


def test_pass_keys_projects_are_key_hashes_and_refused_keys_leave_no_project(upstream: Emulator) -> None:
    gw = start_gateway(upstream, None)  # --pass-keys; the emulator knows only UPSTREAM_KEY and OTHER_KEY
    try:
        good = keep(genai.Client(api_key=UPSTREAM_KEY, http_options={"base_url": gw.base_url}))
        assert good.models.generate_content(model=MODEL, contents="hi").text
        with pytest.raises(errors.ClientError):  # a real 400 for a known key: still its project's
            good.models.generate_content(model=MODEL, contents="hi", config={"temperature": 9})
        bad = keep(genai.Client(api_key="random-key-123", http_options={"base_url": gw.base_url}))
        with pytest.raises(errors.ClientError) as e:
            bad.models.generate_content(model=MODEL, contents="hi")
        assert e.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"  # the upstream's own answer
        text = urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()
    finally:
        gw.stop()
    label = label_for(UPSTREAM_KEY)
    assert f'project="{label}",model="{MODEL}",code="200"}} 1' in text
    assert f'project="{label}",model="{MODEL}",code="400"}} 1' in text
    assert f'project="-",model="{MODEL}",code="400"}} 1' in text
    assert label_for("random-key-123") not in text and UPSTREAM_KEY not in text


def test_a_client_that_hangs_up_while_waiting_spends_no_quota(upstream: Emulator, tokens_file: Path) -> None:
    clock = ManualClock()  # the gateway's quota waits last until the test moves this clock
    gw = start_gateway(upstream, tokens_file, limits="rpm=1,window=3", clock=clock)
    gone = f'flashlane_gateway_requests_total{{project="team-a",model="{MODEL}",code="499"}} 1'

    def metrics() -> str:
        return urllib.request.urlopen(f"{gw.base_url}/metrics", timeout=10).read().decode()

    try:
        assert keep(client(gw)).models.generate_content(model=MODEL, contents="first").text
        # No X-Server-Timeout (a client with only its own timeout): it gives up after 1 s, while the
        # gateway holds its request for the next slot (3 s away on the gateway's clock, which stands still).
        req = urllib.request.Request(f"{gw.base_url}/v1beta/models/{MODEL}:generateContent", method="POST",
                                     data=b'{"contents": [{"parts": [{"text": "second"}]}]}',
                                     headers={"content-type": "application/json", "x-goog-api-key": TOKEN})
        with pytest.raises(OSError):  # socket timeout
            urllib.request.urlopen(req, timeout=1)
        wait_for(lambda: gone in metrics())  # the gateway saw the hang-up while it waited
        clock.advance(3.5)  # past the moment the slot opened
        text = metrics()
    finally:
        gw.stop()
    assert by_status(upstream) == {"200": 1}  # the abandoned request never went upstream
    assert gone in text
