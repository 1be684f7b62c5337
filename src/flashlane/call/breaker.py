"""``Breaker``: stop sending while the service is down for everyone.

Retrying each request on its own during an outage multiplies the load on a service that is
already failing and makes a run take the sum of every item's retry schedule (measured before
this existed: 1,600 requests over 828 s for 200 rows, all failed). The breaker counts failed
attempts in a row across every call of a key (5xx, timeouts, dropped connections; 429s and
content errors are answers, not outages). A malformed response counts only while nothing has
answered properly on that key: a server that answers is not down (20 malformed answers in a
row stopped a 300-row run as an "outage", issue 20), while a URL that never gave one good
answer (a proxy's error page, the wrong server) is. At ``threshold`` it opens:

- ``on_outage="stop"`` (default): every call fails at once with ``Outage`` without being sent;
  a pipeline leaves its rows pending and says that rerunning resumes.
- ``on_outage="wait"``: calls wait; after ``cooldown_s`` one call is let through as a probe.
  A probe that succeeds closes the breaker; one that fails doubles the cooldown (bounded).

The same closed/open/half-open cycle as Nygard's circuit breaker (Release It!, 2007).
Time is read from the injected clock, so tests run outages in virtual time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from ..clock import Clock
from ..config import DEFAULT_BREAKER_COOLDOWN_S, DEFAULT_BREAKER_THRESHOLD
from ..errors import FlashlaneError, MalformedResponse, Outage, ServiceUnavailable, Timeout, TransportError

__all__ = ["Breaker", "MAX_COOLDOWN_S", "counts_as_outage"]

MAX_COOLDOWN_S = 300.0
POLL_S = 1.0  # how often a waiting caller looks again while a probe is out


def counts_as_outage(error: FlashlaneError) -> bool:
    return isinstance(error, (ServiceUnavailable, Timeout, TransportError)) and not isinstance(error, Outage)


@dataclass
class _State:
    failures: int = 0
    open_until: float | None = None  # None: closed
    cooldown: float = 0.0
    probing: bool = False
    last_error: str = ""
    answered: bool = False  # a call on this key has succeeded


class Breaker:
    def __init__(self, clock: Clock, *, threshold: int = DEFAULT_BREAKER_THRESHOLD,
                 cooldown_s: float = DEFAULT_BREAKER_COOLDOWN_S, mode: str = "stop") -> None:
        self.clock = clock
        self.threshold = max(1, threshold)
        self.cooldown_s = cooldown_s
        self.mode = mode
        self._lock = threading.Lock()
        self._keys: dict[str, _State] = {}
        self.opened = 0  # how many times a breaker opened (reported)

    def _state(self, key: str) -> _State:
        st = self._keys.get(key)
        if st is None:
            st = self._keys[key] = _State(cooldown=self.cooldown_s)
        return st

    def admit(self, key: str) -> float:
        """0 to send now; otherwise seconds to wait before asking again (wait mode).
        Raises ``Outage`` in stop mode while open."""
        with self._lock:
            st = self._state(key)
            if st.open_until is None:
                return 0.0
            if self.mode == "stop":
                raise self._outage(key, st)
            now = self.clock.monotonic()
            if now < st.open_until:
                return st.open_until - now
            if st.probing:
                return POLL_S
            st.probing = True  # this caller is the probe
            return 0.0

    def success(self, key: str) -> None:
        with self._lock:
            st = self._state(key)
            st.failures = 0
            st.answered = True
            st.open_until = None
            st.probing = False
            st.cooldown = self.cooldown_s

    def failure(self, key: str, error: FlashlaneError) -> None:
        if not counts_as_outage(error):
            return
        with self._lock:
            st = self._state(key)
            if isinstance(error, MalformedResponse) and st.answered:
                return
            st.failures += 1
            st.last_error = error.message
            now = self.clock.monotonic()
            if st.probing:  # the probe failed: stay open, longer
                st.probing = False
                st.cooldown = min(st.cooldown * 2, MAX_COOLDOWN_S)
                st.open_until = now + st.cooldown
            elif st.open_until is None and st.failures >= self.threshold:
                st.open_until = now + st.cooldown
                self.opened += 1

    def is_open(self, key: str) -> bool:
        with self._lock:
            return self._state(key).open_until is not None

    def outage_error(self, key: str) -> Outage:
        with self._lock:
            return self._outage(key, self._state(key))

    def _outage(self, key: str, st: _State) -> Outage:
        model = key.rpartition(":")[2] or None
        return Outage(f"the service looks down: {st.failures} calls in a row failed (last: {st.last_error})",
                      hint="nothing more is sent; rerun later to resume (finished work is kept), "
                           "or pass --on-outage wait to wait and probe", model=model)
