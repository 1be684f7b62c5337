"""``Limits``: the quota numbers a limiter enforces, from quota tier presets, explicit numbers or strings.

Accepted strings (config file, ``FLASHLANE_LIMITS``, ``--limits``), comma-separated parts:

- ``adaptive`` (also the default when nothing else is given): start unthrottled, learn from 429s;
- a quota tier: ``free``, ``tier1``, ``tier2``, ``tier3``: the catalog's numbers for the model;
- numbers: ``rpm=15``, ``tpm=250000``, ``rpd=1000`` (0 = unlimited); combine with a tier to override;
- ``window=6``: the window length in seconds (a scaled minute, for benchmarks against the emulator);
- ``margin=0.1``: seconds added to the window to absorb client-to-server latency jitter;
- ``off`` / ``none`` / ``unlimited``: no limiter pacing at all (429s are still retried).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..errors import ConfigError
from ..models import DEFAULT_MODEL, QUOTA_TIERS, Quota, lookup, share_of

__all__ = ["DEFAULT_MARGIN_CAP_S", "DEFAULT_MARGIN_FRACTION", "DEFAULT_WINDOW_S", "Limits", "PRIORITY_KEY_SUFFIX",
           "quota_key"]

# Priority requests have limits of their own, PRIORITY_LIMIT_SHARE of the standard ones
# (model-facts.md §2.1: "Priority inference" has its own limits, by default 0.3x the standard rate
# limit): the client paces them under a key of their own, "project:model:priority".
PRIORITY_KEY_SUFFIX = ":priority"

DEFAULT_WINDOW_S = 60.0  # Gemini's RPM/TPM are per minute
# Each admission counts from when its answer arrived (see Reservation.reconcile), which is never
# before the server counted it, so arrival jitter cannot make two requests collide. The margin
# only covers what that leaves: clock skew between machines sharing a Redis limiter, and a
# request still in flight a whole window after admission.
DEFAULT_MARGIN_FRACTION = 0.005
DEFAULT_MARGIN_MIN_S = 0.02
DEFAULT_MARGIN_CAP_S = 0.5

_OFF = {"off", "none", "unlimited"}


@dataclass(frozen=True)
class Limits:
    """What a limiter enforces for each (project, model): a ``models.Quota`` (RPM, TPM, RPD;
    0 = unlimited) plus how it is applied: the window, its margin, and whether it adapts.
    ``adaptive``: the numbers are starting values that 429s lower (see ``adaptive.py``)."""

    rpm: int = 0
    tpm: int = 0
    rpd: int = 0
    window_s: float = DEFAULT_WINDOW_S
    margin_s: float | None = None  # None: DEFAULT_MARGIN_FRACTION of the window, capped
    adaptive: bool = False
    source: str = "explicit"  # for describe(): "free (gemini-3.1-flash-lite)", "adaptive", ...

    def __post_init__(self) -> None:
        if min(self.rpm, self.tpm, self.rpd) < 0:
            raise ConfigError("quota limits must be >= 0 (0 = unlimited)")
        if self.window_s <= 0:
            raise ConfigError("the quota window must be > 0 seconds")

    @property
    def margin(self) -> float:
        if self.margin_s is not None:
            return max(self.margin_s, 0.0)
        return min(max(self.window_s * DEFAULT_MARGIN_FRACTION, DEFAULT_MARGIN_MIN_S), DEFAULT_MARGIN_CAP_S)

    def share(self, fraction: float) -> Limits:
        """These limits at ``fraction`` of each number (priority's own limits), applied alike."""
        return replace(self, rpm=share_of(self.rpm, fraction), tpm=share_of(self.tpm, fraction),
                       rpd=share_of(self.rpd, fraction), source=f"{self.source}, x{fraction:g} for priority")

    @property
    def span(self) -> float:
        """How long one admission counts against RPM/TPM: the window plus the margin."""
        return self.window_s + self.margin

    @property
    def quota(self) -> Quota:
        return Quota(rpm=self.rpm, tpm=self.tpm, rpd=self.rpd)

    @property
    def unlimited(self) -> bool:
        return not (self.rpm or self.tpm or self.rpd)

    @classmethod
    def from_tier(cls, tier: str, model: str = DEFAULT_MODEL, *, window_s: float = DEFAULT_WINDOW_S) -> Limits:
        tier = tier.strip().lower()
        if tier not in QUOTA_TIERS:
            raise ConfigError(f"unknown quota tier {tier!r}", hint=f"use one of {', '.join(QUOTA_TIERS)} or 'adaptive'")
        info = lookup(model)
        quota = info.quota(tier) if info is not None else None
        if quota is None:
            raise ConfigError(f"no {tier} quota is known for model {model!r}",
                              hint="give explicit numbers, e.g. 'rpm=15,tpm=250000,rpd=1000', or use 'adaptive'")
        return cls(rpm=quota.rpm, tpm=quota.tpm, rpd=quota.rpd, window_s=window_s,
                   source=f"{tier} preset for {info.id if info else model}")

    @classmethod
    def adaptive_default(cls, window_s: float = DEFAULT_WINDOW_S) -> Limits:
        return cls(window_s=window_s, adaptive=True, source="adaptive")

    @classmethod
    def parse(cls, spec: str | Limits | None, model: str = DEFAULT_MODEL) -> Limits:
        """Parse a limits string; see the module docstring. None or "" means adaptive."""
        if isinstance(spec, Limits):
            return spec
        text = (spec or "").strip().lower()
        tier: str | None = None
        numbers: dict[str, Any] = {}
        window = DEFAULT_WINDOW_S
        margin: float | None = None
        adaptive = False
        off = False
        for raw in text.replace(";", ",").split(","):
            part = raw.strip()
            if not part:
                continue
            if "=" in part:
                name, _, value = (p.strip() for p in part.partition("="))
                try:
                    if name in ("rpm", "tpm", "rpd"):
                        numbers[name] = int(float(value))
                    elif name in ("window", "window_s"):
                        window = float(value)
                    elif name in ("margin", "margin_s"):
                        margin = float(value)
                    else:
                        raise ConfigError(f"unknown quota setting {name!r} in {spec!r}",
                                          hint="use rpm=, tpm=, rpd=, window= or margin=")
                except ValueError:
                    raise ConfigError(f"{name}={value!r} in {spec!r} is not a number") from None
            elif part == "adaptive":
                adaptive = True
            elif part in _OFF:
                off = True
            elif part in QUOTA_TIERS:
                tier = part
            else:
                raise ConfigError(f"unknown quota setting {part!r}",
                                  hint=f"use adaptive, off, {', '.join(QUOTA_TIERS)} or rpm=N,tpm=N,rpd=N[,window=S]")
        if tier is not None:
            base = cls.from_tier(tier, model, window_s=window)
        else:
            base = cls(window_s=window, source="explicit")
        limits = replace(base, margin_s=margin, **numbers)
        if numbers and tier is not None:
            limits = replace(limits, source=f"{base.source}, overridden")
        if off:
            return replace(limits, rpm=0, tpm=0, rpd=0, adaptive=False, source="off")
        if adaptive or (tier is None and not numbers):
            # Adaptive is the default: no one-size preset is right, and a paid tier must never
            # be slowed by a guess. Explicit numbers alongside "adaptive" are starting values.
            return replace(limits, adaptive=True, source="adaptive")
        return limits

    def describe(self) -> str:
        def n(v: int) -> str:
            return f"{v:,}" if v else "unlimited"

        per = "min" if self.window_s == DEFAULT_WINDOW_S else f"{self.window_s:g} s"
        nums = f"RPM {n(self.rpm)}, TPM {n(self.tpm)} per {per}, RPD {n(self.rpd)}"
        if self.adaptive:
            start = "unthrottled" if self.unlimited else nums
            return f"adaptive (starts {start}; learns each project's limit from 429s)"
        if self.source == "off":
            return "off (no client-side pacing; 429s are still retried)"
        return f"{nums} ({self.source})"


def quota_key(project: str, model: str, *, priority: bool = False) -> str:
    """The limiter key of a request: quotas are per Google Cloud project and model, and priority
    requests have limits of their own (``PRIORITY_KEY_SUFFIX``). The client and the gateway both key by it."""
    return f"{project}:{model}{PRIORITY_KEY_SUFFIX if priority else ''}"
