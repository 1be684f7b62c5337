"""Request packing: several items in one request, answered and validated per item.

The free tier allows ~15 requests a minute but 250K input tokens, so one request per short
item wastes almost all of the token quota. Research on batch prompting (model-facts.md §3.1)
finds accuracy holds for packs of about 3-25 items; ``auto`` stays in that range.

A pack asks for ``{"results": [{...item fields..., "id": <one of the pack's ids>}, ...]}``
with ``minItems == maxItems == len(ids)`` and the ids as an enum, so a conforming answer
holds each item exactly once. The whole answer is only checked for shape (an object with a
``results`` array); each item is then validated on its own against the task's item schema,
so one bad item costs one single re-request, not the whole pack.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from ..call.request import Call, output_budget, thinking_allowance
from ..call.schema import Schema
from ..models import (
    DEFAULT_INPUT_TOKEN_LIMIT,
    DEFAULT_OUTPUT_TOKEN_LIMIT,
    ModelInfo,
    Quota,
    estimate_tokens,
    lookup,
)
from .items import Item

__all__ = [
    "DEFAULT_AUTO_PACK", "MAX_AUTO_PACK", "MAX_PACK_FILES", "PackPlan", "auto_pack_size", "can_pack", "pack_call", "pack_schema",
    "split_answer", "quota_from_limits", "estimate_item_tokens", "local_id", "pack_prompt",
]

DEFAULT_AUTO_PACK = 10  # without a known quota: the middle of the range research found safe
MAX_AUTO_PACK = 25  # beyond ~25 items accuracy starts to slip on some tasks (model-facts.md §3.1)
MAX_PACK_OUTPUT_TOKENS = 8192  # long packed answers are slow and a truncation wastes them all
# Files in one packed request. The API takes far more per request (thousands of images), but
# packing exists to save requests and the shared prompt, which ten documents already do ~10x;
# no study we found measures per-item attribution with more documents in one turn, so stay
# in the low end of the range model-facts.md §3.1 finds safe for text.
MAX_PACK_FILES = 10
PACK_INPUT_FRACTION = 0.5  # of the context window; leaves room for instructions and re-asks
ID_OVERHEAD_TOKENS = 12  # an item's id and JSON punctuation in the answer
LENIENT_PACK_SCHEMA = Schema.of({"type": "object", "properties": {"results": {"type": "array"}},
                                 "required": ["results"]})
PACK_INSTRUCTIONS = (
    "There are {n} items below, each marked with its id. Do the task for every item independently and "
    "answer with one entry per item in \"results\", carrying the item's id."
)


def local_id(n: int) -> str:
    """Short ids inside a request: cheaper than row ids and never leak row content."""
    return f"i{n + 1}"


def can_pack(item_schema: Schema | None) -> bool:
    if item_schema is None:
        return False
    js = item_schema.json_schema
    return js.get("type") == "object" and isinstance(js.get("properties"), dict) and "id" not in js["properties"]


def pack_schema(item_schema: Schema, ids: Sequence[str]) -> dict[str, Any]:
    item = copy.deepcopy(item_schema.json_schema)
    defs = item.pop("$defs", None)  # refs point at the root; hoist them there
    item["properties"] = {"id": {"type": "string", "enum": list(ids)}, **item["properties"]}
    item["required"] = ["id", *[r for r in item.get("required", []) if r != "id"]]
    out: dict[str, Any] = {
        "type": "object",
        "properties": {"results": {"type": "array", "items": item, "minItems": len(ids), "maxItems": len(ids)}},
        "required": ["results"],
    }
    if defs:
        out["$defs"] = defs
    return out


def pack_prompt(instructions: str, items: Sequence[Item]) -> str:
    parts = [instructions, PACK_INSTRUCTIONS.format(n=len(items))] if instructions else [
        PACK_INSTRUCTIONS.format(n=len(items))]
    for n, it in enumerate(items):
        parts.append(f"### id: {local_id(n)}\n{it.rendered}")
    return "\n\n".join(parts)


def pack_output_tokens(model: str, thinking: str | None, per_item_answer: int, n: int) -> int:
    return output_budget(model, thinking, n * (per_item_answer + ID_OVERHEAD_TOKENS))


def pack_call(items: Sequence[Item], *, build: Any, instructions: str, item_schema: Schema,
              system: str | None, model: str, thinking: str | None, per_item_answer: int) -> Call:
    """The packed request. ``build`` is ``lane.build``; the wire schema is the strict one, the
    Lane validates only the lenient shape so per-item problems reach ``split_answer``."""
    ids = [local_id(n) for n in range(len(items))]
    call: Call = build(pack_prompt(instructions, items), schema=pack_schema(item_schema, ids), system=system,
                       model=model, thinking=thinking,
                       max_output_tokens=pack_output_tokens(model, thinking, per_item_answer, len(items)))
    return replace(call, schema=LENIENT_PACK_SCHEMA, items=len(items))


def split_answer(parsed: Any, items: Sequence[Item], item_schema: Schema) -> tuple[dict[str, Any], dict[str, str]]:
    """(validated value by item id, problem by item id) for a packed answer. Items the answer
    leaves out, repeats, or gets wrong are problems; they go back to the queue alone."""
    by_local = {local_id(n): it for n, it in enumerate(items)}
    entries = parsed.get("results") if isinstance(parsed, Mapping) else None
    good: dict[str, Any] = {}
    bad: dict[str, str] = {}
    seen: dict[str, int] = {}
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and isinstance(entry.get("id"), str):
            seen[entry["id"]] = seen.get(entry["id"], 0) + 1
    for entry in entries if isinstance(entries, list) else []:
        if not isinstance(entry, Mapping):
            continue
        lid = entry.get("id")
        it = by_local.get(lid) if isinstance(lid, str) else None
        if it is None or seen.get(str(lid), 0) > 1:
            continue
        body = {k: v for k, v in entry.items() if k != "id"}
        try:
            good[it.id] = item_schema.validate_text(json.dumps(body))
        except ValueError as e:
            bad[it.id] = f"invalid item in packed answer: {e}"
    for lid, it in by_local.items():
        if it.id in good or it.id in bad:
            continue
        bad[it.id] = "duplicated in packed answer" if seen.get(lid, 0) > 1 else "missing from packed answer"
    return good, bad


@dataclass(frozen=True)
class PackPlan:
    size: int
    why: str


def auto_pack_size(*, model: str, thinking: str | None, per_item_input: float, shared_input: int,
                   per_item_answer: int, quota: Quota | None, output_ceiling: int) -> PackPlan:
    """Pick the pack size: large enough that requests per minute stop being the bottleneck,
    small enough to fit the context, the output cap and the accuracy range."""
    info: ModelInfo | None = lookup(model)
    in_limit = info.input_token_limit if info else DEFAULT_INPUT_TOKEN_LIMIT
    out_limit = min(info.output_token_limit if info else DEFAULT_OUTPUT_TOKEN_LIMIT, output_ceiling, MAX_PACK_OUTPUT_TOKENS)
    room = out_limit - thinking_allowance(info, thinking)
    by_output = max(1, room // max(1, per_item_answer + ID_OVERHEAD_TOKENS))
    by_input = max(1, int((in_limit * PACK_INPUT_FRACTION - shared_input) // max(1.0, per_item_input)))
    hard = min(MAX_AUTO_PACK, by_output, by_input)
    if quota is None or quota.rpm <= 0:
        return PackPlan(min(DEFAULT_AUTO_PACK, hard), "no request quota known: default pack size")
    if quota.tpm <= 0:
        return PackPlan(hard, f"request-bound ({quota.rpm} RPM, no token quota): pack as much as fits")
    # Items a minute with packs of n: min(rpm * n, tpm / (tokens per item)); once the token
    # quota binds, bigger packs only save the shared prompt, so stop at the crossover.
    for n in range(1, hard + 1):
        per_item = per_item_input + shared_input / n
        if quota.rpm * n >= quota.tpm / per_item:
            return PackPlan(n, f"token-bound at {n} per request ({quota.tpm} TPM, {quota.rpm} RPM)")
    return PackPlan(hard, f"request-bound ({quota.rpm} RPM): {hard} per request"
                          + (" (capped by the output limit)" if hard == by_output and hard < MAX_AUTO_PACK else ""))


def estimate_item_tokens(items: Sequence[Item], tokens: Any = None) -> float:
    """Mean input tokens per item over a sample; ``tokens(item)`` counts one (default: its text;
    Job.item_tokens counts its files too)."""
    if not items:
        return 1.0
    sample = items[: 2000]
    count = tokens or (lambda it: estimate_tokens(it.rendered))
    return sum(count(it) for it in sample) / len(sample) + 6  # + the id header


def _rate_limits(limits: Any, model: str) -> Any:
    """The parsed limits when they state a request rate, else None (adaptive or unparsable)."""
    from ..errors import ConfigError
    from ..limits.config import Limits

    try:
        parsed = Limits.parse(limits, model)
    except ConfigError:
        return None
    return parsed if parsed.rpm else None


def quota_from_limits(limits: Any, model: str) -> Quota | None:
    """The RPM/TPM a limits setting implies (a tier, "rpm=..,tpm=..[,window=..]", a Limits).
    A scaled window keeps the ratio of RPM to TPM, which is all pack sizing needs.
    None when unknown: adaptive limits start unthrottled and only learn from 429s."""
    parsed = _rate_limits(limits, model)
    return parsed.quota if parsed is not None else None


# Requests in flight needed to keep a quota busy is rate x latency (Little's law); more than
# that only queues in the limiter. Bounds keep a small quota polite and a huge one sane.
MIN_AUTO_CONCURRENCY = 4
MAX_AUTO_CONCURRENCY = 64
UNKNOWN_QUOTA_CONCURRENCY = 16  # adaptive: enough to find a paid tier's pace, few 429s on a free one
CONCURRENCY_HEADROOM = 1.5
TYPICAL_ANSWER_TOKENS = 256


def auto_concurrency(limits: Any, model: str) -> int:
    """How many requests to keep in flight for a limits setting and a model's latency."""
    import math

    from ..models import lookup

    parsed = _rate_limits(limits, model)
    if parsed is None:
        return UNKNOWN_QUOTA_CONCURRENCY
    info = lookup(model)
    latency = (info.ttft_s + TYPICAL_ANSWER_TOKENS / info.output_tokens_per_s) if info else 2.0
    need = math.ceil(parsed.rpm / parsed.window_s * latency * CONCURRENCY_HEADROOM)
    return max(MIN_AUTO_CONCURRENCY, min(MAX_AUTO_CONCURRENCY, need))
