"""File and in-memory pipelines: many items through one task, resumable, packed, priced.

Parts (one concept per module): ``readers``/``writers`` (files), ``items`` (rows -> items
with stable ids), ``job`` (a task bound to options), ``packing``, ``scheduler`` (the async
engine), ``context_cache`` (the run's context cache of its prefix), ``progress``, ``report``,
``runfile`` (``flashlane run``), ``api`` (``map_items``), ``frames`` (``map_frame``).
"""

from __future__ import annotations

from .api import ItemResult, MapResult, amap_items, map_items, run_sync
from .frames import map_frame
from .report import build_report, format_report, load_report
from .runfile import RunConfig, RunSummary, run_file

__all__ = [
    "ItemResult", "MapResult", "RunConfig", "RunSummary", "amap_items", "build_report", "format_report",
    "load_report", "map_frame", "map_items", "run_file", "run_sync",
]
