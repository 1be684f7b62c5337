"""Tools through a Lane: the real google-genai SDK over real HTTP against the emulator. Function
declarations from Python, the tool loop (thought signatures echoed byte for byte, parallel calls,
raising functions, the round bound, one deadline), grounding sources and citations, URL-context
statuses, code execution, streaming, and grounding in the cost ledger."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
from typing import Any

import pytest
from pydantic import BaseModel, Field

import flashlane as fl
from flashlane.call.tools import Toolset, function_tool
from flashlane.clock import TestClock
from tests.conftest import cli, control, scenario

SEEN: list[tuple[str, Any]] = []


def get_weather(city: str, unit: str = "celsius", days: int = 1) -> dict[str, Any]:
    """Weather forecast for a city.

    Args:
        city: The city name.
        unit: celsius or fahrenheit.
        days: How many days ahead.
    """
    SEEN.append(("get_weather", city))
    return {"city": city, "temp": 21, "unit": unit}


def get_time(timezone: str) -> str:
    """Local time in a timezone."""
    SEEN.append(("get_time", timezone))
    raise RuntimeError("the clock service is down")


class Booking(BaseModel):
    """Book a table."""

    name: str = Field(description="Who books")
    seats: int = Field(ge=1, le=12)
    day: dt.date


@pytest.fixture
def lane(gemini_emulator):  # type: ignore[no-untyped-def]
    SEEN.clear()
    with fl.Lane(base_url=gemini_emulator.base_url, api_key="test-key", clock=TestClock()) as lane:
        yield lane


def _generate_requests(base_url: str) -> list[dict[str, Any]]:
    log = control(base_url, "/_emulator/requests")
    entries = log["requests"] if isinstance(log, dict) else log
    return [e for e in entries if e["method"] in ("generateContent", "streamGenerateContent")]


def _wire_signature(part: dict[str, Any]) -> bytes | None:
    sig = part.get("thoughtSignature", part.get("thought_signature"))
    if sig is None:
        return None
    return base64.b64decode(sig.replace("-", "+").replace("_", "/") + "=" * (-len(sig) % 4))


def _call_names(content: dict[str, Any]) -> list[str]:
    return [(p.get("functionCall") or p.get("function_call"))["name"] for p in content.get("parts", [])
            if "functionCall" in p or "function_call" in p]


# ---------------------------------------------------------------------------- declarations


def test_declarations_from_python() -> None:
    fn = function_tool(get_weather)
    assert fn.name == "get_weather" and fn.description == "Weather forecast for a city."
    props = fn.json_schema["properties"]
    assert props["city"] == {"description": "The city name.", "title": "City", "type": "string"}
    assert props["days"]["type"] == "integer" and props["days"]["default"] == 1
    assert fn.json_schema["required"] == ["city"] and fn.json_schema["additionalProperties"] is False
    assert fn.validate({"city": "Oslo", "days": "3"}) == {"city": "Oslo", "unit": "celsius", "days": 3}
    with pytest.raises(ValueError, match="days"):
        fn.validate({"city": "Oslo", "days": "many"})
    booking = function_tool(Booking)
    assert booking.description == "Book a table." and set(booking.json_schema["required"]) == {"name", "seats", "day"}
    assert booking.validate({"name": "Ana", "seats": 2, "day": "2026-12-01"}) == Booking(
        name="Ana", seats=2, day=dt.date(2026, 12, 1))
    raw = function_tool({"name": "lookup", "description": "d", "parameters": {
        "type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}})
    assert raw.validate({"q": "x"}) == {"q": "x"}
    with pytest.raises(ValueError, match="'q' is a required property"):
        raw.validate({})
    # built-ins with functions: the tool-combination guide's include_server_side_tool_invocations
    assert Toolset.of([fl.GoogleSearch(), get_weather]).tool_config().include_server_side_tool_invocations is True
    assert Toolset.of([get_weather]).tool_config() is None and Toolset.of([fl.GoogleSearch()]).tool_config() is None


@pytest.mark.parametrize(("tools", "choice", "message"), [
    ([get_weather], "sometimes", "tool_choice 'sometimes' is not a declared function"),
    ([get_weather, get_weather], None, "two tools are named 'get_weather'"),
    (["web_search"], None, "unknown built-in tool 'web_search'"),
    ([{"name": "bad name!"}], None, "invalid function name 'bad name!'"),
    ([{"name": "f", "params": {}}], None, "unknown key 'params' in a function declaration"),
    (None, "any", "tool_choice was given without tools"),
])
def test_bad_tools_are_config_errors(tools: Any, choice: Any, message: str) -> None:
    with pytest.raises(fl.ConfigError, match=message):
        Toolset.of(tools, choice)


def test_wire_declarations_and_tool_choice(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    r = lane.generate("Book for Ana, 2 seats, 1 December", tools=[Booking, get_weather], tool_choice=["Booking"])
    assert [c.name for c in r.tool_calls] == ["Booking"] and r.text == ""  # calls, not EmptyAnswer
    call = r.tool_calls[0]
    assert isinstance(call.args, Booking) and call.error is None and 1 <= call.args.seats <= 12
    assert call.raw_args["day"] == call.args.day.isoformat()
    r = lane.generate("Weather in Oslo?", tools=[get_weather], tool_choice="none")
    assert r.text and r.tool_calls == []
    assert SEEN == []  # nothing runs without run_tools


# ---------------------------------------------------------------------------- the loop


def test_two_rounds_echo_each_signature_byte_for_byte(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    """Round 1: two parallel calls; round 2 (scripted): one call; then the answer. Every request
    after the first carries each earlier model turn's thought signature exactly as received."""
    scenario(gemini_emulator.base_url, {"match": {"nth": 2}, "action": {"function_calls": [
        {"name": "get_weather", "args": {"city": "Porto"}}]}})
    r = lane.generate("What is the weather and the time in Lisbon?", tools=[get_weather, get_time],
                      run_tools=True)
    assert r.text and r.tool_rounds == 2 and r.attempts == 3
    assert [(c.round, c.name) for c in r.tool_calls] == [(1, "get_weather"), (1, "get_time"), (2, "get_weather")]
    assert SEEN[0][0] == "get_weather" and SEEN[1][0] == "get_time" and SEEN[2] == ("get_weather", "Porto")
    # the raising function became an error result the model saw; the loop went on
    assert r.tool_calls[1].result == {"error": "RuntimeError: the clock service is down"}
    assert r.tool_calls[0].result == {"output": {"city": SEEN[0][1], "temp": 21, "unit": r.tool_calls[0].args["unit"]}}
    sig1, sig2 = r.tool_calls[0].thought_signature, r.tool_calls[2].thought_signature
    assert sig1 and sig2 and sig1 != sig2 and r.tool_calls[1].thought_signature is None  # only the first is signed

    reqs = _generate_requests(gemini_emulator.base_url)
    assert len(reqs) == 3
    second, third = reqs[1]["contents"], reqs[2]["contents"]
    assert [c["role"] for c in second] == ["user", "model", "user"]
    assert _call_names(second[1]) == ["get_weather", "get_time"]
    assert _wire_signature(second[1]["parts"][0]) == sig1  # byte for byte
    assert _wire_signature(second[1]["parts"][1]) is None
    responses = second[2]["parts"]
    assert [(p.get("functionResponse") or p.get("function_response"))["name"] for p in responses] == \
        ["get_weather", "get_time"]  # both results in one user turn, in the calls' order
    assert [c["role"] for c in third] == ["user", "model", "user", "model", "user"]
    assert _wire_signature(third[1]["parts"][0]) == sig1 and _wire_signature(third[3]["parts"][0]) == sig2
    assert lane.totals.calls == 3


def test_loop_stops_at_its_bound_with_the_calls_so_far(lane: fl.Lane) -> None:
    # mode ANY: the model is constrained to always call (ws 04), so it never answers in text
    with pytest.raises(fl.ToolLoopExceeded) as ei:
        lane.generate("Weather in Oslo?", tools=[get_weather], tool_choice="any", run_tools=True, max_tool_rounds=2)
    e = ei.value
    assert e.rounds == 2 and [c.round for c in e.calls] == [1, 2, 3]
    assert [c.result is not None for c in e.calls] == [True, True, False]  # the third was never run
    assert "max_tool_rounds=2" in str(e) and e.hint and e.reason_code == "tool_loop"
    assert e.usage.prompt_tokens > 0 and len(SEEN) == 2
    assert lane.totals.calls == 3


def test_a_call_to_a_declaration_without_a_function_ends_the_loop(lane: fl.Lane) -> None:
    r = lane.generate("Weather in Oslo, then book for Ana", tools=[get_weather, Booking], run_tools=True)
    # round 1 calls both: Booking has no function to run, so that answer is the result
    assert [c.name for c in r.tool_calls] == ["get_weather", "Booking"] and r.tool_rounds == 0
    assert isinstance(r.tool_calls[1].args, Booking) and SEEN == []


def test_loop_shares_one_deadline(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    clock = TestClock()

    def slow(city: str) -> str:
        """Slow lookup."""
        clock.advance(40)  # the function takes 40 s of the call's 60 s deadline, twice
        return "sunny"

    with fl.Lane(base_url=gemini_emulator.base_url, api_key="k", clock=clock, retry_deadline_s=60) as lane, \
            pytest.raises(fl.Timeout, match="whole 60 s deadline"):
        lane.generate("Weather?", tools=[slow], tool_choice="any", run_tools=True, max_tool_rounds=5)
    assert len(_generate_requests(gemini_emulator.base_url)) == 2


def test_async_loop_runs_parallel_calls_concurrently(gemini_emulator) -> None:  # type: ignore[no-untyped-def]
    running: list[int] = []
    peak: list[int] = []

    async def fetch_a(key: str) -> str:
        """A."""
        running.append(1)
        peak.append(len(running))
        await asyncio.sleep(0.05)
        running.pop()
        return "a"

    def fetch_b(key: str) -> str:
        """B."""
        raise ValueError("no such key")

    async def main() -> fl.Result:
        async with fl.Lane(base_url=gemini_emulator.base_url, api_key="k", clock=TestClock()) as lane:
            return await lane.agenerate("Fetch both", tools=[fetch_a, fetch_b], run_tools=True)

    r = asyncio.run(main())
    assert r.text and r.tool_rounds == 1
    assert [c.result for c in r.tool_calls] == [{"output": "a"}, {"error": "ValueError: no such key"}]


def test_run_tools_needs_a_function(lane: fl.Lane) -> None:
    with pytest.raises(fl.ConfigError, match="run_tools=True needs at least one Python function"):
        lane.generate("x", tools=[Booking], run_tools=True)


# ---------------------------------------------------------------------------- built-ins


def test_grounded_answer_sources_and_citations_are_typed(lane: fl.Lane) -> None:
    r = lane.generate("Who won the 2026 chess olympiad?", tools=[fl.GoogleSearch()])
    assert r.search_queries == ["who won the 2026 chess olympiad"]
    assert 2 <= len(r.sources) <= 3
    for i, s in enumerate(r.sources):
        assert isinstance(s, fl.Source) and s.index == i and s.kind == "web"
        assert s.uri.startswith("https://www.example.") and s.title
    data = r.text.encode()
    assert r.citations
    for c in r.citations:
        assert data[c.start:c.end].decode() == c.text  # byte offsets into the answer
        assert all(0 <= i < len(r.sources) for i in c.sources)
        assert all(c in r.sources[i].segments for i in c.sources)
    assert r.as_dict()["sources"][0]["uri"] == r.sources[0].uri
    assert r.usage.search_queries == 1 and r.usage.grounded_prompts == 1


def test_url_context_reports_each_urls_status(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    prompt = "Compare https://docs.example.com/a, https://fail.example.com/b and https://news.example.org/paywall/c"
    r = lane.generate(prompt, tools=[fl.UrlContext()])
    assert [(u.url, u.status, u.ok) for u in r.url_statuses] == [
        ("https://docs.example.com/a", "SUCCESS", True),
        ("https://fail.example.com/b", "ERROR", False),
        ("https://news.example.org/paywall/c", "PAYWALL", False),
    ]
    assert [s.uri for s in r.sources] == ["https://docs.example.com/a"]


def test_code_execution_runs_come_back_with_output(lane: fl.Lane) -> None:
    r = lane.generate("What is 17 * 23 + 4? Compute it.", tools=[fl.CodeExecution()])
    assert len(r.code) == 1
    run = r.code[0]
    assert "17 * 23 + 4" in run.code and run.language == "PYTHON"
    assert (run.outcome, run.output) == ("OUTCOME_OK", "395\n")
    assert r.text.startswith("The result is 395.")


def test_grounding_is_charged_per_query(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    scenario(gemini_emulator.base_url, {"action": {"search_queries": ["q one", "q two", "q three"]}})
    r = lane.generate("Latest news?", tools=[fl.GoogleSearch()])
    u = r.usage
    assert u.search_queries == 3
    tokens = (u.prompt_tokens * 0.25 + u.billed_output_tokens * 1.50) / 1e6
    assert r.cost_usd == pytest.approx(tokens + 3 * 14.0 / 1000)  # $14 / 1,000 queries (catalog)
    assert lane.totals.cost_usd == pytest.approx(r.cost_usd)
    with fl.Lane(base_url=gemini_emulator.base_url, api_key="k", model="gemini-2.5-flash-lite") as old:
        r25 = old.generate("Latest news?", tools=[fl.GoogleSearch()])
    u = r25.usage
    # 2.5 bills per grounded prompt: one, whatever the number of queries ($35 / 1,000)
    assert r25.cost_usd == pytest.approx((u.prompt_tokens * 0.10 + u.billed_output_tokens * 0.40) / 1e6 + 0.035)


# ---------------------------------------------------------------------------- streaming


def test_stream_with_the_tool_loop(gemini_emulator, lane: fl.Lane) -> None:  # type: ignore[no-untyped-def]
    s = lane.stream("Weather in Oslo?", tools=[get_weather], run_tools=True)
    text = "".join(s)
    assert text and s.result is not None and s.result.text == text
    assert s.result.tool_rounds == 1 and [c.name for c in s.result.tool_calls] == ["get_weather"]
    assert s.result.tool_calls[0].result["output"]["temp"] == 21
    reqs = _generate_requests(gemini_emulator.base_url)
    assert [e["method"] for e in reqs] == ["streamGenerateContent"] * 2
    assert _wire_signature(reqs[1]["contents"][1]["parts"][0]) == s.result.tool_calls[0].thought_signature


def test_async_stream_with_the_tool_loop_and_its_bound(lane: fl.Lane) -> None:
    async def lookup(city: str) -> dict[str, Any]:
        """Async lookup."""
        return {"city": city, "ok": True}

    async def main() -> tuple[str, fl.Result | None]:
        s = lane.astream("Weather in Oslo?", tools=[lookup], run_tools=True)
        text = "".join([t async for t in s])
        with pytest.raises(fl.ToolLoopExceeded) as ei:
            async for _ in lane.astream("Weather?", tools=[lookup], tool_choice="any", run_tools=True,
                                        max_tool_rounds=1):
                pass
        assert [c.round for c in ei.value.calls] == [1, 2]
        return text, s.result

    text, result = asyncio.run(main())
    assert text and result is not None and result.tool_rounds == 1
    assert result.tool_calls[0].result["output"]["ok"] is True


def test_stream_without_the_loop_returns_the_calls(lane: fl.Lane) -> None:
    s = lane.stream("Weather in Oslo?", tools=[get_weather])
    assert "".join(s) == ""
    assert s.result is not None and [c.name for c in s.result.tool_calls] == ["get_weather"] and SEEN == []


def test_stream_grounding_and_code(lane: fl.Lane) -> None:
    async def main() -> fl.Result | None:
        s = lane.astream("How much is 2 ** 10 and what do search engines say?",
                         tools=[fl.GoogleSearch(), fl.CodeExecution()])
        text = "".join([t async for t in s])
        assert text.startswith("The result is 1024.")
        return s.result

    r = asyncio.run(main())
    assert r is not None and r.code[0].output == "1024\n" and r.sources and r.citations
    data = r.text.encode()
    assert all(data[c.start:c.end].decode() == c.text for c in r.citations)


# ---------------------------------------------------------------------------- tasks and runs


def test_custom_task_files_take_builtin_tools(tmp_path: Any) -> None:
    from flashlane.tasks import load_task_file

    (tmp_path / "t.toml").write_text('name = "facts"\ntemplate = "Check: {text}"\ntools = ["google_search", "code-execution"]\n')
    task = load_task_file(tmp_path / "t.toml")
    assert task.tools == (fl.GoogleSearch(), fl.CodeExecution()) and task.tool_names == ["google_search", "code_execution"]
    (tmp_path / "t.yaml").write_text("template: '{text}'\ntools: [web]\n")
    with pytest.raises(fl.InputError, match="unknown tool 'web'"):
        load_task_file(tmp_path / "t.yaml")
    with pytest.raises(fl.ConfigError, match="tasks take built-in tools only"):
        fl.Task(name="x", tools=(get_weather,))


def test_python_task_with_url_context(lane: fl.Lane) -> None:
    task = fl.Task(name="page_topic", item_template="What is {text} about?", tools=(fl.UrlContext(),))
    assert lane.run_task(task, text="https://docs.example.com/guide").strip()
    assert lane.generate("see https://docs.example.com/guide", tools=list(task.tools)).url_statuses[0].ok


def test_flashlane_run_ledger_charges_grounding_per_query(gemini_emulator, tmp_path: Any,  # type: ignore[no-untyped-def]
                                                          monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    import sqlite3

    scenario(gemini_emulator.base_url, {"action": {"search_queries": ["first query", "second query"]}})
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    (tmp_path / "grounded.toml").write_text(
        'name = "grounded"\ntemplate = "Is this claim true? {text}"\ntools = ["google_search"]\n')
    (tmp_path / "claims.csv").write_text("text\nThe Moon is made of rock.\nParis is in Spain.\n")
    out = tmp_path / "claims.out.jsonl"
    code, _, err = cli(capsys, "run", str(tmp_path / "grounded.toml"), str(tmp_path / "claims.csv"), "-o", str(out),
                       "--limits", "off")
    assert code == 0, err
    con = sqlite3.connect(f"{out}.flashlane.db")
    rows = con.execute("SELECT prompt_tokens, output_tokens, thoughts_tokens, cost_usd FROM usage").fetchall()
    con.close()
    assert len(rows) == 2
    for pt, ot, tt, cost in rows:  # tokens at $0.25 / $1.50 per 1M plus 2 queries at $14 / 1,000
        assert cost == pytest.approx((pt * 0.25 + (ot + tt) * 1.50) / 1e6 + 2 * 0.014)
    reqs = _generate_requests(gemini_emulator.base_url)
    assert all(r["method"] == "generateContent" for r in reqs) and len(reqs) == 2


def test_grounded_run_rows_keep_sources_citations_and_queries(gemini_emulator, tmp_path: Any,  # type: ignore[no-untyped-def]
                                                               monkeypatch: pytest.MonkeyPatch,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 20: rows of examples/factcheck.toml carry what grounding paid for, in JSONL (lists), CSV and
    Parquet (JSON text); a rerun answered from the response cache keeps them; an input column named
    ``sources`` becomes ``input.sources``."""
    import csv
    from pathlib import Path

    import pyarrow.parquet as pq

    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", gemini_emulator.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    claims = ["The Moon is made of rock.", "Paris is in Spain.", "Water boils at 100 C at sea level."]
    # the emulator searches the first 8 words of the user's turn: the item alone, since the task's
    # instructions ride in the system instruction
    queries = ["claim the moon is made of rock", "claim paris is in spain", "claim water boils at 100 c at sea"]
    with open(tmp_path / "claims.csv", "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "sources"])
        w.writerows([c, "my notes"] for c in claims)
    task = str(Path(__file__).parent.parent / "examples" / "factcheck.toml")
    out = tmp_path / "claims.jsonl"
    code, _, err = cli(capsys, "run", task, str(tmp_path / "claims.csv"), "-o", str(out), "--limits", "off")
    assert code == 0, err
    assert len(_generate_requests(gemini_emulator.base_url)) == 3
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["status"] for r in rows] == ["ok"] * 3
    for row, claim, query in zip(rows, claims, queries, strict=True):
        assert row["input.sources"] == "my notes" and row["text"] == claim
        assert row["search_queries"] == [query]
        assert 2 <= len(row["sources"]) <= 3
        assert all(s["uri"].startswith("https://www.example.") and s["kind"] == "web" for s in row["sources"])
        text = row["result"].encode()
        assert row["citations"]
        for c in row["citations"]:  # byte offsets into the row's answer, naming its sources
            assert text[c["start"]:c["end"]].decode() == c["text"]
            assert all(0 <= i < len(row["sources"]) for i in c["sources"])

    # CSV and Parquet, answered from the response cache: no request, the same evidence as JSON text
    for name in ("claims.csv.out.csv", "claims.parquet"):
        code, _, err = cli(capsys, "run", task, str(tmp_path / "claims.csv"), "-o", str(tmp_path / name),
                           "--limits", "off")
        assert code == 0, err
    assert len(_generate_requests(gemini_emulator.base_url)) == 3
    with open(tmp_path / "claims.csv.out.csv", newline="", encoding="utf-8") as f:
        table = list(csv.DictReader(f))
    parquet = pq.read_table(tmp_path / "claims.parquet").to_pylist()
    for flat in (table, parquet):
        assert [r["cached"] in (True, "True") for r in flat] == [True] * 3
        for r, row in zip(flat, rows, strict=True):
            assert {k: json.loads(r[k]) for k in ("sources", "citations", "search_queries")} == {
                k: row[k] for k in ("sources", "citations", "search_queries")}
            assert r["input.sources"] == "my notes"


def test_lane_map_results_carry_typed_evidence(lane: fl.Lane) -> None:
    task = fl.Task(name="facts", item_template="Check: {text}", tools=("google_search",))
    res = lane.map(task, ["The Moon is made of rock.", "Paris is in Spain."])
    assert all(r.ok for r in res)
    for r, query in zip(res, ["check the moon is made of rock", "check paris is in spain"], strict=True):
        assert r.search_queries == (query,)
        assert r.sources and all(isinstance(s, fl.Source) and s.uri for s in r.sources)
        assert r.citations and all(c in r.sources[i].segments for c in r.citations for i in c.sources)
        assert all(r.value.encode()[c.start:c.end].decode() == c.text for c in r.citations)
    plain = lane.map(fl.Task(name="plain", item_template="{text}"), ["hi"])
    assert (plain[0].sources, plain[0].citations, plain[0].search_queries) == ((), (), ())


# ---------------------------------------------------------------------------- CLI


def test_ask_search_prints_numbered_citations(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "ask", "Who won the 2026 chess olympiad?", "--search", "--emulator")
    assert code == 0
    answer, sources = out.split("\nSources:\n")
    assert "[1]" in answer and "[2]" in answer
    lines = sources.strip().splitlines()
    assert lines[0].startswith("[1] ") and "https://www.example.com/" in lines[0]
    assert all(f"[{i + 1}] " in line and "https://" in line for i, line in enumerate(lines))


def test_ask_json_carries_the_tool_parts(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "ask", "What is 6 * 7? Then compare", "--url", "https://docs.example.com/a",
                          "--url", "https://fail.example.com/b", "--code", "--search", "--json", "--emulator")
    assert code == 0, err
    data = json.loads(out)
    assert [(u["url"], u["status"]) for u in data["url_statuses"]] == [
        ("https://docs.example.com/a", "SUCCESS"), ("https://fail.example.com/b", "ERROR")]
    assert data["code"][0]["output"] == "42\n" and data["code"][0]["outcome"] == "OUTCOME_OK"
    assert data["sources"][0]["uri"] == "https://docs.example.com/a" and data["citations"]
    assert data["search_queries"] and data["usage"]["search_queries"] == 1


def test_ask_rejects_a_non_url(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "ask", "hi", "--url", "docs.example.com", "--emulator")
    assert code == 2 and "is not an http(s) URL" in err


def test_cite_marks_byte_offsets() -> None:
    from flashlane.call.tools import Citation, cite

    text = "Olá mundo. Fim."
    marked = cite(text, [Citation("Olá mundo.", 0, 11, (0,)), Citation("Fim.", 12, 16, (1, 0)),
                         Citation("bad", 3, 99, (0,))])
    assert marked == "Olá mundo.[1] Fim.[1][2]"
