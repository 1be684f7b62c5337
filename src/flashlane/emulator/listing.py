"""The models the emulator lists and which methods each one serves.

``models.list`` answers the recorded live listing (``listing.json``: the first page of a live
``GET v1beta/models``, sample 19 in shared/wire-samples, 50 models including the embedding models),
with each catalog model's own facts in its recorded place, and after them the catalog models the
recording predates and the served ``extra_models``. Retired catalog models are not listed (the API
answers 404 for them). A listed model that names ``generateContent`` is served like an uncatalogued
one (``models.uncatalogued``); a listed embedding model serves ``embedContent`` and
``batchEmbedContents`` (embeddings.py).
"""

from __future__ import annotations

import json
from dataclasses import replace
from functools import cache
from importlib import resources
from typing import Any

from ..models import CATALOG, ModelInfo, canonical_id, lookup, uncatalogued

GENERATE_METHODS = ("generateContent", "countTokens", "createCachedContent", "batchGenerateContent")
EMBED_METHODS = ("embedContent", "batchEmbedContents")


def model_resource(info: ModelInfo) -> dict[str, Any]:
    """A catalog model as models.get/list answer it (field set and defaults as in sample 19)."""
    return {
        "name": f"models/{info.id}",
        "version": info.version,
        "displayName": info.display_name,
        "description": info.description,
        "inputTokenLimit": info.input_token_limit,
        "outputTokenLimit": info.output_token_limit,
        "supportedGenerationMethods": list(GENERATE_METHODS),
        "temperature": 1,
        "topP": 0.95,
        "topK": 64,
        "maxTemperature": 2,
        "thinking": bool(info.thinking_levels or info.thinking_budget_range),
    }


@cache
def recorded() -> dict[str, dict[str, Any]]:
    """The recorded listing by model ID, in its order."""
    data = json.loads(resources.files(__package__).joinpath("listing.json").read_text("utf-8"))
    return {canonical_id(m["name"]): m for m in data["models"]}


def methods(model: str) -> tuple[str, ...]:
    """The methods a model serves: a catalog model's generate methods, a listed model's recorded
    ones (embedding models: ``embedContent`` and ``batchEmbedContents``, which the recorded
    entry omits but the live API serves, llm-gemini cassette test_embedding_batch.yaml), else none."""
    name = canonical_id(model)
    info = lookup(name)
    if info is not None:
        return () if info.retired else GENERATE_METHODS
    entry = recorded().get(name)
    if entry is None:
        return ()
    listed = tuple(entry.get("supportedGenerationMethods") or ())
    return (*listed, "batchEmbedContents") if "embedContent" in listed else listed


def embeds(model: str) -> bool:
    return "embedContent" in methods(model)


def served(model: str) -> ModelInfo | None:
    """What is assumed about a listed, uncatalogued model that generates (or embeds), or None."""
    name = canonical_id(model)
    if lookup(name) is None and set(methods(name)) & {"generateContent", "embedContent"}:
        info, entry = uncatalogued(name), recorded()[name]
        return replace(info, display_name=str(entry.get("displayName") or name),
                       input_token_limit=int(entry.get("inputTokenLimit") or info.input_token_limit),
                       output_token_limit=int(entry.get("outputTokenLimit") or info.output_token_limit))
    return None


def resource(info: ModelInfo) -> dict[str, Any]:
    """What models.get answers: the catalog's facts, else the recorded entry."""
    entry = recorded().get(info.id) if lookup(info.id) is None else None
    return entry if entry is not None else model_resource(info)


def listing(extra_models: list[str]) -> list[dict[str, Any]]:
    """Every model resource models.list pages through, in order."""
    out: list[dict[str, Any]] = []
    shown: set[str] = set()
    for name, entry in recorded().items():
        info = lookup(name)
        if info is not None and info.id == name:
            if not info.retired:
                out.append(model_resource(info))
        else:  # not in the catalog, or an alias the catalog resolves (listed as recorded)
            out.append(entry)
        shown.add(name)
    out += [model_resource(m) for m in CATALOG.values() if m.id not in shown and not m.retired]
    out += [model_resource(uncatalogued(m)) for m in extra_models if canonical_id(m) not in shown]
    return out
