"""When to try a failed call again, and how long to wait first.

Full-jitter exponential backoff (Brooker 2015: least total work among the jittered
strategies), with the server's own wait as a floor: ``RetryInfo.retryDelay`` on a 429 and
``Retry-After`` on a 5xx arrive as ``error.retry_after`` and the wait is never shorter.
What is retryable is decided by the error itself (``FlashlaneError.retryable``): 408/504
timeouts, 429 per-minute kinds, 500/502/503, transport failures. Never retried: per-day
exhaustion (it resets at midnight Pacific, hours away), 400/401/403/404 and content errors.

Time is not read here: the caller passes ``attempt`` and ``elapsed`` and sleeps on its own
injected clock, so tests run the whole schedule in virtual time.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Protocol

from ..config import DEFAULT_DEADLINE_S, DEFAULT_MAX_ATTEMPTS
from ..errors import FlashlaneError

__all__ = [
    "DEFAULT_INITIAL_DELAY",
    "DEFAULT_MAX_DELAY",
    "DEFAULT_MULTIPLIER",
    "RetryPolicy",
]

# google-api-core / google-genai: 1 s initial, 60 s cap, x2 (attempts and deadline: config.py).
DEFAULT_INITIAL_DELAY = 1.0
DEFAULT_MAX_DELAY = 60.0
DEFAULT_MULTIPLIER = 2.0


class Uniform(Protocol):
    def uniform(self, a: float, b: float) -> float: ...


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    initial_delay: float = DEFAULT_INITIAL_DELAY
    max_delay: float = DEFAULT_MAX_DELAY
    deadline_s: float = DEFAULT_DEADLINE_S
    multiplier: float = DEFAULT_MULTIPLIER

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.initial_delay < 0 or self.max_delay < 0 or self.deadline_s < 0:
            raise ValueError("delays and deadline must be non-negative")

    def backoff_cap(self, attempt: int) -> float:
        """Upper bound of the jittered backoff after ``attempt`` failed attempts (1-based)."""
        exp = min(max(attempt - 1, 0), 64)  # bounded so 2**exp can't overflow a float
        return min(self.max_delay, self.initial_delay * self.multiplier**exp)

    def delay_for(self, error: FlashlaneError, attempt: int, elapsed: float,
                  rng: Uniform | None = None) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None to give up.

        ``attempt`` counts attempts already made (1 after the first failure); ``elapsed`` is
        the time since the first attempt started. Gives up when the error is not retryable,
        the attempts are used up, or the wait would end past the deadline.
        """
        if not getattr(error, "retryable", False):
            return None
        if attempt >= self.max_attempts:
            return None
        r = rng if rng is not None else random
        delay = r.uniform(0.0, self.backoff_cap(attempt))
        floor = getattr(error, "retry_after", None)
        if floor is not None and floor > delay:
            # The server's wait is the true time until capacity frees up: waiting less only buys
            # another 429; max() keeps jitter when our backoff is already longer.
            delay = float(floor)
        if elapsed + delay > self.deadline_s:
            return None
        return delay
