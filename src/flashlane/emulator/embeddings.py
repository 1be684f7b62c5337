"""embedContent and batchEmbedContents: deterministic unit vectors of the documented dimension.

Wire, as recorded live (llm-gemini cassettes @2a8c855: ``test_embedding[gemini-embedding-001].yaml``,
``…[gemini-embedding-001-768]``, ``…[gemini-embedding-2]``, ``test_embedding_batch.yaml``):
``POST models/{m}:batchEmbedContents`` with ``{"requests": [{"model": "models/{m}", "content":
{"parts": [{"text": …}]}, "outputDimensionality": 768}]}`` answers ``{"embeddings": [{"values":
[…]}]}``, plus ``"usageMetadata": {"promptTokenCount": N, "promptTokenDetails": [{"modality": "TEXT",
"tokenCount": N}]}`` from gemini-embedding-2 (not from gemini-embedding-001). ``embedContent`` takes
one request's fields at the top level and answers ``{"embedding": {"values": […]}}`` (API reference,
ai.google.dev/api/embeddings). Both recorded models return 3072 values by default, of unit length;
a smaller ``outputDimensionality`` cuts the vector: gemini-embedding-001's cut is not renormalised
(norm 0.57 at 768 in the recording), gemini-embedding-2's is (norm 1.0).

A vector depends only on the model, the text and the task type, so equal texts embed equally and
tests of retrieval code are repeatable; the values are random, not semantic.
"""

from __future__ import annotations

import hashlib
import math
import random
from typing import Any

from ..models import canonical_id
from .errors import invalid_argument
from .wire import camel_keys, content_texts, count_prompt_tokens

DIMENSION = 3072  # the recorded default of gemini-embedding-001 and gemini-embedding-2
UNNORMALISED_CUTS = ("gemini-embedding-001",)  # a shorter vector is the prefix, not rescaled
USAGE_MODELS = ("gemini-embedding-2",)  # answers that carry usageMetadata (prefix match)
SIGNIFICANT_DIGITS = 8  # values as the live API prints them (e.g. -0.011345503)


def vector(model: str, text: str, task: str, size: int) -> list[float]:
    seed = hashlib.blake2b(f"{model}\0{task}\0{text}".encode("utf-8", "surrogatepass"), digest_size=8).digest()
    rng = random.Random(int.from_bytes(seed, "big"))
    full = [rng.gauss(0.0, 1.0) for _ in range(DIMENSION)]
    norm = math.sqrt(sum(v * v for v in full)) or 1.0
    cut = full[:size]
    if not model.startswith(UNNORMALISED_CUTS) and size < DIMENSION:
        norm = math.sqrt(sum(v * v for v in cut)) or 1.0
    return [float(f"{v / norm:.{SIGNIFICANT_DIGITS}g}") for v in cut]


def _one(model: str, request: Any, path: str) -> tuple[list[float], int]:
    """(values, prompt tokens) of one EmbedContentRequest."""
    if not isinstance(request, dict):
        raise invalid_argument(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage."
                               "v1beta.EmbedContentRequest)")
    request = camel_keys(request)
    content = request.get("content")
    if content is None:
        raise invalid_argument(f"* {path or 'EmbedContentRequest'}.content: content is not specified\n")
    texts = content_texts(content, f"{path + '.' if path else ''}content")
    size = request.get("outputDimensionality")
    if size is None:
        size = DIMENSION
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= DIMENSION:
        # No recorded body for this 400; the documented range is up to the model's 3072.
        raise invalid_argument(f"* {path or 'EmbedContentRequest'}.output_dimensionality: must be between 1 "
                               f"and {DIMENSION}, got {size}.\n")
    task = str(request.get("taskType") or "")
    return vector(model, "\n".join(texts), task, size), count_prompt_tokens(texts)


def _usage(model: str, tokens: int) -> dict[str, Any]:
    if not model.startswith(USAGE_MODELS) or not tokens:
        return {}
    return {"usageMetadata": {"promptTokenCount": tokens,
                              "promptTokenDetails": [{"modality": "TEXT", "tokenCount": tokens}]}}


def embed(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer to ``embedContent``."""
    model = canonical_id(model)
    values, tokens = _one(model, body, "")
    return {"embedding": {"values": values}, **_usage(model, tokens)}


def batch_embed(model: str, body: dict[str, Any]) -> dict[str, Any]:
    """The answer to ``batchEmbedContents``: one embedding per request, in order."""
    model = canonical_id(model)
    requests = camel_keys(body).get("requests")
    if not isinstance(requests, list) or not requests:
        raise invalid_argument("* BatchEmbedContentsRequest.requests: requests is not specified\n")
    out, total = [], 0
    for i, request in enumerate(requests):
        values, tokens = _one(model, request, f"requests[{i}]")
        out.append({"values": values})
        total += tokens
    return {"embeddings": out, **_usage(model, total)}

