"""A response cache per item, so a repeated row (in this run or any later one) costs nothing.

Keyed by everything that decides the answer: model, thinking, the task's system prompt,
instructions and output schema, and the item as rendered. Per item rather than per request,
so packed and single requests share entries and a new pack size still hits. The value is
the item's validated answer (JSON) before the task's conversion, so a hit goes through the
same ``finish`` as a fresh answer. Lives in the user cache dir (or ``settings.state_dir``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

from ..models import Usage
from ..store.response_cache import ResponseTable

__all__ = ["ResponseCache", "default_cache_path", "CACHE_FILE"]

CACHE_FILE = "responses.db"


def default_cache_path(state_dir: str | None) -> Path:
    if state_dir:
        return Path(state_dir) / CACHE_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("flashlane")) / CACHE_FILE


# An entry that keeps the usage of the request that answered it (``keep_usage``) holds the answer,
# that request's usage and how many items it carried under these keys (the whole request, not a
# share: shares of token counts are rounded down); entries without them are the answer itself.
KEPT_ANSWER, KEPT_USAGE, KEPT_ITEMS = "__flashlane_answer__", "__flashlane_usage__", "__flashlane_items__"


class ResponseCache:
    """``scope``: keys hold it too, so answers are shared only within it (``flashlane eval``
    shares identical requests across configurations, never an item answered in a pack of 10 with
    the same item asked alone). ``keep_usage``: each entry keeps the tokens its answer took, so a
    hit can be priced as what it would have cost (the eval's cost per configuration)."""

    def __init__(self, path: str | Path, *, scope: str | None = None, keep_usage: bool = False) -> None:
        self.table = ResponseTable(path)
        self.hits = 0
        self.scope = scope
        self.keep_usage = keep_usage

    def _scoped(self, key: str) -> str:
        if self.scope is None:
            return key
        return hashlib.sha256(f"{key}\x00{self.scope}".encode()).hexdigest()

    @staticmethod
    def key(*, endpoint: str = "", model: str, thinking: str | None, system: str, instructions: str, schema: dict[str, Any] | None,
            item: str, tools: list[str] | None = None) -> str:
        parts: list[Any] = [endpoint, model, thinking, system, instructions, schema, item]
        if tools:  # grounded or tool-using answers are other answers; keys without tools stay as they were
            parts.append(tools)
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Any:
        return self.lookup(key)[0]

    def lookup(self, key: str) -> tuple[Any, tuple[Usage, int] | None]:
        """The raw answer stored under ``key`` (None: a miss) and, when kept, the usage of the
        request that answered it with the number of items that request carried."""
        raw = self.table.get(self._scoped(key))
        if raw is None:
            return None, None
        self.hits += 1
        data = json.loads(raw)
        if isinstance(data, dict) and KEPT_USAGE in data and KEPT_ANSWER in data:
            return data[KEPT_ANSWER], (Usage(**data[KEPT_USAGE]), int(data.get(KEPT_ITEMS, 1)))
        return data, None

    def put_many(self, entries: dict[str, tuple[str, Any, Usage, int]]) -> None:
        """``{key: (model, raw answer, the usage of the request that answered it, its items)}``."""
        if not entries:
            return
        self.table.put_many({self._scoped(k): (m, json.dumps(
            {KEPT_ANSWER: v, KEPT_USAGE: dataclasses.asdict(u), KEPT_ITEMS: n} if self.keep_usage else v,
            ensure_ascii=False)) for k, (m, v, u, n) in entries.items()})

    def close(self) -> None:
        self.table.close()
