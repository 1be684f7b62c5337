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
        return items[-limit:] if limit else items
