"""Explicit caching of a task's shared prefix in runs: decided, made once, used by every request,
kept alive, recreated when it vanishes, deleted at the end, and charged in the report."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from flashlane import Lane
from flashlane.models import CATALOG, estimate_tokens
from flashlane.pipeline.report import load_report
from flashlane.tasks import Task

from .conftest import (
    EmulatorProcess,
    finished_items,
    quiet_total,
    read_jsonl,
    reviews,
    run_cli,
    subprocess_env,
    wait_for,
    write_csv,
)
from .test_resume import _get

MODEL = "gemini-3.1-flash-lite"
PRICES = CATALOG[MODEL].prices
GUIDE_WORDS = ["refund", "invoice", "crash", "login", "password", "slow", "charge", "card", "error", "timeout", "screen", "account", "billing", "update", "shipping", "parcel", "late", "broken"]


def guideline(tokens: int) -> str:
    """Deterministic guideline text of about ``tokens`` tokens."""
    out, n = [], 0
    while estimate_tokens("\n".join(out)) < tokens:
        words = " ".join(GUIDE_WORDS[(n * 7 + k) % len(GUIDE_WORDS)] for k in range(20))
        out.append(f"Rule {n}: when a ticket mentions {words}, route it with care.")
        n += 1
    return "\n".join(out)


def write_task(tmp_path: Path, guide_tokens: int = 6000) -> Path:
    (tmp_path / "guide.md").write_text(guideline(guide_tokens), encoding="utf-8")
    task = tmp_path / "triage.toml"
    task.write_text("""
name = "triage"
system = "You triage customer reviews."
instructions = "Pick the sentiment of the review."
template = "Review: {text}"
reference_files = ["guide.md"]
[output]
type = "object"
required = ["sentiment"]
properties = { sentiment = { type = "string", enum = ["positive", "negative", "neutral"] } }
[[examples]]
input = "Arrived broken."
output = { sentiment = "negative" }
[[examples]]
input = "Works as described."
output = { sentiment = "positive" }
""", encoding="utf-8")
    return task


def emulator_cost(emu: Any) -> float:
    """What the emulator's own usage counts cost at catalog prices, cached tokens at the cached rate."""
    stats, caches = emu.stats(), emu.caches()
    tok = stats["tokens"]
    cached = sum(caches["cached_tokens"].values()) + caches["implicit_tokens"]
    assert PRICES is not None and PRICES.cached_input is not None
    return ((tok["prompt"] - cached) * PRICES.input + cached * PRICES.cached_input
            + (tok["candidates"] + tok["thoughts"]) * PRICES.output) / 1e6


def generate_log(emu: Any) -> list[dict[str, Any]]:
    return [r for r in emu.requests() if r["method"] == "generateContent"]


def one_cache_every_request(emu: Any, n: int) -> tuple[dict[str, Any], str, list[dict[str, Any]]]:
    """Check that one cache was made and deleted, and that each of the ``n`` generate requests named
    it; return the emulator's cache counters, the cache's name and the request log."""
    caches = emu.caches()
    assert (caches["created"], caches["deleted"], caches["live"], caches["expired"]) == (1, 1, 0, 0)
    (name,) = caches["references"]
    log = generate_log(emu)
    assert len(log) == n and caches["references"][name] == n and caches["uncached_requests"] == 0
    assert {r["cached_content"] for r in log} == {name}
    return caches, name, log


def test_500_rows_one_cache_every_request_deleted_cost_matches(tmp_path: Path, cli_env: Any) -> None:
    emu = cli_env
    emu.caches(implicit_rate=0.0)
    task = write_task(tmp_path)
    src = write_csv(tmp_path / "r.csv", reviews(500))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "-q", "--no-cache") == 0
    rows = read_jsonl(out)
    assert len(rows) == 500 and all(r["status"] == "ok" for r in rows)
    assert all(r["usage"]["cached_tokens"] >= 6000 for r in rows)  # per item: the cached share of its input

    caches, name, log = one_cache_every_request(emu, 500)
    # the request carries only the item: no system instruction, no example turns
    assert all(r["system"] is None and len(r["contents"]) == 1 for r in log)

    report = load_report(f"{out}.flashlane.db")
    cc = report["context_cache"]
    d = cc["decision"]
    assert d["use"] and d["mode"] == "auto" and d["requests"] == 500 and d["prefix_tokens"] >= 6000
    assert d["saving_usd"] > 0 and d["inline_usd"] > d["cached_usd"] + d["storage_usd"]
    assert cc["caches_created"] == 1 and cc["storage_usd"] > 0
    assert cc["per_item_usd"] == pytest.approx((cc["creation_usd"] + cc["storage_usd"]) / 500, rel=1e-3)
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(report["cost_usd"] - cc["creation_usd"]
                                                             - cc["storage_usd"], rel=1e-6)
    cache_tokens = caches["cached_tokens"][name] // 500
    assert cc["creation_usd"] == pytest.approx(cache_tokens * PRICES.input / 1e6)
    assert report["tokens"]["cached"] == caches["cached_tokens"][name]
    requests_cost = report["cost_usd"] - cc["creation_usd"] - cc["storage_usd"]
    assert requests_cost == pytest.approx(emulator_cost(emu), rel=1e-6)
    # cached tokens at a tenth of the price: far below what the same prompts cost inline
    inline = (emu.stats()["tokens"]["prompt"] * PRICES.input) / 1e6
    assert report["cost_usd"] < 0.3 * inline


def test_prefix_below_minimum_no_cache_and_report_says_why(tmp_path: Path, cli_env: Any,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    task = write_task(tmp_path, guide_tokens=200)
    src = write_csv(tmp_path / "r.csv", reviews(20))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "--no-cache") == 0
    err = capsys.readouterr().err
    assert cli_env.caches()["created"] == 0
    d = load_report(f"{out}.flashlane.db")["context_cache"]["decision"]
    assert not d["use"] and "below gemini-3.1-flash-lite's minimum cacheable size of 1,024 tokens" in d["reason"]
    assert "not cached (auto): the prefix" in err and "minimum cacheable size" in err
    # the request still carries the whole prefix, system instruction and example turns first
    log = generate_log(cli_env)
    assert log[0]["system"].startswith("You triage customer reviews.") and len(log[0]["contents"]) == 5


def test_run_too_small_to_pay_no_cache(tmp_path: Path, cli_env: Any, capsys: pytest.CaptureFixture[str]) -> None:
    task = write_task(tmp_path)
    src = write_csv(tmp_path / "r.csv", reviews(1))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "--no-cache") == 0
    assert cli_env.caches()["created"] == 0
    r = load_report(f"{out}.flashlane.db")
    d = r["context_cache"]["decision"]
    assert not d["use"] and d["requests"] == 1 and d["break_even_requests"] > 1
    assert "would not pay for creating and storing the cache" in d["reason"]
    assert d["inline_usd"] < d["cached_usd"] + d["storage_usd"]
    assert "break-even" in capsys.readouterr().err
    # --cache-prefix on caches anyway; off never does
    out2 = tmp_path / "o2.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out2), "-q", "--no-cache",
                   "--cache-prefix", "on") == 0
    assert (cli_env.caches()["created"], cli_env.caches()["deleted"]) == (1, 1)
    d2 = load_report(f"{out2}.flashlane.db")["context_cache"]["decision"]
    assert d2["use"] and "cached anyway" in d2["reason"]


def test_off_counts_implicit_hits_at_the_cached_price(tmp_path: Path, cli_env: Any) -> None:
    cli_env.caches(implicit_rate=1.0)
    task = write_task(tmp_path)
    src = write_csv(tmp_path / "r.csv", reviews(6))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "-q", "--no-cache",
                   "--cache-prefix", "off", "--concurrency", "1") == 0
    caches = cli_env.caches()
    assert caches["created"] == 0 and caches["implicit_hits"] == 5
    r = load_report(f"{out}.flashlane.db")
    assert r["context_cache"]["decision"]["reason"].startswith("turned off")
    assert r["tokens"]["cached"] == caches["implicit_tokens"] > 0
    assert r["cost_usd"] == pytest.approx(emulator_cost(cli_env), rel=1e-6)
    # per item: the rows that hit cost less than the first one
    costs = [row["cost_usd"] for row in read_jsonl(out)]
    assert min(costs) < max(costs)


def test_cache_deleted_mid_run_is_recreated_no_row_fails(tmp_path: Path, emu: Any) -> None:
    """Another party deletes the run's cache after the first answer: the requests that find it
    gone make it again and are sent again; no row fails."""
    from google import genai

    emu.caches(implicit_rate=0.0)
    other = genai.Client(api_key="dummy", http_options={"base_url": emu.base_url})
    deleted: list[str] = []

    def convert(parsed: Any, options: Any) -> Any:
        if not deleted:
            for c in other.caches.list():
                other.caches.delete(name=str(c.name))
                deleted.append(str(c.name))
        return parsed

    task = Task(name="tone", item_template="{text}", reference=guideline(3000), convert=convert,
                output={"type": "object", "properties": {"tone": {"type": "string"}}, "required": ["tone"]})
    with Lane(base_url=emu.base_url, limits="off") as lane:
        res = lane.map(task, [f"text {i}" for i in range(40)], concurrency=4)
    other.close()
    assert all(r.ok for r in res), [r.error for r in res if not r.ok]
    assert len(deleted) == 1
    c = emu.caches()
    assert c["created"] == 2 and c["deleted"] == 2 and c["live"] == 0  # remade once, deleted at the end
    refused = [r for r in emu.requests() if r["method"] == "generateContent" and r["status"] == 403]
    assert 1 <= len(refused) <= 4  # only the requests in flight when it vanished
    assert res.report["context_cache"]["caches_created"] == 2
    assert res.report["items"]["ok"] == 40


def test_sigkill_then_rerun_reuses_live_cache_or_recreates_expired(tmp_path: Path) -> None:
    task = write_task(tmp_path)
    n = 150
    src = write_csv(tmp_path / "r.csv", reviews(n))
    out = tmp_path / "o.jsonl"
    db = Path(f"{out}.flashlane.db")
    emu = EmulatorProcess("--latency-scale", "0.02", "--implicit-cache-rate", "0")
    try:
        cmd = [sys.executable, "-m", "flashlane", "run", str(task), str(src), "--column", "text", "-o", str(out),
               "--no-cache", "--quiet", "--concurrency", "4"]
        env = subprocess_env(emu.base_url, FLASHLANE_CONTEXT_CACHE_TTL_S="600")

        def kill_after(count: int) -> set[str]:
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            wait_for(lambda: len(finished_items(db)) >= count or proc.poll() is not None, timeout=60)
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            if proc.stderr:
                proc.stderr.close()
            assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
            return finished_items(db)

        done1 = kill_after(30)
        c = _get(emu.base_url + "/_emulator/caches")
        assert (c["created"], c["live"]) == (1, 1)  # killed: nobody deleted it
        (name1,) = c["references"]

        done2 = kill_after(len(done1) + 30)  # the rerun adopts the live cache
        c = _get(emu.base_url + "/_emulator/caches")
        assert c["created"] == 1 and c["references"][name1] > len(done1)

        # the cache lapses while nothing runs (emulator clock past its TTL), then the rerun finishes
        _post(emu.base_url + "/_emulator/clock", {"advance": 3600})
        # A request the killed runs had sent is answered (and logged) whenever the emulator gets to it:
        # on a loaded machine that can be seconds after the kill, and its rows may since have been
        # finished by the second run. Count from when the emulator has gone quiet, so the log below
        # holds the third run's requests only.
        before = quiet_total(emu.base_url)
        third = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert third.returncode == 0, third.stderr
        c = _get(emu.base_url + "/_emulator/caches")
        assert c["created"] == 2 and c["expired"] == 1 and c["deleted"] == 1 and c["live"] == 0

        result_rows = read_jsonl(out)
        assert len(result_rows) == n and all(r["status"] == "ok" for r in result_rows)
        log = _get(emu.base_url + "/_emulator/requests")["requests"][before:]
        gen = [e for e in log if e["method"] == "generateContent" and e["status"] == 200]
        # Nothing finished is paid twice. A request the killed run had in flight may still be answered
        # (and logged) by the emulator after the kill, so the log may hold a few more than the rerun sent.
        assert n - len(done2) <= len(gen) <= n - len(done2) + 4
        # the input's id column names the items: id "7" is the row whose text carries row-0007
        assert sorted(int(r["id"]) for r in result_rows) == list(range(n))
        finished = {f"row-{int(i):04d}" for i in done2}
        assert not [e for e in gen if any(m in (e.get("prompt") or "") for m in finished)]
        report = load_report(db)
        assert report["context_cache"]["caches_created"] == 2 and report["items"]["ok"] == n
    finally:
        emu.stop()


def _post(url: str, body: dict[str, Any]) -> Any:
    import urllib.request

    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read() or b"{}")


def test_python_task_with_examples_and_reference_caches_in_map(emu: Any) -> None:
    emu.caches(implicit_rate=0.0)
    task = Task(name="tone", item_template="{text}", reference=guideline(3000),
                output={"type": "object", "properties": {"tone": {"type": "string"}}, "required": ["tone"]},
                examples=[{"input": "so happy", "output": {"tone": "glad"}}])
    with Lane(base_url=emu.base_url, limits="off") as lane:
        res = lane.map(task, [f"text {i}" for i in range(30)], pack=5)
    assert all(r.ok for r in res)
    c = emu.caches()
    assert (c["created"], c["deleted"]) == (1, 1)
    assert {r["cached_content"] for r in generate_log(emu)} == set(c["references"])
    assert res.report["context_cache"]["decision"]["requests"] == 6


def test_prefix_just_below_minimum_is_counted_by_the_api(tmp_path: Path, cli_env: Any) -> None:
    task = write_task(tmp_path, guide_tokens=850)  # with system, instructions and examples: ~90% of 1,024
    src = write_csv(tmp_path / "r.csv", reviews(10))
    out = tmp_path / "o.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "-q", "--no-cache") == 0
    counts = [r for r in cli_env.requests() if r["method"] == "countTokens"]
    assert len(counts) == 1 and cli_env.caches()["created"] == 0
    d = load_report(f"{out}.flashlane.db")["context_cache"]["decision"]
    assert not d["use"] and "minimum cacheable size" in d["reason"]


# ---------------------------------------------------------------------------- instructions are the prefix (issue 20)


def write_guided_task(tmp_path: Path, guide_tokens: int = 6000) -> Path:
    """A custom task whose only shared text is its instructions: no system text, reference or examples."""
    task = tmp_path / "guided.toml"
    task.write_text(f"""
name = "guided"
instructions = '''Pick the sentiment of the review, following these rules.
{guideline(guide_tokens)}'''
template = "Review: {{text}}"
[output]
type = "object"
required = ["sentiment"]
properties = {{ sentiment = {{ type = "string", enum = ["positive", "negative", "neutral"] }} }}
""", encoding="utf-8")
    return task


def test_long_instructions_alone_one_cache_every_request_deleted_under_03x_of_off(tmp_path: Path,
                                                                                cli_env: Any) -> None:
    """Issue 20, must-show: 6,000 tokens of instructions, 300 rows, --cache-prefix auto. Implicit
    caching is off in the emulator for both runs, so the comparison is explicit caching alone."""
    emu = cli_env
    emu.caches(implicit_rate=0.0)
    task = write_guided_task(tmp_path)
    src = write_csv(tmp_path / "r.csv", reviews(300))
    out = tmp_path / "auto.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(out), "-q", "--no-cache",
                   "--cache-prefix", "auto") == 0
    assert len(rows := read_jsonl(out)) == 300 and all(r["status"] == "ok" for r in rows)
    caches, name, log = one_cache_every_request(emu, 300)
    # the guideline lives in the cache: no request carries it, as system instruction or in its turn
    assert all(r["system"] is None and "Rule 0:" not in (r.get("prompt") or "") for r in log)
    report = load_report(f"{out}.flashlane.db")
    cc = report["context_cache"]
    assert cc["decision"]["use"] and cc["decision"]["prefix_tokens"] >= 6000
    cache_tokens = caches["cached_tokens"][name] // 300
    assert cache_tokens >= 6000
    requests_usd = emulator_cost(emu)
    assert report["cost_usd"] - cc["creation_usd"] - cc["storage_usd"] == pytest.approx(requests_usd, rel=1e-6)
    auto_usd = requests_usd + cache_tokens * PRICES.input / 1e6 + cc["storage_usd"]

    before = emulator_cost(emu)
    off = tmp_path / "off.jsonl"
    assert run_cli("run", str(task), str(src), "--column", "text", "-o", str(off), "-q", "--no-cache",
                   "--cache-prefix", "off") == 0
    assert emu.caches()["created"] == 1  # still the auto run's one
    off_log = generate_log(emu)[300:]
    # off: the same guideline, sent inline as the system instruction of every request
    assert len(off_log) == 300 and all(r["system"].startswith("Pick the sentiment") and "Rule 0:" in r["system"]
                                       for r in off_log)
    off_usd = emulator_cost(emu) - before
    assert auto_usd <= 0.3 * off_usd, (auto_usd, off_usd)
    print(f"auto ${auto_usd:.6f} vs off ${off_usd:.6f}: {auto_usd / off_usd:.3f}x")


# Fingerprints and response-cache keys computed by the release before issue 20 (commit 966b9a1), when
# instructions without reference material rode in the user turn. They must not change: an unchanged
# command resumes its run, and answers cached then still hit.
PINNED = {
    "classify": ("34e8eaafe8d14da428ebbeab5b1b855fe0d8e561f9ff04f71647eb43bd7b8536",
                 "38640b7531ad4fb1d5fdf9d18263b3c8a0c3346572089dcde4d01c13a696979c"),
    "plain": ("3949c7475138a6ea29b3806db24590e5236b32228799f10797d2f5f008956b10",
              "02724241869cbfcb3b0ce09cd6cd0af777db78985a5b30b0bf74d4dc065e7a58"),
    "rich": ("70c80ff745dc9d1e4b44cce2ab96ca114243372e2deb40816afe7f05f279a332",
             "6f74748a86dd0faec320b644f19550c4b60f64765bbc9163c6d84b31bf2de320"),
    "bare": ("3ce6d4e89909ce36b59fe4ef798d5ddb446fa256ae5a7652d955bf0553df16bd",
             "7583445e12e193afda888b40005536b2ff74f82ec4088882fc2222d3f2e6af74"),
}


def test_fingerprints_and_cache_keys_of_earlier_runs_unchanged() -> None:
    from flashlane.pipeline.items import Item
    from flashlane.pipeline.job import Job
    from flashlane.tasks import get_task

    schema = {"type": "object", "properties": {"s": {"type": "string"}}, "required": ["s"]}
    tasks = {
        "classify": (get_task("classify"), {"labels": "a,b"}),
        "plain": (Task(name="triage", system="You triage.", instructions="Pick the {what} of the review.",
                       item_template="Review: {text}", output=schema, defaults={"what": "sentiment"}), {}),
        "rich": (Task(name="triage", system="You triage.", instructions="Pick the sentiment.",
                      item_template="Review: {text}", reference="Rules."), {}),
        "bare": (Task(name="bare", item_template="{text}"), {}),
    }
    item = Item(index=0, id="1", values={"text": "hi"}, rendered="Review: hi", hash="h")
    # The default endpoint: nothing is sent, and the pins (computed by main at 966b9a1) name no server.
    with Lane(api_key="x", limits="off") as lane:
        for key, (task, options) in tasks.items():
            job = Job.create(lane._client, task, options)
            assert (job.fingerprint([item], source={"column": "text"}), job.cache_key(item)) == PINNED[key], key
            # ... while every task with instructions sends them as the system instruction
            call = job.single_call(item)
            assert (call.config.system_instruction is not None) == (key != "bare")
            assert call.full_contents()[-1].parts[0].text == "Review: hi"
