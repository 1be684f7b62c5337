"""The run's explicit context caches (``context_caches``): made, extended, deleted or found gone,
so a resumed run reuses a live one and the report charges their creation and storage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .store import RunStore

__all__ = ["ContextCachesRepo"]


class ContextCachesRepo:
    def __init__(self, store: RunStore) -> None:
        self.store = store

    def event(self, event: str, name: str, tokens: int, at: float, expires: float, *, model: str = "",
              prefix: str = "", input_per_m: float | None = None, storage_per_m_hour: float | None = None) -> None:
        """A cache was created, extended (new expiry) or ended (deleted or found gone)."""
        db = self.store.db
        with self.store.transaction():
            if event == "created":
                db.execute("INSERT OR REPLACE INTO context_caches VALUES (?, ?, ?, ?, ?, ?, NULL, ?, ?)",
                           (name, model, prefix, tokens, at, expires, input_per_m, storage_per_m_hour))
            elif event == "extended":
                db.execute("UPDATE context_caches SET expires=? WHERE name=? AND ended IS NULL", (expires, name))
            else:
                db.execute("UPDATE context_caches SET ended=MIN(?, expires) WHERE name=? AND ended IS NULL",
                           (at, name))

    def live(self) -> list[tuple[str, str, str, int, float]]:
        """Caches not known to be gone: (name, model, prefix digest, tokens, expires), newest first."""
        return [(str(n), str(m), str(p), int(t or 0), float(e or 0)) for n, m, p, t, e in self.store.db.execute(
            "SELECT name, model, prefix, tokens, expires FROM context_caches WHERE ended IS NULL "
            "ORDER BY created DESC")]

    def costs(self) -> dict[str, Any]:
        """What the run's caches cost beyond its requests: creating them (their tokens at the input
        price) and storing them (token-hours at the storage price) until deleted, or, for one still
        alive, until its current expiry (what it costs if nobody deletes it)."""
        created = 0
        creation = storage = token_hours = 0.0
        unpriced = 0
        for tokens, start, expires, ended, in_rate, st_rate in self.store.db.execute(
                "SELECT tokens, created, expires, ended, input_per_m, storage_per_m_hour FROM context_caches"):
            created += 1
            hours = max((ended if ended is not None else expires) - start, 0.0) / 3600
            token_hours += (tokens or 0) * hours
            if in_rate is None or st_rate is None:
                unpriced += 1
                continue
            creation += (tokens or 0) * in_rate / 1e6
            storage += (tokens or 0) * st_rate / 1e6 * hours
        return {"created": created, "creation_usd": creation, "storage_usd": storage,
                "token_hours": token_hours, "unpriced": unpriced}
