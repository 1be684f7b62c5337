"""A response cache per item, so a repeated row (in this run or any later one) costs nothing.

Keyed by everything that decides the answer: model, thinking, the task's system prompt,
instructions and output schema, and the item as rendered. Per item rather than per request,
so packed and single requests share entries and a new pack size still hits. The value is
the item's validated answer (JSON) before the task's conversion, so a hit goes through the
same ``finish`` as a fresh answer. Lives in the user cache dir (or ``settings.state_dir``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..store.response_cache import ResponseTable

__all__ = ["ResponseCache", "default_cache_path", "CACHE_FILE"]

CACHE_FILE = "responses.db"


def default_cache_path(state_dir: str | None) -> Path:
    if state_dir:
        return Path(state_dir) / CACHE_FILE
    import platformdirs

    return Path(platformdirs.user_cache_dir("flashlane")) / CACHE_FILE


class ResponseCache:
    def __init__(self, path: str | Path) -> None:
        self.table = ResponseTable(path)
        self.hits = 0

    @staticmethod
    def key(*, endpoint: str = "", model: str, thinking: str | None, system: str, instructions: str, schema: dict[str, Any] | None,
            item: str, tools: list[str] | None = None) -> str:
        parts: list[Any] = [endpoint, model, thinking, system, instructions, schema, item]
        if tools:  # grounded or tool-using answers are other answers; keys without tools stay as they were
            parts.append(tools)
        blob = json.dumps(parts, sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8", "surrogatepass")).hexdigest()

    def get(self, key: str) -> Any:
        raw = self.table.get(key)
        if raw is None:
            return None
        self.hits += 1
        return json.loads(raw)

    def put_many(self, entries: dict[str, tuple[str, Any]]) -> None:
        """``{key: (model, raw answer)}``."""
        if not entries:
            return
        self.table.put_many({k: (m, json.dumps(v, ensure_ascii=False)) for k, (m, v) in entries.items()})

    def close(self) -> None:
        self.table.close()
