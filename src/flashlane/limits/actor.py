"""Ray actor backend: the quota of a Ray cluster without Redis, held by one named, detached actor.

The actor (``QuotaKeeper``) keeps a ``MemoryStore`` and answers admissions one call at a time
(a Ray actor runs its calls one after another, so each decision is atomic), reading the clock
of its own process inside the call as the other backends do inside their atomic section. It is
created by the first process that needs it (``get_if_exists``: docs.ray.io "Named Actors",
"Get-Or-Create a Named Actor") and is ``detached``, so it outlives the job that made it and
every driver and worker of the cluster reaches it by name.

No round trip per request: a process leases admission in small slices. When it has no lease,
the keeper admits the request and up to ``LEASE_SLICE - 1`` more with the same rule
(``window.decide``, the spare ones counted from the lease's end); the process hands those out
locally for at most ``LEASE_TTL_S`` and gives back (``remove``) what it did not use. A slot counts
in the window from when it may be sent until its answer arrives (``Reservation.reconcile`` moves
it later), so a lease is as safe as admissions made when they are used.
A 429 that names its wait closes the keeper's gate for every process (``extend_gate``) and drops
this process's lease; another process can still use the slots it leased before (at most a
slice, for at most ``LEASE_TTL_S``).
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import ConfigError
from .config import Limits
from .memory import MemoryStore
from .window import Decision, counted

__all__ = ["ActorStore", "DEFAULT_ACTOR_NAME", "DEFAULT_NAMESPACE", "LEASE_SLICE", "LEASE_TTL_S", "keeper"]

DEFAULT_ACTOR_NAME = "flashlane-limiter"
DEFAULT_NAMESPACE = "flashlane"  # named actors are per namespace; a fixed one lets every job find it
# Slots per lease: small, so that one process never holds much of a window another one could use.
LEASE_SLICE = 4
# A process may hand out a slot for this long after its lease (and for at most this fraction of
# the window, so a scaled window in a benchmark keeps the proportion), then gives it back.
LEASE_TTL_S = 0.25
LEASE_TTL_FRACTION = 0.05
# Never lease more than this fraction of a window's RPM to one process at once.
LEASE_RPM_FRACTION = 1 / 16
# Leased slots remembered per process (for reconcile and release): a reservation is settled long
# before this many later admissions, so the oldest can be forgotten and memory stays flat.
SLOTS_REMEMBERED = 100_000


# With nothing counted in a window (no RPM or TPM: limits off, or adaptive before a 429) a lease
# carries only the shared 429 gate, which the next lease checks again (at most LEASE_TTL_S later);
# so a large one: an actor then asks the keeper once per this many requests, not once per 4.
UNCOUNTED_LEASE_SLICE = 64


def lease_size(limits: Limits) -> int:
    if not counted(limits):
        return LEASE_SLICE if limits.rpd else UNCOUNTED_LEASE_SLICE  # a day's count: small slices near its end
    if not limits.rpm:
        return LEASE_SLICE
    return max(1, min(LEASE_SLICE, int(limits.rpm * LEASE_RPM_FRACTION)))


def lease_ttl(limits: Limits) -> float:
    return min(LEASE_TTL_S, limits.window_s * LEASE_TTL_FRACTION)


class QuotaKeeper:
    """The actor: a ``MemoryStore`` behind Ray's one-call-at-a-time actor execution."""

    def __init__(self) -> None:
        self.store = MemoryStore()

    def lease(self, key: str, tokens: int, limits: Limits, entry_id: str, extra: int,
              give_back: list[tuple[str, float]]) -> tuple[Decision, list[str]]:
        """Admit ``entry_id`` and, if it fits, up to ``extra`` more slots of ``tokens`` each;
        first forget ``give_back`` (unused slots of an expired lease: (id, day_reset))."""
        for eid, day_reset in give_back:
            self.store.remove(key, eid, day_reset)
        d = self.store.admit(key, time.time, tokens, limits, entry_id)
        slots: list[str] = []
        if d.admitted:
            # A spare slot may be sent as late as the lease's end: it counts from then, so it cannot
            # leave the window before a request sent on it could have reached the server (the first
            # is sent now; a CI run saw one 429 in 200 when every slot counted from the lease).
            used_by = d.at + lease_ttl(limits)
            for _ in range(extra):
                eid = uuid.uuid4().hex
                if not self.store.admit(key, time.time, tokens, limits, eid).admitted:
                    break
                self.store.adjust(key, eid, tokens, used_by)
                slots.append(eid)
        return d, slots

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        self.store.adjust(key, entry_id, tokens, ts)

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        self.store.remove(key, entry_id, day_reset)

    def extend_gate(self, key: str, until: float) -> None:
        self.store.extend_gate(key, until)

    def block_day(self, key: str, day_reset: float) -> None:
        self.store.block_day(key, day_reset)

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        return self.store.usage(key, now, span)


def keeper(name: str = DEFAULT_ACTOR_NAME, namespace: str = DEFAULT_NAMESPACE) -> Any:
    """The cluster's keeper actor, created on first use (needs ``ray.init`` or a Ray worker)."""
    try:
        import ray
    except ImportError as e:  # optional dependency
        raise ConfigError("the ray limiter needs Ray", hint="pip install 'flashlane[ray]'") from e
    if not ray.is_initialized():
        raise ConfigError("the ray limiter runs inside a Ray cluster",
                          hint="call ray.init() first, or use limiter='redis' or 'sqlite'")
    # num_cpus=0: it only answers small calls; it must never wait for a CPU the workers hold.
    cls = ray.remote(num_cpus=0, max_restarts=-1)(QuotaKeeper)
    return cls.options(name=name, namespace=namespace, lifetime="detached", get_if_exists=True).remote()


@dataclass
class _Lease:
    slots: list[str] = field(default_factory=list)
    until: float = 0.0
    limits: Limits | None = None
    tokens: int = 0
    decision: Decision | None = None


class ActorStore:
    """The ``Store`` a process uses: leases from the keeper, handed out locally."""

    name = "ray"

    def __init__(self, name: str = DEFAULT_ACTOR_NAME, namespace: str = DEFAULT_NAMESPACE) -> None:
        self._keeper = keeper(name, namespace)
        self._lock = threading.Lock()  # a Client may be used from threads (Lane's sync calls)
        self._leases: dict[str, _Lease] = {}
        # An id the guard holds -> the leased slot it stands for (adjust and remove go to that slot).
        self._slot_of: OrderedDict[str, str] = OrderedDict()
        # Slots of leases under which nothing is counted: their tokens and times change nothing.
        self._uncounted: set[str] = set()

    def round_trip(self, key: str, now: float) -> bool:
        """No usable lease: the next admission asks the keeper (a blocking ``ray.get``)."""
        lease = self._leases.get(key)
        return lease is None or not lease.slots or now >= lease.until

    def admit(self, key: str, clock: Callable[[], float], tokens: int, limits: Limits, entry_id: str) -> Decision:
        import ray

        with self._lock:
            now = clock()
            lease = self._leases.get(key)
            if lease is not None and lease.slots and now < lease.until and lease.limits == limits:
                slot = lease.slots.pop()
                self._slot_of[entry_id] = slot
                if len(self._slot_of) > SLOTS_REMEMBERED:
                    self._uncounted.discard(self._slot_of.popitem(last=False)[0])
                if not counted(limits):
                    self._uncounted.add(entry_id)
                elif tokens != lease.tokens:  # charge this request's own estimate to its slot
                    self._keeper.adjust.remote(key, slot, tokens)
                d = lease.decision
                assert d is not None
                return Decision(True, day_reset=d.day_reset, day_count=d.day_count, at=now)
            give_back = self._drop(key)
        d, slots = ray.get(self._keeper.lease.remote(key, tokens, limits, entry_id, lease_size(limits) - 1,
                                                     give_back))
        if d.admitted and slots:
            with self._lock:
                self._leases[key] = _Lease(slots, d.at + lease_ttl(limits), limits, tokens, d)
        return d

    def _drop(self, key: str) -> list[tuple[str, float]]:
        """Forget this process's lease on ``key``; its unused slots, to give back."""
        lease = self._leases.pop(key, None)
        if lease is None or lease.decision is None:
            return []
        return [(slot, lease.decision.day_reset) for slot in lease.slots]

    def adjust(self, key: str, entry_id: str, tokens: int, ts: float | None = None) -> None:
        if entry_id in self._uncounted:  # one remote call per request saved when nothing is counted
            return
        # No wait for the answer: a caller's calls reach an actor in the order they were made.
        self._keeper.adjust.remote(key, self._slot_of.get(entry_id, entry_id), tokens, ts)

    def remove(self, key: str, entry_id: str, day_reset: float) -> None:
        with self._lock:
            slot = self._slot_of.pop(entry_id, entry_id)
            self._uncounted.discard(entry_id)
        self._keeper.remove.remote(key, slot, day_reset)

    def extend_gate(self, key: str, until: float) -> None:
        import ray

        with self._lock:
            give_back = self._drop(key)  # a closed gate holds this process back too
        for slot, day_reset in give_back:
            self._keeper.remove.remote(key, slot, day_reset)
        ray.get(self._keeper.extend_gate.remote(key, until))  # every process must see it before its next lease

    def block_day(self, key: str, day_reset: float) -> None:
        import ray

        with self._lock:
            self._drop(key)
        ray.get(self._keeper.block_day.remote(key, day_reset))

    def usage(self, key: str, now: float, span: float) -> tuple[int, int]:
        import ray

        return ray.get(self._keeper.usage.remote(key, now, span))  # type: ignore[no-any-return]

    def close(self) -> None:
        with self._lock:
            leases = list(self._leases)
            give_back = [(key, self._drop(key)) for key in leases]
        for key, slots in give_back:
            for slot, day_reset in slots:
                self._keeper.remove.remote(key, slot, day_reset)
