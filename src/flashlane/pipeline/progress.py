"""Progress on stderr: a rich bar on a terminal, a plain line every few seconds otherwise
(CI logs and pipes should not fill with carriage returns), nothing with ``--quiet``."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

from .scheduler import Snapshot

__all__ = ["Progress", "DEFAULT_PLAIN_INTERVAL_S", "describe"]

DEFAULT_PLAIN_INTERVAL_S = 10.0
RICH_REFRESH_PER_S = 4
BAR_WIDTH = 16  # leaves room for the counters on an 80-column terminal


def _rate_eta(snap: Snapshot, elapsed: float) -> tuple[float, float | None]:
    fresh = snap.done - snap.done_at_start
    rate = fresh / elapsed * 60 if elapsed > 0 else 0.0
    left = snap.total - snap.done
    eta = (left / (rate / 60)) if rate > 0 else None
    return rate, eta


def _fmt_eta(eta: float | None) -> str:
    if eta is None:
        return "--"
    m, s = divmod(int(eta), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


def _cost(snap: Snapshot) -> str:
    return "cost unknown" if snap.unpriced_requests else f"${snap.cost_usd:.4f}"


WAITING = {"quota": "waiting for quota", "answers": "waiting for answers"}


def _eta_text(snap: Snapshot, eta: float | None) -> str:
    # While the limiter holds requests back (or answers are slow) the average rate says nothing
    # about when the run ends: say what it waits for instead of a stale ETA.
    return WAITING.get(snap.waiting or "", "") or f"ETA {_fmt_eta(eta)}"


def describe(snap: Snapshot, elapsed: float) -> str:
    rate, eta = _rate_eta(snap, elapsed)
    return (f"{snap.done}/{snap.total} done ({snap.failed} failed) | {rate:.0f} items/min | {_eta_text(snap, eta)} | "
            f"{snap.tokens:,} tokens | {_cost(snap)}")


class Progress:
    def __init__(self, *, quiet: bool = False, stream: TextIO | None = None,
                 plain_interval_s: float = DEFAULT_PLAIN_INTERVAL_S, label: str = "flashlane run") -> None:
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.interval = plain_interval_s
        self.label = label
        self.t0 = time.monotonic()
        self._last_plain = float("-inf")  # the first update always prints
        self._rich: Any = None
        self._task: Any = None
        self._last: Snapshot | None = None

    def __enter__(self) -> Progress:
        self.t0 = time.monotonic()
        if not self.quiet and self.stream.isatty():
            from rich.console import Console
            from rich.progress import BarColumn, TextColumn
            from rich.progress import Progress as RichProgress

            self._rich = RichProgress(BarColumn(bar_width=BAR_WIDTH), TextColumn("{task.fields[info]}"), console=Console(file=self.stream),
                                      refresh_per_second=RICH_REFRESH_PER_S, transient=False)
            self._rich.start()
            self._task = self._rich.add_task(self.label, total=None, info="")
        return self

    def update(self, snap: Snapshot) -> None:
        self._last = snap
        if self.quiet:
            return
        elapsed = time.monotonic() - self.t0
        if self._rich is not None:
            rate, eta = _rate_eta(snap, elapsed)
            info = (f"{snap.done}/{snap.total} ({snap.failed} failed) {rate:.0f}/min {_eta_text(snap, eta)} "
                    f"{snap.tokens:,} tok {_cost(snap)}")
            self._rich.update(self._task, total=snap.total, completed=snap.done, info=info)
            return
        now = time.monotonic()
        if now - self._last_plain >= self.interval:
            self._last_plain = now
            print(f"{self.label}: {describe(snap, elapsed)}", file=self.stream, flush=True)

    def __exit__(self, *exc: object) -> None:
        if self._rich is not None:
            self._rich.stop()
        elif not self.quiet and self._last is not None:
            print(f"{self.label}: {describe(self._last, time.monotonic() - self.t0)}", file=self.stream, flush=True)
