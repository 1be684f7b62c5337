"""A task bound to its options and model: how to turn items into requests and answers back
into values, and the fingerprint that tells a resumable run from a changed one."""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..caching.prefix import Prefix, join_system
from ..call.media import Tokens, marked_tokens
from ..call.request import Call, output_budget
from ..call.schema import Schema
from ..call.service_tier import BATCH, STANDARD, check_tier
from ..config import deprecated
from ..media import MAX_INLINE_FILE_BYTES
from ..models import (
    DEFAULT_INPUT_TOKEN_LIMIT,
    DEFAULT_OUTPUT_TOKEN_LIMIT,
    Usage,
    canonical_id,
    cost_of,
    estimate_tokens,
    lookup,
)
from ..tasks import Task
from ..tasks.provenance import PROVENANCE_OPTION, locate, wants_provenance
from .items import TEXT_FIELD, Item
from .packing import MAX_PACK_FILES, can_pack, pack_call, pack_output_tokens

if TYPE_CHECKING:
    from ..call.client import Client

__all__ = ["Job", "jsonable"]

# Per-request overhead beyond the prompt text: role markers, the schema, the system turn.
REQUEST_OVERHEAD_TOKENS = 64


def jsonable(value: Any) -> Any:
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


@dataclass
class Job:
    lane: Client
    task: Task
    options: dict[str, Any]
    model: str = ""
    thinking: str | None = None
    item_schema: Schema | None = None
    service_tier: str = "standard"  # standard | flex | batch: how requests are served and priced
    # The stable head of every request (Task.prefix): system text, instructions and reference
    # text as the system instruction, worked examples as leading turns. None: the task has none.
    prefix: Prefix | None = None
    # The (system, instructions) pair the fingerprint and the response-cache key are computed
    # from. Releases before issue 20 sent a task without reference material its instructions in
    # each user turn and hashed them apart from the system text; those hashes are kept for such
    # tasks, so their runs still resume and their cached answers still hit (the request asks the
    # same thing; only where the instructions sit changed).
    decides: tuple[str, str] = ("", "")
    # Whether the prefix holds more than system text and instructions (reference text or worked
    # examples): only then does its digest join the fingerprint, as it did before issue 20.
    material: bool = False
    # The explicit cache holding ``prefix`` for this run (context_cache.ContextCache), when it pays.
    context_cache: Any = None
    _in_limit: int = field(default=DEFAULT_INPUT_TOKEN_LIMIT, repr=False)

    @classmethod
    def create(cls, lane: Client, task: Task, task_options: Mapping[str, Any], *,
               service_tier: str | None = None) -> Job:
        task_options = dict(task_options)
        if (old := task_options.pop("tier", None)) is not None:  # lane.map(..., tier=): the old keyword
            deprecated("tier= is deprecated; use service_tier=")
            service_tier = service_tier or old
        options = task.options(task_options)
        model = canonical_id(options.get("model") or lane.settings.model)
        thinking = options.get("thinking") or lane.settings.thinking or task.thinking
        info = lookup(model)
        prefix = task.prefix(options)
        instructions = task.render_instructions(options)
        material = prefix is not None and prefix != Prefix(join_system([task.system, instructions]))
        decides = (prefix.system, "") if material and prefix is not None else (task.system, instructions)
        return cls(lane=lane, task=task, options=options, model=model, thinking=thinking,
                   item_schema=task.schema(options), prefix=prefix, decides=decides, material=material,
                   service_tier=check_tier(service_tier or lane.settings.service_tier),
                   _in_limit=info.input_token_limit if info else DEFAULT_INPUT_TOKEN_LIMIT)

    # ------------------------------------------------------------------ sizing

    @property
    def packable(self) -> bool:
        return self.task.structured and can_pack(self.item_schema)

    @functools.cached_property  # the item schema is serialised once per job, not once per item
    def shared_tokens(self) -> int:
        schema_tokens = estimate_tokens(json.dumps(self.item_schema.json_schema)) if self.item_schema else 0
        return self.prefix_tokens + schema_tokens + REQUEST_OVERHEAD_TOKENS

    @property
    def prefix_tokens(self) -> int:
        """The estimated size of the shared prefix (0 for a task with no system text,
        instructions or reference material)."""
        return self.prefix.tokens if self.prefix is not None else 0

    def answer_tokens(self, item: Item | None = None) -> int:
        opts = dict(self.options)
        if item is not None:
            opts[TEXT_FIELD] = item.text
        return self.task.answer_budget(opts)

    @property
    def input_limit(self) -> int:
        return self._in_limit

    @property
    def media_resolution(self) -> str | None:
        """The run's media resolution (the task option; a file's own level wins on Gemini 3)."""
        return self.options.get("media_resolution")

    def item_tokens(self, item: Item) -> Tokens:
        """The item's input tokens as its request will be estimated (and billed by the emulator):
        its text and its files at the run's media resolution."""
        return marked_tokens(item.rendered, self.model, self.media_resolution)

    def too_large(self, item: Item) -> bool:
        return self.item_tokens(item).total + self.shared_tokens > self._in_limit

    # ------------------------------------------------------------------ requests

    def single_call(self, item: Item) -> Call:
        cap = self.options.get("max_output_tokens") or output_budget(self.model, self.thinking,
                                                                    self.answer_tokens(item))
        return self.lane.build(self._prompt(item.rendered), schema=self.item_schema, system=self.system, model=self.model,
                               thinking=self.thinking, max_output_tokens=cap, tools=self.tools,
                               service_tier=self.request_tier, media_resolution=self.media_resolution)

    def pack_call(self, items: Sequence[Item]) -> Call:
        assert self.item_schema is not None
        per_item = max(self.answer_tokens(it) for it in items)

        def build(prompt: str, **kw: Any) -> Call:
            return self.lane.build(self._prompt(prompt), tools=self.tools, service_tier=self.request_tier,
                                   media_resolution=self.media_resolution, **kw)
        return pack_call(items, build=build, instructions="",
                         item_schema=self.item_schema, system=self.system, model=self.model,
                         thinking=self.thinking, per_item_answer=per_item)

    def _prompt(self, text: str) -> Any:
        """The request's contents: the prefix's example turns, then ``text`` as the user's turn."""
        return self.prefix.prompt(text) if self.prefix is not None else text

    @property
    def system(self) -> str | None:
        """The system instruction of every request (the prefix's)."""
        return (self.prefix.system or None) if self.prefix is not None else None

    def call_for(self, items: Sequence[Item]) -> Call:
        return self.pack_call(items) if len(items) > 1 else self.single_call(items[0])

    def closes_unit(self, unit: Sequence[Item], extra: Item, pack_size: int) -> bool:
        """Whether ``extra`` starts a new request rather than joining ``unit`` (how every runner,
        and the dry run's count, groups items into requests)."""
        return bool(unit) and (len(unit) >= pack_size or not self.pack_fits(unit, extra))

    def pack_fits(self, items: Sequence[Item], extra: Item) -> bool:
        """Would adding ``extra`` keep the pack inside the context and output limits? Items with
        files pack too: each item's parts follow its own ``### id:`` header (packing.pack_prompt),
        so its answer is attributed to it; their files together must fit one inline request and
        stay within ``MAX_PACK_FILES``."""
        sizes = [self.item_tokens(it) for it in (*items, extra)]
        if sum(t.files for t in sizes) > MAX_PACK_FILES:
            return False
        if sum(t.file_bytes for t in sizes) > MAX_INLINE_FILE_BYTES:
            return False
        tokens = self.shared_tokens + sum(t.total for t in sizes)
        per_item = max(self.answer_tokens(it) for it in (*items, extra))
        info = lookup(self.model)
        out_limit = info.output_token_limit if info else DEFAULT_OUTPUT_TOKEN_LIMIT
        return (tokens <= self._in_limit // 2
                and pack_output_tokens(self.model, self.thinking, per_item, len(items) + 1) < out_limit)

    @property
    def tools(self) -> list[Any] | None:
        """The task's built-in tools (grounding, URL context, code execution), on every request."""
        return list(self.task.tools) or None

    @property
    def request_tier(self) -> str:
        """The service tier each request asks for: a batch job's requests are plain (standard) requests."""
        return STANDARD if self.service_tier == BATCH else self.service_tier

    async def arun_call(self, call: Call) -> Any:
        """Send one request: through the run's explicit cache when there is one (which swaps the
        inline prefix for the cache and recreates a cache that vanished), else as built."""
        if self.context_cache is not None:
            return await self.context_cache.arun(call)
        return await self.lane.arun_call(call)

    @staticmethod
    def max_usage(call: Call) -> Usage:
        """A request's usage at most: its input estimate plus its full output cap."""
        return call.worst_usage(REQUEST_OVERHEAD_TOKENS)

    def max_cost(self, call: Call) -> float | None:
        """What a request can cost at most at the job's service tier (None when the model's price is unknown)."""
        return cost_of(call.model, self.max_usage(call), service_tier=self.service_tier)

    # ------------------------------------------------------------------ answers

    def revalidate(self, raw: Any) -> Any:
        """A cached raw answer back into what a fresh one would be."""
        if self.item_schema is None:
            return raw
        return self.item_schema.validate_text(json.dumps(raw))

    def finish(self, parsed: Any) -> Any:
        return self.task.finish(parsed, self.options)

    @property
    def provenance(self) -> bool:
        return wants_provenance(self.task.structured, self.options)

    def locate(self, item: Item, value: Any) -> dict[str, Any] | None:
        """Where each value of an item's finished answer was found in the item (provenance.py), as
        JSON data for the store; None when the run does not ask for it. Local: no request."""
        if not self.provenance:
            return None
        return locate(value, self.task.sources(item.values)).as_dict()

    @property
    def endpoint(self) -> str:
        """Which service answered: an emulator's synthetic answers must never be served as real ones."""
        s = self.lane.settings
        if s.backend == "emulator":
            return "emulator:" + (s.base_url or "in-process")
        if s.backend == "vertex":
            return f"vertex:{s.vertex_project}:{s.vertex_location}:{s.base_url or ''}"
        return "gemini:" + (s.base_url or "default")

    def cache_key(self, item: Item) -> str:
        from ..caching.response_cache import ResponseCache

        system, instructions = self.decides
        if self.material and self.prefix is not None:
            system = f"{system}\x00{self.prefix.digest()}"
        # A media resolution changes what the model sees of the item's files: part of the key
        # when set (only then, so the keys of runs without one stay as they were).
        level = f"\x00media_resolution={self.media_resolution}" if self.media_resolution else ""
        return ResponseCache.key(endpoint=self.endpoint, model=self.model, thinking=self.thinking, system=system,
                                 instructions=instructions,
                                 schema=self.item_schema.json_schema if self.item_schema else None,
                                 item=item.rendered + level, tools=self.task.tool_names)

    # ------------------------------------------------------------------ resume

    def fingerprint_start(self, *, source: Mapping[str, Any]) -> Any:
        """A hash of what decides the answers (task, options, model, thinking, how rows become
        items); each item then adds ``item_line(item)``, in input order, as it is read."""
        h = hashlib.sha256()
        # Provenance is worked out locally from the answer and does not change it: a run may be
        # resumed with it on or off (rows answered before say nothing of where their values are).
        opts = {k: v for k, v in self.options.items() if k not in ("schema", "text", PROVENANCE_OPTION)}
        decides = [self.task.name, *self.decides, self.task.item_template,
                   self.item_schema.json_schema if self.item_schema else None, self.model, self.thinking,
                   jsonable(opts), dict(source)]
        if self.task.tools:  # only then: runs without tools keep their fingerprints
            decides.append(self.task.tool_names)
        h.update(json.dumps(decides, sort_keys=True, default=str).encode())
        if self.material and self.prefix is not None:  # reference material decides answers too
            h.update(f"\nprefix {self.prefix.digest()}".encode())
        return h

    @staticmethod
    def item_line(item: Item) -> bytes:
        return f"\n{item.id}\t{item.hash}".encode("utf-8", "surrogatepass")

    def fingerprint(self, items: Sequence[Item], *, source: Mapping[str, Any]) -> str:
        """Changes when anything that decides the answers changes: task, options, model,
        thinking, how rows become items, and the items themselves."""
        h = self.fingerprint_start(source=source)
        for it in items:
            h.update(self.item_line(it))
        return str(h.hexdigest())
