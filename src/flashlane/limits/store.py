"""What a limiter backend provides: atomic admit over one key's state, plus small updates.

Every ``admit`` loads a ``KeyState`` inside the backend's atomic section (a lock, a SQLite
``BEGIN IMMEDIATE`` transaction, a Redis WATCH/MULTI), runs ``window.decide`` on it and writes
the admission back in the same section; so the rule lives once, in ``window.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from .config import Limits
from .window import Decision

__all__ = ["Store"]


class Store(Protocol):
    name: str

    def round_trip(self, key: str, now: float) -> bool:
        """Whether the next ``admit`` on ``key`` waits on another process (a network round trip, a
        lease from the cluster's keeper): ``Limiter.aacquire`` then admits off the event loop."""

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        """Decide, and if admitted record (entry_id, decision.at, tokens) and the day count,
        atomically; ``clock()`` is read inside the atomic section."""

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        """Change the tokens charged to an admission (reconcile with the real prompt size)."""

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        """Forget an admission, and un-count it from the day if that day is still current."""

    def extend_gate(self, key: str, until: float) -> None:
        """Close the key until ``until`` (never shortens an existing gate)."""

    def block_day(self, key: str, day_reset: float) -> None:
        """The server said the day is used up: refuse everything until ``day_reset``."""

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        """(requests, tokens) admitted in (now - span, now]."""

    def close(self) -> None: ...
