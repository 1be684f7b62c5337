"""The admission rule, shared by every backend: pure functions over a snapshot of one key's state.

A request with ``tokens`` input tokens is admitted at time ``t`` when

- no backoff gate is closed (``t >= gate_until``),
- the day is not used up (fewer than RPD admissions since the last midnight Pacific),
- fewer than RPM admissions, and at most TPM − tokens input tokens, fall in ``(t − span, t]``,
  where ``span`` is the window plus a small latency margin (see ``Limits.margin``).

The emulator uses the same sliding-window semantics, so a client that follows this rule is
never told 429 by it. Backends only load a ``KeyState`` atomically, call ``decide``, and write
back what the ``Decision`` says; none of them re-implements the rule.

``now`` must be read *inside* the atomic section: a caller that read the clock, then waited
for the lock while another pruned the window with a later time, would decide on a window
missing entries it should count (a real over-admission, found by the threaded test).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from ..errors import next_pacific_midnight
from .config import Limits

__all__ = ["WAKE_EPSILON_S", "Decision", "Entry", "KeyState", "counted", "day_reset_after", "decide", "prune_before", "usage"]

# Added to computed waits so a sleeper wakes strictly after the boundary it waits for, rather
# than a hair before it because of float rounding, and spins one extra round.
WAKE_EPSILON_S = 1e-4
PRUNE_SPANS = 2


@dataclass(frozen=True)
class Entry:
    ts: float  # wall-clock admission time (epoch seconds; shared across processes)
    tokens: int


@dataclass
class KeyState:
    """What a backend loaded for one key. ``entries`` need only cover the last ``span``."""

    entries: list[Entry] = field(default_factory=list)
    day_reset: float = 0.0  # epoch of the midnight Pacific that ends the counted day; 0 = none yet
    day_count: int = 0
    day_blocked: bool = False  # the server said the day is used up (a per-day 429)
    gate_until: float = 0.0  # coordinated backoff: nobody is admitted before this


@dataclass(frozen=True)
class Decision:
    admitted: bool
    wait: float = 0.0  # when not admitted: seconds until it may fit (re-check then)
    day_exhausted: bool = False  # per-day quota used up: raise, don't wait
    day_reset: float = 0.0  # the day this admission is counted in (write back with day_count)
    day_count: int = 0  # the count after this admission
    day_blocked: bool = False  # write back too: a new day lifts a server-reported block
    at: float = 0.0  # the time the decision was made (read inside the backend's atomic section)
    quota: str = ""  # what the wait is for: "backoff" (a 429's shared gate) | "rpm" | "tpm" (telemetry)


def day_reset_after(now: float) -> float:
    """Epoch seconds of the next midnight America/Los_Angeles after ``now`` (DST-aware)."""
    return next_pacific_midnight(datetime.fromtimestamp(now, UTC)).timestamp()


def counted(limits: Limits) -> bool:
    """Whether a window counts requests or tokens under ``limits`` (else only the gate and the day)."""
    return bool(limits.rpm or limits.tpm)


def decide(state: KeyState, now: float, tokens: int, limits: Limits) -> Decision:
    # The day first: a used-up day is an error to raise at once, not a wait.
    if state.day_reset and now < state.day_reset:
        day_reset, day_count, blocked = state.day_reset, state.day_count, state.day_blocked
    else:  # first request ever, or a new day began at midnight Pacific
        day_reset, day_count, blocked = day_reset_after(now), 0, False
    if blocked or (limits.rpd and day_count >= limits.rpd):
        return Decision(False, day_exhausted=True, day_reset=day_reset, day_count=day_count, day_blocked=blocked,
                        at=now)

    wait, quota = max(state.gate_until - now, 0.0), "backoff"
    if not counted(limits):  # nothing to count (unlimited, or adaptive before a 429)
        if wait > 0:
            return Decision(False, wait=wait + WAKE_EPSILON_S, day_reset=day_reset, day_count=day_count, at=now,
                            quota=quota)
        return Decision(True, day_reset=day_reset, day_count=day_count + 1, at=now)
    span = limits.span
    live = [e for e in state.entries if e.ts > now - span]
    if any(live[i].ts > live[i + 1].ts for i in range(len(live) - 1)):  # backends usually load in order
        live.sort(key=_ts)
    # The oldest admissions must leave the window until only rpm - 1 remain.
    if limits.rpm and len(live) >= limits.rpm and (w := live[len(live) - limits.rpm].ts + span - now) > wait:
        wait, quota = w, "rpm"
    if limits.tpm:
        # A prompt larger than the whole TPM can only ever fit into an empty window; clamping
        # it lets it through then instead of blocking forever (the server decides its fate).
        need = min(tokens, limits.tpm)
        used = sum(e.tokens for e in live)
        if used + need > limits.tpm:
            for e in live:
                used -= e.tokens
                if used + need <= limits.tpm:
                    if (w := e.ts + span - now) > wait:
                        wait, quota = w, "tpm"
                    break
    if wait > 0:
        return Decision(False, wait=wait + WAKE_EPSILON_S, day_reset=day_reset, day_count=day_count, at=now,
                        quota=quota)
    return Decision(True, day_reset=day_reset, day_count=day_count + 1, at=now)


def _ts(e: Entry) -> float:
    return e.ts


def prune_before(now: float, span: float) -> float:
    """Admissions at or before this time may be deleted. Twice the span, not once: another
    process whose clock is a little behind ours must still find what its window needs."""
    return now - PRUNE_SPANS * span


def usage(state: KeyState, now: float, span: float) -> tuple[int, int]:
    """(requests, input tokens) admitted in the last ``span`` seconds: what adaptive learns from."""
    live = [e for e in state.entries if e.ts > now - span]
    return len(live), sum(e.tokens for e in live)
