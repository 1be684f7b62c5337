"""Adaptive limits: start unthrottled, learn each key's real quota from its 429s.

Gemini no longer publishes per-tier limits, tiers change with spend, and a preset that is too
low would slow a paid project for nothing. So by default nothing is paced until the server
says 429. Then, per key and per dimension (``error.kind``: rpm, tpm; unknown counts as rpm):

- **stated**: a limit the 429 states (``quotaValue``, or ``limit: N`` in the message) is exact:
  paced to, never probed past.
- **observed**: otherwise, the requests (or input tokens) *answered* in the last span when
  the 429 arrived: how much the server had just accepted. With none answered yet (a burst of
  429s at start-up, before anything succeeded) there is nothing to learn: the 429 only closes
  the backoff gate for the server's ``retryDelay``. (Counting admitted-but-refused requests
  once left a 200-row run paced at a handful per minute.)
- **one congestion event per window**: a 429 for a request admitted before the last cut (or
  probe) is part of the event already acted on and ignored; more 429s within a span of the last
  cut only tighten the estimate; a 429 in a later span cuts to ``min(observed, limit × BETA)``.
- **probe back up quickly**: an observed limit is a guess; while the pace is set by it
  (acquires had to wait) and no 429 refutes it, it doubles every ``span / PROBE_DIVISIONS``
  (slow start, as TCP recovers after a loss); a waiting acquire wakes when a probe is due,
  since answers alone come only once the window has room. A probe answered by a 429 restores the previous
  limit and doubles the time before the next probe (up to MAX_PROBE_EVERY intervals).

Learned values live in this process; the window and the backoff gate they pace against are in
the shared backend, so several processes converge on the same count.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace

from .config import Limits

__all__ = ["DEFAULT_BETA", "PROBE_DIVISIONS", "PROBE_GROWTH", "AdaptiveLimits"]

DEFAULT_BETA = 0.9
PROBE_GROWTH = 2.0
PROBE_DIVISIONS = 12  # probe every 1/12 of a span: 5 s for Gemini's per-minute windows
MAX_PROBE_EVERY = 64  # probe intervals: a steady unstated quota costs ever fewer failed probes


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


class AdaptiveLimits:
    def __init__(self, start: Limits, *, beta: float = DEFAULT_BETA, probe_growth: float = PROBE_GROWTH) -> None:
        self.start = start
        self.beta = beta
        self.probe_growth = probe_growth
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
            cached = self._limits.get(key)
            if cached is None or cached.rpm != k.rpm.limit or cached.tpm != k.tpm.limit:
                # Built only when a limit moves: this runs on every request.
                cached = self._limits[key] = replace(self.start, rpm=k.rpm.limit, tpm=k.tpm.limit)
            return cached

    def on_success(self, key: str, now: float) -> None:
        """An answer arrived: raise an observed limit that has been holding the pace back."""
        with self._lock:
            k = self._keys.get(key)
            if k is not None:
                for dim in (k.rpm, k.tpm):
                    self._probe(dim, now)

    def _interval(self, dim: _Dim) -> float:
        """Seconds from a change of ``dim`` to its next probe."""
        return self.start.span / PROBE_DIVISIONS * dim.probe_every

    def _probe(self, dim: _Dim, now: float) -> None:
        if dim.limit and not dim.exact and dim.saturated and now - dim.last_change >= self._interval(dim):
            dim.before_probe = dim.limit
            dim.limit = max(dim.limit + 1, math.ceil(dim.limit * self.probe_growth))
            dim.last_change = now
            dim.saturated = False

    def note_saturated(self, key: str, now: float | None = None) -> bool:
        """An acquire had to wait for the window: the limit, not demand, set the pace. With
        ``now``, probe up at once if a probe is due (no 429 since the last change for a probe
        interval): answers arrive only while there is room in the window, so probing on answers
        alone doubles once per window, not once per interval. True if a limit went up."""
        with self._lock:
            k = self._get(key)
            k.rpm.saturated = k.tpm.saturated = True
            if now is None:
                return False
            before = (k.rpm.limit, k.tpm.limit)
            for dim in (k.rpm, k.tpm):
                self._probe(dim, now)
            return (k.rpm.limit, k.tpm.limit) != before

    def next_probe_in(self, key: str, now: float) -> float | None:
        """Seconds until a learned, unstated limit of ``key`` may be probed up; None if none can be."""
        with self._lock:
            k = self._get(key)
            due = [dim.last_change + self._interval(dim) - now for dim in (k.rpm, k.tpm) if dim.limit and not dim.exact]
            return max(min(due), 0.0) if due else None

    def on_429(self, key: str, kind: str, *, quota_value: int | None, observed_requests: int,
               observed_tokens: int, request_tokens: int, now: float, sent_at: float | None = None) -> None:
        """``observed_*``: what was answered in the last span, plus this request. ``sent_at``:
        when the refused request was admitted."""
        if not quota_value and observed_requests <= 1:
            return  # nothing answered yet: no evidence of a limit, only of a wait
        with self._lock:
            k = self._get(key)
            dim = k.tpm if kind == "tpm" else k.rpm
            if not quota_value and sent_at is not None and sent_at < dim.last_change:
                # Admitted before the last cut or probe: the same congestion event, already acted
                # on (TCP ignores losses of what it sent before it cut). Counted as evidence, the
                # rest of a start-up burst failed every probe and held a 200-row run to one
                # request a minute on a loaded machine.
                return
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
