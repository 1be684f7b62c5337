"""Prometheus text metrics for ``GET /metrics`` (exposition format 0.0.4), no client library.

Labels are the project and the model, both safe to show: a project is a tokens-file name or,
with ``--pass-keys``, a hash; no token or key reaches a label. Everything is updated on the
gateway's event loop, so plain dicts suffice.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

from ..models import Usage, cost_of

__all__ = ["LATENCY_BUCKETS_S", "Metrics"]

# Gateway answer latency: from sub-millisecond (emulator, cached) to minutes (long waits for quota).
LATENCY_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                     60.0, 120.0, 300.0)
PREFIX = "flashlane_gateway_"


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Metrics:
    def __init__(self) -> None:
        self.requests: defaultdict[tuple[str, str, str], int] = defaultdict(int)  # (project, model, code)
        self.tokens: defaultdict[tuple[str, str, str], int] = defaultdict(int)  # (project, model, kind)
        self.cost: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.absorbed: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.retries: defaultdict[tuple[str, str], int] = defaultdict(int)
        self.limiter_wait: defaultdict[tuple[str, str], float] = defaultdict(float)
        self.refused_auth = 0
        self.in_flight = 0
        self._hist: dict[tuple[str, str], list[float]] = {}  # bucket counts..., then sum, count

    def observe(self, project: str, model: str, code: int, seconds: float, *, usage: Usage | None = None,
                cost: float | None = None, absorbed: int = 0, retries: int = 0, limiter_wait_s: float = 0.0) -> None:
        """Count one answered request; ``cost`` is ``cost_of(model, usage)`` when the caller has it."""
        key = (project, model)
        self.requests[(project, model, str(code))] += 1
        h = self._hist.get(key)
        if h is None:
            h = self._hist[key] = [0.0] * (len(LATENCY_BUCKETS_S) + 2)
        i = bisect.bisect_left(LATENCY_BUCKETS_S, seconds)
        if i < len(LATENCY_BUCKETS_S):
            h[i] += 1
        h[-2] += seconds
        h[-1] += 1
        if usage is not None:
            for kind, n in (("input", usage.prompt_tokens), ("output", usage.output_tokens),
                            ("thinking", usage.thoughts_tokens), ("cached", usage.cached_tokens)):
                if n:
                    self.tokens[(project, model, kind)] += n
            if cost is None:
                cost = cost_of(model, usage)
            if cost is not None:  # an unknown price adds nothing rather than a made-up figure
                self.cost[key] += cost
        if absorbed:
            self.absorbed[key] += absorbed
        if retries:
            self.retries[key] += retries
        if limiter_wait_s:
            self.limiter_wait[key] += limiter_wait_s

    def render(self) -> bytes:
        out: list[str] = []

        def family(name: str, kind: str, help_: str) -> str:
            full = PREFIX + name
            out.append(f"# HELP {full} {help_}")
            out.append(f"# TYPE {full} {kind}")
            return full

        def pm(project: str, model: str) -> str:
            return f'project="{_esc(project)}",model="{_esc(model)}"'

        def per_model(name: str, help_: str, values: dict[tuple[str, str], Any], fmt: str = "") -> None:
            full = family(name, "counter", help_)
            out.extend(f"{full}{{{pm(p, m)}}} {v:{fmt}}" for (p, m), v in sorted(values.items()))

        n: str = family("requests_total", "counter", "Requests answered, by project, model and HTTP status.")
        for (p, m, code), v in sorted(self.requests.items()):
            out.append(f'{n}{{{pm(p, m)},code="{code}"}} {v}')
        n = family("request_duration_seconds", "histogram", "Time from request to the end of the answer.")
        for (p, m), h in sorted(self._hist.items()):
            cum = 0.0
            for le, c in zip(LATENCY_BUCKETS_S, h, strict=False):
                cum += c
                out.append(f'{n}_bucket{{{pm(p, m)},le="{le:g}"}} {cum:g}')
            out.append(f'{n}_bucket{{{pm(p, m)},le="+Inf"}} {h[-1]:g}')
            out.append(f"{n}_sum{{{pm(p, m)}}} {h[-2]:.6f}")
            out.append(f"{n}_count{{{pm(p, m)}}} {h[-1]:g}")
        n = family("tokens_total", "counter", "Tokens from usageMetadata, by kind (input, output, thinking, cached).")
        for (p, m, kind), v in sorted(self.tokens.items()):
            out.append(f'{n}{{{pm(p, m)},kind="{kind}"}} {v}')
        per_model("cost_usd_total", "Cost at the catalog's paid-tier prices.", self.cost, ".8f")
        per_model("rate_limited_absorbed_total", "Upstream 429s waited out instead of passed to clients.",
                  self.absorbed)
        per_model("retries_total", "Upstream attempts after the first.", self.retries)
        per_model("limiter_wait_seconds_total", "Time requests waited in the quota limiter.", self.limiter_wait,
                  ".6f")
        n = family("refused_auth_total", "counter", "Requests refused for a missing or invalid token.")
        out.append(f"{n} {self.refused_auth}")
        n = family("in_flight", "gauge", "Requests being handled now.")
        out.append(f"{n} {self.in_flight}")
        return ("\n".join(out) + "\n").encode()
