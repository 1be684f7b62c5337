"""What every runner (standard, flex, batch) does around its requests, written once.

- ``Prefilter``: rows decided without a request: too large for the model, empty, or answered
  before (the response cache); identical rows in one run ride on the first one's request.
- ``split``: one answer (a ``Result``, from a live call or a batch result body) into per-item
  outcomes: values for the ledger and the cache, items whose part of a packed answer was
  missing, repeated or invalid, items the task's own conversion refused; usage and cost
  shared evenly between the request's items. A task with built-in tools also keeps the
  answer's evidence (``evidence``) with each item: grounding is per response, so every item of
  a packed request carries the request's sources, citations and queries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from ..call.result import Result
from ..call.tools import Citation, Source
from ..errors import FlashlaneError
from ..models import Usage, cost_of
from ..store.run.requests import Answer
from .items import TEXT_FIELD, Item
from .job import Job, jsonable
from .packing import split_answer

__all__ = ["Prefilter", "Split", "evidence", "evidence_parts", "split", "share", "held", "Keep"]

Ok = Answer  # (finished value as JSON, usage share, cost share, evidence)
# A response-cache entry of a task with built-in tools holds the raw answer and its evidence under
# these keys, so a row answered from the cache keeps its sources; entries written before (the raw
# answer alone) still hit, without evidence.
CACHED_ANSWER, CACHED_EVIDENCE = "answer", "__flashlane_evidence__"


Keep: TypeAlias = bool | Callable[[Any], bool]  # which finished values a run holds in memory (all, none, or some)


def held(values: dict[str, Any], keep: Any) -> dict[str, Any]:
    """The finished values a run keeps in memory: all (``True``, small in-memory runs), none
    (``False``: file runs read the store), or those ``keep(value)`` says cannot be read back
    from the store as JSON (``lane.map``)."""
    if keep is True or not values:
        return values if keep is True else {}
    return {i: v for i, v in values.items() if keep(v)} if keep else {}


def share(usage: Usage, cost: float | None, n: int) -> tuple[Usage, float | None]:
    """One item's share of a request's usage and cost."""
    if n <= 1:
        return usage, cost
    return Usage(usage.prompt_tokens // n, usage.output_tokens // n, usage.thoughts_tokens // n,
                 usage.cached_tokens // n, usage.total_tokens // n, usage.search_queries // n,
                 usage.grounded_prompts // n, usage.audio_tokens // n), (cost / n if cost is not None else None)


@dataclass
class Split:
    ok: dict[str, Ok] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)  # item id -> the task's finished value
    bad: dict[str, str] = field(default_factory=dict)  # item id -> why its part of the answer is unusable
    refused: dict[str, str] = field(default_factory=dict)  # item id -> why the task's conversion refused it
    # cache key -> (model, raw answer, the request's usage, the items it carried)
    cache_entries: dict[str, tuple[str, Any, Usage, int]] = field(default_factory=dict)


def evidence(result: Result) -> dict[str, Any]:
    """A grounded answer's evidence as JSON data (``writers.EVIDENCE_KEYS``): sources (index, uri,
    title, kind; without ``segments``, since each citation names its sources by index), citations
    (the answer span in UTF-8 bytes and the sources supporting it), the search queries run."""
    return {"sources": [{k: v for k, v in s.as_dict().items() if k != "segments"} for s in result.sources],
            "citations": [c.as_dict() for c in result.citations], "search_queries": list(result.search_queries)}


def evidence_parts(data: Mapping[str, Any] | None) -> tuple[tuple[Source, ...], tuple[Citation, ...], tuple[str, ...]]:
    """``evidence`` read back from the store as typed parts, as ``Result`` has them (each source
    with the citations it supports)."""
    if not data:
        return (), (), ()
    citations = tuple(Citation(c["text"], c["start"], c["end"], tuple(c["sources"])) for c in data.get("citations", []))
    sources = tuple(Source(s["index"], s["uri"], s["title"], s["kind"],
                           tuple(c for c in citations if s["index"] in c.sources)) for s in data.get("sources", []))
    return sources, citations, tuple(data.get("search_queries", []))


def split(job: Job, unit: Sequence[Item], result: Result, *, cache: bool) -> Split:
    """``cache``: also build the response-cache entries (their keys cost a hash per item)."""
    out = Split()
    raws: dict[str, Any] = {}
    if len(unit) == 1:
        raws[unit[0].id] = result.parsed if job.task.structured else result.text
    else:
        assert job.item_schema is not None
        good, out.bad = split_answer(result.parsed, unit, job.item_schema)
        raws.update(good)
    usage, cost = share(result.usage, result.cost_usd, len(unit))
    found = evidence(result) if job.task.tools else None
    for it in unit:
        if it.id not in raws:
            continue
        try:
            value = job.finish(raws[it.id])
        except (ValueError, KeyError, TypeError, FlashlaneError) as e:  # a custom convert() refused it
            out.refused[it.id] = f"the task could not use the answer: {e}"
            continue
        out.values[it.id] = value
        out.ok[it.id] = Answer(jsonable(value), usage, cost, found, job.locate(it, value))
        if cache:
            raw = jsonable(raws[it.id])
            entry = raw if found is None else {CACHED_ANSWER: raw, CACHED_EVIDENCE: found}
            out.cache_entries[job.cache_key(it)] = (job.model, entry, result.usage, len(unit))
    return out


class Prefilter:
    """Failures known without asking and cache hits, before any request. ``dedupe``: identical
    rows ask once (only with the cache on: --no-cache means "ask every time"); bounded, since
    leaders are forgotten once settled and followers are read a window at a time."""

    def __init__(self, job: Job, cache: Any, *, dedupe: bool = True) -> None:
        self.job = job
        self.cache = cache
        self.dedupe = dedupe and cache is not None
        self.values: dict[str, Any] = {}  # item id -> finished value of a hit (read by keep_values runs)
        self._followers: dict[str, list[Item]] = {}
        self._leaders: dict[str, str] = {}  # cache key -> id of the unsettled item asking it
        self._key_of: dict[str, str] = {}  # leader id -> its cache key

    def __call__(self, items: Sequence[Item]) -> tuple[list[Item], dict[str, tuple[str, str]], dict[str, Ok]]:
        """(items to ask, failures, cache hits)."""
        job = self.job
        todo: list[Item] = []
        failed: dict[str, tuple[str, str]] = {}
        hits: dict[str, Ok] = {}
        for it in items:
            if job.too_large(it):
                failed[it.id] = ("too_large", f"the row is larger than {job.model}'s input limit "
                                              f"of {job.input_limit} tokens")
                continue
            if TEXT_FIELD in it.values and not str(it.values[TEXT_FIELD]).strip():
                failed[it.id] = ("empty_input", "the row's text is empty")
                continue
            if self.cache is not None:
                key = job.cache_key(it)
                leader = self._leaders.get(key) if self.dedupe else None
                if leader is not None:
                    if leader in hits:
                        hits[it.id] = hits[leader]
                        self.values[it.id] = self.values.get(leader)
                    else:
                        self._followers.setdefault(leader, []).append(it)
                    continue
                raw, kept = self.cache.lookup(key)
                found: dict[str, Any] | None = None
                if job.task.tools and isinstance(raw, dict) and CACHED_EVIDENCE in raw:
                    found = raw[CACHED_EVIDENCE]
                    raw = raw.get(CACHED_ANSWER)
                if raw is not None:
                    try:
                        value = job.finish(job.revalidate(raw))
                    except (ValueError, FlashlaneError):
                        pass  # a stale entry (schema changed shape): ask again
                    else:
                        self.values[it.id] = value
                        # A kept usage (an eval's cache) prices the hit as what it would have cost at
                        # this job's tier; nothing is spent (the ledger counts requests, not results).
                        usage, cost = Usage(), 0.0  # type: tuple[Usage, float | None]
                        if kept is not None:
                            whole = cost_of(job.model, kept[0], service_tier=job.service_tier)
                            usage, cost = share(kept[0], whole, kept[1])
                        hits[it.id] = Answer(jsonable(value), usage, cost, found, job.locate(it, value))
                        if self.dedupe:
                            self._leaders[key] = it.id  # later identical rows in this window copy the hit
                        continue
                if self.dedupe:
                    self._leaders[key] = it.id
                    self._key_of[it.id] = key
            todo.append(it)
        for key in [k for k, leader in self._leaders.items() if leader in hits]:
            del self._leaders[key]  # a hit is settled at once
        return todo, failed, hits

    def followers(self, ok: dict[str, Ok], failed: dict[str, tuple[str, str]],
                  values: dict[str, Any]) -> tuple[dict[str, Ok], dict[str, tuple[str, str]]]:
        """Identical rows get their leader's answer (at no cost) or its failure."""
        copied: dict[str, Ok] = {}
        fails: dict[str, tuple[str, str]] = {}
        for leader in [*ok, *failed]:
            key = self._key_of.pop(leader, None)
            if key is not None and self._leaders.get(key) == leader:
                del self._leaders[key]
            for f in self._followers.pop(leader, []):
                if leader in ok:
                    # the same rendered item: the same text, so the same provenance; an eval's cache
                    # (keep_usage) prices the copy as the leader's share
                    a = ok[leader]
                    priced = getattr(self.cache, "keep_usage", False)
                    copied[f.id] = Answer(a.value, a.usage if priced else Usage(), a.cost if priced else 0.0,
                                          a.evidence, a.provenance)
                    self.values[f.id] = values.get(leader)
                else:
                    fails[f.id] = failed[leader]
        return copied, fails
