"""What the gateway reads from requests and answers: paths, token estimates, defaults, usage.

The gateway forwards request bytes unchanged. It parses a body only for what the policy
needs (the input-token estimate of a generate call), re-serialises it only when it adds a
configured default the request lacks, and finds ``usageMetadata`` in an answer by scanning
from its end instead of parsing the candidates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..emulator.errors import error_body as emulator_error_body
from ..models import ModelInfo, Usage, canonical_id, estimate_tokens

__all__ = [
    "GENERATE",
    "LIMITED_OPS",
    "STREAM",
    "Route",
    "apply_defaults",
    "error_body",
    "estimate_input_tokens",
    "parse_route",
    "usage_in",
]

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
# Calls the per-minute quotas count (and the limiter paces); countTokens, batches, files and
# caches have quotas of their own that the gateway passes through untouched.
LIMITED_OPS = frozenset({GENERATE, STREAM})
# An inline image/audio/video part: Gemini bills a 258-token tile for an image up to 384 px
# (ai.google.dev token docs); a flat charge per part keeps base64 bytes out of the estimate.
INLINE_PART_TOKENS = 258
_VERSION = re.compile(r"^v\d+[a-z0-9]*$")


@dataclass(frozen=True)
class Route:
    version: str
    kind: str  # "models" (list) | "model" (get) | "op" (model:operation) | "resource" | "upload"
    model: str = ""  # canonical ID ("gemini-3.1-flash-lite"), for "model" and "op"
    op: str = ""

    @property
    def limited(self) -> bool:
        return self.kind == "op" and self.op in LIMITED_OPS


def parse_route(path: str) -> Route | None:
    """The Gemini Developer API call a path names, under any version segment; None if it names
    none (the gateway answers 404 without forwarding)."""
    parts = path.strip("/").split("/")
    kind = "resource"
    if parts and parts[0] in ("upload", "download"):
        kind = "upload" if parts[0] == "upload" else "resource"
        parts = parts[1:]
    if len(parts) < 2 or not _VERSION.match(parts[0]):
        return None
    version, rest = parts[0], parts[1:]
    if kind == "upload" or rest[0] != "models":
        return Route(version, kind)
    if len(rest) == 1:
        return Route(version, "models")
    name = "/".join(rest[1:])
    if ":" in name:
        name, op = name.rsplit(":", 1)
        return Route(version, "op", canonical_id(name), op)
    return Route(version, "model", canonical_id(name))


def _texts(content: Any, out: list[str]) -> int:
    """Append the text parts of a Content (either casing) to ``out``; return its inline parts."""
    inline = 0
    if isinstance(content, str):
        out.append(content)
        return 0
    if not isinstance(content, dict):
        return 0
    for part in content.get("parts") or ():
        if isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                out.append(text)
            elif "inlineData" in part or "inline_data" in part or "fileData" in part or "file_data" in part:
                inline += 1
        elif isinstance(part, str):
            out.append(part)
    return inline


def estimate_input_tokens(body: dict[str, Any]) -> int:
    """Input tokens of a generate request, estimated per text part as the emulator bills them
    (``models.estimate_tokens``); the limiter reconciles with the real ``promptTokenCount``."""
    texts: list[str] = []
    inline = 0
    contents = body.get("contents")
    if isinstance(contents, (dict, str)):
        contents = [contents]
    for c in contents or ():
        inline += _texts(c, texts)
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system is not None:
        inline += _texts(system, texts)
    return sum(estimate_tokens(t) for t in texts) + inline * INLINE_PART_TOKENS


_THINKING_KEYS = ("thinkingLevel", "thinking_level", "thinkingBudget", "thinking_budget")


def apply_defaults(body: dict[str, Any], info: ModelInfo | None, *, thinking: str | None,
                   max_output_tokens: int | None) -> bool:
    """Add the configured defaults a generate request does not set (in place). True if the
    body changed (and must be re-serialised). Keys are added in camelCase, the API's JSON names;
    the request's own keys, in whatever casing, are left alone."""
    changed = False
    gc_key = "generation_config" if "generation_config" in body else "generationConfig"
    gc = body.get(gc_key)
    if gc is None:
        gc = {}
    if not isinstance(gc, dict):
        return False
    if thinking is not None and info is not None:
        tc_key = "thinking_config" if "thinking_config" in gc else "thinkingConfig"
        tc = gc.get(tc_key)
        if tc is None or (isinstance(tc, dict) and not any(k in tc for k in _THINKING_KEYS)):
            tc = dict(tc or {})
            level = thinking.lower()
            if info.uses_thinking_levels and level in info.thinking_levels:
                tc["thinkingLevel"] = level.upper()
            elif not info.uses_thinking_levels and level.lstrip("-").isdigit():
                tc["thinkingBudget"] = int(level)
            else:  # a level for a budget model (or the reverse): not ours to guess
                tc = None
            if tc is not None:
                gc[tc_key] = tc
                changed = True
    if max_output_tokens is not None and "maxOutputTokens" not in gc and "max_output_tokens" not in gc:
        gc["maxOutputTokens"] = max_output_tokens
        changed = True
    if changed:
        body[gc_key] = gc
    return changed


_USAGE_KEY = b'"usageMetadata"'
_DECODER = json.JSONDecoder()


def usage_in(data: bytes) -> Usage | None:
    """The last ``usageMetadata`` object in a response body or SSE tail, or None.

    Scans from the end: the usage follows the candidates in every answer (unary and each SSE
    event), so only the small object itself is decoded."""
    at = data.rfind(_USAGE_KEY)
    if at < 0:
        return None
    brace = data.find(b"{", at + len(_USAGE_KEY))
    if brace < 0:
        return None
    try:
        meta, _ = _DECODER.raw_decode(data[brace:].decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None

    def n(name: str) -> int:
        v = meta.get(name)
        return int(v) if isinstance(v, (int, float)) else 0

    prompt, out, thoughts = n("promptTokenCount"), n("candidatesTokenCount"), n("thoughtsTokenCount")
    return Usage(prompt, out, thoughts, n("cachedContentTokenCount"), n("totalTokenCount") or prompt + out + thoughts)


def error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    """A Gemini-shaped error body (the emulator's shape), pretty-printed as the live API does."""
    return dumps_error(emulator_error_body(code, message, status, details))


def dumps_error(body: dict[str, Any]) -> bytes:
    return (json.dumps(body, indent=2) + "\n").encode()
