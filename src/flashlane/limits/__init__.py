"""Client-side quota limiter per (project, model): sliding RPM/TPM windows, RPD per Pacific day.

::

    config.py    Limits: presets, explicit numbers, "adaptive", parsing from strings
    window.py    the admission rule (pure), shared by every backend
    store.py     the backend protocol
    memory.py    in-process backend          sqlite.py  one file per machine (WAL, BEGIN IMMEDIATE)
    redis.py     many machines (WATCH/MULTI)  adaptive.py learn limits from 429s (AIMD)
    actor.py     a Ray cluster: one named, detached actor; processes lease small slices
    limiter.py   Limiter / Reservation: waits on the injected clock, coordinated backoff
"""

from __future__ import annotations

import os
from typing import Any

from ..clock import Clock
from ..errors import ConfigError
from ..models import DEFAULT_MODEL
from .adaptive import AdaptiveLimits
from .config import DEFAULT_WINDOW_S, Limits
from .limiter import Limiter, Reservation
from .memory import MemoryStore
from .store import Store

__all__ = [
    "BACKENDS",
    "DEFAULT_WINDOW_S",
    "AdaptiveLimits",
    "Limiter",
    "Limits",
    "Reservation",
    "Store",
    "make_limiter",
    "make_store",
]

BACKENDS = ("memory", "sqlite", "redis", "ray")


def make_store(backend: str = "memory", *, path: str | os.PathLike[str] | None = None,
               redis_url: str | None = None, redis_client: Any = None) -> Store:
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        from .sqlite import SqliteStore

        return SqliteStore(path)
    if backend == "redis":
        from .redis import RedisStore

        return RedisStore(redis_url, client=redis_client)
    if backend == "ray":
        from .actor import ActorStore

        return ActorStore()
    raise ConfigError(f"unknown limiter backend {backend!r}", hint=f"use one of {', '.join(BACKENDS)}")


def make_limiter(limits: Limits | str | None = None, backend: str = "memory", *,
                 path: str | os.PathLike[str] | None = None, redis_url: str | None = None,
                 clock: Clock | None = None, model: str | None = None, redis_client: Any = None) -> Limiter:
    """A limiter for ``limits`` (a ``Limits``, a string such as ``"free"``, ``"tier1"``,
    ``"rpm=15,tpm=250000"``, ``"adaptive"``, ``"off"``; None = adaptive) on ``backend``.
    ``model`` picks the catalog row for tier presets."""
    parsed = Limits.parse(limits, model or DEFAULT_MODEL)
    store = make_store(backend, path=path, redis_url=redis_url, redis_client=redis_client)
    return Limiter(store, parsed, clock=clock, model=model)
