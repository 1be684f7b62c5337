"""Redis backend: processes on many machines share a quota.

Per key: a sorted set of admissions (member = id, score = wall time), a hash of their tokens,
a hash for the day count, a string for the backoff gate. ``admit`` is optimistic: WATCH the
four keys, read, run ``window.decide`` in Python, write in MULTI/EXEC; if any key changed in
between, EXEC fails and we re-read. That keeps the one admission rule in ``window.py`` rather
than a second copy in Lua. Keys carry a ``{hash tag}`` so a Redis Cluster keeps them together.
Clocks of the machines must agree (NTP) to well within ``Limits.margin``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from .config import Limits
from .window import Decision, Entry, KeyState, decide, prune_before, usage

__all__ = ["DEFAULT_PREFIX", "RedisStore"]

DEFAULT_PREFIX = "flashlane:limits"
PRUNE_TTL_SPANS = 2
DAY_KEY_GRACE_S = 3600  # keep a day counter an hour past its reset, then let Redis drop it

_EXTEND_GATE = """
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > cur then redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2]) end
"""
_UNCOUNT_DAY = """
if redis.call('HGET', KEYS[1], 'reset') == ARGV[1] and tonumber(redis.call('HGET', KEYS[1], 'count') or '0') > 0 then
  redis.call('HINCRBY', KEYS[1], 'count', -1)
end
"""


class RedisStore:
    name = "redis"

    def __init__(self, url: str | None = None, *, client: Any = None, prefix: str = DEFAULT_PREFIX) -> None:
        if client is None:
            try:
                import redis
            except ImportError as e:  # optional dependency
                from ..errors import ConfigError

                raise ConfigError("the redis limiter needs the 'redis' package",
                                  hint="pip install 'flashlane[redis]'") from e
            client = redis.Redis.from_url(url or "redis://localhost:6379/0")
        self._r = client
        self.prefix = prefix
        self._extend_gate = self._r.register_script(_EXTEND_GATE)
        self._uncount_day = self._r.register_script(_UNCOUNT_DAY)

    def _keys(self, key: str) -> tuple[str, str, str, str]:
        base = f"{self.prefix}:{{{key}}}"
        return f"{base}:adm", f"{base}:tok", f"{base}:day", f"{base}:gate"

    def round_trip(self, key: str, now: float) -> bool:
        return True  # every admission is a WATCH/MULTI exchange with the server

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        from redis.exceptions import WatchError

        adm, tok, day, gate = self._keys(key)
        ttl = math.ceil(limits.span) * PRUNE_TTL_SPANS + 60
        with self._r.pipeline() as p:
            while True:
                try:
                    p.watch(adm, tok, day, gate)
                    # After WATCH: if anyone writes (e.g. prunes with a later time) after this
                    # read, our EXEC fails and we start over with a fresh time. See window.py.
                    now = clock()
                    since = now - limits.span
                    state, old = self._read(p, key, since, prune_before(now, limits.span))
                    d = decide(state, now, tokens, limits)
                    p.multi()
                    if old:
                        p.zremrangebyscore(adm, "-inf", prune_before(now, limits.span))
                        p.hdel(tok, *old)
                    p.hset(day, mapping={"reset": repr(d.day_reset), "count": d.day_count,
                                         "blocked": int(d.day_blocked)})
                    p.expire(day, _day_ttl(d.day_reset, now))
                    if d.admitted:
                        p.zadd(adm, {entry_id: now})
                        p.hset(tok, entry_id, tokens)
                        p.expire(adm, ttl)
                        p.expire(tok, ttl)
                    p.execute()
                    return d
                except WatchError:
                    continue  # another client admitted in between: decide again on fresh state

    def _read(self, r: Any, key: str, since: float, prune: float | None = None) -> tuple[KeyState, list[bytes]]:
        adm, tok, day, gate = self._keys(key)
        live = r.zrangebyscore(adm, f"({since!r}", "+inf", withscores=True)
        old = r.zrangebyscore(adm, "-inf", repr(prune)) if prune is not None else []
        toks = r.hmget(tok, [m for m, _ in live]) if live else []
        entries = [Entry(float(ts), int(t or 0)) for (_, ts), t in zip(live, toks, strict=True)]
        reset, count, blocked = r.hmget(day, ["reset", "count", "blocked"])
        g = r.get(gate)
        st = KeyState(entries=entries, gate_until=float(g) if g else 0.0)
        if reset is not None:
            st.day_reset, st.day_count, st.day_blocked = float(reset), int(count or 0), bool(int(blocked or 0))
        return st, old

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        adm, tok, _, _ = self._keys(key)
        if self._r.zscore(adm, entry_id) is not None:
            with self._r.pipeline(transaction=True) as p:
                p.hset(tok, entry_id, tokens)
                if ts is not None:
                    p.zadd(adm, {entry_id: ts}, xx=True, gt=True)  # only ever later
                p.execute()

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        adm, tok, day, _ = self._keys(key)
        with self._r.pipeline(transaction=True) as p:
            p.zrem(adm, entry_id)
            p.hdel(tok, entry_id)
            p.execute()
        self._uncount_day(keys=[day], args=[repr(day_reset)])

    def extend_gate(self, key: str, until: float) -> None:
        _, _, _, gate = self._keys(key)
        # PX: the gate key expires itself a day after it was set; it's useless once past.
        self._extend_gate(keys=[gate], args=[repr(until), 86_400_000])

    def block_day(self, key: str, day_reset: float) -> None:
        _, _, day, _ = self._keys(key)
        with self._r.pipeline(transaction=True) as p:
            p.hset(day, mapping={"reset": repr(day_reset), "blocked": 1})
            p.hsetnx(day, "count", 0)
            p.expire(day, _day_ttl(day_reset, time.time()))
            p.execute()

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        state, _ = self._read(self._r, key, now - span)
        return usage(state, now, span)

    def close(self) -> None:
        self._r.close()


def _day_ttl(day_reset: float, now: float) -> int:
    # Relative to the caller's clock (it may be virtual in tests), not Redis's own.
    return max(math.ceil(day_reset - now), 0) + DAY_KEY_GRACE_S
