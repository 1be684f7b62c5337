"""``Schema``: an output schema, both what is sent on the wire (``response_json_schema``) and
how an answer is validated against it (Pydantic types into instances, JSON Schema dicts with
``jsonschema``). Validation errors are worded to be shown to the model in a re-ask."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from typing import Any

import jsonschema
from pydantic import TypeAdapter, ValidationError

from ..errors import ConfigError

__all__ = ["SCHEMA_CACHE_SIZE", "Schema"]

SCHEMA_CACHE_SIZE = 256


@dataclass(frozen=True)
class Schema:
    """An output schema: the JSON Schema sent on the wire and how to validate an answer."""

    json_schema: dict[str, Any]
    adapter: TypeAdapter[Any] | None = None  # Pydantic types validate into instances
    validator: Any = None  # a jsonschema validator for plain JSON Schema dicts

    @classmethod
    def of(cls, schema: Any) -> Schema:
        """Build (or reuse: validators are costly to build and tasks reuse schemas per item)."""
        if isinstance(schema, Schema):
            return schema
        if isinstance(schema, dict):
            key = json.dumps(schema, sort_keys=True, default=str)
            hit = _DICT_SCHEMAS.get(key)
            if hit is None:
                hit = cls._build(schema)
                if len(_DICT_SCHEMAS) >= SCHEMA_CACHE_SIZE:
                    _DICT_SCHEMAS.pop(next(iter(_DICT_SCHEMAS)))
                _DICT_SCHEMAS[key] = hit
            return hit
        try:
            return _type_schema(schema)
        except TypeError:  # unhashable annotation
            return cls._build(schema)

    @classmethod
    def _build(cls, schema: Any) -> Schema:
        if isinstance(schema, dict):
            try:
                jsonschema.Draft202012Validator.check_schema(schema)
            except jsonschema.SchemaError as e:
                raise ConfigError(f"invalid JSON Schema: {e.message}", hint="fix the schema file") from None
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
