"""In-process backend: one lock around plain Python state.

Thread-safe, and safe for asyncio because the lock is only held for the few microseconds of a
decision, never across an await or a sleep.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Callable

from .config import Limits
from .window import Decision, Entry, KeyState, decide, prune_before, usage

__all__ = ["MemoryStore"]


class _Key:
    __slots__ = ("entries", "order", "state")

    def __init__(self) -> None:
        self.entries: dict[str, Entry] = {}
        # Admission order, for O(1) amortised pruning; ids already removed are skipped lazily.
        self.order: deque[tuple[float, str]] = deque()
        self.state = KeyState()


def _live(k: _Key, live_from: float) -> list[Entry]:
    """Entries admitted after ``live_from``, oldest first, scanning only the window's tail."""
    out: list[Entry] = []
    for ts, eid in reversed(k.order):
        if ts <= live_from:
            break
        e = k.entries.get(eid)
        if e is not None and e.ts == ts:  # a record left behind by a re-filed entry doesn't count
            out.append(e)
    out.reverse()
    return out


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._keys: defaultdict[str, _Key] = defaultdict(_Key)

    def round_trip(self, key: str, now: float) -> bool:
        return False  # a dict under a lock: microseconds

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        with self._lock:
            now = clock()
            k = self._keys[key]
            cutoff = prune_before(now, limits.span)
            while k.order and k.order[0][0] <= cutoff:  # prune what no rule needs
                ts, eid = k.order.popleft()
                e = k.entries.get(eid)
                if e is not None and e.ts <= cutoff:
                    del k.entries[eid]
            if limits.rpm or limits.tpm:
                live_from = now - limits.span
                k.state.entries = _live(k, live_from)
            else:
                k.state.entries = []
            d = decide(k.state, now, tokens, limits)
            k.state.day_reset, k.state.day_count, k.state.day_blocked = d.day_reset, d.day_count, d.day_blocked
            if d.admitted:
                k.entries[entry_id] = Entry(now, tokens)
                k.order.append((now, entry_id))
            return d

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        with self._lock:
            k = self._keys[key]
            e = k.entries.get(entry_id)
            if e is not None:
                new_ts = e.ts if ts is None else max(e.ts, ts)
                k.entries[entry_id] = Entry(new_ts, tokens)
                if new_ts != e.ts:  # re-file it; the stale order record is skipped by its old ts
                    k.order.append((new_ts, entry_id))

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        with self._lock:
            k = self._keys[key]
            k.entries.pop(entry_id, None)
            if k.state.day_reset == day_reset and k.state.day_count > 0:
                k.state.day_count -= 1

    def extend_gate(self, key: str, until: float) -> None:
        with self._lock:
            k = self._keys[key]
            k.state.gate_until = max(k.state.gate_until, until)

    def block_day(self, key: str, day_reset: float) -> None:
        with self._lock:
            st = self._keys[key].state
            st.day_reset, st.day_blocked = day_reset, True

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        with self._lock:
            k = self._keys[key]
            return usage(KeyState(entries=list(k.entries.values())), now, span)

    def close(self) -> None:
        pass
