"""Drives one third-party Python client against a Gemini API base URL (the emulator or the gateway).

Run by tests/clients/test_python_clients.py in the clients' own venv (.cache/clients-venv, from
requirements.txt), never in flashlane's: ``python drive.py CLIENT BASE_URL`` prints one JSON object,
``{feature: {"ok": bool, "detail": ...}}``. Each client is used as its users use it, unchanged but for
the base URL; llm-gemini has no base-URL option, so for it (and only here) HTTP requests to the live
API's host are redirected at the transport (``_redirect_httpx``).
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

MODEL = "gemini-3.1-flash-lite"
KEY = "clients-test-key"
LIVE_HOST = "generativelanguage.googleapis.com"
WEATHER = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
PERSON = {"type": "object", "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
          "required": ["name", "age"]}
LONG_DOC = "The lighthouse keeper logs the weather every hour of every night. " * 200  # > 1024 tokens: cacheable

results: dict[str, dict[str, Any]] = {}


def feature(name: str, fn: Callable[[], Any]) -> None:
    try:
        results[name] = {"ok": True, "detail": fn()}
    except Exception:  # noqa: BLE001 - every failure is reported, with its traceback, to the test
        results[name] = {"ok": False, "detail": traceback.format_exc()[-1500:]}


def check(cond: Any, what: Any) -> None:
    if not cond:
        raise AssertionError(f"check failed: {what}")


def get_weather(city: str) -> str:
    """The weather in a city."""
    calls.append(city)
    return f"Sunny in {city}"


calls: list[str] = []


# ------------------------------------------------------------------ google-genai (sync and aiohttp)
def genai_client(base: str) -> Any:
    from google import genai
    from google.genai import types
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=base))


def drive_genai(base: str) -> None:
    from google.genai import types
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    c = genai_client(base)
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(
        name="get_weather", description="The weather in a city", parameters_json_schema=WEATHER)])
    feature("generate", lambda: c.models.generate_content(model=MODEL, contents="Say hello").text)

    def stream() -> Any:
        chunks = [ch.text or "" for ch in c.models.generate_content_stream(model=MODEL, contents="Tell a story")]
        check(len(chunks) > 1 and "".join(chunks), chunks)
        return len(chunks)
    feature("stream", stream)

    def structured() -> Any:
        r = c.models.generate_content(model=MODEL, contents="Invent a person", config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Person))
        check(isinstance(r.parsed, Person), r.text)
        return r.parsed.model_dump()
    feature("structured", structured)

    def tool_call() -> Any:
        r = c.models.generate_content(model=MODEL, contents="Weather in Paris?",
                                      config=types.GenerateContentConfig(tools=[tool]))
        call = r.function_calls[0]
        check(call.name == "get_weather" and call.args["city"] == "Paris", call)
        return call.args
    feature("tool", tool_call)

    def caches() -> Any:
        cache = c.caches.create(model=MODEL, config=types.CreateCachedContentConfig(contents=[LONG_DOC], ttl="300s"))
        r = c.models.generate_content(model=MODEL, contents="What does the keeper log?",
                                      config=types.GenerateContentConfig(cached_content=cache.name))
        check(r.usage_metadata.cached_content_token_count, r.usage_metadata)
        check(cache.name in [x.name for x in c.caches.list()], "listed")
        c.caches.delete(name=cache.name)
        return r.usage_metadata.cached_content_token_count
    feature("caches", caches)

    def files() -> Any:
        f = c.files.upload(file=io.BytesIO(b"notes about the sea"), config={"mime_type": "text/plain"})
        check(c.files.get(name=f.name).size_bytes == 19, f)
        check(f.uri.startswith(base), f.uri)  # through the gateway, the gateway's address
        r = c.models.generate_content(model=MODEL, contents=[f, "Summarize"])
        check(r.text, r)
        c.files.delete(name=f.name)
        return f.uri
    feature("files", files)

    def batches() -> Any:
        inline = c.batches.create(model=MODEL, src=[{"contents": [{"parts": [{"text": "hi"}], "role": "user"}]}])
        done = c.batches.get(name=inline.name)
        check(done.dest.inlined_responses[0].response.text, done)
        lines = b"".join(json.dumps({"key": f"k{i}", "request": {"contents": [{"parts": [{"text": f"row {i}"}]}]}})
                         .encode() + b"\n" for i in range(3))
        f = c.files.upload(file=io.BytesIO(lines), config={"mime_type": "application/jsonl"})
        job = c.batches.get(name=c.batches.create(model=MODEL, src=f.name).name)
        rows = [json.loads(x) for x in c.files.download(file=job.dest.file_name).decode().splitlines()]
        check([r["key"] for r in rows] == ["k0", "k1", "k2"], rows)
        return len(rows)
    feature("batches", batches)

    def embed() -> Any:
        r = c.models.embed_content(model="gemini-embedding-001", contents=["a", "b"])
        check([len(e.values) for e in r.embeddings] == [3072, 3072], "dims")
        return 3072
    feature("embed", embed)


def drive_genai_aio(base: str) -> None:
    from google.genai import types

    async def run() -> None:
        c = genai_client(base).aio
        try:
            r = await c.models.generate_content(model=MODEL, contents="Say hello")
            results["generate"] = {"ok": bool(r.text), "detail": r.text}
            n = 0
            async for _ in await c.models.generate_content_stream(model=MODEL, contents="Tell a story"):
                n += 1
            results["stream"] = {"ok": n > 1, "detail": n}
            r = await c.models.generate_content(model=MODEL, contents="Invent a person", config=types.GenerateContentConfig(
                response_mime_type="application/json", response_json_schema=PERSON))
            results["structured"] = {"ok": isinstance(r.parsed, dict) and set(r.parsed) == {"name", "age"},
                                     "detail": r.parsed}
            tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather",
                                                                               parameters_json_schema=WEATHER)])
            r = await c.models.generate_content(model=MODEL, contents="Weather in Paris?",
                                                config=types.GenerateContentConfig(tools=[tool]))
            call = r.function_calls[0]
            results["tool"] = {"ok": call.args.get("city") == "Paris", "detail": call.args}
        finally:
            await c.aclose()

    try:
        asyncio.run(run())
    except Exception:  # noqa: BLE001
        results.setdefault("generate", {"ok": False, "detail": traceback.format_exc()[-1500:]})
    for f in ("generate", "stream", "structured", "tool"):
        results.setdefault(f, {"ok": False, "detail": "not reached"})
    import aiohttp  # the async client above used aiohttp (installed), not httpx
    results["aiohttp"] = {"ok": True, "detail": aiohttp.__version__}


# ------------------------------------------------------------------ LiteLLM
def drive_litellm(base: str) -> None:
    import litellm

    api = {"api_base": base + "/v1beta", "api_key": KEY}
    model = f"gemini/{MODEL}"
    feature("generate", lambda: litellm.completion(model=model, messages=[{"role": "user", "content": "Say hello"}],
                                                   **api).choices[0].message.content)

    def stream() -> Any:
        parts = [ch.choices[0].delta.content or "" for ch in litellm.completion(
            model=model, messages=[{"role": "user", "content": "Tell a story"}], stream=True, **api)]
        check(len(parts) > 1 and "".join(parts), parts)
        return len(parts)
    feature("stream", stream)

    def structured() -> Any:
        r = litellm.completion(model=model, messages=[{"role": "user", "content": "Invent a person"}], **api,
                               response_format={"type": "json_schema", "json_schema": {"name": "person",
                                                                                         "schema": PERSON}})
        value = json.loads(r.choices[0].message.content)
        check(set(value) == {"name", "age"}, value)
        return value
    feature("structured", structured)

    def tool_call() -> Any:
        r = litellm.completion(model=model, messages=[{"role": "user", "content": "Weather in Paris?"}], **api,
                               tools=[{"type": "function", "function": {"name": "get_weather",
                                                                        "parameters": WEATHER}}])
        call = r.choices[0].message.tool_calls[0]
        check(call.function.name == "get_weather" and json.loads(call.function.arguments)["city"] == "Paris", call)
        return call.function.arguments
    feature("tool", tool_call)

    def embed() -> Any:
        r = litellm.embedding(model="gemini/gemini-embedding-001", input=["a", "b"], **api)
        check([len(d["embedding"]) for d in r.data] == [3072, 3072], r.data[:1])
        return len(r.data)
    feature("embed", embed)

    def batches() -> Any:
        lines = "".join(json.dumps({"custom_id": f"r{i}", "method": "POST", "url": "/v1/chat/completions",
                                    "body": {"model": MODEL, "messages": [{"role": "user", "content": f"hi {i}"}]}})
                        + "\n" for i in range(2)).encode()
        files_api = {"api_base": base, "api_key": KEY}
        f = litellm.create_file(file=("batch.jsonl", lines, "application/jsonl"), purpose="batch",
                                custom_llm_provider="gemini", **files_api)
        b = litellm.create_batch(completion_window="24h", endpoint="/v1/chat/completions", input_file_id=f.id,
                                 custom_llm_provider="gemini", model=MODEL, **files_api)
        got = litellm.retrieve_batch(batch_id=b.id, custom_llm_provider="gemini", model=MODEL, **files_api)
        check(got.status == "completed" and got.output_file_id, got)
        content = litellm.file_content(file_id=got.output_file_id, custom_llm_provider="gemini", **files_api)
        rows = [json.loads(x) for x in content.content.decode().splitlines()]
        check([r["custom_id"] for r in rows] == ["r0", "r1"] and rows[0]["response"]["status_code"] == 200, rows)
        return rows[0]["response"]["body"]["usage"]
    feature("batches", batches)


# ------------------------------------------------------------------ pydantic-ai
def drive_pydantic_ai(base: str) -> None:
    from pydantic import BaseModel
    from pydantic_ai import Agent
    from pydantic_ai.models.google import GoogleModel
    from pydantic_ai.providers.google import GoogleProvider

    class Person(BaseModel):
        name: str
        age: int

    model = GoogleModel(MODEL, provider=GoogleProvider(api_key=KEY, base_url=base))
    feature("generate", lambda: Agent(model).run_sync("Say hello").output)

    def stream() -> Any:
        async def run() -> list[str]:
            async with Agent(model).run_stream("Tell a story") as r:
                return [t async for t in r.stream_text(delta=True, debounce_by=None)]
        parts = asyncio.run(run())
        check(len(parts) > 1 and "".join(parts), parts)
        return len(parts)
    feature("stream", stream)

    def structured() -> Any:
        out = Agent(model, output_type=Person).run_sync("Invent a person").output
        check(isinstance(out, Person), out)
        return out.model_dump()
    feature("structured", structured)

    def tool_call() -> Any:
        calls.clear()
        agent = Agent(model, tools=[get_weather])
        out = agent.run_sync("Weather in Paris?").output
        check(calls == ["Paris"] and out, (calls, out))
        return out
    feature("tool", tool_call)


# ------------------------------------------------------------------ langchain-google-genai
def drive_langchain(base: str) -> None:
    from langchain_google_genai import ChatGoogleGenerativeAI, GoogleGenerativeAIEmbeddings
    from pydantic import BaseModel

    class Person(BaseModel):
        name: str
        age: int

    llm = ChatGoogleGenerativeAI(model=MODEL, google_api_key=KEY, base_url=base)
    feature("generate", lambda: llm.invoke("Say hello").text)

    def stream() -> Any:
        parts = [ch.text for ch in llm.stream("Tell a story")]
        check(len(parts) > 1 and "".join(parts), parts)
        return len(parts)
    feature("stream", stream)

    def structured() -> Any:
        out = llm.with_structured_output(Person).invoke("Invent a person")
        check(isinstance(out, Person), out)
        return out.model_dump()
    feature("structured", structured)

    def tool_call() -> Any:
        msg = llm.bind_tools([get_weather]).invoke("Weather in Paris?")
        call = msg.tool_calls[0]
        check(call["name"] == "get_weather" and call["args"]["city"] == "Paris", msg.tool_calls)
        return call["args"]
    feature("tool", tool_call)

    def embed() -> Any:
        e = GoogleGenerativeAIEmbeddings(model="gemini-embedding-001", google_api_key=KEY, base_url=base)
        vectors = e.embed_documents(["a", "b"])
        check(len(vectors) == 2 and len(vectors[0]) > 0, len(vectors))
        return len(vectors[0])
    feature("embed", embed)


# ------------------------------------------------------------------ llm + llm-gemini
def _redirect_httpx(base: str) -> None:
    """llm-gemini calls https://generativelanguage.googleapis.com with no way to change it: rewrite
    those requests to ``base`` at the httpx transport, in this process only (the test's redirect)."""
    import httpx

    target = httpx.URL(base)

    def rewrite(request: httpx.Request) -> None:
        if request.url.host == LIVE_HOST:
            request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
            request.headers["host"] = target.netloc.decode()

    for cls, method in ((httpx.HTTPTransport, "handle_request"), (httpx.AsyncHTTPTransport, "handle_async_request")):
        original = getattr(cls, method)

        def handle(self: Any, request: httpx.Request, _original: Any = original) -> Any:
            rewrite(request)
            return _original(self, request)
        setattr(cls, method, handle)


def drive_llm(base: str) -> None:
    _redirect_httpx(base)
    os.environ["LLM_GEMINI_KEY"] = KEY
    import llm
    from click.testing import CliRunner
    from llm.cli import cli

    def cli_prompt() -> Any:  # `llm prompt`, the command line users run
        r = CliRunner().invoke(cli, ["prompt", "-m", MODEL, "--no-log", "Say hello"])
        check(r.exit_code == 0 and r.output.strip(), (r.exit_code, r.output, r.exception))
        return r.output.strip()
    feature("generate", cli_prompt)
    model = llm.get_model(MODEL)

    def stream() -> Any:
        parts = list(model.prompt("Tell a story", stream=True))
        check(len(parts) > 1 and "".join(parts), parts)
        return len(parts)
    feature("stream", stream)

    def structured() -> Any:
        value = json.loads(model.prompt("Invent a person", schema=llm.schema_dsl("name, age int")).text())
        check(set(value) == {"name", "age"} and isinstance(value["age"], int), value)
        return value
    feature("structured", structured)

    def tool_call() -> Any:
        calls.clear()
        text = model.chain("Weather in Paris?", tools=[get_weather]).text()
        check(calls == ["Paris"] and text, (calls, text))
        return text
    feature("tool", tool_call)

    def embed() -> Any:
        vector = llm.get_embedding_model("gemini-embedding-001").embed("a")
        check(len(vector) == 3072, len(vector))
        return len(vector)
    feature("embed", embed)


CLIENTS = {"google-genai": drive_genai, "google-genai-aio": drive_genai_aio, "litellm": drive_litellm,
           "pydantic-ai": drive_pydantic_ai, "langchain-google-genai": drive_langchain, "llm-gemini": drive_llm}

if __name__ == "__main__":
    for var in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        os.environ.pop(var, None)
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"  # no fetch of LiteLLM's price list at import
    CLIENTS[sys.argv[1]](sys.argv[2].rstrip("/"))
    print(json.dumps(results, default=str))
