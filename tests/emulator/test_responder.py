"""Schema -> instance: valid for JSON Schema and the OpenAPI subset; the packing rule."""

from __future__ import annotations

import json
import random

import jsonschema
import pytest
from google import genai
from google.genai import types

from flashlane.emulator.responder import schema_answer, schema_violation, text_answer

from .conftest import MODEL

SCHEMAS = [
    {
        "type": "object",
        "properties": {
            "label": {"type": "string", "enum": ["pos", "neg"]},
            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        },
        "required": ["label", "confidence"],
    },
    {
        "$defs": {
            "Item": {
                "type": "object",
                "properties": {"sku": {"type": "string"}, "qty": {"type": "integer", "minimum": 1}},
                "required": ["sku", "qty"],
            }
        },
        "type": "object",
        "properties": {
            "items": {"type": "array", "items": {"$ref": "#/$defs/Item"}, "minItems": 3, "maxItems": 5},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "kind": {"const": "invoice"},
            "when": {"type": "string", "format": "date"},
            "email": {"type": "string", "format": "email"},
            "nested": {
                "type": "object",
                "properties": {"deep": {"type": "array", "items": {"type": "boolean"}, "maxItems": 1}},
            },
        },
        "required": ["items", "kind"],
    },
    {
        "type": "array",
        "items": {"type": "integer", "exclusiveMinimum": 5, "exclusiveMaximum": 8},
        "minItems": 4,
    },
    {"type": ["string", "null"], "minLength": 30, "maxLength": 40},
]


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("seed", range(5))
def test_instances_validate(schema: dict, seed: int) -> None:
    value = json.loads(schema_answer(schema, random.Random(seed)))
    jsonschema.validate(value, schema)


def test_openapi_subset() -> None:
    schema = {
        "type": "OBJECT",
        "properties": {
            "b": {"type": "INTEGER"},
            "a": {"type": "ARRAY", "items": {"type": "STRING"}, "minItems": "2", "maxItems": "2"},
        },
        "propertyOrdering": ["a", "b"],
        "required": ["a", "b"],
    }
    value = json.loads(schema_answer(schema, random.Random(1)))
    assert list(value) == ["a", "b"] and len(value["a"]) == 2 and isinstance(value["b"], int)


def test_packing_one_item_per_enum_value() -> None:
    ids = [f"r{i}" for i in range(1, 8)]
    schema = {
        "type": "object",
        "properties": {
            "results": {
                "type": "array",
                "minItems": 7,
                "maxItems": 7,
                "items": {
                    "type": "object",
                    "properties": {
                        "id": {"type": "string", "enum": ids},
                        "label": {"type": "string", "enum": ["a", "b"]},
                    },
                    "required": ["id", "label"],
                },
            }
        },
        "required": ["results"],
    }
    value = json.loads(schema_answer(schema, random.Random(3)))
    jsonschema.validate(value, schema)
    assert [r["id"] for r in value["results"]] == ids


def test_packing_through_the_sdk(client: genai.Client) -> None:
    ids = ["r1", "r2", "r3"]
    schema = {
        "type": "array",
        "maxItems": 3,
        "items": {
            "type": "object",
            "properties": {"id": {"type": "string", "enum": ids}, "translation": {"type": "string"}},
            "required": ["id", "translation"],
        },
    }
    r = client.models.generate_content(
        model=MODEL,
        contents="Translate three rows",
        config=types.GenerateContentConfig(
            response_mime_type="application/json", response_json_schema=schema
        ),
    )
    assert [row["id"] for row in r.parsed] == ids


def test_schema_violation_is_invalid_json_schema_wise() -> None:
    for schema in SCHEMAS[:2]:
        value = json.loads(schema_violation(schema, random.Random(0)))
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, schema)


def test_text_answer_honours_word_limit() -> None:
    for n in (3, 5, 10):
        text = text_answer(f"Summarize the quarterly report in {n} words.", random.Random(n))
        assert 0 < len(text.split()) < n
    assert text_answer("hello", random.Random(1)) == text_answer("hello", random.Random(1))
