"""Per-(project, model) quotas: RPM and TPM over a sliding window, RPD per Pacific day.

Each (project, model) keeps a log of admitted requests ``(time, input tokens)`` for the last
``window_seconds``; a request is admitted only if every limit still holds with it included.
When one does not, the answer is a 429 whose ``RetryInfo.retryDelay`` is the true wait: the
time until enough old entries leave the window (RPM/TPM) or until midnight Pacific (RPD).
Rejected requests consume nothing. Limits of 0 mean unlimited.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..models import PRIORITY_LIMIT_SHARE, Quota
from .clock import pacific_day, seconds_to_pacific_midnight
from .errors import ApiError, quota_exhausted

_METRIC = "generativelanguage.googleapis.com/"
# (quotaMetric, quotaId) by kind, for free tier and paid tiers.
QUOTA_IDS = {
    ("rpm", True): (
        _METRIC + "generate_content_free_tier_requests",
        "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
    ),
    ("rpm", False): (_METRIC + "generate_requests_per_model", "GenerateRequestsPerMinutePerProjectPerModel"),
    ("tpm", True): (
        _METRIC + "generate_content_free_tier_input_token_count",
        "GenerateContentInputTokensPerModelPerMinute-FreeTier",
    ),
    ("tpm", False): (
        _METRIC + "generate_content_paid_tier_input_token_count",
        "GenerateContentPaidTierInputTokensPerModelPerMinute",
    ),
    ("rpd", True): (
        _METRIC + "generate_content_free_tier_requests",
        "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
    ),
    ("rpd", False): (
        _METRIC + "generate_requests_per_model_per_day",
        "GenerateRequestsPerDayPerProjectPerModel",
    ),
}


@dataclass
class _Bucket:
    log: deque[tuple[float, int]] = field(default_factory=deque)
    tokens: int = 0
    day: str = ""
    day_count: int = 0


def violation(kind: str, free: bool, model: str, limit: int | None) -> dict[str, Any]:
    """One QuotaFailure violation; ``limit`` None (an unlimited quota) states no quotaValue."""
    metric, qid = QUOTA_IDS[(kind, free)]
    out: dict[str, Any] = {
        "quotaMetric": metric,
        "quotaId": qid,
        "quotaDimensions": {"location": "global", "model": model},
    }
    if limit is not None:
        out["quotaValue"] = str(limit)
    return out


def no_quota_violations(model: str) -> list[dict[str, Any]]:
    """Every free-tier quota at limit 0: the tier has no quota for this model at all (the body
    of python-genai #2044 and continuedev/continue #10066: per-day and per-minute requests and
    input tokens per minute, each "limit: 0")."""
    return [violation(kind, True, model, 0) for kind in ("rpd", "rpm", "tpm")]


class QuotaBook:
    def __init__(self, window_seconds: float = 60.0):
        self.window = float(window_seconds)
        self._buckets: dict[tuple[str, str, bool], _Bucket] = {}

    def reset(self) -> None:
        self._buckets.clear()

    def admit(self, project: str, model: str, tokens: int, limits: Quota, now: float, tier: str,
              priority: bool = False) -> None:
        """Record the request, or raise ApiError 429 (recording nothing). ``tier``: the project's
        quota tier. ``priority``: a priority request, counted apart at ``PRIORITY_LIMIT_SHARE`` of
        the limits ("Priority inference" has its own limits, 0.3x the standard rate limit by
        default: model-facts.md §2.1)."""
        if not (limits.rpm or limits.tpm or limits.rpd):
            return
        if priority:
            limits = limits.share(PRIORITY_LIMIT_SHARE)
        b = self._buckets.get((project, model, priority))
        if b is None:
            b = self._buckets[(project, model, priority)] = _Bucket()
        horizon = now - self.window
        log = b.log
        while log and log[0][0] <= horizon:
            b.tokens -= log.popleft()[1]
        day = pacific_day(now) if limits.rpd else ""
        if b.day != day:
            b.day, b.day_count = day, 0
        free = tier == "free"
        violations: list[dict[str, Any]] = []
        wait = 0.0
        if limits.rpm and len(log) + 1 > limits.rpm:
            violations.append(violation("rpm", free, model, limits.rpm))
            # the entry that must leave so that len(log) + 1 <= rpm
            wait = max(wait, log[len(log) - limits.rpm][0] + self.window - now)
        if limits.tpm and b.tokens + tokens > limits.tpm:
            violations.append(violation("tpm", free, model, limits.tpm))
            if tokens > limits.tpm:
                wait = max(wait, self.window)  # never fits; the real API still says "retry"
            else:
                remaining = b.tokens
                for ts, t in log:
                    remaining -= t
                    if remaining + tokens <= limits.tpm:
                        wait = max(wait, ts + self.window - now)
                        break
        if limits.rpd and b.day_count + 1 > limits.rpd:
            violations.append(violation("rpd", free, model, limits.rpd))
            wait = max(wait, seconds_to_pacific_midnight(now))
        if violations:
            raise quota_error(violations, wait)
        log.append((now, tokens))
        b.tokens += tokens
        b.day_count += 1


def quota_error(violations: list[dict[str, Any]], wait: float) -> ApiError:
    return quota_exhausted(violations, max(wait, 0.0))
