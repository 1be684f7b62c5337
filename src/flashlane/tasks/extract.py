"""extract: fill a user's schema (Pydantic model, JSON Schema file, or module:Model) from text."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InputError
from .task import Task

__all__ = ["EXTRACT", "load_schema"]


def load_schema(spec: Any) -> Any:
    """A Pydantic model or JSON Schema dict from a class, a dict, a .json file path or 'module:Model'."""
    if not isinstance(spec, str):
        return spec
    path = Path(spec)
    if path.suffix.lower() == ".json" or path.is_file():
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise InputError(f"schema file {spec} does not exist", hint="pass a JSON Schema file or module:Model") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise InputError(f"cannot read schema file {spec}: {e}", hint="the file must hold a JSON Schema object") from None
        if not isinstance(data, dict):
            raise InputError(f"schema file {spec} does not hold a JSON object", hint="the file must hold a JSON Schema object")
        return data
    if ":" in spec:
        module_name, _, attr = spec.partition(":")
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")  # let `module:Model` find modules in the working directory
        try:
            module = importlib.import_module(module_name)
            return getattr(module, attr)
        except (ImportError, AttributeError) as e:
            raise InputError(f"cannot import schema {spec}: {e}", hint="use module:ClassName with the module on PYTHONPATH") from None
    raise InputError(f"unrecognised schema {spec!r}", hint="pass a .json JSON Schema file or module:Model")


EXTRACT = Task(
    name="extract",
    instructions="Extract the fields from the text. Never invent values; use null where the text is silent.",
    item_template="Text:\n{text}",
    schema_for=lambda options: load_schema(options["schema"]),
    answer_tokens=512,
    description="fields of a schema (--schema file.json | module:Model) from text",
    required={"schema": "the output schema, e.g. --schema invoice.json or --schema mymodule:Invoice"},
)
