"""Tools through the real google-genai SDK: function calls with thought signatures (round trips,
dropped and altered signatures), tool config modes, automatic function calling, and the built-in
Google Search, URL context and code execution tools, streaming included."""

from __future__ import annotations

import base64

import jsonschema
import pytest
from google import genai
from google.genai import errors, types

from flashlane.emulator import Emulator
from flashlane.emulator.tools import evaluate

from .conftest import MODEL

WEATHER_SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "description": "The city name."},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "unit"],
    "additionalProperties": False,
}
WEATHER = types.FunctionDeclaration(
    name="get_weather", description="Weather forecast", parameters_json_schema=WEATHER_SCHEMA
)
TIME = types.FunctionDeclaration(
    name="get_time",
    description="Local time",
    parameters=types.Schema(
        type="OBJECT", properties={"timezone": types.Schema(type="STRING")}, required=["timezone"]
    ),
)
PROMPT = "What is the weather and the time in Lisbon?"


def _ask(client: genai.Client, contents: object, model: str = MODEL, **config: object) -> types.GenerateContentResponse:
    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER, TIME])], **config)
    return client.models.generate_content(model=model, contents=contents, config=cfg)


def _second_turn(first: types.GenerateContentResponse) -> list[types.Content]:
    model_turn = first.candidates[0].content
    answers = [
        types.Part.from_function_response(name=fc.name, response={"result": f"{fc.name} ok"})
        for fc in first.function_calls
    ]
    return [types.Content(role="user", parts=[types.Part.from_text(text=PROMPT)]), model_turn,
            types.Content(role="user", parts=answers)]


def test_parallel_calls_validate_and_carry_one_signature(client: genai.Client) -> None:
    r = _ask(client, PROMPT)
    calls = r.function_calls
    assert [c.name for c in calls] == ["get_weather", "get_time"]
    jsonschema.validate(calls[0].args, WEATHER_SCHEMA)
    assert isinstance(calls[1].args["timezone"], str)
    parts = r.candidates[0].content.parts
    # thought-signatures docs: parallel calls -> only the first functionCall part is signed
    assert isinstance(parts[0].thought_signature, bytes) and parts[0].thought_signature
    assert parts[1].thought_signature is None
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.usage_metadata.candidates_token_count > 0
    assert _ask(client, PROMPT).function_calls[0].args == calls[0].args  # deterministic


def test_two_turn_round_trip_echoes_signature(emu: Emulator, client: genai.Client) -> None:
    first = _ask(client, PROMPT)
    sent = first.candidates[0].content.parts[0].thought_signature
    second = _ask(client, _second_turn(first))
    assert second.function_calls is None and second.text
    assert second.candidates[0].content.parts[-1].thought_signature  # text answers are signed too
    # the wire carried the signature byte for byte
    assert emu.stats()["by_status"] == {"200": 2}
    third = _ask(client, [*_second_turn(first), second.candidates[0].content,
                          types.Content(role="user", parts=[types.Part.from_text(text="And tomorrow?")])])
    assert [c.name for c in third.function_calls] == ["get_weather", "get_time"]
    assert sent


def test_dropped_signature_is_the_live_400(client: genai.Client) -> None:
    first = _ask(client, PROMPT)
    history = _second_turn(first)
    history[1] = history[1].model_copy(deep=True)
    history[1].parts[0].thought_signature = None
    with pytest.raises(errors.ClientError) as ei:
        _ask(client, history)
    assert (ei.value.code, ei.value.status) == (400, "INVALID_ARGUMENT")
    assert ei.value.message == (
        "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
        "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
        "data, function call `default_api:get_weather` , position 2. Please refer to "
        "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
    )


def test_altered_and_placeholder_signatures(client: genai.Client) -> None:
    first = _ask(client, PROMPT)
    history = _second_turn(first)
    history[1] = history[1].model_copy(deep=True)
    sig = bytearray(history[1].parts[0].thought_signature)
    sig[-1] ^= 1
    history[1].parts[0].thought_signature = bytes(sig)
    with pytest.raises(errors.ClientError) as ei:
        _ask(client, history)
    assert ei.value.code == 400 and ei.value.message == "Corrupted thought signature."
    history[1].parts[0].thought_signature = b"skip_thought_signature_validator"  # documented placeholder
    assert _ask(client, history).text


def test_signature_rules_apply_to_gemini_3_only(client: genai.Client) -> None:
    lite25 = "gemini-2.5-flash-lite"
    first = _ask(client, PROMPT, model=lite25)
    assert first.function_calls and all(p.thought_signature is None for p in first.candidates[0].content.parts)
    assert _ask(client, _second_turn(first), model=lite25).text  # nothing to echo, nothing checked


def test_earlier_turns_are_not_validated(client: genai.Client) -> None:
    """Only the current turn is checked (docs); an old unsigned call in history is accepted."""
    first = _ask(client, PROMPT)
    history = _second_turn(first)
    history[1] = history[1].model_copy(deep=True)
    history[1].parts[0].thought_signature = None
    answer = types.Content(role="model", parts=[types.Part.from_text(text="Sunny, 14:00.")])
    r = _ask(client, [*history, answer, types.Content(role="user", parts=[types.Part.from_text(text="Thanks!")])],
             tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(mode="NONE")))
    assert r.text and r.function_calls is None


def test_modes_and_allowed_names(client: genai.Client) -> None:
    def cfg(mode: str, allowed: list[str] | None = None) -> dict[str, object]:
        return {"tool_config": types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=mode, allowed_function_names=allowed))}

    assert _ask(client, PROMPT, **cfg("NONE")).function_calls is None
    only = _ask(client, PROMPT, **cfg("ANY", ["get_time"]))
    assert [c.name for c in only.function_calls] == ["get_time"]
    # ANY keeps calling after the responses come back (as the live API did in ws 04)
    again = _ask(client, _second_turn(only), **cfg("ANY", ["get_time"]))
    assert [c.name for c in again.function_calls] == ["get_time"]
    assert _ask(client, _second_turn(only), **cfg("AUTO")).function_calls is None


def test_automatic_function_calling_with_python_functions(client: genai.Client) -> None:
    seen: list[str] = []

    def get_stock(ticker: str) -> dict[str, float]:
        """Latest price for a stock ticker."""
        seen.append(ticker)
        return {"price": 101.5}

    r = client.models.generate_content(
        model=MODEL, contents="Price of GOOG?", config=types.GenerateContentConfig(tools=[get_stock])
    )
    assert len(seen) == 1 and isinstance(seen[0], str)
    assert r.text and r.function_calls is None
    history = r.automatic_function_calling_history
    assert history[1].parts[0].function_call.name == "get_stock" and history[1].parts[0].thought_signature


def test_streaming_round_trip(client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(tools=[types.Tool(function_declarations=[WEATHER])])
    chunks = list(client.models.generate_content_stream(model=MODEL, contents=PROMPT, config=cfg))
    assert chunks[0].function_calls[0].name == "get_weather"
    assert chunks[0].candidates[0].content.parts[0].thought_signature
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    call_part = chunks[0].candidates[0].content.parts[0]
    history = [types.Content(role="user", parts=[types.Part.from_text(text=PROMPT)]),
               types.Content(role="model", parts=[call_part]),
               types.Content(role="user", parts=[types.Part.from_function_response(name="get_weather",
                                                                                   response={"t": 20})])]
    text = "".join(c.text or "" for c in client.models.generate_content_stream(model=MODEL, contents=history, config=cfg))
    assert text
    history[1] = types.Content(role="model", parts=[types.Part(function_call=call_part.function_call)])
    with pytest.raises(errors.ClientError) as ei:
        list(client.models.generate_content_stream(model=MODEL, contents=history, config=cfg))
    assert ei.value.code == 400 and "missing a thought_signature" in ei.value.message


def test_scenario_scripts_calls(emu: Emulator, client: genai.Client) -> None:
    emu.load_scenario([{"match": {"prompt_contains": "Lisbon"},
                        "action": {"function_calls": [{"name": "get_time", "args": {"timezone": "WET"}}, "get_weather"]}}])
    r = _ask(client, PROMPT)
    assert [(c.name, c.args.get("timezone")) for c in r.function_calls] == [("get_time", "WET"), ("get_weather", None)]
    jsonschema.validate(r.function_calls[1].args, WEATHER_SCHEMA)


def test_invalid_function_name_is_400(client: genai.Client) -> None:
    bad = types.FunctionDeclaration(name="get weather!", parameters_json_schema={"type": "object"})
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=MODEL, contents="hi",
                                       config=types.GenerateContentConfig(tools=[types.Tool(function_declarations=[bad])]))
    assert ei.value.code == 400
    assert ei.value.message.startswith("* GenerateContentRequest.tools[0].function_declarations[0].name: Invalid function name.")


def test_tools_from_a_cache(emu: Emulator, client: genai.Client) -> None:
    cache = client.caches.create(model=MODEL, config=types.CreateCachedContentConfig(
        system_instruction="Use the tools. " * 400, tools=[types.Tool(function_declarations=[WEATHER])]))
    r = client.models.generate_content(model=MODEL, contents=PROMPT,
                                       config=types.GenerateContentConfig(cached_content=cache.name))
    assert [c.name for c in r.function_calls] == ["get_weather"]
    assert r.usage_metadata.cached_content_token_count == cache.usage_metadata.total_token_count


def test_google_search_grounding(client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch())])
    r = client.models.generate_content(model=MODEL, contents="Who won the 2026 chess olympiad?", config=cfg)
    gm = r.candidates[0].grounding_metadata
    assert gm.web_search_queries == ["who won the 2026 chess olympiad"]
    assert 2 <= len(gm.grounding_chunks) <= 3
    assert all(c.web.uri.startswith("https://www.example.") and c.web.title for c in gm.grounding_chunks)
    assert gm.search_entry_point.rendered_content.startswith("<style>")
    data = r.text.encode()
    assert gm.grounding_supports
    for s in gm.grounding_supports:
        assert data[s.segment.start_index or 0 : s.segment.end_index].decode() == s.segment.text
        assert all(0 <= i < len(gm.grounding_chunks) for i in s.grounding_chunk_indices)
    u = r.usage_metadata
    assert u.tool_use_prompt_token_count > 0
    assert u.total_token_count == (u.prompt_token_count + u.candidates_token_count + u.thoughts_token_count
                                   + u.tool_use_prompt_token_count)


def test_url_context_statuses(emu: Emulator, client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(tools=[types.Tool(url_context=types.UrlContext())])
    prompt = ("Compare https://docs.example.com/a, https://fail.example.com/b, http://localhost:9/x "
              "and https://news.example.org/paywall/c")
    r = client.models.generate_content(model=MODEL, contents=prompt, config=cfg)
    statuses = {m.retrieved_url: m.url_retrieval_status for m in r.candidates[0].url_context_metadata.url_metadata}
    S = types.UrlRetrievalStatus
    assert statuses == {
        "https://docs.example.com/a": S.URL_RETRIEVAL_STATUS_SUCCESS,
        "https://fail.example.com/b": S.URL_RETRIEVAL_STATUS_ERROR,
        "http://localhost:9/x": S.URL_RETRIEVAL_STATUS_ERROR,
        "https://news.example.org/paywall/c": S.URL_RETRIEVAL_STATUS_PAYWALL,
    }
    assert [c.web.uri for c in r.candidates[0].grounding_metadata.grounding_chunks] == ["https://docs.example.com/a"]
    emu.load_scenario([{"action": {"url_status": {"docs.example.com": "unsafe"}}}])
    r = client.models.generate_content(model=MODEL, contents=prompt, config=cfg)
    assert r.candidates[0].url_context_metadata.url_metadata[0].url_retrieval_status == S.URL_RETRIEVAL_STATUS_UNSAFE


def test_code_execution_parts_then_text(client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(tools=[types.Tool(code_execution=types.ToolCodeExecution())])
    r = client.models.generate_content(model=MODEL, contents="What is 17 * 23 + 4? Compute it.", config=cfg)
    parts = r.candidates[0].content.parts
    assert parts[0].executable_code.language == types.Language.PYTHON
    assert "17 * 23 + 4" in parts[0].executable_code.code
    assert parts[1].code_execution_result.outcome == types.Outcome.OUTCOME_OK
    assert parts[1].code_execution_result.output == "395\n"
    assert parts[2].text.startswith("The result is 395.")
    assert r.executable_code == parts[0].executable_code.code and r.code_execution_result == "395\n"


def test_builtins_stream(client: genai.Client) -> None:
    cfg = types.GenerateContentConfig(tools=[types.Tool(google_search=types.GoogleSearch()),
                                             types.Tool(code_execution=types.ToolCodeExecution())])
    chunks = list(client.models.generate_content_stream(
        model=MODEL, contents="How much is 2 ** 10 and what do search engines say about it?", config=cfg))
    assert len(chunks) > 1
    assert chunks[0].candidates[0].content.parts[1].code_execution_result.output == "1024\n"
    assert all(c.candidates[0].grounding_metadata is None for c in chunks[:-1])
    gm = chunks[-1].candidates[0].grounding_metadata
    text = "".join(c.text or "" for c in chunks)
    for s in gm.grounding_supports:
        assert text.encode()[s.segment.start_index or 0 : s.segment.end_index].decode() == s.segment.text


def test_safe_arithmetic() -> None:
    assert evaluate("2 ** 10") == 1024 and evaluate("(1 + 2) * 3 / 2") == 4.5
    for bad in ("__import__('os')", "9 ** 9999", "1 / 0", "abs(1)"):
        with pytest.raises(ValueError):
            evaluate(bad)


def test_signature_bytes_are_base64_on_the_wire(emu: Emulator) -> None:
    """Raw REST: the signature is base64 text; URL-safe echo (as ws 07's client sent) is accepted."""
    import httpx2 as httpx

    url = f"{emu.base_url}/v1beta/models/{MODEL}:generateContent"
    tools = [{"functionDeclarations": [{"name": "get_country", "parameters_json_schema": {"type": "object", "properties": {}}}]}]
    user = {"role": "user", "parts": [{"text": "Which country? Call the tool"}]}
    first = httpx.post(url, json={"contents": [user], "tools": tools}, headers={"x-goog-api-key": "k"}).json()
    # As recorded (llm-gemini cassette test_tools_with_gemini_3_thought_signatures.yaml): no finishMessage,
    # and a trivial call thinks little (32 thinking tokens for 16 of call there), not the level's full spend.
    assert "finishMessage" not in first["candidates"][0] and first["candidates"][0]["index"] == 0
    usage = first["usageMetadata"]
    assert 0 < usage["thoughtsTokenCount"] <= 2 * usage["candidatesTokenCount"]
    part = first["candidates"][0]["content"]["parts"][0]
    raw = base64.b64decode(part["thoughtSignature"])
    urlsafe = base64.urlsafe_b64encode(raw).decode()
    body = {"contents": [user, {"role": "model", "parts": [{"function_call": part["functionCall"], "thought_signature": urlsafe}]},
                         {"role": "user", "parts": [{"function_response": {"name": "get_country", "response": {"r": "MX"}}}]}],
            "tools": tools}
    r = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert r.status_code == 200, r.text
    body["contents"][1]["parts"][0]["thought_signature"] = "not base64!"
    r = httpx.post(url, json=body, headers={"x-goog-api-key": "k"})
    assert r.status_code == 400 and "Base64 decoding failed" in r.json()["error"]["message"]


def test_declarations_are_billed_as_prompt_tokens(emu: Emulator, client: genai.Client) -> None:
    """The live API counts function declarations in promptTokenCount (ws 04); so do countTokens
    (generateContentRequest form) and a cache that holds them."""
    import httpx2 as httpx

    plain = client.models.generate_content(model=MODEL, contents=PROMPT)
    with_tools = _ask(client, PROMPT)
    extra = with_tools.usage_metadata.prompt_token_count - plain.usage_metadata.prompt_token_count
    assert extra > 20
    body = {"generateContentRequest": {"model": f"models/{MODEL}", "contents": [{"role": "user", "parts": [{"text": PROMPT}]}],
                                       "tools": [{"functionDeclarations": [WEATHER.model_dump(exclude_none=True, by_alias=True),
                                                                           TIME.model_dump(exclude_none=True, by_alias=True)]}]}}
    counted = httpx.post(f"{emu.base_url}/v1beta/models/{MODEL}:countTokens", json=body,
                         headers={"x-goog-api-key": "k"}).json()["totalTokens"]
    assert counted == with_tools.usage_metadata.prompt_token_count
