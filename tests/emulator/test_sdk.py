"""The real google-genai SDK (sync, async, streaming, Vertex express) against the emulator."""

from __future__ import annotations

import json
from enum import Enum

import jsonschema
import pytest
from google import genai
from google.genai import errors, types
from pydantic import BaseModel, Field

from flashlane.emulator import Emulator
from flashlane.models import CATALOG, estimate_tokens

from .conftest import AIOHTTP_SUBCLASS_WARNING, MODEL, make_client

pytestmark = pytest.mark.filterwarnings(AIOHTTP_SUBCLASS_WARNING)


class Sentiment(str, Enum):  # noqa: UP042 - the (str, Enum) form many users still write
    positive = "positive"
    negative = "negative"
    neutral = "neutral"


class Classification(BaseModel):
    label: Sentiment
    confidence: float = Field(ge=0, le=1)
    reasoning: str


class Address(BaseModel):
    city: str
    country: str


class Person(BaseModel):
    name: str
    age: int = Field(ge=0, le=120)
    tags: list[str] = Field(min_length=1, max_length=3)
    address: Address
    nickname: str | None = None


def test_generate_text_and_usage(client: genai.Client) -> None:
    contents = "Write a greeting for the team in 20 words."
    r = client.models.generate_content(
        model=MODEL,
        contents=contents,
        config=types.GenerateContentConfig(
            system_instruction="You are terse.",
            thinking_config=types.ThinkingConfig(thinking_level="minimal"),
            max_output_tokens=256,
        ),
    )
    assert r.text and len(r.text.split()) < 20
    u = r.usage_metadata
    assert u.prompt_token_count == estimate_tokens(contents) + estimate_tokens("You are terse.")
    assert u.candidates_token_count == estimate_tokens(r.text)
    assert u.thoughts_token_count == CATALOG[MODEL].thinking_tokens("minimal")
    assert u.total_token_count == u.prompt_token_count + u.candidates_token_count + u.thoughts_token_count
    assert r.candidates[0].finish_reason == types.FinishReason.STOP
    assert r.model_version == MODEL and r.response_id


def test_answers_are_deterministic(client: genai.Client) -> None:
    a = client.models.generate_content(model=MODEL, contents="Describe the ocean.")
    b = client.models.generate_content(model=MODEL, contents="Describe the ocean.")
    c = client.models.generate_content(model=MODEL, contents="Describe the desert.")
    assert a.text == b.text != c.text


def test_count_tokens_matches_usage(client: genai.Client) -> None:
    contents = ["first part of the prompt", "and a second, longer part of the same prompt"]
    ct = client.models.count_tokens(model=MODEL, contents=contents)
    r = client.models.generate_content(model=MODEL, contents=contents)
    assert ct.total_tokens == r.usage_metadata.prompt_token_count == sum(estimate_tokens(t) for t in contents)


def test_stream(client: genai.Client) -> None:
    chunks = list(
        client.models.generate_content_stream(
            model=MODEL, contents="Tell a short story about a lighthouse keeper and the winter sea."
        )
    )
    assert len(chunks) > 1
    assert len({c.response_id for c in chunks}) == 1
    assert all(c.usage_metadata.prompt_token_count for c in chunks)
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert all(c.candidates[0].finish_reason is None for c in chunks[:-1])
    text = "".join(c.text or "" for c in chunks)
    assert chunks[-1].usage_metadata.candidates_token_count == estimate_tokens(text)
    full = client.models.generate_content(
        model=MODEL, contents="Tell a short story about a lighthouse keeper and the winter sea."
    )
    assert full.text == text


async def test_async_generate_and_stream(aclient: genai.client.AsyncClient) -> None:
    r = await aclient.models.generate_content(model=MODEL, contents="Hello there")
    assert r.text
    chunks = [
        c
        async for c in await aclient.models.generate_content_stream(
            model=MODEL, contents="A longer question about rivers and lakes"
        )
    ]
    assert len(chunks) > 1
    ct = await aclient.models.count_tokens(model=MODEL, contents="Hello there")
    assert ct.total_tokens == r.usage_metadata.prompt_token_count


async def test_async_errors(emu: Emulator, aclient: genai.client.AsyncClient) -> None:
    emu.load_scenario([{"action": {"error": 503}}])
    with pytest.raises(errors.ServerError) as ei:
        await aclient.models.generate_content(model=MODEL, contents="x")
    assert ei.value.code == 503 and ei.value.status == "UNAVAILABLE"


def test_models_list_and_get(client: genai.Client) -> None:
    names = [m.name for m in client.models.list()]
    assert "models/gemini-3.1-flash-lite" in names
    assert "models/gemini-3.1-flash-lite-preview" not in names
    paged = list(client.models.list(config={"page_size": 1}))
    assert [m.name for m in paged] == names
    m = client.models.get(model=MODEL)
    assert m.name == f"models/{MODEL}" and m.input_token_limit == CATALOG[MODEL].input_token_limit


@pytest.mark.parametrize("model", ["gemini-3.1-flash-lite-preview", "gemini-9-nope"])
def test_retired_and_unknown_models_404(client: genai.Client, model: str) -> None:
    with pytest.raises(errors.ClientError) as ei:
        client.models.generate_content(model=model, contents="hi")
    assert ei.value.code == 404 and ei.value.status == "NOT_FOUND"
    assert ei.value.message == (
        f"models/{model} is not found for API version v1, or is not supported for generateContent. "
        "Call ModelService.ListModels to see the list of available models and their supported methods."
    )


def test_structured_pydantic_response_schema(client: genai.Client) -> None:
    r = client.models.generate_content(
        model=MODEL,
        contents="Classify: Fast shipping, great quality.",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=Classification
        ),
    )
    assert isinstance(r.parsed, Classification)
    assert 0 <= r.parsed.confidence <= 1


def test_structured_json_schema_dict(client: genai.Client) -> None:
    schema = Person.model_json_schema()
    r = client.models.generate_content(
        model=MODEL,
        contents="Invent a person.",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    assert isinstance(r.parsed, dict)
    jsonschema.validate(r.parsed, schema)
    Person.model_validate(r.parsed)
    assert r.text == json.dumps(r.parsed, indent=2)


def test_enum_mime(client: genai.Client) -> None:
    r = client.models.generate_content(
        model=MODEL,
        contents="Sentiment of 'great'?",
        config=types.GenerateContentConfig(response_mime_type="text/x.enum", response_schema=Sentiment),
    )
    assert r.parsed in list(Sentiment)


def test_max_tokens_while_thinking(client: genai.Client) -> None:
    r = client.models.generate_content(
        model=MODEL,
        contents="hi",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_level="high"), max_output_tokens=100
        ),
    )
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.text is None
    assert r.usage_metadata.thoughts_token_count == 100
    assert r.usage_metadata.candidates_token_count is None


def test_answer_truncated_to_fit_cap(client: genai.Client) -> None:
    thoughts = CATALOG[MODEL].thinking_tokens("minimal")
    r = client.models.generate_content(
        model=MODEL,
        contents="Explain the tides in detail please",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_level="MINIMAL"), max_output_tokens=thoughts + 3
        ),
    )
    assert r.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS
    assert r.text and r.usage_metadata.candidates_token_count <= 3


def test_budget_model_and_thinking_400s(client: genai.Client) -> None:
    r = client.models.generate_content(
        model="gemini-2.5-flash-lite",
        contents="hi",
        config=types.GenerateContentConfig(thinking_config=types.ThinkingConfig(thinking_budget=1024)),
    )
    assert r.usage_metadata.thoughts_token_count == CATALOG["gemini-2.5-flash-lite"].thinking_tokens(
        budget=1024
    )
    for model, tc in [
        ("gemini-2.5-flash-lite", types.ThinkingConfig(thinking_level="low")),
        (MODEL, types.ThinkingConfig(thinking_level="low", thinking_budget=100)),
        ("gemini-2.5-flash-lite", types.ThinkingConfig(thinking_budget=5)),
    ]:
        with pytest.raises(errors.ClientError) as ei:
            client.models.generate_content(
                model=model, contents="hi", config=types.GenerateContentConfig(thinking_config=tc)
            )
        assert ei.value.code == 400 and ei.value.status == "INVALID_ARGUMENT"


def test_include_thoughts_returns_thought_part(client: genai.Client) -> None:
    r = client.models.generate_content(
        model=MODEL,
        contents="hi there",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_level="low", include_thoughts=True)
        ),
    )
    parts = r.candidates[0].content.parts
    assert parts[0].thought is True and not parts[1].thought
    assert r.text == parts[1].text


def test_vertex_express_mode(emu: Emulator) -> None:
    c = genai.Client(vertexai=True, api_key="vertex-key", http_options={"base_url": emu.base_url})
    r = c.models.generate_content(model=MODEL, contents="hello vertex")
    assert r.text
    chunks = list(
        c.models.generate_content_stream(model=MODEL, contents="a longer vertex streaming question here")
    )
    assert len(chunks) > 1
    assert (
        c.models.count_tokens(model=MODEL, contents="hello vertex").total_tokens
        == r.usage_metadata.prompt_token_count
    )
    c.close()


def test_vertex_project_path_and_bearer(emu: Emulator) -> None:
    import httpx2 as httpx

    url = f"{emu.base_url}/v1beta1/projects/my-proj/locations/us-central1/publishers/google/models/{MODEL}:generateContent"
    body = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    resp = httpx.post(url, json=body, headers={"Authorization": "Bearer token"})
    assert resp.status_code == 200 and resp.json()["candidates"][0]["content"]["parts"][0]["text"]
    assert emu.requests()[-1]["project"] == "my-proj"


def test_v1beta_and_query_key(emu: Emulator) -> None:
    import httpx2 as httpx

    body = {
        "contents": [{"parts": [{"text": "hi"}]}],
        "generation_config": {"max_output_tokens": "200", "thinking_config": {"thinking_level": "low"}},
    }
    resp = httpx.post(f"{emu.base_url}/v1beta/models/{MODEL}:generateContent?key=abc", json=body)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/json; charset=UTF-8"
    assert resp.json()["usageMetadata"]["thoughtsTokenCount"] == CATALOG[MODEL].thinking_tokens("low")
    c = make_client(emu, api_version="v1alpha")
    assert c.models.generate_content(model=MODEL, contents="hi").text
    c.close()


def test_tutorial_snippets_env_only(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", emu.base_url)
    monkeypatch.setenv("GEMINI_API_KEY", "dummy")
    client = genai.Client()
    response = client.models.generate_content(
        model="gemini-3.1-flash-lite",
        contents="Explain how AI works in a few words",
        config=types.GenerateContentConfig(
            thinking_config=types.ThinkingConfig(thinking_level="minimal"),
            max_output_tokens=512,
        ),
    )
    assert response.text
    for chunk in client.models.generate_content_stream(
        model="gemini-3.1-flash-lite", contents="Explain how AI works"
    ):
        assert chunk.text is not None

    class Recipe(BaseModel):
        recipe_name: str
        ingredients: list[str]

    response = client.models.generate_content(
        model="gemini-3.1-flash-lite",
        contents="List a few popular cookie recipes.",
        config={"response_mime_type": "application/json", "response_json_schema": Recipe.model_json_schema()},
    )
    Recipe.model_validate_json(response.text)
    client.close()
