"""What other people's clients meet (issue 25): the JSON-array stream, Gemini 3 chunking and
signatures, the batch guide's REST script, the recorded models listing, embeddings, OpenAI-shaped
batch lines and answers that fit the request. Real SDK or raw HTTP against a real emulator."""

from __future__ import annotations

import json
import math
from typing import Any

import httpx2 as httpx
from google import genai
from google.genai import types

from flashlane.emulator import Emulator

from .conftest import load_sample

KEY = {"x-goog-api-key": "test-key"}
GEMINI3 = "gemini-3.6-flash"


def _post(emu: Emulator, model: str, op: str, body: dict[str, Any], query: str = "") -> httpx.Response:
    r = httpx.post(f"{emu.base_url}/v1beta/models/{model}:{op}{query}", json=body, headers=KEY)
    assert r.status_code == 200, r.text
    return r


def _elements(raw: str) -> list[str]:
    """The elements of a JSON-array stream, split on the recorded framing."""
    assert raw.startswith("[{\n") and raw.endswith("\n}\n]")
    return raw[1:-2].split("\n,\r\n")


def test_stream_without_alt_sse_is_the_recorded_json_array(emu: Emulator) -> None:
    sample = load_sample("17")["interactions"][0]
    r = _post(emu, GEMINI3, "streamGenerateContent", sample["request"]["body"])
    theirs = sample["response"]
    assert r.headers["content-type"] == theirs["headers"]["content-type"] == "application/json; charset=UTF-8"
    ours_el, theirs_el = _elements(r.text), _elements(theirs["body_raw_text"])
    for el in ours_el + theirs_el:  # each element is one pretty-printed (2-space) object
        assert el == json.dumps(json.loads(el), indent=2, ensure_ascii=False)
    ours, recorded = json.loads(r.text), json.loads(theirs["body_raw_text"])
    assert len(ours) >= len(recorded) == 3
    for mine, live in ((ours[0], recorded[0]), (ours[-1], recorded[-1])):  # thought chunk, signed end
        assert [set(p) for p in mine["candidates"][0]["content"]["parts"]] == [
            set(p) for p in live["candidates"][0]["content"]["parts"]]
        assert set(mine["usageMetadata"]) - {"serviceTier"} == set(live["usageMetadata"]) - {"serviceTier"}
    assert [c["candidates"][0]["index"] for c in ours] == [0] * len(ours)
    assert ours[-1]["candidates"][0]["content"]["parts"] == [
        {"text": "", "thoughtSignature": ours[-1]["candidates"][0]["content"]["parts"][0]["thoughtSignature"]}]
    sse = _post(emu, GEMINI3, "streamGenerateContent", sample["request"]["body"], "?alt=sse")
    assert sse.headers["content-type"] == "text/event-stream"


def test_gemini3_thinking_answer_is_signed_and_chunked(emu: Emulator, client: genai.Client) -> None:
    config = types.GenerateContentConfig(thinking_config=types.ThinkingConfig(include_thoughts=True))
    whole = client.models.generate_content(model=GEMINI3, contents="How do I cross the street?", config=config)
    parts = whole.candidates[0].content.parts
    assert parts[0].thought and not parts[0].thought_signature  # [ws 05]: thought, then the signed answer
    assert parts[-1].text and parts[-1].thought_signature
    chunks = list(client.models.generate_content_stream(model=GEMINI3, contents="How do I cross the street?",
                                                        config=config))
    first = chunks[0].candidates[0].content.parts
    assert len(first) == 1 and first[0].thought  # the thought summary in a chunk of its own
    assert chunks[0].usage_metadata.thoughts_token_count is None
    assert chunks[1].usage_metadata.thoughts_token_count == whole.usage_metadata.thoughts_token_count
    assert all(c.candidates[0].index == 0 for c in chunks)
    last = chunks[-1].candidates[0]
    assert last.finish_reason == types.FinishReason.STOP and last.content.parts[0].text == ""
    assert last.content.parts[0].thought_signature
    assert "".join(c.text or "" for c in chunks[1:]) == whole.text
    # A Gemini 2.5 answer is not signed, and its last text chunk finishes the stream.
    lite = list(client.models.generate_content_stream(model="gemini-2.5-flash-lite", contents="Hello there"))
    assert lite[-1].text and lite[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(p.thought_signature is None for c in lite for p in c.candidates[0].content.parts)


def test_batch_guide_rest_script(emu: Emulator) -> None:
    """The batch guide's curl: upload start with single-quoted JSON, the bytes, a batch from the
    file, then the result download (gemini-api-wire.md §1.2, §1.3 [guide-batch])."""
    lines = b"".join(json.dumps({"key": f"request-{i}", "request": {"contents": [{"parts": [
        {"text": f"Describe the number {i}"}]}]}}).encode() + b"\n" for i in range(2))
    start = httpx.post(f"{emu.base_url}/upload/v1beta/files?key=test-key", headers={
        "X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start",
        "X-Goog-Upload-Header-Content-Length": str(len(lines)),
        "X-Goog-Upload-Header-Content-Type": "application/jsonl", "Content-Type": "application/jsonl"},
        content=b"{'file': {'display_name': 'my-batch-requests'}}")
    assert start.status_code == 200, start.text
    done = httpx.post(start.headers["x-goog-upload-url"], content=lines, headers={
        "Content-Length": str(len(lines)), "X-Goog-Upload-Offset": "0", "X-Goog-Upload-Command": "upload, finalize"})
    file = done.json()["file"]
    assert file["displayName"] == "my-batch-requests" and file["sizeBytes"] == str(len(lines))
    op = _post(emu, "gemini-3.1-flash-lite", "batchGenerateContent", {"batch": {
        "display_name": "my-batch-requests", "input_config": {"file_name": file["name"]}}}).json()
    got = httpx.get(f"{emu.base_url}/v1beta/{op['name']}", headers=KEY).json()
    assert got["metadata"]["state"] == "BATCH_STATE_SUCCEEDED"
    out = got["response"]["responsesFile"]
    results = httpx.get(f"{emu.base_url}/download/v1beta/{out}:download?alt=media", headers=KEY)
    rows = [json.loads(line) for line in results.text.splitlines()]
    assert [r["key"] for r in rows] == ["request-0", "request-1"] and all(r["response"]["candidates"] for r in rows)
    bad = httpx.post(f"{emu.base_url}/upload/v1beta/files?key=test-key", content=b"{'file': ",
                     headers={"X-Goog-Upload-Protocol": "resumable", "X-Goog-Upload-Command": "start"})
    assert bad.status_code == 400 and bad.json()["error"]["message"].startswith("Invalid JSON payload received.")


def test_openai_shaped_batch_lines_get_openai_shaped_results(emu: Emulator) -> None:
    """LiteLLM's Gemini batch uploads {custom_id, method, url, body} lines (openai_rows.py)."""
    lines = [{"custom_id": f"req-{i}", "method": "POST", "url": "/v1/chat/completions",
              "body": {"model": "gemini-3.1-flash-lite", "max_tokens": 50, "messages": [
                  {"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Say hi {i}"}]}}
             for i in range(2)]
    lines.append({"custom_id": "broken", "method": "POST", "url": "/v1/chat/completions", "body": {}})
    client = genai.Client(api_key="k", http_options=types.HttpOptions(base_url=emu.base_url))
    import io
    data = "".join(json.dumps(x) + "\n" for x in lines).encode()
    f = client.files.upload(file=io.BytesIO(data), config={"mime_type": "application/jsonl"})
    job = client.batches.get(name=client.batches.create(model="gemini-3.1-flash-lite", src=f.name).name)
    rows = [json.loads(x) for x in client.files.download(file=job.dest.file_name).decode().splitlines()]
    assert [r["custom_id"] for r in rows] == ["req-0", "req-1", "broken"]
    ok = rows[0]["response"]
    assert ok["status_code"] == 200 and ok["body"]["object"] == "chat.completion"
    assert ok["body"]["choices"][0]["message"]["content"] and ok["body"]["choices"][0]["finish_reason"] == "stop"
    usage = ok["body"]["usage"]
    assert usage["promptTokens"] > 0 and usage["completionTokens"] > 0
    assert usage["totalTokens"] >= usage["promptTokens"] + usage["completionTokens"]
    assert rows[2]["response"]["status_code"] == 400 and rows[2]["response"]["body"]["error"]["code"] == 3


def test_embeddings_as_recorded(emu: Emulator, client: genai.Client) -> None:
    r = client.models.embed_content(model="gemini-embedding-001", contents=["same text", "other", "same text"])
    values = [e.values for e in r.embeddings]
    assert [len(v) for v in values] == [3072] * 3 and values[0] == values[2] != values[1]
    assert abs(math.sqrt(sum(x * x for x in values[0])) - 1) < 1e-6
    cut = client.models.embed_content(model="gemini-embedding-001", contents="same text",
                                      config={"output_dimensionality": 768}).embeddings[0].values
    assert cut == values[0][:768]  # the recorded 001 cut is not renormalised
    raw = _post(emu, "gemini-embedding-2", "batchEmbedContents", {"requests": [
        {"model": "models/gemini-embedding-2", "content": {"parts": [{"text": "First text"}]}, "outputDimensionality": 768}]})
    body = raw.json()
    assert len(body["embeddings"][0]["values"]) == 768 and body["usageMetadata"]["promptTokenCount"] > 0
    assert abs(math.sqrt(sum(x * x for x in body["embeddings"][0]["values"])) - 1) < 1e-6
    one = _post(emu, "gemini-embedding-001", "embedContent", {"content": {"parts": [{"text": "same text"}]}}).json()
    assert one["embedding"]["values"] == values[0] and "usageMetadata" not in one
    refused = httpx.post(f"{emu.base_url}/v1beta/models/gemini-embedding-001:generateContent", headers=KEY,
                         json={"contents": [{"parts": [{"text": "hi"}]}]})
    assert refused.status_code == 404 and "not supported for generateContent" in refused.json()["error"]["message"]


def test_classification_prompt_gets_one_of_its_labels(client: genai.Client) -> None:
    labels = ["billing", "shipping", "returns"]
    seen = set()
    for i in range(6):
        prompt = f"Classify this ticket as one of: {', '.join(labels)}.\n\nTicket {i}: where is my parcel?"
        answer = client.models.generate_content(model="gemini-3.1-flash-lite", contents=prompt).text
        assert answer in labels
        seen.add(answer)
    assert len(seen) > 1  # chosen per request, not always the first
    prose = client.models.generate_content(model="gemini-3.1-flash-lite", contents="Tell me about the sea.").text
    assert prose not in labels and len(prose.split()) > 3


def test_function_call_arguments_come_from_the_prompt(client: genai.Client) -> None:
    weather = types.FunctionDeclaration(name="get_weather", parameters_json_schema={
        "type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"]})
    multiply = types.FunctionDeclaration(name="multiply", parameters_json_schema={
        "type": "object", "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}}, "required": ["x", "y"]})
    for prompt, tool, want in (("Weather in Paris?", weather, {"city": "Paris"}),
                               ("What's the weather like in New York today?", weather, {"city": "New York"}),
                               ("What is 5 times 3?", multiply, {"x": 5, "y": 3})):
        r = client.models.generate_content(model=GEMINI3, contents=prompt, config=types.GenerateContentConfig(
            tools=[types.Tool(function_declarations=[tool])]))
        args = r.function_calls[0].args
        assert {k: args[k] for k in want} == want
        assert r.candidates[0].finish_message is None
        assert r.usage_metadata.thoughts_token_count <= 2 * r.usage_metadata.candidates_token_count
