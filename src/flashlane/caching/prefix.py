"""``Prefix``: the stable head every request of a task shares, and how a request carries it.

A task's system text, instructions and reference material (guidelines, glossary, worked
examples) are the same for every item, so they go first, in a fixed order, where the API can
cache them: the system instruction, then the worked examples as leading user/model turns. Only
the item's own turn follows. That order is what explicit caches hold (a ``cachedContent`` is a system
instruction plus leading contents, gemini-api-wire.md §1.4) and what implicit caching matches
("put large and common contents at the beginning of your prompt", ai.google.dev caching docs).

A call is always built whole (``inline``): the prefix written into it. ``cached`` turns such a
call into one that names a ``cachedContent`` holding the prefix instead: the request then
carries neither the system instruction nor the example turns (the API refuses a request that
names a cache and sets ``system_instruction``: "CachedContent can not be used with
GenerateContent request setting system_instruction, tools or tool_config"). The token estimate
the limiter reserves is unchanged: the API counts cached tokens in ``promptTokenCount``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, replace

from google.genai import types

from ..call.request import Call
from ..models import estimate_tokens

__all__ = ["Prefix", "Turn"]

Turn = tuple[str, str]  # (role, text): "user" or "model"


@dataclass(frozen=True)
class Prefix:
    """The system text and leading turns shared by every request of a run."""

    system: str
    turns: tuple[Turn, ...] = ()

    @property
    def tokens(self) -> int:
        """The local estimate (the emulator bills with the same function; the live API's
        count comes back with the cache it creates)."""
        return estimate_tokens(self.system) + sum(estimate_tokens(text) for _, text in self.turns)

    @property
    def empty(self) -> bool:
        return not self.system and not self.turns

    def contents(self) -> list[types.Content]:
        return [types.Content(role=role, parts=[types.Part(text=text)]) for role, text in self.turns]

    def digest(self) -> str:
        """Identifies the prefix: a cache made for another prefix is never reused."""
        blob = json.dumps([self.system, list(self.turns)], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()[:16]

    def prompt(self, user_text: str) -> str | list[types.Content]:
        """The request's contents with this prefix: example turns, then the user's turn (just
        the text when there are no turns: the call builds its contents from it on demand)."""
        if not self.turns:
            return user_text
        return [*self.contents(), types.Content(role="user", parts=[types.Part(text=user_text)])]

    def cached(self, call: Call, name: str) -> Call:
        """``call`` (built with this prefix inline) naming the cache ``name`` instead."""
        own = call.full_contents()[len(self.turns):]
        cfg = call.config.model_copy(update={"system_instruction": None, "cached_content": name})
        return replace(call, contents=list(own), text_prompt=None, config=cfg)


def join_system(parts: Sequence[str]) -> str:
    return "\n\n".join(p.strip() for p in parts if p and p.strip())
