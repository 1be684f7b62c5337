"""Turning a user's intent into one SDK request, the safe way.

Policy that applies to every call lives here, once: thinking set explicitly (a level for
Gemini 3, a budget for models that only take budgets, never both), ``max_output_tokens``
always set and leaving room for thinking, JSON Schema passed as ``response_json_schema``
(the SDK's ``response_schema`` rejects ``additionalProperties``/``$ref``), and the input
token estimate the limiter reserves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace
from typing import Any

from google.genai import types

from ..config import DEFAULT_THINKING_LEVEL, Settings
from ..errors import ConfigError
from ..media import (
    INLINE_REQUEST_LIMIT_BYTES,
    MEDIA_RESOLUTIONS,
    inline_file_budget,
    supports_part_resolution,
    wire_resolution,
)
from ..models import DEFAULT_OUTPUT_TOKEN_LIMIT, ModelInfo, Usage, canonical_id, estimate_tokens, lookup
from .media import File, as_text, has_media, marked_files, marked_tokens, media_parts
from .schema import Schema
from .tools import Toolset

__all__ = ["Call", "build_call", "check_media_resolution", "output_budget", "thinking_allowance", "typical_thinking"]

# Headroom over the typical thinking spend of a level: thinking varies per prompt and
# a cap that only just fits turns into MAX_TOKENS with no answer.
THINKING_HEADROOM = 2.0
BUDGET_MARGIN_TOKENS = 64


def typical_thinking(info: ModelInfo | None, thinking: str | None) -> int:
    """The thinking tokens a request at ``thinking`` typically spends on ``info``'s model (0: unknown model)."""
    if info is None:
        return 0
    level, budget = _split_thinking(info, thinking)
    return info.thinking_tokens(level, budget)


def thinking_allowance(info: ModelInfo | None, thinking: str | None) -> int:
    if info is None:
        return 256
    return int(typical_thinking(info, thinking) * THINKING_HEADROOM)


def output_budget(model: str, thinking: str | None, answer_tokens: int) -> int:
    """``max_output_tokens`` for an answer of about ``answer_tokens``: on Gemini 3 the cap
    covers thinking + answer, so the thinking allowance is added, bounded by the model limit."""
    info = lookup(model)
    cap = answer_tokens + thinking_allowance(info, thinking) + BUDGET_MARGIN_TOKENS
    limit = info.output_token_limit if info else DEFAULT_OUTPUT_TOKEN_LIMIT
    return min(cap, limit)


def _split_thinking(info: ModelInfo, thinking: str | None) -> tuple[str | None, int | None]:
    """(level, budget): exactly one is set for a known model."""
    if info.uses_thinking_levels:
        # Unset: the cheapest level the model takes (3.7/3.8 Flash have no MINIMAL).
        fallback = DEFAULT_THINKING_LEVEL if DEFAULT_THINKING_LEVEL in info.thinking_levels else \
            info.cheapest_thinking_level
        level = (thinking or fallback or DEFAULT_THINKING_LEVEL).lower()
        if level not in info.thinking_levels:
            raise ConfigError(f"{info.id} does not support thinking level {thinking!r}",
                              hint=f"use one of {', '.join(info.thinking_levels)}")
        return level, None
    if thinking is None:
        return None, info.default_thinking_budget or 0
    if not thinking.lstrip("-").isdigit():
        raise ConfigError(f"{info.id} takes a thinking budget, not a level ({thinking!r})",
                          hint="pass a budget such as 0 (off) or 1024")
    return None, int(thinking)


@functools.lru_cache(maxsize=64)
def _thinking_config_for(model_id: str, thinking: str | None) -> types.ThinkingConfig:
    return _thinking_config(lookup(model_id), thinking)


def _thinking_config(info: ModelInfo | None, thinking: str | None) -> types.ThinkingConfig:
    if info is None:  # unknown model: the API will answer 404; keep the request well-formed
        if thinking and thinking.lstrip("-").isdigit():
            return types.ThinkingConfig(thinking_budget=int(thinking))
        return types.ThinkingConfig(thinking_level=(thinking or DEFAULT_THINKING_LEVEL).upper())  # type: ignore[arg-type]
    level, budget = _split_thinking(info, thinking)
    if level is not None:
        return types.ThinkingConfig(thinking_level=level.upper())  # type: ignore[arg-type]
    return types.ThinkingConfig(thinking_budget=budget)


@dataclass(frozen=True)
class Call:
    """One request, ready for the SDK; immutable so retries can't corrupt it."""

    model: str
    contents: list[types.Content]
    config: types.GenerateContentConfig
    schema: Schema | None = None
    est_tokens: int = 0
    max_output_tokens: int = 0
    # The prompt as the caller gave it, when it is a plain string: the SDK converts a string
    # ~0.5 ms faster than the equivalent Content list (measured in bench/overhead.py).
    text_prompt: str | None = None
    toolset: Toolset | None = None  # what the call declares (functions, built-ins, tool choice)
    items: int = 1  # the items a packed request carries (its span's flashlane.items)
    est_audio_tokens: int = 0  # of est_tokens, the audio parts' (priced at the audio rate, models.Prices)
    est_system_tokens: int = 0  # of est_tokens, the system instruction's and tool declarations' (not in contents)
    # Files the contents reference by a placeholder uri (too large to go inline): uploads.Uploads
    # uploads them (or reuses their upload) and swaps in their uri just before the request is sent.
    uploads: tuple[File, ...] = ()
    # Bytes of the files sent inline (before base64; by_reference's count): the engine holds a request
    # back while too many of these are in flight (scheduler.MEDIA_INFLIGHT_BYTES).
    inline_bytes: int = 0

    @property
    def sdk_contents(self) -> Any:
        return self.text_prompt if self.text_prompt is not None else self.contents

    def full_contents(self) -> list[types.Content]:
        if self.text_prompt is not None and not self.contents:
            return _to_contents(self.text_prompt)
        return self.contents

    def worst_usage(self, overhead: int = 0) -> Usage:
        """The usage this request can reach at most: its input estimate (+ ``overhead``) and its
        full output cap (what budgets reserve)."""
        return Usage(prompt_tokens=self.est_tokens + overhead, output_tokens=self.max_output_tokens,
                     audio_tokens=self.est_audio_tokens)

    def with_cap(self, cap: int) -> Call:
        return replace(self, config=self.config.model_copy(update={"max_output_tokens": cap}), max_output_tokens=cap)

    def with_turns(self, *turns: types.Content) -> Call:
        contents = [*self.full_contents(), *turns]
        return replace(self, contents=contents, text_prompt=None, est_tokens=self.est_tokens + sum(_content_tokens(t) for t in turns))

    def with_system(self, system: str) -> Call:
        old = self.config.system_instruction
        old_text = _text_of(old) if old is not None else ""
        merged = system + ("\n\n" + old_text if old_text else "")
        cfg = self.config.model_copy(update={"system_instruction": merged})
        extra = estimate_tokens(system)
        return replace(self, config=cfg, est_tokens=self.est_tokens + extra,
                       est_system_tokens=self.est_system_tokens + extra)

    def counted_contents(self) -> list[types.Content] | None:
        """The contents as countTokens should see them: the call's media resolution written on
        each media part without one (countTokens takes no generation config; the API takes a
        level per part on Gemini 3 only, so elsewhere, with a level set, None: not countable)."""
        level = self.config.media_resolution
        contents = self.full_contents()
        if level is None:
            return contents
        if not supports_part_resolution(self.model):
            return None
        part_level = types.PartMediaResolution(level=types.PartMediaResolutionLevel(getattr(level, "value", level)))
        return [c.model_copy(update={"parts": [
            p.model_copy(update={"media_resolution": part_level}) if p.inline_data is not None
            and p.media_resolution is None else p for p in c.parts or []]}) for c in contents]


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    parts = getattr(content, "parts", None) or []
    return "".join(p.text or "" for p in parts if getattr(p, "text", None))


def _content_tokens(content: types.Content) -> int:
    total = 0
    for p in content.parts or []:
        total += estimate_tokens(p.text or "")
        if p.function_call is not None or p.function_response is not None:  # tool turns are prompt too
            fc, fr = p.function_call, p.function_response
            total += estimate_tokens(fc.model_dump_json(exclude_none=True) if fc is not None else "")
            total += estimate_tokens(fr.model_dump_json(exclude_none=True) if fr is not None else "")
    return total


def _to_contents(prompt: Any) -> list[types.Content]:
    if isinstance(prompt, str):
        return [types.Content(role="user", parts=[types.Part(text=prompt)])]
    if isinstance(prompt, list) and not any(isinstance(c, types.Content) for c in prompt):
        prompt = as_text(prompt)  # [fl.File(...), "caption"]: one user turn
        if isinstance(prompt, str):
            return _to_contents(prompt)
    if isinstance(prompt, types.Content):
        return [prompt]
    if isinstance(prompt, list) and all(isinstance(c, types.Content) for c in prompt):
        return list(prompt)
    raise ConfigError(f"unsupported prompt type {type(prompt).__name__}",
                      hint="pass a string, an fl.File, or a list of google.genai.types.Content")


def check_media_resolution(value: str | None) -> str | None:
    if value is not None and value not in MEDIA_RESOLUTIONS:
        raise ConfigError(f"media_resolution must be one of {', '.join(MEDIA_RESOLUTIONS)}, not {value!r}",
                          hint="e.g. media_resolution=\"low\" (--media-resolution low)")
    return value


def _check_part_levels(files: list[File], model: str) -> None:
    """A file's own media resolution is refused on a model that does not take one per part
    (the API takes it on Gemini 3 only, ai.google.dev/gemini-api/docs/media-resolution)."""
    for f in files:
        if f.media_resolution and not supports_part_resolution(model):
            raise ConfigError(f"{f.name}: media_resolution per file is a Gemini 3 feature; {model} takes it per request",
                              hint="pass media_resolution= to the call or the run (--media-resolution) instead")


def by_reference(files: list[File], inline_max_bytes: int) -> tuple[list[File], int]:
    """The files of one request that go through the Files API: the largest, until the rest fit
    the request's inline limit (media.INLINE_REQUEST_LIMIT_BYTES); and the bytes of the files left
    inline (what the engine counts against its cap on media in flight). Each distinct file counts once."""
    distinct = {f.upload_digest: f for f in files}
    budget = inline_file_budget(inline_max_bytes)
    total = sum(f.size for f in distinct.values())
    out: list[File] = []
    for f in sorted(distinct.values(), key=lambda f: -f.size):
        if total <= budget:
            break
        out.append(f)
        total -= f.size
    return out, total


def _with_media(contents: list[types.Content], model: str, resolution: str | None = None,
                inline_max_bytes: int = INLINE_REQUEST_LIMIT_BYTES) -> tuple[list[types.Content], int, int,
                                                                             tuple[File, ...], int]:
    """``contents`` with every file marker (call/media.py) in a text part replaced by the file's
    part (inline, or a reference to be uploaded: ``by_reference``); the tokens those files cost
    on ``model`` at ``resolution`` (the call's media resolution), of them the audio's, and the
    files to upload, and the bytes of the files sent inline."""
    files = [f for c in contents for p in c.parts or [] if p.text and has_media(p.text) for f in marked_files(p.text)]
    referenced, inline_bytes = by_reference(files, inline_max_bytes) if files else ([], 0)
    refs = tuple(referenced)
    by_ref = frozenset(f.upload_digest for f in refs)
    out: list[types.Content] = []
    tokens = audio = 0
    for c in contents:
        if not any(p.text and has_media(p.text) for p in c.parts or []):
            out.append(c)
            continue
        parts: list[types.Part] = []
        for p in c.parts or []:
            if p.text and has_media(p.text):
                new, used = media_parts(p.text, by_ref)
                _check_part_levels(used, model)
                parts.extend(new)
                cost = marked_tokens(p.text, model, resolution)  # the rule Job.item_tokens and --dry-run use
                tokens, audio = tokens + cost.media, audio + cost.audio
            else:
                parts.append(p)
        out.append(c.model_copy(update={"parts": parts}))
    return out, tokens, audio, refs, inline_bytes


def build_call(
    settings: Settings,
    prompt: Any,
    *,
    schema: Any = None,
    system: str | None = None,
    model: str | None = None,
    thinking: str | None = None,
    max_output_tokens: int | None = None,
    temperature: float | None = None,
    safety_settings: list[Any] | None = None,
    response_mime_type: str | None = None,
    tools: Any = None,
    tool_choice: Any = None,
    media_resolution: str | None = None,
) -> Call:
    model_id = canonical_id(model or settings.model)
    info = lookup(model_id)
    thinking = thinking if thinking is not None else settings.thinking
    cap = max_output_tokens or settings.max_output_tokens
    if info is not None and cap > info.output_token_limit:
        raise ConfigError(f"max_output_tokens {cap} exceeds {model_id}'s output limit of {info.output_token_limit}",
                          hint=f"use at most {info.output_token_limit}")
    prompt = as_text(prompt)  # fl.File, Path, or a list mixing them with text: marked text
    text_prompt = prompt if isinstance(prompt, str) and not has_media(prompt) else None
    contents = [] if text_prompt is not None else _to_contents(prompt)  # built on demand (re-ask)
    media_resolution = check_media_resolution(media_resolution)
    contents, media_tokens, audio_tokens, uploads, inline_bytes = _with_media(contents, model_id, media_resolution,
                                                                settings.inline_max_bytes)
    sch = Schema.of(schema) if schema is not None else None
    cfg: dict[str, Any] = {
        "max_output_tokens": cap,
        "thinking_config": _thinking_config_for(model_id, thinking),
    }
    if system:
        cfg["system_instruction"] = system  # the SDK sends a string as a user-role Content
    if media_resolution:
        # GenerateContentConfig.media_resolution (google-genai types.MediaResolution), sent as
        # generationConfig.mediaResolution: every media part without a level of its own.
        cfg["media_resolution"] = types.MediaResolution(wire_resolution(media_resolution))
    if temperature is not None:
        cfg["temperature"] = temperature
    if safety_settings:
        cfg["safety_settings"] = [
            s if isinstance(s, types.SafetySetting) else types.SafetySetting(**s) for s in safety_settings
        ]
    if sch is not None:
        cfg["response_mime_type"] = "application/json"
        cfg["response_json_schema"] = sch.json_schema
    elif response_mime_type:
        cfg["response_mime_type"] = response_mime_type
    toolset = Toolset.of(tools, tool_choice)
    if toolset is not None:
        cfg["tools"] = toolset.sdk_tools()
        if (tool_config := toolset.tool_config()) is not None:
            cfg["tool_config"] = tool_config
        if toolset.functions:
            # Functions are declared, never handed to the SDK as callables: its automatic function
            # calling would run them outside the guard (no limiter, no deadline).
            cfg["automatic_function_calling"] = types.AutomaticFunctionCallingConfig(disable=True)
    outside = (estimate_tokens(system) if system else 0) + (toolset.declaration_tokens() if toolset else 0)
    est = (estimate_tokens(text_prompt) if text_prompt is not None else sum(_content_tokens(c) for c in contents)) \
        + outside + media_tokens
    return Call(model=model_id, contents=contents, config=types.GenerateContentConfig(**cfg), schema=sch,
                est_tokens=est, max_output_tokens=cap, text_prompt=text_prompt, toolset=toolset,
                est_audio_tokens=audio_tokens, est_system_tokens=outside, uploads=uploads, inline_bytes=inline_bytes)
