"""The deadline planner (``--finish-by``, ``lane.map(finish_by=...)``): which service tiers carry a
run's pending rows so that it is done by a time, at the lowest expected cost.

A plan is a chain of steps, cheapest first, each with a cut-off: batch (half price, minutes to a
day), then flex (half price, minutes, sheddable), then standard, then priority. At a step's cut-off
what it has not finished moves to the next step; the cut-off is the deadline less what the next
step needs for all the rows that may still be left (its latency plus rows over its throughput, with
``SAFETY`` on top). The runner (``runner.DeadlineRunner``) carries the plan out with the one run
engine; this module only decides, from:

- the run's size (pending rows, the pack size);
- the quota (the limits setting's RPM; priority has ``PRIORITY_LIMIT_SHARE`` of it) and the
  concurrency (Little's law: in flight / latency);
- measured throughput per tier from the run's own history in the run database
  (``TotalsRepo.tier_history``), else the named defaults below;
- the catalog's prices per tier (``models.Prices``).

Batch is tried only when the window before its cut-off is at least ``BATCH_MIN_WINDOW_S``; its
expected cost assumes a job that finishes in ``BATCH_TURNAROUND_S`` finishes, and the plan also
states what it costs if the job is cut off (the worst case: every row on the fallback tier, and
whatever the cancelled job did billed too, since no source says what a cancelled job bills;
docs/service-tiers.md, Deadlines).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..call.service_tier import BATCH, FLEX, FLEX_TIMEOUT_S, PRIORITY, STANDARD
from ..errors import ConfigError
from ..models import PRIORITY_LIMIT_SHARE, Usage, cost_of, lookup
from .packing import TYPICAL_ANSWER_TOKENS

__all__ = ["Plan", "Step", "TierRate", "make_plan", "live_chain", "parse_finish_by", "tier_rates",
           "BATCH_TURNAROUND_S", "BATCH_MIN_WINDOW_S", "FLEX_LATENCY_S", "FLEX_CONCURRENCY", "CANCEL_CONFIRM_S",
           "SAFETY", "MIN_MEASURED_REQUESTS"]

# 3.1 Flash-Lite batches were reported finishing in about 10 minutes (python-genai #1482); jobs also sit
# PENDING for more than a day (python-genai #2974, #2221; js-genai #1453), so this is what a job is
# expected to take when it goes well, never a promise.
BATCH_TURNAROUND_S = 10 * 60.0
# A batch step shorter than this is not tried: half of the reported typical turnaround.
BATCH_MIN_WINDOW_S = BATCH_TURNAROUND_S / 2
# Flex: "Minutes (1-15 min target)" (ai.google.dev/gemini-api/docs/optimization): the plan takes the
# end of the target, so a flex step is only chosen when 15 minutes of latency still fit.
FLEX_LATENCY_S = FLEX_TIMEOUT_S
# Flex answers take minutes, so keeping its quota busy takes many requests in flight (Little's law);
# a flex step runs this many at once unless --concurrency says otherwise.
FLEX_CONCURRENCY = 256
# Time kept between a batch cut-off and the fallback's own need, for the cancellation to be confirmed
# (the job must read CANCELLED before its rows move; the emulator scripts slow confirmations).
CANCEL_CONFIRM_S = 60.0
SAFETY = 1.25  # a step's need is its estimate times this: throughput is measured, not promised
MIN_MEASURED_REQUESTS = 20  # fewer requests of a tier in the history: its defaults are used
DEFAULT_RPM = 60.0  # limits "off" or adaptive: no known quota, a conservative pace for the plan
_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)d)?(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?$")


def parse_finish_by(value: str | float | datetime | timedelta, now: float) -> float:
    """The deadline as epoch seconds: a duration from ``now`` ("10m", "2h30m", "90s", a timedelta or
    seconds) or a time ("2026-12-08T09:00:00+00:00", a datetime; without a zone: UTC; "09:00": the
    next 09:00 UTC)."""
    if isinstance(value, timedelta):
        return now + value.total_seconds()
    if isinstance(value, (int, float)):
        return now + float(value)
    if isinstance(value, datetime):
        at = value if value.tzinfo else value.replace(tzinfo=UTC)
        return at.timestamp()
    text = str(value).strip().lower()
    m = _DURATION.match(text)
    if text and m and any(m.groups()):
        d, h, mi, s = (float(g or 0) for g in m.groups())
        return now + d * 86400 + h * 3600 + mi * 60 + s
    if re.match(r"^\d{1,2}:\d{2}$", text):
        hh, mm = (int(x) for x in text.split(":"))
        today = datetime.fromtimestamp(now, UTC).replace(hour=hh, minute=mm, second=0, microsecond=0)
        at = today if today.timestamp() > now else today + timedelta(days=1)
        return at.timestamp()
    try:
        parsed = datetime.fromisoformat(str(value).strip())
    except ValueError:
        raise ConfigError(f"--finish-by {value!r} is neither a duration nor a time",
                          hint="e.g. --finish-by 2h, --finish-by 90m, --finish-by 09:00 (UTC) or "
                               "--finish-by 2026-12-08T09:00:00+00:00") from None
    return parse_finish_by(parsed, now)


@dataclass(frozen=True)
class TierRate:
    """How fast a tier carries rows: ``rows_per_s`` sustained, answers after ``latency_s``."""

    tier: str
    rows_per_s: float
    latency_s: float
    source: str  # "default" | "measured (N requests)"

    def need_s(self, rows: int) -> float:
        """Seconds to carry ``rows``, with the safety margin."""
        if rows <= 0:
            return 0.0
        return SAFETY * (self.latency_s + rows / self.rows_per_s)


@dataclass(frozen=True)
class Step:
    tier: str
    until: float  # its cut-off (epoch seconds on the run's clock): what is left then moves on
    rows: int  # the rows it is expected to carry


@dataclass
class Plan:
    now: float
    deadline: float
    rows: int
    requests: int
    steps: list[Step]
    rates: dict[str, TierRate]
    per_request_usd: dict[str, float | None]  # at most, per tier (input estimate + full output cap)
    feasible: bool
    notes: list[str] = field(default_factory=list)

    def cost(self, tier: str, requests: int | None = None) -> float | None:
        per = self.per_request_usd.get(tier)
        return None if per is None else per * (self.requests if requests is None else requests)

    @property
    def first(self) -> str:
        return self.steps[0].tier

    @property
    def fallback(self) -> str:
        """The tier that carries the rows if the first step is cut off."""
        return self.steps[1].tier if len(self.steps) > 1 else self.steps[0].tier

    def expected_usd(self) -> float | None:
        return self.cost(self.first)

    def worst_usd(self) -> float | None:
        """Every row on the fallback, and a cut-off batch job billed in full (what it did is unknown)."""
        fb = self.cost(self.fallback)
        if fb is None or self.first != BATCH:
            return fb
        batch = self.cost(BATCH)
        return None if batch is None else fb + batch

    def as_dict(self) -> dict[str, Any]:
        return {"now": self.now, "deadline": self.deadline, "rows": self.rows, "requests": self.requests,
                "steps": [asdict(s) for s in self.steps], "rates": {t: asdict(r) for t, r in self.rates.items()},
                "expected_usd": _r(self.expected_usd()), "standard_usd": _r(self.cost(STANDARD)),
                "worst_usd": _r(self.worst_usd()), "feasible": self.feasible, "notes": self.notes}

    def lines(self) -> list[str]:
        """The plan as ``flashlane run`` prints it before anything is sent."""
        chain = ", then ".join(f"{s.tier} until {_clock(s.until)} (+{_dur(s.until - self.now)})"
                               if i < len(self.steps) - 1 else s.tier for i, s in enumerate(self.steps))
        out = [f"plan      {self.rows:,} rows ({self.requests:,} requests) by {_clock(self.deadline)} "
               f"(in {_dur(self.deadline - self.now)}): {chain}"]
        rates = "; ".join(f"{t} {r.rows_per_s:,.1f} rows/s after {_dur(r.latency_s)} ({r.source})"
                          for t, r in self.rates.items() if t != BATCH)
        if BATCH in self.rates:
            rates += f"; batch turnaround {_dur(self.rates[BATCH].latency_s)} ({self.rates[BATCH].source})"
        out.append(f"          throughput: {rates}")
        money = [f"expected ${_f(self.expected_usd())} ({self.first})"]
        if len(self.steps) > 1:
            money.append(f"if {self.first} is cut off ${_f(self.cost(self.fallback))} ({self.fallback})")
        money.append(f"all standard ${_f(self.cost(STANDARD))}")
        money.append(f"at most ${_f(self.worst_usd())}")
        out.append("          cost (at most, per the output caps): " + "; ".join(money))
        out += [f"          {n}" for n in self.notes]
        return out


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 8)


def _f(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.6f}"


def _clock(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dur(s: float) -> str:
    s = max(0, int(round(s)))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{sec:02d}s"


def tier_rates(model: str, *, rpm: float | None, concurrency: int, pack: int, flex_concurrency: int = FLEX_CONCURRENCY,
               history: dict[str, dict[str, float]] | None = None) -> dict[str, TierRate]:
    """Throughput per tier: measured where the run's history has enough requests, else from the
    quota (requests per second), the concurrency and the model's latency (``ModelInfo.ttft_s``,
    ``output_tokens_per_s``), rows being requests times the pack size."""
    history = history or {}
    info = lookup(model)
    latency = (info.ttft_s + TYPICAL_ANSWER_TOKENS / info.output_tokens_per_s) if info else 2.0
    per_s = (rpm or DEFAULT_RPM) / 60.0
    rates: dict[str, TierRate] = {}
    for tier, share, lat in ((FLEX, 1.0, FLEX_LATENCY_S), (STANDARD, 1.0, latency),
                             (PRIORITY, PRIORITY_LIMIT_SHARE, latency)):
        # Little's law: at most concurrency / latency requests a second, and never past the quota.
        req_s = min(per_s * share, (flex_concurrency if tier == FLEX else concurrency) / lat)
        rate = TierRate(tier, req_s * pack, lat, "default")
        seen = history.get(tier)
        if seen and seen.get("requests", 0) >= MIN_MEASURED_REQUESTS and seen.get("span_s", 0) > 0:
            rate = TierRate(tier, seen["items"] / seen["span_s"], min(lat, seen.get("latency_s", lat)),
                            f"measured ({int(seen['requests'])} requests)")
        rates[tier] = rate
    seen = history.get(BATCH)
    turnaround = seen["turnaround_s"] if seen and seen.get("jobs") else BATCH_TURNAROUND_S
    rates[BATCH] = TierRate(BATCH, math.inf, turnaround,
                            f"measured ({int(seen['jobs'])} jobs)" if seen and seen.get("jobs") else "default")
    return rates


def live_chain(rates: dict[str, TierRate], rows: int, now: float, deadline: float) -> tuple[list[Step], bool]:
    """The live steps for ``rows`` from ``now``: flex while standard can still finish what is left
    after it, then standard; priority only when standard alone cannot make the deadline, then at the
    same time as standard (its own limits add to standard's: the plan's last resort). Feasible: the
    deadline is expected met."""
    left = deadline - now
    std, flex, prio = rates[STANDARD], rates[FLEX], rates[PRIORITY]
    if flex.need_s(rows) <= left:
        return [Step(FLEX, deadline - std.need_s(rows), rows), Step(STANDARD, deadline, 0)], True
    if std.need_s(rows) <= left:
        return [Step(STANDARD, deadline, rows)], True
    # Standard cannot carry them in time: standard and priority at once (priority's limits are its own),
    # each taking its share of the rows by its throughput.
    both = TierRate(STANDARD, std.rows_per_s + prio.rows_per_s, std.latency_s, std.source)
    on_prio = round(rows * prio.rows_per_s / both.rows_per_s)
    return [Step(STANDARD, deadline, rows - on_prio), Step(PRIORITY, deadline, on_prio)], both.need_s(rows) <= left


def make_plan(*, model: str, rows: int, pack: int, now: float, deadline: float, rates: dict[str, TierRate],
              request_usage: Usage, batch_ok: bool = True) -> Plan:
    """The cheapest chain expected to meet ``deadline``; ``request_usage`` is one request's usage at
    most (input estimate, full output cap), priced per tier from the catalog."""
    requests = math.ceil(rows / max(pack, 1)) if rows else 0
    per = {t: cost_of(model, request_usage, service_tier=t) for t in (BATCH, FLEX, STANDARD, PRIORITY)}
    notes: list[str] = []
    if rows == 0:
        return Plan(now, deadline, 0, 0, [Step(STANDARD, deadline, 0)], rates, per, True, ["no pending rows"])
    live, feasible = live_chain(rates, rows, now, deadline)
    fallback_need = rates[live[0].tier].need_s(rows) + CANCEL_CONFIRM_S
    cutoff = deadline - fallback_need
    steps = live
    if not batch_ok:
        notes.append("batch is not available here (Vertex AI, or a model without a batch price): live tiers only")
    elif cutoff - now >= BATCH_MIN_WINDOW_S:
        steps = [Step(BATCH, cutoff, rows), *live]
        if rates[BATCH].latency_s > cutoff - now:
            notes.append(f"a batch job usually takes {_dur(rates[BATCH].latency_s)}, more than the "
                         f"{_dur(cutoff - now)} before its cut-off: it is tried, cut off if late")
    else:
        notes.append(f"no batch step: the rows need {_dur(fallback_need)} on {live[0].tier}, leaving under "
                     f"{_dur(BATCH_MIN_WINDOW_S)} for a job")
    if not feasible:
        notes.append("the deadline is not expected to be met at this quota and throughput: standard and "
                     "priority at once; the report says how late it was")
    return Plan(now, deadline, rows, requests, steps, rates, per, feasible, notes)
