"""Custom tasks from a TOML or YAML file (or built in Python with ``Task(...)``).

File format (TOML shown; YAML has the same keys)::

    name = "aspects"
    description = "product aspects mentioned in a review"
    system = "You analyse product reviews."
    instructions = "List the product aspects the review mentions and the sentiment of each."
    template = "Review of {product}:\\n{text}"     # item template over the row's fields
    answer_tokens = 200
    thinking = "minimal"
    output_model = "mymodule:Aspects"             # or an inline JSON Schema table:
    [output]
    type = "object"
    ...
    tools = ["google_search"]                     # built-ins: google_search, url_context, code_execution
    [defaults]
    product = "the product"
    [options.audience]                            # an option the task reads: --audience on the command line
    help = "Who the analysis is for."             # type: text (default), int, flag, choice, list, map, json
    required = false                              # also: default, choices, minimum, metavar

Reference material (``reference.py``), placed in the stable prefix every request shares::

    reference = "Short guidelines written inline."
    reference_files = ["guidelines.md"]           # relative to the task file's folder
    [[examples]]                                  # worked examples, checked against the output schema
    name = "refund"                               # optional; errors name the example
    input = "I was charged twice"                 # the item's text (or a table of its fields)
    output = { label = "billing" }                # the answer the task would accept
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from ..call.schema import Schema
from ..call.tools import BUILTIN_TOOLS
from ..errors import InputError
from .option import load_schema, options_of
from .reference import examples_of, read_file, read_reference, validate_examples
from .task import Task

__all__ = ["load_task_file"]

_KEYS = {"name", "description", "system", "instructions", "template", "answer_tokens", "thinking", "output",
         "output_model", "defaults", "streamable", "tools",
         "examples", "reference", "reference_files", "options"}


def load_task_file(path: str | Path) -> Task:
    p = Path(path)
    raw = read_file(p, "task file", "pass a built-in task name or a .toml/.yaml task file")
    try:
        data: Any = tomllib.loads(raw) if p.suffix.lower() == ".toml" else yaml.safe_load(raw)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as e:
        raise InputError(f"task file {p} is not valid {p.suffix.lstrip('.').upper()}: {str(e).splitlines()[0]}",
                         hint="fix the syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"task file {p} must hold a mapping of settings", hint=f"keys: {', '.join(sorted(_KEYS))}")
    unknown = sorted(set(data) - _KEYS)
    if unknown:
        raise InputError(f"unknown key {unknown[0]!r} in task file {p}", hint=f"known keys: {', '.join(sorted(_KEYS))}")
    if "template" not in data:
        raise InputError(f"task file {p} has no template", hint='add e.g. template = "Text: {text}"')
    output: Any = None
    if "output_model" in data:
        output = load_schema(str(data["output_model"]))
    elif "output" in data:
        output = data["output"]
    schema = Schema.of(output) if output is not None else None  # fail now, with the file named
    where = f"task file {p}"
    examples = examples_of(data.get("examples"), where)
    validate_examples(examples, schema, where)
    if "reference" in data and not isinstance(data["reference"], str):
        raise InputError(f"reference in {where} must be text", hint='e.g. reference = "..." or reference_files = [...]')
    reference = "\n\n".join(t for t in (str(data.get("reference") or "").strip(),
                                         read_reference(data.get("reference_files"), p.parent, where)) if t)
    tools = data.get("tools") or []
    if isinstance(tools, str):
        tools = [tools]
    if not isinstance(tools, list) or not all(isinstance(t, str) for t in tools):
        raise InputError(f"'tools' in task file {p} must be a list of names",
                         hint='e.g. tools = ["google_search", "url_context"]')
    for t in tools:
        if t.strip().lower().replace("-", "_") not in BUILTIN_TOOLS:
            raise InputError(f"unknown tool {t!r} in task file {p}", hint=f"use one of {', '.join(BUILTIN_TOOLS)}")
    return Task(
        name=str(data.get("name") or p.stem),
        item_template=str(data["template"]),
        instructions=str(data.get("instructions", "")),
        system=str(data.get("system", "")),
        output=output,
        answer_tokens=int(data.get("answer_tokens", 256)),
        thinking=data.get("thinking"),
        defaults=dict(data.get("defaults") or {}),
        streamable=bool(data.get("streamable", output is None)),
        description=str(data.get("description", "")),
        tools=tuple(tools),
        examples=examples,
        reference=reference,
        params=options_of(data.get("options"), where),
    )
