"""The model catalog: data, not code paths.

Everything flashlane knows about a model lives in one ``ModelInfo`` record: lifecycle,
prices, limits, how it thinks, how fast it is, and the quota presets per quota tier.
The emulator serves exactly these models; the client prices calls and checks settings
against them. Facts come from ../shared/docs/model-facts.md (dated there).

This module must import nothing from the rest of flashlane: the emulator depends on it
and on nothing else.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from datetime import date

__all__ = [
    "DEFAULT_MODEL",
    "DEFAULT_MIN_CACHE_TOKENS",
    "CATALOG",
    "ModelInfo",
    "Prices",
    "DEFAULT_INPUT_TOKEN_LIMIT",
    "DEFAULT_OUTPUT_TOKEN_LIMIT",
    "Quota",
    "SERVICE_TIERS",
    "PRIORITY_PRICE_FACTOR",
    "PRIORITY_LIMIT_SHARE",
    "share_of",
    "QUOTA_TIERS",
    "THINKING_LEVELS",
    "canonical_id",
    "closest_ids",
    "get_model",
    "estimate_tokens",
    "lookup",
    "uncatalogued",
    "Usage",
    "cost_of",
]

DEFAULT_MODEL = "gemini-3.1-flash-lite"
THINKING_LEVELS = ("minimal", "low", "medium", "high")
QUOTA_TIERS = ("free", "tier1", "tier2", "tier3")  # the project's usage tier: its RPM/TPM/RPD
UNLIMITED = 0  # a quota value of 0 means "not limited"
# Smallest cachedContent the API accepts, for models with no figure of their own. The API states its
# floor when it refuses ("Cached content is too small. total_token_count=880, min_total_token_count=1024",
# measured on gemini-3.1-flash-lite, margince/margince PR #5780; the same 1,024 for gemini-2.5-flash,
# BerriAI/litellm#17696); model-facts.md 2.4 and its 2026-11-26 addendum. Models without a figure of
# their own use it (3.5 Flash-Lite: none found). For 3.5-3.8 Flash the later official caching tables say
# 4,096 ("3.x Flash") while a client verified live against gemini-3.6-flash reports the 400 below 1,024;
# the catalog keeps the enforced 1,024 and says so here.
DEFAULT_MIN_CACHE_TOKENS = 1_024


SERVICE_TIERS = ("standard", "flex", "batch", "priority")  # how a request is served; flex and batch are half price
# Priority inference costs "+75-100 %" over standard and has its own limits, "0.3x the standard rate
# limit" (ai.google.dev/gemini-api/docs/optimization via model-facts.md, addendum 2026-11-26, Tiers; and
# §2.1). No per-model priority price was found, so the catalog prices priority at the upper bound
# (a plan that may spend on priority never under-counts it).
PRIORITY_PRICE_FACTOR = 2.0
PRIORITY_LIMIT_SHARE = 0.3


@dataclass(frozen=True)
class Prices:
    """USD per 1M tokens, paid tier. Output includes thinking tokens.

    ``None`` means "not published where we looked": a price we do not know is never guessed,
    and a cost that needs it is unknown (``cost`` returns None), not a wrong number.
    """

    input: float
    output: float
    cached_input: float | None = None
    batch_input: float | None = None
    batch_output: float | None = None
    flex_input: float | None = None
    flex_output: float | None = None
    priority_input: float | None = None
    priority_output: float | None = None
    # Cached input inside a batch job. Where the pricing page gives its own figure (3.1 Flash-Lite "Batch
    # caching $0.0125", model-facts §1.1) the two discounts stack; where it says "Caching is the same as
    # standard" (2.5 Flash-Lite, 3 Flash, §1.2-1.3), and on Vertex AI ("the 90 % cache discount does not
    # stack with the 50 % batch discount", model-facts addendum 2026-12-07), they do not: None prices
    # cached tokens in a batch at ``cached_input``.
    batch_cached_input: float | None = None
    # Grounding with Google Search, USD per 1,000 units after the free allowance; the unit differs
    # by generation (Gemini 3 bills search queries, 2.5 bills grounded prompts).
    search_grounding_per_1k: float | None = None
    search_grounding_unit: str | None = None
    # Explicit context caches: USD per 1M cached tokens per hour of storage (model-facts 2.4: "$1.00 /
    # 1M tokens / hour for Flash/Flash-Lite", pricing snapshot, official). None: unknown, never cached.
    cache_storage_per_hour: float | None = None
    # Audio input where the pricing page lists it apart from text/image/video ("Input $0.25
    # (text/image/video), $0.50 (audio)"): USD per 1M audio prompt tokens on each service tier.
    # All None: the source lists one input price for every modality, so audio costs what text
    # does. A standard audio price without the tier's: an audio cost on that tier is unknown.
    audio_input: float | None = None
    batch_audio_input: float | None = None
    flex_audio_input: float | None = None

    def audio_rate(self, service_tier: str = "standard") -> float | None:
        """USD per 1M audio prompt tokens on a service tier (None: priced as text); priority's at
        the priority factor, as its other rates (no source; the upper bound)."""
        if service_tier == "batch":
            return self.batch_audio_input
        if service_tier == "flex":
            return self.flex_audio_input
        if service_tier == "priority":
            return self.audio_input * PRIORITY_PRICE_FACTOR if self.audio_input is not None else None
        return self.audio_input

    def rates(self, service_tier: str = "standard") -> tuple[float | None, float | None]:
        """(input, output) USD per 1M tokens on a service tier."""
        if service_tier == "batch":
            return self.batch_input, self.batch_output
        if service_tier == "flex":
            return self.flex_input, self.flex_output
        if service_tier == "priority":
            return self.priority_input, self.priority_output
        return self.input, self.output

    def cached_rate(self, service_tier: str = "standard") -> float | None:
        """USD per 1M cached input tokens on a service tier: batch's own figure where the pricing page has
        one (the discounts stack), else the standard cached price (they do not, or no source says they
        do: flex); priority's at the priority factor (no source; the upper bound)."""
        if self.cached_input is None:
            return None
        if service_tier == "batch" and self.batch_cached_input is not None:
            return self.batch_cached_input
        if service_tier == "priority":
            return self.cached_input * PRIORITY_PRICE_FACTOR
        return self.cached_input

    def search_cost(self, search_queries: int, grounded_prompts: int) -> float | None:
        """USD for Grounding with Google Search at the paid price after the free allowance (the
        allowance, 5,000 prompts a month on Gemini 3 and 1,500 a day on 2.5, is not tracked, so this
        is an upper bound); None when grounding was used and its price is unknown. Gemini 3 bills
        each search query, 2.5 each grounded prompt (``search_grounding_unit``; sources in ``source``)."""
        if not search_queries and not grounded_prompts:
            return 0.0
        if self.search_grounding_per_1k is None:
            return None
        units = grounded_prompts if self.search_grounding_unit == "grounded prompt" else search_queries
        return units * self.search_grounding_per_1k / 1000

    def cost(
        self,
        prompt_tokens: int,
        output_tokens: int,
        cached_tokens: int = 0,
        *,
        batch: bool = False,
        service_tier: str = "standard",
        audio_tokens: int = 0,
    ) -> float | None:
        """Cost of one call, or None when a price it needs is unknown.
        ``output_tokens`` must already include thinking tokens; ``audio_tokens`` (of the uncached
        prompt) are priced at the audio rate where the model has one."""
        tier = "batch" if batch else service_tier
        in_rate, out_rate = self.rates(tier)
        cached_rate = self.cached_rate(tier)
        if in_rate is None or out_rate is None or (cached_tokens and cached_rate is None):
            return None
        uncached = max(prompt_tokens - cached_tokens, 0)
        audio = min(audio_tokens, uncached)
        audio_rate = self.audio_rate(tier)
        if audio and audio_rate is None and self.audio_input is not None:
            return None  # audio has its own price on this model, but not one known on this tier
        audio_cost = audio * ((audio_rate if audio_rate is not None else in_rate) - in_rate)
        cached_cost = cached_tokens * cached_rate if cached_tokens and cached_rate is not None else 0.0
        return (uncached * in_rate + audio_cost + cached_cost + output_tokens * out_rate) / 1e6


# What the Gemini 3 family serves (ai.google.dev model pages); used for a model the catalog
# does not know, so sizing never invents a smaller or larger window.
DEFAULT_INPUT_TOKEN_LIMIT = 1_048_576
DEFAULT_OUTPUT_TOKEN_LIMIT = 65_536


@dataclass(frozen=True)
class Quota:
    """Per-project, per-model limits. 0 means unlimited."""

    rpm: int
    tpm: int
    rpd: int

    def share(self, fraction: float) -> Quota:
        """``fraction`` of each limit (priority's own limits: ``PRIORITY_LIMIT_SHARE``), rounded
        down but never to 0, which would mean unlimited."""
        return Quota(*(share_of(n, fraction) for n in (self.rpm, self.tpm, self.rpd)))


def share_of(limit: int, fraction: float) -> int:
    """``fraction`` of one limit (0: unlimited, kept), rounded down, at least 1."""
    return max(1, int(limit * fraction)) if limit else 0


@dataclass(frozen=True)
class ModelInfo:
    id: str
    display_name: str
    version: str
    # "ga" | "preview" | "deprecated" (still served, routed to or superseded by ``replacement``)
    # | "retired" (shut down: the API answers 404)
    status: str
    released: date | None
    shutdown: date | None = None
    replacement: str | None = None
    earliest_shutdown: date | None = None  # the deprecations page's "not before" date
    reported_shutdown: date | None = None  # a shutdown we have only from unconfirmed reports
    note: str = ""  # caveats a user should see next to the status (unconfirmed reports, ...)
    source: str = ""  # where the facts above come from (as cited in model-facts.md)
    aliases: tuple[str, ...] = ()
    prices: Prices | None = None
    input_token_limit: int = DEFAULT_INPUT_TOKEN_LIMIT
    output_token_limit: int = DEFAULT_OUTPUT_TOKEN_LIMIT
    thinking_levels: tuple[str, ...] = ()  # Gemini 3: levels
    default_thinking_level: str | None = None
    thinking_budget_range: tuple[int, int] | None = None  # Gemini 2.5: budgets
    default_thinking_budget: int | None = None
    # Synthetic thinking tokens per level, used by the emulator and by output budgets.
    thoughts_by_level: dict[str, int] = field(default_factory=dict)
    ttft_s: float = 1.0
    output_tokens_per_s: float = 300.0
    quotas: dict[str, Quota] = field(default_factory=dict)
    description: str = ""
    # Minimum total tokens of a cachedContent (also the floor for implicit cache hits); below it the
    # API answers 400 "Cached content is too small". Sources per model in the catalog entries.
    min_cache_tokens: int = DEFAULT_MIN_CACHE_TOKENS

    @property
    def retired(self) -> bool:
        return self.status == "retired"

    @property
    def uses_thinking_levels(self) -> bool:
        return bool(self.thinking_levels)

    @property
    def cheapest_thinking_level(self) -> str | None:
        """``minimal`` where supported; otherwise the lowest level the model takes (3.7/3.8
        Flash reject MINIMAL with a 400)."""
        if not self.thinking_levels:
            return None
        return "minimal" if "minimal" in self.thinking_levels else self.thinking_levels[0]

    def thinking_tokens(self, level: str | None = None, budget: int | None = None) -> int:
        """Typical thinking tokens for a level or budget (what the emulator spends)."""
        if self.thinking_levels:
            lvl = (level or self.default_thinking_level or self.cheapest_thinking_level or "minimal").lower()
            return self.thoughts_by_level.get(lvl, self.thoughts_by_level.get("minimal", 0))
        if budget is None:
            budget = self.default_thinking_budget or 0
        if budget == 0:
            return 0
        if budget < 0:  # dynamic
            return self.thoughts_by_level.get("dynamic", 256)
        return min(budget, self.thoughts_by_level.get("dynamic", 256))

    def quota(self, quota_tier: str) -> Quota | None:
        return self.quotas.get(quota_tier)


_FLASH_LITE_THOUGHTS = {"minimal": 24, "low": 180, "medium": 600, "high": 1400}
_FLASH_THOUGHTS = {"minimal": 40, "low": 220, "medium": 700, "high": 1600}
_NO_MINIMAL = ("low", "medium", "high")

# Sources, as model-facts.md cites them (its 2026-11-26 addendum for the newer rows).
_PRICING_SNAPSHOT = ("Gemini API pricing page https://ai.google.dev/gemini-api/docs/pricing, Mar-2026 snapshot "
                     "in a public GitHub docs dump (official)")
_CACHE_STORAGE_FLASH = 1.00  # USD / 1M tokens / hour, Flash and Flash-Lite (model-facts 2.4, pricing snapshot)
_FLEX = "Flex inference: 50% discount, https://ai.google.dev/gemini-api/docs/optimization.md.txt (official)"

_CATALOG_LIST: tuple[ModelInfo, ...] = (
    ModelInfo(
        id="gemini-3.1-flash-lite",
        display_name="Gemini 3.1 Flash Lite",
        version="3.1-flash-lite-05-2026",
        status="ga",
        released=date(2026, 5, 7),
        earliest_shutdown=date(2027, 5, 7),
        aliases=("gemini-flash-lite-latest",),
        prices=Prices(input=0.25, output=1.50, cached_input=0.025, batch_input=0.125, batch_output=0.75,
                      flex_input=0.125, flex_output=0.75, priority_input=0.25 * PRIORITY_PRICE_FACTOR,
                      priority_output=1.50 * PRIORITY_PRICE_FACTOR, batch_cached_input=0.0125,
                      cache_storage_per_hour=_CACHE_STORAGE_FLASH,
                      search_grounding_per_1k=14.0, search_grounding_unit="search query",
                      # model-facts 1: "$0.50 (audio)", batch "$0.25 (audio)"; flex is the same 50% off.
                      audio_input=0.50, batch_audio_input=0.25, flex_audio_input=0.25),
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="minimal",
        thoughts_by_level=_FLASH_LITE_THOUGHTS,
        ttft_s=1.4,
        output_tokens_per_s=337.0,
        quotas={
            "free": Quota(rpm=15, tpm=250_000, rpd=1_000),
            "tier1": Quota(rpm=4_000, tpm=4_000_000, rpd=150_000),
            "tier2": Quota(rpm=10_000, tpm=10_000_000, rpd=UNLIMITED),
            "tier3": Quota(rpm=30_000, tpm=30_000_000, rpd=UNLIMITED),
        },
        description="Gemini 3.1 Flash Lite",
        # No official row (model-facts 2.4); the live API's own 400 names 1,024 (margince/margince#5780).
        min_cache_tokens=DEFAULT_MIN_CACHE_TOKENS,
        source=("ai.google.dev gemini-api/docs/deprecations (official): GA 2026-05-07, earliest shutdown "
                f"2027-05-07; prices and search grounding ($14 / 1,000 search queries): {_PRICING_SNAPSHOT}; "
                f"{_FLEX}"),
    ),
    ModelInfo(
        id="gemini-3.5-flash-lite",
        display_name="Gemini 3.5 Flash-Lite",
        version="3.5-flash-lite-07-2026",  # synthetic: the emulator needs a version string
        status="ga",
        released=date(2026, 7, 21),  # "stable since July 2026"; the changelog dates it 2026-07-21
        # Batch and flex are half the standard price; the cached-input price was not in the source.
        prices=Prices(input=0.30, output=2.50, batch_input=0.15, batch_output=1.25,
                      flex_input=0.15, flex_output=1.25, priority_input=0.30 * PRIORITY_PRICE_FACTOR,
                      priority_output=2.50 * PRIORITY_PRICE_FACTOR),
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="minimal",  # Vertex docs: default thinking level MINIMAL
        thoughts_by_level=_FLASH_LITE_THOUGHTS,
        # No published per-quota-tier numbers and no measured latency yet: quota tier presets are refused
        # for it (give explicit numbers), and the emulator uses its generic latency.
        description="Gemini 3.5 Flash-Lite",
        source=("ai.google.dev models/gemini-3.5-flash-lite (official); prices from a 2026-10-07 transcription "
                "of the pricing page (public GitHub file api-evangelist/deepmind, "
                "plans/deepmind-plans-pricing.yml)"),
    ),
    ModelInfo(
        id="gemini-3.1-flash-lite-preview",
        display_name="Gemini 3.1 Flash Lite Preview",
        version="3.1-flash-lite-preview-03-2026",
        status="retired",
        released=date(2026, 3, 3),
        shutdown=date(2026, 5, 25),
        replacement="gemini-3.1-flash-lite",
        prices=Prices(input=0.25, output=1.50, cached_input=0.025, batch_input=0.125, batch_output=0.75,
                      search_grounding_per_1k=14.0, search_grounding_unit="search query",
                      audio_input=0.50, batch_audio_input=0.25),
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="minimal",
        thoughts_by_level=_FLASH_LITE_THOUGHTS,
        ttft_s=1.4,
        output_tokens_per_s=337.0,
        description="Gemini 3.1 Flash Lite Preview (shut down on the Gemini API on 2026-05-25)",
        note="Vertex AI reported discontinuing it on 2026-07-09 (3rd-party)",
        source=("Gemini API changelog https://ai.google.dev/gemini-api/docs/changelog (official): shut down "
                f"2026-05-25, use gemini-3.1-flash-lite; prices: {_PRICING_SNAPSHOT}"),
    ),
    ModelInfo(
        id="gemini-3.8-flash",
        display_name="Gemini 3.8 Flash",
        version="3.8-flash",  # synthetic
        status="ga",
        released=None,  # "later" than 3.6 (model-facts); no date found
        thinking_levels=_NO_MINIMAL,  # MINIMAL answers 400 "not supported for this model"
        default_thinking_level="medium",
        thoughts_by_level=_FLASH_THOUGHTS,
        description="Gemini 3.8 Flash",
        source=("docs.cloud.google.com gemini-enterprise-agent-platform/models/guides/gemini-3-8-flash (official): "
                "GA, 1,048,576 / 65,536, levels LOW/MEDIUM/HIGH (default MEDIUM); prices not in model-facts.md"),
    ),
    ModelInfo(
        id="gemini-3.7-flash",
        display_name="Gemini 3.7 Flash",
        version="3.7-flash",  # synthetic
        status="deprecated",
        released=None,
        replacement="gemini-3.8-flash",
        thinking_levels=_NO_MINIMAL,
        default_thinking_level="medium",
        thoughts_by_level=_FLASH_THOUGHTS,
        description="Gemini 3.7 Flash",
        note="requests are routed to gemini-3.8-flash",
        source=("ai.google.dev gemini-api/docs/models/gemini-3.7-flash (official, Aug-2026 copy): deprecated, "
                "routed to gemini-3.8-flash; minimal thinking is not supported; prices not in model-facts.md"),
    ),
    ModelInfo(
        id="gemini-3.6-flash",
        display_name="Gemini 3.6 Flash",
        version="3.6-flash",  # synthetic
        status="ga",
        released=date(2026, 7, 21),
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="medium",
        thoughts_by_level=_FLASH_THOUGHTS,
        description="Gemini 3.6 Flash",
        source=("Gemini API changelog (official, via model-facts.md): released 2026-07-21; "
                "docs.cloud.google.com .../guides/gemini-3-7-flash (official): GA, levels MINIMAL..HIGH "
                "(default MEDIUM); prices not in model-facts.md"),
    ),
    ModelInfo(
        id="gemini-3.5-flash",
        display_name="Gemini 3.5 Flash",
        version="3.5-flash",  # synthetic
        status="deprecated",
        released=date(2026, 5, 19),
        replacement="gemini-3.6-flash",
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="medium",
        thoughts_by_level=_FLASH_THOUGHTS,
        description="Gemini 3.5 Flash",
        note="requests are routed to gemini-3.6-flash",
        source=("ai.google.dev models/gemini-3.5-flash (official): GA 2026-05-19; ai.google.dev "
                "whats-new-gemini-3.5 (official): deprecated, routed to gemini-3.6-flash; prices not in "
                "model-facts.md"),
    ),
    ModelInfo(
        id="gemini-3-flash-preview",
        display_name="Gemini 3 Flash Preview",
        version="3-flash-preview-12-2025",
        status="preview",
        released=date(2025, 12, 17),
        aliases=(),
        prices=Prices(input=0.50, output=3.00, cached_input=0.05, batch_input=0.25, batch_output=1.50,
                      cache_storage_per_hour=_CACHE_STORAGE_FLASH,
                      # model-facts 3: "$1.00 (audio)"; its batch audio price is not in model-facts.
                      audio_input=1.00),
        thinking_levels=THINKING_LEVELS,
        default_thinking_level="high",
        thoughts_by_level=_FLASH_THOUGHTS,
        ttft_s=0.5,
        output_tokens_per_s=200.0,
        quotas={
            "free": Quota(rpm=5, tpm=250_000, rpd=20),
            "tier1": Quota(rpm=1_000, tpm=2_000_000, rpd=10_000),
            "tier2": Quota(rpm=2_000, tpm=3_000_000, rpd=100_000),
            "tier3": Quota(rpm=20_000, tpm=8_000_000, rpd=UNLIMITED),
        },
        description="Gemini 3 Flash Preview",
        # Official caching table, copy of 2026-05-07: "Gemini 3 Flash Preview 1,024" (model-facts 2.4).
        min_cache_tokens=1_024,
        note="the preview of gemini-3.5-flash",
        source=(f"prices: {_PRICING_SNAPSHOT}; the Gemini 3.5 Flash model page lists it as the preview of "
                "gemini-3.5-flash (official)"),
    ),
    ModelInfo(
        id="gemini-2.5-flash-lite",
        display_name="Gemini 2.5 Flash-Lite",
        version="001",
        status="ga",
        released=date(2025, 7, 22),
        shutdown=None,
        # Neither report is confirmed by a primary source, so the model stays served here.
        reported_shutdown=date(2026, 10, 16),
        note=("reported shut down (unconfirmed): a repo note citing the deprecations page gives a 2026-10-16 "
              "sunset; a 3rd-party page reports Gemini 2.5 withdrawn on 2026-11-12"),
        prices=Prices(input=0.10, output=0.40, cached_input=0.01, batch_input=0.05, batch_output=0.20,
                      cache_storage_per_hour=_CACHE_STORAGE_FLASH, search_grounding_per_1k=35.0, search_grounding_unit="grounded prompt",
                      # model-facts 2: "$0.30 (audio)", batch "$0.15 (audio)".
                      audio_input=0.30, batch_audio_input=0.15),
        thinking_budget_range=(512, 24_576),
        default_thinking_budget=0,
        thoughts_by_level={"dynamic": 300},
        ttft_s=0.45,
        output_tokens_per_s=500.0,
        quotas={
            "free": Quota(rpm=15, tpm=250_000, rpd=1_000),
            "tier1": Quota(rpm=4_000, tpm=4_000_000, rpd=UNLIMITED),
            "tier2": Quota(rpm=10_000, tpm=10_000_000, rpd=UNLIMITED),
            "tier3": Quota(rpm=30_000, tpm=30_000_000, rpd=UNLIMITED),
        },
        description="Stable version of Gemini 2.5 Flash-Lite, released in July of 2025",
        # Enforced by the API: 400 "... min_total_token_count=2048" (discuss.ai.google.dev t/178942,
        # model-facts addendum 2026-11-26).
        min_cache_tokens=2_048,
        source=(f"prices and search grounding ($35 / 1,000 grounded prompts): {_PRICING_SNAPSHOT}; sunset "
                "2026-10-16 from a repo note citing ai.google.dev/gemini-api/docs/deprecations (not checked "
                "against a primary copy); withdrawal 2026-11-12 from docs.laozhang.ai (3rd-party, unconfirmed)"),
    ),
)

CATALOG: dict[str, ModelInfo] = {m.id: m for m in _CATALOG_LIST}
_ALIASES: dict[str, str] = {a: m.id for m in _CATALOG_LIST for a in m.aliases}


def canonical_id(model: str) -> str:
    """Strip the ``models/`` / ``publishers/google/models/`` prefixes the SDKs accept."""
    name = model.strip()
    for prefix in ("publishers/google/models/", "models/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    return name


def lookup(model: str) -> ModelInfo | None:
    """The catalog entry for an ID or alias (retired ones included), or None."""
    name = canonical_id(model)
    return CATALOG.get(name) or CATALOG.get(_ALIASES.get(name, ""))


def uncatalogued(model: str) -> ModelInfo:
    """What is assumed about a model the catalog does not know (one newer than this release):
    Gemini 3 thinking levels and the usual limits; its prices stay unknown. The emulator serves
    such models on request (``extra_models``) so clients can be tested against one."""
    name = canonical_id(model)
    return ModelInfo(id=name, display_name=name, version=name, status="unknown", released=None,
                     thinking_levels=THINKING_LEVELS, default_thinking_level="minimal",
                     thoughts_by_level=_FLASH_LITE_THOUGHTS, description="a model flashlane's catalog does not know")


def get_model(model: str) -> ModelInfo:
    info = lookup(model)
    if info is None:
        raise KeyError(model)
    return info


def closest_ids(model: str, n: int = 3) -> list[str]:
    """Known live IDs nearest to a mistyped one, for 'did you mean'."""
    names = [m.id for m in _CATALOG_LIST if not m.retired] + list(_ALIASES)
    return difflib.get_close_matches(canonical_id(model), names, n=n, cutoff=0.5)


CHARS_PER_TOKEN = 4  # Gemini's tokenizer averages ~4 characters of English per token


def estimate_tokens(text: str) -> int:
    """Deterministic token estimate shared by the emulator (which bills with it) and the
    client limiter (which reserves with it), so reservations match what is charged."""
    if not text:
        return 0
    return max(1, (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Usage:
    """Token counts. ``output_tokens`` excludes thinking; billed output is output + thoughts."""

    prompt_tokens: int = 0
    output_tokens: int = 0
    thoughts_tokens: int = 0
    cached_tokens: int = 0
    total_tokens: int = 0
    # Grounding with Google Search, billed apart from tokens: the queries the answers ran
    # (webSearchQueries) and the answers that ran any (Gemini 2.5 bills per grounded prompt).
    search_queries: int = 0
    grounded_prompts: int = 0
    # Of prompt_tokens, those of audio parts (promptTokensDetails, modality AUDIO): priced apart
    # where the model's audio input has its own price (Prices.audio_input).
    audio_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.output_tokens + other.output_tokens,
            self.thoughts_tokens + other.thoughts_tokens,
            self.cached_tokens + other.cached_tokens,
            self.total_tokens + other.total_tokens,
            self.search_queries + other.search_queries,
            self.grounded_prompts + other.grounded_prompts,
            self.audio_tokens + other.audio_tokens,
        )

    @property
    def billed_output_tokens(self) -> int:
        return self.output_tokens + self.thoughts_tokens

    def as_dict(self) -> dict[str, int]:
        out = {
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "thoughts_tokens": self.thoughts_tokens,
            "cached_tokens": self.cached_tokens,
            "total_tokens": self.total_tokens,
        }
        if self.search_queries or self.grounded_prompts:  # only grounded calls carry these keys
            out["search_queries"] = self.search_queries
            out["grounded_prompts"] = self.grounded_prompts
        if self.audio_tokens:  # only calls with audio carry it
            out["audio_tokens"] = self.audio_tokens
        return out


def cost_of(model: str, usage: Usage, *, batch: bool = False, service_tier: str = "standard") -> float | None:
    """USD for the usage at the catalog's paid-tier prices, or None when the price is unknown
    (a model the catalog does not know, or one whose prices are not published): an unknown
    cost is reported as unknown, never as $0 or as another model's price."""
    info = lookup(model)
    if info is None or info.prices is None:
        return None
    tokens = info.prices.cost(usage.prompt_tokens, usage.billed_output_tokens, usage.cached_tokens, batch=batch,
                              service_tier=service_tier, audio_tokens=usage.audio_tokens)
    search = info.prices.search_cost(usage.search_queries, usage.grounded_prompts)
    if tokens is None or search is None:
        return None
    return tokens + search
