"""Counters and the recent-request log behind ``/_emulator/stats`` and ``/_emulator/requests``.

Tests and pipeline checks read these to prove what was sent (e.g. that no row was requested
twice). Entries carry project and model but never the API key.
"""

from __future__ import annotations

from collections import deque
from typing import Any


class Stats:
    def __init__(self, log_size: int = 100_000):
        self.log: deque[dict[str, Any]] = deque(maxlen=log_size)
        self.reset()

    def reset(self) -> None:
        self.requests_total = 0
        self.by_method: dict[str, int] = {}
        self.by_status: dict[str, int] = {}
        self.tokens = {"prompt": 0, "candidates": 0, "thoughts": 0}
        self.by_project_model: dict[str, dict[str, Any]] = {}
        self.log.clear()

    def record(
        self,
        ts: float,
        method: str,
        model: str | None,
        project: str | None,
        status: int,
        prompt: str | None = None,
        usage: tuple[int, int, int] | None = None,
        request: tuple[dict[str, Any], list[tuple[bytes, bytes]]] | None = None,
    ) -> None:
        self.requests_total += 1
        self.by_method[method] = self.by_method.get(method, 0) + 1
        skey = str(status)
        self.by_status[skey] = self.by_status.get(skey, 0) + 1
        if model is not None:
            pm_key = f"{project or '-'}/{model}"
            pm = self.by_project_model.get(pm_key)
            if pm is None:
                pm = self.by_project_model[pm_key] = {
                    "project": project,
                    "model": model,
                    "requests": 0,
                    "by_status": {},
                    "tokens": {"prompt": 0, "candidates": 0, "thoughts": 0},
                }
            pm["requests"] += 1
            pm["by_status"][skey] = pm["by_status"].get(skey, 0) + 1
            if usage is not None:
                for name, n in zip(("prompt", "candidates", "thoughts"), usage, strict=True):
                    self.tokens[name] += n
                    pm["tokens"][name] += n
        self.log.append(
            {
                "ts": ts,
                "method": method,
                "model": model,
                "project": project,
                "status": status,
                "prompt": prompt,
                "_request": request,  # (body, headers) kept by reference; formatted on read
            }
        )

    def snapshot(self) -> dict[str, Any]:
        return {
            "requests_total": self.requests_total,
            "by_method": dict(self.by_method),
            "by_status": dict(self.by_status),
            "tokens": dict(self.tokens),
            "by_project_model": {
                k: {**v, "by_status": dict(v["by_status"]), "tokens": dict(v["tokens"])}
                for k, v in self.by_project_model.items()
            },
        }

    def recent(self, limit: int | None = None) -> list[dict[str, Any]]:
        items = list(self.log)
        items = items[-limit:] if limit else items
        return [_public(e) for e in items]


# Headers worth showing in the log: what the client asked for, never credentials.
_SHOWN_HEADERS = {b"x-server-timeout", b"user-agent", b"x-goog-api-client", b"content-type"}


def _text(content: Any) -> str:
    parts = content.get("parts") if isinstance(content, dict) else None
    return "".join(str(p.get("text", "")) for p in parts or [] if isinstance(p, dict))


def _content(content: dict[str, Any]) -> dict[str, Any]:
    """Role and text; plus, when the content has any, its other parts as sent (function calls and
    responses, thought signatures exactly as on the wire), text left out."""
    out: dict[str, Any] = {"role": content.get("role", "user"), "text": _text(content)}
    parts = content.get("parts")
    others = [{k: v for k, v in p.items() if k != "text"} for p in parts or [] if isinstance(p, dict)] \
        if isinstance(parts, list) else []
    if any(others):
        out["parts"] = others
    return out


def _public(entry: dict[str, Any]) -> dict[str, Any]:
    """A log entry as /_emulator/requests shows it: what went on the wire, minus the key."""
    out = {k: v for k, v in entry.items() if k != "_request"}
    req = entry.get("_request")
    if req is not None:
        body, headers = req
        out["generation_config"] = body.get("generationConfig", body.get("generation_config")) or {}
        system = body.get("systemInstruction", body.get("system_instruction"))
        out["system"] = _text(system) if system else None
        out["cached_content"] = body.get("cachedContent", body.get("cached_content"))
        contents = body.get("contents")
        out["contents"] = [_content(c) for c in contents if isinstance(c, dict)] if isinstance(contents, list) else []
        out["headers"] = {k.decode("latin-1"): v.decode("latin-1") for k, v in headers if k.lower() in _SHOWN_HEADERS}
    return out
