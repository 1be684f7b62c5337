"""``Schema``: an output schema, both what is sent on the wire (``response_json_schema``) and
how an answer is validated against it (Pydantic types into instances, JSON Schema dicts with
``jsonschema``). Validation errors are worded to be shown to the model in a re-ask.

A JSON Schema dict is checked whole when it is built, before anything is sent: its nesting
depth, its syntax against the 2020-12 metaschema and every ``$ref`` resolved. jsonschema
resolves references lazily, at the first answer that reaches one, so a dangling ``$ref`` would
otherwise surface only after requests were paid for (issue 20)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import TypeAdapter, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from ..errors import ConfigError

__all__ = ["MAX_SCHEMA_DEPTH", "SCHEMA_CACHE_SIZE", "Schema"]

SCHEMA_CACHE_SIZE = 256
# Nesting of a schema's JSON (objects and arrays). jsonschema recurses several frames per level:
# measured, 100 levels validate and 200 overflow Python's default recursion limit (1,000 frames),
# so the limit sits well below; real output schemas nest a handful of levels.
MAX_SCHEMA_DEPTH = 64


@dataclass(frozen=True)
class Schema:
    """An output schema: the JSON Schema sent on the wire and how to validate an answer."""

    json_schema: dict[str, Any]
    adapter: TypeAdapter[Any] | None = None  # Pydantic types validate into instances
    validator: Any = None  # a jsonschema validator for plain JSON Schema dicts

    @classmethod
    def of(cls, schema: Any, source: str = "") -> Schema:
        """Build (or reuse: validators are costly to build and tasks reuse schemas per item).
        ``source`` names where a dict came from (a schema file, a task file's [output] table)
        in the error a broken one raises."""
        if isinstance(schema, Schema):
            return schema
        if isinstance(schema, dict):
            _check_depth(schema, source)  # before json.dumps, which recurses too
            key = json.dumps(schema, sort_keys=True, default=str)
            hit = _DICT_SCHEMAS.get(key)
            if hit is None:
                hit = cls._build(schema, source)
                if len(_DICT_SCHEMAS) >= SCHEMA_CACHE_SIZE:
                    _DICT_SCHEMAS.pop(next(iter(_DICT_SCHEMAS)))
                _DICT_SCHEMAS[key] = hit
            return hit
        try:
            return _type_schema(schema)
        except TypeError:  # unhashable annotation
            return cls._build(schema)

    @classmethod
    def _build(cls, schema: Any, source: str = "") -> Schema:
        if isinstance(schema, dict):
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise _invalid(source, e.json_path, e.message, "") from None
            _check_refs(schema, source)
            return cls(json_schema=schema, validator=jsonschema.Draft202012Validator(schema))
        try:
            adapter: TypeAdapter[Any] = TypeAdapter(schema)
            js = adapter.json_schema()
        except Exception as e:  # pydantic raises several types for unusable annotations
            raise ConfigError(f"cannot use {schema!r} as an output schema: {e}",
                              hint="pass a Pydantic model class, a typing annotation or a JSON Schema dict") from None
        return cls(json_schema=js, adapter=adapter)

    def validate_text(self, text: str) -> Any:
        """Parse and validate; raises ValueError with a message fit to show the model."""
        cleaned = _strip_fence(text)
        if self.adapter is not None:
            try:
                return self.adapter.validate_json(cleaned)
            except ValidationError as e:
                raise ValueError(_compact_validation_error(e)) from None
        try:
            data = json.loads(cleaned)
        except json.JSONDecodeError as e:
            raise ValueError(f"the answer is not valid JSON: {e.msg} at char {e.pos}") from None
        errors = sorted(self.validator.iter_errors(data), key=lambda er: list(er.path))
        if errors:
            first = errors[0]
            where = "/".join(str(p) for p in first.path) or "(root)"
            raise ValueError(f"at {where}: {first.message}")
        return data


_DICT_SCHEMAS: dict[str, Schema] = {}


def _invalid(source: str, path: str, problem: str, fix: str) -> ConfigError:
    """One line with where (``source``, a JSON path) and what; the hint names what to edit."""
    return ConfigError(f"invalid JSON Schema{f' in {source}' if source else ''} at {path}: {problem}",
                       hint=f"fix {source or 'the schema'}{fix}")


def _nodes(schema: dict[str, Any]) -> Any:
    """(JSON path, depth, value) of every object and array in ``schema``, without recursion."""
    stack: list[tuple[str, int, Any]] = [("$", 1, schema)]
    while stack:
        path, depth, node = stack.pop()
        yield path, depth, node
        children = node.items() if isinstance(node, dict) else enumerate(node)
        stack.extend((f"{path}.{k}" if isinstance(k, str) else f"{path}[{k}]", depth + 1, v)
                     for k, v in children if isinstance(v, (dict, list)))


def _check_depth(schema: dict[str, Any], source: str) -> None:
    for path, depth, _ in _nodes(schema):
        if depth > MAX_SCHEMA_DEPTH:
            short = path if len(path) <= 60 else f"{path[:30]}...{path[-25:]}"
            raise _invalid(source, short, f"nested deeper than {MAX_SCHEMA_DEPTH} levels",
                           " (flatten it, e.g. with $defs and $ref)")


def _check_refs(schema: dict[str, Any], source: str) -> None:
    """Resolve every ``$ref`` now (only within the schema: nothing is fetched)."""
    resource = DRAFT202012.create_resource(schema)
    uri = resource.id() or ""
    resolver = Registry().with_resource(uri, resource).crawl().resolver(uri)
    for path, _, node in _nodes(schema):
        ref = node.get("$ref") if isinstance(node, dict) else None
        if isinstance(ref, str):
            try:
                resolver.lookup(ref)
            except Unresolvable:
                raise _invalid(source, f"{path}.$ref", f"{ref!r} points to nothing",
                               " (define what it names, e.g. under $defs, or fix the reference)") from None


@functools.lru_cache(maxsize=SCHEMA_CACHE_SIZE)
def _type_schema(schema: Any) -> Schema:
    return Schema._build(schema)


def _strip_fence(text: str) -> str:
    t = text.strip()
    if t.startswith("```"):
        t = t.split("\n", 1)[1] if "\n" in t else ""
        if t.rstrip().endswith("```"):
            t = t.rstrip()[:-3]
    return t.strip()


def _compact_validation_error(e: Any) -> str:
    parts = []
    for err in e.errors()[:5]:
        loc = "/".join(str(x) for x in err.get("loc", ())) or "(root)"
        parts.append(f"at {loc}: {err.get('msg')}")
    return "; ".join(parts)
