"""Adaptive limits: start unthrottled, learn each key's real quota from its 429s.

Gemini no longer publishes per-tier limits, tiers change with spend, and a preset that is too
low would slow a paid project for nothing. So by default nothing is paced until the server
says 429. Then, per key and per dimension (``error.kind``: rpm, tpm; unknown counts as rpm):

- **learn**: ``quotaValue`` from the error if present (exact; never probed past); otherwise
  the admitted count (or input tokens) in the window when the 429 arrived, minus this request;
  that is how much the server had just accepted.
- **one congestion event per window**: further 429s within a window of the last cut only
  tighten the estimate (a burst sent before we knew must not cut the limit N times); a 429
  in a later window, while already paced, cuts to ``min(observed, limit × BETA)`` (multiplicative
  decrease, as botocore's CUBIC limiter does with β = 0.7; gentler here because the observed
  count already tracks the server's).
- **probe**: after a full window that was saturated (requests had to wait for the limit)
  with no 429, add ``max(1, PROBE_FRACTION × limit)`` (additive increase), so a quota that
  grew (tier upgrade) is found again, slowly. A probe answered by a 429 restores the previous
  limit and doubles the wait before the next probe (up to MAX_PROBE_EVERY windows).

Learned values live in this process; the window and the backoff gate they pace against are in
the shared backend, so several processes converge on the same count.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

from .config import Limits

__all__ = ["DEFAULT_BETA", "DEFAULT_PROBE_FRACTION", "AdaptivePolicy"]

DEFAULT_BETA = 0.9
DEFAULT_PROBE_FRACTION = 0.02
MAX_PROBE_EVERY = 16  # windows


@dataclass
class _Dim:
    limit: int = 0  # 0 = not learned yet (unthrottled, or the configured starting value)
    exact: bool = False  # from quotaValue: don't probe past it
    last_change: float = float("-inf")
    saturated: bool = False
    before_probe: int = 0  # the limit before the last probe; 0 = the last change wasn't a probe
    probe_every: int = 1  # windows between probes; doubles after each failed probe


@dataclass
class _Learned:
    rpm: _Dim
    tpm: _Dim


class AdaptivePolicy:
    def __init__(self, start: Limits, *, beta: float = DEFAULT_BETA,
                 probe_fraction: float = DEFAULT_PROBE_FRACTION) -> None:
        self.start = start
        self.beta = beta
        self.probe_fraction = probe_fraction
        self._lock = threading.Lock()
        self._keys: dict[str, _Learned] = {}
        self._limits: dict[str, Limits] = {}

    def _get(self, key: str) -> _Learned:
        k = self._keys.get(key)
        if k is None:
            k = self._keys[key] = _Learned(_Dim(self.start.rpm), _Dim(self.start.tpm))
        return k

    def limits_for(self, key: str, now: float) -> Limits:
        with self._lock:
            k = self._get(key)
            for dim in (k.rpm, k.tpm):
                self._probe(dim, now)
            cached = self._limits.get(key)
            if cached is None or cached.rpm != k.rpm.limit or cached.tpm != k.tpm.limit:
                # Built only when a limit moves: this runs on every request.
                cached = self._limits[key] = replace(self.start, rpm=k.rpm.limit, tpm=k.tpm.limit)
            return cached

    def _probe(self, dim: _Dim, now: float) -> None:
        if dim.limit and not dim.exact and dim.saturated and now - dim.last_change >= self.start.span * dim.probe_every:
            dim.before_probe = dim.limit
            dim.limit += max(1, int(dim.limit * self.probe_fraction))
            dim.last_change = now
            dim.saturated = False

    def note_saturated(self, key: str) -> None:
        """An acquire had to wait for the window: the limit, not demand, set the pace."""
        with self._lock:
            k = self._get(key)
            k.rpm.saturated = k.tpm.saturated = True

    def on_429(self, key: str, kind: str, *, quota_value: int | None, observed_requests: int,
               observed_tokens: int, request_tokens: int, now: float) -> None:
        """``observed_*``: what the shared window held when the 429 arrived, this request included."""
        with self._lock:
            k = self._get(key)
            if kind == "tpm":
                self._cut(k.tpm, quota_value, observed_tokens - request_tokens, now)
            elif kind in ("rpm", "unknown"):
                self._cut(k.rpm, quota_value, observed_requests - 1, now)

    def _cut(self, dim: _Dim, quota_value: int | None, observed: int, now: float) -> None:
        observed = max(1, observed)
        if dim.before_probe and not quota_value:
            # The probe failed: the old limit was right. Go back, and probe half as often, so a
            # steady quota costs ever fewer 429s (one per 2, 4, … MAX_PROBE_EVERY windows).
            dim.limit = min(dim.before_probe, observed)
            dim.probe_every = min(dim.probe_every * 2, MAX_PROBE_EVERY)
            dim.before_probe = 0
            dim.last_change = now
            dim.saturated = False
            return
        dim.before_probe = 0
        if quota_value:
            dim.limit, dim.exact = quota_value, True
        elif dim.exact:
            # Told the exact quota yet still refused: someone else shares the project.
            dim.limit = max(1, min(observed, math.floor(dim.limit * self.beta)))
        elif not dim.limit or now - dim.last_change < self.start.span:
            # First 429, or more of the same burst: the tightest observation wins.
            dim.limit = observed if not dim.limit else min(dim.limit, observed)
        else:
            dim.limit = max(1, min(observed, math.floor(dim.limit * self.beta)))
        dim.last_change = now
        dim.saturated = False

    def learned(self, key: str) -> tuple[int, int]:
        """(rpm, tpm) currently in force for ``key``; 0 = unthrottled."""
        with self._lock:
            k = self._get(key)
            return k.rpm.limit, k.tpm.limit

    def describe(self) -> str:
        with self._lock:
            learned = [f"{key}: RPM {k.rpm.limit or '-'}, TPM {k.tpm.limit or '-'}"
                       for key, k in sorted(self._keys.items()) if k.rpm.limit or k.tpm.limit]
        return "; learned " + "; ".join(learned) if learned else ""
