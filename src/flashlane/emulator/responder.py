"""Synthetic answers: a valid instance of the request's schema, or short text.

Answers are deterministic: a ``random.Random`` seeded by a hash of the request, so reruns of a
pipeline see the same output. Both schema dialects are understood: JSON Schema
(``responseJsonSchema``: lowercase types, ``$defs``/``$ref``, ``anyOf``, ``enum``, ``const``,
bounds, ``format``) and the OpenAPI subset (``responseSchema``: UPPERCASE types,
``propertyOrdering``, ``nullable``).

Request packing rule: an array whose items are objects with an ``enum``-valued property, and
whose ``maxItems`` equals the enum's length, gets exactly one item per enum value, in order,
so a request that packs N rows under ids ``r1..rN`` is answered once per row. A row whose files
the request marks as its own (``row_seeds``: a text part's ``### id: r2`` line, then the row's
media parts; wire.item_media) is generated from a seed of those files alone, so a document gets
the same answer in whichever pack, at whichever position, it is sent.

Generation is bounded (the limits below; docs/emulator.md, "Schema limits"): every value is paid
for from a budget of characters before it is built, so no schema, however it nests, repeats
``$ref``s or asks for ``minItems``/``minLength``, makes one answer cost more than a fixed amount
of CPU and memory. Over the budget is the live API's 400 for a schema it will not serve.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping
from typing import Any

from ..models import CATALOG, CHARS_PER_TOKEN
from .documents import MISSING, label_key, typed_value
from .errors import MAX_JSON_DEPTH, schema_too_complex

_WORDS = [
    "clear",
    "concise",
    "steady",
    "bright",
    "simple",
    "useful",
    "careful",
    "quick",
    "gentle",
    "solid",
    "calm",
    "modest",
    "fresh",
    "practical",
    "reliable",
    "neat",
    "direct",
    "honest",
    "compact",
    "focused",
    "plain",
]
_NOUNS = [
    "answer",
    "summary",
    "result",
    "overview",
    "point",
    "detail",
    "note",
    "outline",
    "idea",
    "example",
    "topic",
    "review",
    "signal",
    "pattern",
    "trend",
    "record",
    "item",
    "value",
]
_SHORT_BY_NAME = {
    "label": ["positive", "negative", "neutral"],
    "sentiment": ["positive", "negative", "neutral"],
    "category": ["general", "billing", "support", "product"],
    "language": ["en", "fr", "de", "es"],
    "lang": ["en", "fr", "de", "es"],
    "city": ["Paris", "Lisbon", "Osaka", "Toronto"],
    "country": ["France", "Portugal", "Japan", "Canada"],
    "name": ["Alex Morgan", "Sam Lee", "Jordan Blake"],
    "currency": ["USD", "EUR", "GBP"],
    "color": ["red", "green", "blue"],
    "status": ["active", "pending", "done"],
    "unit": ["kg", "m", "s"],
}
_SENTENCE_NAMES = (
    "reasoning",
    "summary",
    "description",
    "explanation",
    "text",
    "translation",
    "content",
    "comment",
    "notes",
    "rationale",
    "answer",
    "message",
)
# The live API refuses schemas it cannot serve (errors.SCHEMA_TOO_COMPLEX_MESSAGE) but publishes no
# numbers: the Vertex AI structured-output page (control-generated-output) only names long property
# names, long array length limits, many enum values and optional properties as causes of that 400, and
# python-genai#2170 measured a budget near 960 for the sum of maxItems in one function's schema on
# gemini-3-flash-preview. So the emulator's limits follow from what an answer can hold: no catalog
# model returns more than MAX_GENERATED_CHARS characters (its outputTokenLimit at CHARS_PER_TOKEN), a
# longer answer would be cut to MAX_TOKENS anyway, and generating one costs at most ~0.3 s of CPU.
MAX_GENERATED_CHARS = max(m.output_token_limit for m in CATALOG.values()) * CHARS_PER_TOKEN
NODE_CHARS = 4  # the least a value adds to an answer printed with indent=2: newline, 2 spaces, 1 character
MAX_ARRAY_ITEMS = MAX_GENERATED_CHARS // NODE_CHARS  # a larger minItems cannot fit in any answer
MAX_STRING_LENGTH = MAX_GENERATED_CHARS  # nor a larger minLength
# An instance deeper than the request body may nest (a schema the live API can parse cannot require
# more levels) only comes from a required recursion, which has no finite instance.
MAX_DEPTH = MAX_JSON_DEPTH
# Below this depth optional properties and two array items are generated too; deeper, the smallest
# valid instance (required properties, minItems items, null where allowed), so recursive schemas end.
OPTIONAL_DEPTH = 12
# Answers up to this size are generated on the event loop (well under 10 ms); a bigger one is
# generated again on a worker thread (app.py), so it cannot starve other requests.
ON_LOOP_CHARS = 16_384


class OverBudget(Exception):
    """Generation ran out of a budget smaller than MAX_GENERATED_CHARS: retry with the full one."""


def over_limit(schema: dict[str, Any]) -> tuple[str, int, int] | None:
    """``(keyword, value, limit)`` when this schema node asks for more than the limits allow."""
    for key, limit in (("minItems", MAX_ARRAY_ITEMS), ("minLength", MAX_STRING_LENGTH)):
        value = _as_int(schema.get(key), 0)
        if value > limit:
            return key, value, limit
    return None


class Generator:
    """Builds one instance of a schema with a seeded RNG, within a budget of characters."""

    def __init__(self, root: dict[str, Any], rng: random.Random, budget: int = MAX_GENERATED_CHARS,
                 known: Mapping[str, str] | None = None, row_seeds: dict[str, int] | None = None):
        self.root = root
        self.rng = rng
        self.budget = budget
        self.left = budget
        # ``Label: value`` lines of the request's documents and text, by label key (documents.py):
        # a scalar property of that name takes the value, where it is valid.
        self.known = dict(known or {})
        self.row_seeds = row_seeds or {}  # packed row id -> the seed of its own files

    def spend(self, chars: int) -> None:
        """Pay for what is about to be built; raised before building what does not fit."""
        self.left -= chars
        if self.left < 0:
            if self.budget < MAX_GENERATED_CHARS:
                raise OverBudget
            raise schema_too_complex(f"an answer is at most {MAX_GENERATED_CHARS} characters")

    # ---- helpers ---------------------------------------------------------------------
    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if isinstance(ref, str) and ref.startswith("#"):
                for part in [p for p in ref[1:].split("/") if p]:
                    part = part.replace("~1", "/").replace("~0", "~")
                    target = target.get(part, {}) if isinstance(target, dict) else {}
            else:
                target = {}
            extra = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **extra} if extra else target
            seen += 1
        all_of = schema.get("allOf") if isinstance(schema, dict) else None
        if all_of:
            merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
            for sub in all_of:
                sub = self.resolve(sub)
                for k, v in sub.items():
                    if k == "properties":
                        merged.setdefault("properties", {}).update(v)
                    elif k == "required":
                        merged["required"] = list(dict.fromkeys([*merged.get("required", []), *v]))
                    else:
                        merged.setdefault(k, v)
            schema = merged
        return schema if isinstance(schema, dict) else {}

    @staticmethod
    def type_of(schema: dict[str, Any]) -> str | None:
        t = schema.get("type")
        if isinstance(t, list):
            t = next((x for x in t if str(x).lower() != "null"), t[0] if t else None)
        if t is None:
            if "properties" in schema:
                return "object"
            if "items" in schema or "prefixItems" in schema:
                return "array"
            return None
        return str(t).lower()

    # ---- instance ----------------------------------------------------------------------
    def instance(self, schema: Any, name: str = "", depth: int = 0) -> Any:
        if not isinstance(schema, dict):
            return self.string("", name)
        schema = self.resolve(schema)
        enum = schema.get("enum")
        if "const" in schema or enum:
            value = schema["const"] if "const" in schema else self.rng.choice(enum) if len(enum) > 1 else enum[0]
            self.spend(len(json.dumps(value)))  # schema data, but a $ref can repeat it many times
            return value
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if options:
                resolved = [self.resolve(o) for o in options]
                non_null = [o for o in resolved if self.type_of(o) != "null"]
                if depth > OPTIONAL_DEPTH and len(non_null) < len(resolved):
                    return None
                choice = non_null[0] if non_null else resolved[0]
                merged = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
                merged.update(choice)
                return self.instance(merged, name, depth)
        t = self.type_of(schema)
        if depth > OPTIONAL_DEPTH and (t in (None, "null") or schema.get("nullable")):
            return None
        if depth > MAX_DEPTH and t in ("object", "array"):
            raise schema_too_complex(f"an answer nests at most {MAX_DEPTH} levels")
        if t == "object":
            return self.obj(schema, depth)
        if t == "array":
            return self.array(schema, name, depth)
        return self.leaf(t, schema, name)

    def leaf(self, t: str | None, schema: dict[str, Any], name: str) -> Any:
        if t == "integer":
            return self.integer(schema, name)
        if t == "number":
            return self.number(schema, name)
        if t == "boolean":
            return self.rng.random() < 0.5
        if t == "null":
            return None
        if t == "object":
            return {}
        if t == "array":
            return []
        return self.string(schema.get("format", ""), name, schema)

    def obj(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties") or {}
        order = schema.get("propertyOrdering") or []
        required = schema.get("required") or []
        names = [n for n in order if n in props] + [n for n in props if n not in order]
        if depth > OPTIONAL_DEPTH:
            needed = {n for n in required if isinstance(n, str)}  # a set: a list search is quadratic
            names = [n for n in names if n in needed]
        extra = [n for n in required if n not in props]
        self.spend(sum(NODE_CHARS + len(n) for n in (*names, *extra)))
        out: dict[str, Any] = {}
        for n in names:
            out[n] = self.instance(props[n], n, depth + 1)  # generated even when replaced: the seed's
            if self.known:  # draws, and so the other values, stay those of the same schema without documents
                value = self.from_documents(props[n], n)
                if value is not MISSING:
                    out[n] = value
        for n in extra:
            out[n] = self.string("", n)
        return out

    def array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        lo = _as_int(schema.get("minItems"), 0)
        hi = _as_int(schema.get("maxItems"), None)
        items = schema.get("items")
        prefix = schema.get("prefixItems") or []
        packed = self.packed(schema, items, lo, hi, depth)
        if packed is not None:
            return packed
        n = lo if lo or depth > OPTIONAL_DEPTH else 2
        if hi is not None:
            n = min(n, hi)
        n = max(n, 0)
        self.spend(NODE_CHARS * n)
        out = [self.instance(p, name, depth + 1) for p in prefix[:n]]
        while len(out) < n:
            out.append(self.instance(items if isinstance(items, dict) else {}, _singular(name), depth + 1))
        if schema.get("uniqueItems"):
            seen: dict[str, Any] = {}  # by canonical JSON: linear, where a list search is quadratic
            for v in out:
                seen.setdefault(json.dumps(v, sort_keys=True), v)
            out = list(seen.values()) if len(seen) >= lo else out
        return out

    def from_documents(self, schema: Any, name: str) -> Any:
        text = self.known.get(label_key(name))
        if text is None or not isinstance(schema, dict):
            return MISSING
        node = self.resolve(schema)
        for key in ("anyOf", "oneOf"):  # a nullable field: its non-null choice
            options = node.get(key)
            if options:
                non_null = [o for o in (self.resolve(x) for x in options) if self.type_of(o) != "null"]
                if len(non_null) != 1:
                    return MISSING
                node = {**{k: v for k, v in node.items() if k != key}, **non_null[0]}
        t = self.type_of(node)
        if t in ("object", "array"):
            return MISSING
        value = typed_value(node, t, text)
        if value is not MISSING:
            self.spend(len(json.dumps(value)))
        return value

    def packed(
        self, schema: dict[str, Any], items: Any, lo: int, hi: int | None, depth: int
    ) -> list[Any] | None:
        if not isinstance(items, dict) or hi is None:
            return None
        item = self.resolve(items)
        if self.type_of(item) != "object":
            return None
        for pname, psub in (item.get("properties") or {}).items():
            psub = self.resolve(psub) if isinstance(psub, dict) else {}
            enum = psub.get("enum")
            if enum and len(enum) == hi and lo <= len(enum):
                self.spend(NODE_CHARS * len(enum))
                self.known = {}  # one label for all the packed rows would be wrong for all but one
                rows = []
                for value in enum:
                    seed = self.row_seeds.get(value) if isinstance(value, str) else None
                    outer, self.rng = self.rng, random.Random(seed) if seed is not None else self.rng
                    try:
                        row = self.obj(item, depth + 1)
                    finally:
                        self.rng = outer
                    row[pname] = value
                    rows.append(row)
                return rows
        return None

    def integer(self, schema: dict[str, Any], name: str) -> int:
        lo, hi = _bounds(schema, 0, 100, integer=True)
        return self.rng.randint(int(lo), int(hi))

    def number(self, schema: dict[str, Any], name: str) -> float:
        default = (
            (0.0, 1.0)
            if "conf" in name.lower() or "score" in name.lower() or "prob" in name.lower()
            else (0.0, 100.0)
        )
        lo, hi = _bounds(schema, *default)
        return round(lo + (hi - lo) * self.rng.random(), 2) if hi - lo >= 0.02 else lo

    def string(self, fmt: str, name: str, schema: dict[str, Any] | None = None) -> str:
        rng = self.rng
        fmt = (fmt or "").lower()
        if fmt == "date-time":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00Z"
        elif fmt == "date":
            value = f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
        elif fmt == "time":
            value = f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:00"
        elif fmt == "email":
            value = f"{rng.choice(_WORDS)}@example.com"
        elif fmt in ("uri", "url"):
            value = f"https://example.com/{rng.choice(_NOUNS)}"
        elif fmt == "uuid":
            bits = (
                rng.getrandbits(32),
                rng.getrandbits(16),
                rng.getrandbits(12),
                rng.getrandbits(12),
                rng.getrandbits(48),
            )
            value = f"{bits[0]:08x}-{bits[1]:04x}-4{bits[2]:03x}-8{bits[3]:03x}-{bits[4]:012x}"
        else:
            key = name.lower()
            words = next((v for k, v in _SHORT_BY_NAME.items() if key == k or key.endswith("_" + k)), None)
            if words:
                value = rng.choice(words)
            elif any(s in key for s in _SENTENCE_NAMES):
                value = sentence(rng, 8)
            elif key in ("id", "key") or key.endswith("_id"):
                value = f"{key or 'id'}-{rng.randint(1, 999)}"
            else:
                value = " ".join(rng.choice(_WORDS if i == 0 else _NOUNS) for i in range(2))
        lo = (_as_int(schema.get("minLength"), 0) or 0) if schema else 0
        hi = _as_int(schema.get("maxLength"), None) if schema else None
        size = max(len(value), lo)
        self.spend(size if hi is None else min(size, max(hi, 0)))  # before padding to minLength
        if len(value) < lo:
            value = (value + " " + "x" * lo)[:lo] if value else "x" * lo
        if hi is not None and len(value) > hi:
            value = value[:hi]
        return value


def _as_int(value: Any, default: int | None) -> Any:
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError, OverflowError):  # OverflowError: Python's json reads Infinity
        return default


def _bounds(schema: dict[str, Any], lo: float, hi: float, integer: bool = False) -> tuple[float, float]:
    step = 1 if integer else 0.01
    has_lo = has_hi = False
    for key, excl in (("minimum", False), ("exclusiveMinimum", True)):
        v = schema.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, has_lo = float(v) + (step if excl else 0), True
    for key, excl in (("maximum", False), ("exclusiveMaximum", True)):
        v = schema.get(key)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            hi, has_hi = float(v) - (step if excl else 0), True
    if has_lo and not has_hi and hi < lo:
        hi = lo + 100
    if has_hi and not has_lo and lo > hi:
        lo = hi - 100
    if integer:
        import math

        lo, hi = math.ceil(lo), math.floor(hi)
    return (lo, max(lo, hi))


def _singular(name: str) -> str:
    return name[:-1] if name.endswith("s") and len(name) > 3 else name


def sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(_WORDS) if i % 2 == 0 else rng.choice(_NOUNS) for i in range(max(n, 1))]
    return " ".join(words).capitalize() + "."


_WORD_LIMIT = re.compile(
    r"\b(?:in|under|at most|within|max(?:imum)?|no more than|fewer than|less than)?\s*(\d{1,4})\s+words?\b",
    re.I,
)
_STOP = frozenset(
    [
        "the",
        "a",
        "an",
        "and",
        "or",
        "of",
        "to",
        "in",
        "on",
        "for",
        "with",
        "is",
        "are",
        "was",
        "be",
        "this",
        "that",
        "what",
        "which",
        "how",
        "please",
        "into",
        "from",
        "about",
        "tell",
        "give",
        "write",
        "explain",
        "describe",
        "list",
        "your",
        "you",
        "me",
    ]
)


# A plain-text classification prompt names its labels after one of these ("... as positive, negative
# or neutral", "Answer with one of: spam | ham", "Categories: billing, support"); the labels run to the
# end of the sentence or line. (Synthetic behaviour, so that a user's routing on the label can be tested.)
_LABELS_LEAD = re.compile(
    r"\b(?:(?:answer|respond|reply)(?:\s+only)?(?:\s+with)?(?:\s+(?:exactly|just|only))?(?:\s+one)?"
    r"(?:\s+(?:word|label))?(?:\s+of)?(?:\s+the\s+following)?|one\s+of(?:\s+the\s+following)?|labels?|categor(?:y|ies)|classes|options|"
    r"choices|(?:choose|pick)(?:\s+one)?\s+from|classify\b[^:\n.?!]{0,80}?\b(?:as|into))"
    r"(?:\s+one\s+of)?(?:\s+the\s+following)?(?:\s+(?:labels?|categories|classes|options))?"
    r"\s*[:\-]?\s*(?P<list>[^\n.?!:;]+)",
    re.I,
)
_LABEL_SPLIT = re.compile(r"\s*(?:,|\||/|\bor\b|\band\b)\s*", re.I)
_LABEL = re.compile(r"^[A-Za-z0-9_][\w'-]*(?: [\w'-]+){0,2}$")
MAX_LABELS = 30


def prompt_labels(prompt: str) -> list[str]:
    """The labels a plain-text classification prompt lists (at least two), or []."""
    for m in _LABELS_LEAD.finditer(prompt[-4000:]):
        items = [i.strip(" \t\"'`*[](){}<>") for i in _LABEL_SPLIT.split(m.group("list"))]
        items = [i for i in items if i]
        if 2 <= len(items) <= MAX_LABELS and all(_LABEL.match(i) for i in items):
            return list(dict.fromkeys(items))
    return []


def text_answer(prompt: str, rng: random.Random) -> str:
    """One of the labels a classification prompt lists (``prompt_labels``); else a sentence or two
    that mentions a few words of the prompt, honouring 'in N words'."""
    labels = prompt_labels(prompt)
    if labels:
        return rng.choice(labels)
    keywords = [w for w in re.findall(r"[A-Za-z][A-Za-z'-]{3,}", prompt[-2000:]) if w.lower() not in _STOP]
    picked = list(dict.fromkeys(keywords))[:3]
    if picked:
        first = f"Here is a {rng.choice(_WORDS)} {rng.choice(_NOUNS)} about {', '.join(picked)}."
    else:
        first = f"Here is a {rng.choice(_WORDS)} {rng.choice(_NOUNS)}."
    text = first + " " + sentence(rng, 6 + rng.randint(0, 6))
    m = _WORD_LIMIT.search(prompt)
    if m:
        limit = int(m.group(1))
        words = text.split()
        if limit and len(words) >= limit:
            text = " ".join(words[: max(limit - 1, 1)]).rstrip(",.") + "."
    return text


def schema_answer(
    schema: dict[str, Any], rng: random.Random, mime: str | None = None, budget: int = MAX_GENERATED_CHARS,
    known: Mapping[str, str] | None = None, row_seeds: dict[str, int] | None = None,
) -> str:
    value = Generator(schema, rng, budget, known, row_seeds).instance(schema)
    if (mime or "").lower() == "text/x.enum" and isinstance(value, str):
        return value
    return json.dumps(value, indent=2, ensure_ascii=False)


def schema_violation(schema: dict[str, Any], rng: random.Random, budget: int = MAX_GENERATED_CHARS) -> str:
    """Valid JSON that breaks the schema: a required field dropped, or a bad enum/type."""
    gen = Generator(schema, rng, budget)
    root = gen.resolve(schema)
    value = gen.instance(schema)
    if isinstance(value, dict):
        required = [r for r in root.get("required") or [] if r in value]
        if required:
            del value[required[0]]
            return json.dumps(value, indent=2)
        for pname, psub in (root.get("properties") or {}).items():
            if isinstance(psub, dict) and gen.resolve(psub).get("enum"):
                value[pname] = "__not_an_allowed_value__"
                return json.dumps(value, indent=2)
        return json.dumps([value], indent=2)
    if isinstance(value, list):
        return json.dumps({"items": value}, indent=2)
    return json.dumps({"value": value}, indent=2)


def malformed(text: str) -> str:
    """Cut valid JSON so that it no longer parses (like a truncated answer)."""
    cut = text[: max(1, int(len(text) * 0.6))]
    try:
        json.loads(cut)
    except ValueError:
        return cut
    return cut + '{"'
