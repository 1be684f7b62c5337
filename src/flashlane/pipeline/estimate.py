"""What a run will send and cost, before anything is sent (``flashlane run --dry-run``).

The items are grouped into requests as the runners group them (``Job.closes_unit``), and each
request's input is estimated by the rule its ``Call`` would be (``Job.item_tokens``: text by
``estimate_tokens``, files by the media rules in media.py at the run's media resolution; plus
the request's shared part, read off one built request). The emulator bills by the same rules,
so against it the estimate is the bill; against the live API, ``countTokens`` on a few sampled
requests (free, and through the transport like every call) calibrates the estimate where the
rules are least certain: inputs with files (a PDF's text layer, for one, adds tokens the page
count does not show). Output is the answer budget each request is sent with, so the output
figure, and the cost, are an upper bound; input is an estimate.

Memory stays flat: items stream past, only sums and the pack-sizing sample are kept.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..caching.response_cache import ResponseCache
from ..call.media import Tokens
from ..call.request import Call, typical_thinking
from ..models import SERVICE_TIERS, Usage, cost_of, lookup
from .items import Item
from .job import Job
from .packing import ID_OVERHEAD_TOKENS, PackPlan

__all__ = ["CALIBRATION_REQUESTS", "Estimate", "estimate_run"]

CALIBRATION_REQUESTS = 3  # requests sampled for countTokens: enough to see a rule off by a factor
# Rows a run would not ask (identical to an earlier row, or answered before: settle.Prefilter) are
# found by their cache keys; past this many keys later repeats are counted as asked (the
# estimate errs high), so memory stays bounded however long the input.
DEDUPE_KEYS = 100_000


@dataclass
class Estimate:
    model: str
    pack: PackPlan
    items: int = 0
    requests: int = 0
    files: int = 0
    pages: int = 0  # PDF pages sent (after --pages)
    input_tokens: int = 0
    media_tokens: int = 0  # of input_tokens
    audio_tokens: int = 0  # of media_tokens
    output_tokens: int = 0  # each answer's budget + the typical thinking: about the most it will be
    too_large: int = 0  # items over the model's input limit (they fail without a request)
    repeated: int = 0  # items identical to an earlier one: they ride on its request
    cached: int = 0  # items answered before (the response cache): no request
    calibration: float | None = None  # countTokens / the rule's estimate, on the sampled requests
    calibrated_on: int = 0
    calibration_note: str = ""
    budget_usd: float | None = None
    service_tier: str = "standard"
    costs: dict[str, float | None] = field(default_factory=dict)  # service tier -> USD (None: price unknown)

    def as_dict(self) -> dict[str, Any]:
        return {"model": self.model, "items": self.items, "requests": self.requests, "files": self.files,
                "pages": self.pages, "input_tokens": self.input_tokens, "media_tokens": self.media_tokens,
                "audio_tokens": self.audio_tokens, "output_tokens_max": self.output_tokens,
                "too_large": self.too_large, "repeated": self.repeated, "cached": self.cached, "calibration": self.calibration, "calibrated_on": self.calibrated_on,
                "pack": self.pack.size, "cost_usd": self.costs, "service_tier": self.service_tier,
                "budget_usd": self.budget_usd}

    def format(self) -> str:
        def usd(v: float | None) -> str:
            return "unknown" if v is None else f"${v:,.4f}"

        unsent = self.repeated + self.cached + self.too_large
        lines = [f"dry run: nothing was sent ({self.model}, {self.service_tier})",
                 f"items: {self.items:,}" + (f" ({self.items - unsent:,} to send; {self.repeated:,} repeat an "
                                            f"earlier item, {self.cached:,} answered before)" if unsent else ""),
                 f"requests: {self.requests:,}  ({self.pack.why})"]
        if self.files:
            lines.append(f"files to send: {self.files:,}  PDF pages: {self.pages:,}")
        lines += [f"input tokens: {self.input_tokens:,}" + (f" (media {self.media_tokens:,}"
                                                           + (f", audio {self.audio_tokens:,}" if self.audio_tokens else "")
                                                           + ")" if self.media_tokens else ""),
                  f"output tokens: up to about {self.output_tokens:,} (each answer's budget + typical thinking)"]
        if self.calibration is not None:
            lines.append(f"calibrated with countTokens on {self.calibrated_on} request(s): x{self.calibration:.2f}")
        elif self.calibration_note:
            lines.append(self.calibration_note)
        if self.too_large:
            lines.append(f"too large: {self.too_large:,} item(s) over the model's input limit (they fail unsent)")
        lines.append("cost, about at most: " + "  ".join(f"{t} {usd(self.costs.get(t))}" for t in SERVICE_TIERS))
        cost = self.costs.get(self.service_tier)
        if self.budget_usd is not None and cost is not None and cost > self.budget_usd:
            lines.append(f"budget: the estimate passes --budget-usd {self.budget_usd:g} on {self.service_tier}; "
                         f"the run would stop there, about {self.budget_usd / cost:.0%} of the way")
        return "\n".join(lines)


@dataclass
class _Shared:
    """The tokens of a request beyond its items', read off built requests: the single request's
    (system text, example turns), and a pack's per item (its ids and instructions)."""

    single: int | None = None
    pack_per_item: float | None = None


def estimate_run(job: Job, items: Iterable[Item], plan: PackPlan, *,
                 count: Callable[[Call], int | None] | None = None, budget_usd: float | None = None,
                 cache: ResponseCache | None = None) -> Estimate:
    """The requests, tokens and cost of running ``job`` over ``items`` with ``plan``'s pack size.
    ``count``: countTokens for a built request (None: no calibration). ``cache``: the response
    cache the run would read (None: --no-cache, every row asked, as the run would)."""
    est = Estimate(model=job.model, pack=plan, budget_usd=budget_usd, service_tier=job.service_tier)
    shared = _Shared()
    thinking = typical_thinking(lookup(job.model), job.thinking)
    counted = estimated = 0
    unit: list[tuple[Item, Tokens]] = []

    def flush() -> None:
        nonlocal counted, estimated
        if not unit:
            return
        est.requests += 1
        its = [it for it, _ in unit]
        item_tokens = sum(t.total for _, t in unit)
        if len(unit) == 1:
            if shared.single is None or (count is not None and est.calibrated_on < CALIBRATION_REQUESTS
                                         and unit[0][1].media):
                call = job.single_call(its[0])
                shared.single = call.est_tokens - item_tokens
                if count is not None and unit[0][1].media and est.calibrated_on < CALIBRATION_REQUESTS:
                    n = count(call)
                    if n is None:
                        est.calibration_note = ("not calibrated: countTokens takes no request-wide media "
                                                "resolution on this model")
                    else:
                        counted += n
                        estimated += call.est_tokens - call.est_system_tokens
                        est.calibrated_on += 1
            est.input_tokens += shared.single + item_tokens
            est.output_tokens += job.answer_tokens(its[0]) + thinking
        else:
            if shared.pack_per_item is None:
                call = job.pack_call(its)
                shared.pack_per_item = (call.est_tokens - item_tokens) / len(its)
            est.input_tokens += math.ceil(shared.pack_per_item * len(its)) + item_tokens
            est.output_tokens += sum(job.answer_tokens(it) + ID_OVERHEAD_TOKENS for it in its) + thinking
        unit.clear()

    seen: set[str] = set()
    for it in items:
        est.items += 1
        if job.too_large(it):
            est.too_large += 1
            continue
        if cache is not None:
            key = job.cache_key(it)
            if key in seen:
                est.repeated += 1
                continue
            if cache.get(key) is not None:
                est.cached += 1
                continue
            if len(seen) < DEDUPE_KEYS:
                seen.add(key)
        tokens = job.item_tokens(it)
        est.files += tokens.files
        est.pages += tokens.pages
        est.media_tokens += tokens.media
        est.audio_tokens += tokens.audio
        if job.closes_unit([u for u, _ in unit], it, plan.size):
            flush()
        unit.append((it, tokens))
    flush()
    if estimated:
        est.calibration = counted / estimated
        est.input_tokens = round(est.input_tokens * est.calibration)
        est.media_tokens = round(est.media_tokens * est.calibration)
        est.audio_tokens = round(est.audio_tokens * est.calibration)
    usage = Usage(prompt_tokens=est.input_tokens, output_tokens=est.output_tokens, audio_tokens=est.audio_tokens)
    est.costs = {tier: cost_of(job.model, usage, service_tier=tier) for tier in SERVICE_TIERS}
    return est
