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

How to run it (``flashlane eval --write-task`` writes these); ``flashlane run`` uses each setting its
command line leaves out::

    [run]
    model = "gemini-3.1-flash-lite"
    pack = 10                                     # or "auto"
    service_tier = "flex"
    cache_prefix = "on"

A file may instead be based on a built-in task: ``task = "classify"`` with its options in
``[defaults]`` (``labels = "positive,negative"``), and optionally thinking, examples, reference
material and ``[run]``; the prompt is the built-in task's.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import yaml

from ..call.schema import Schema
from ..call.tools import BUILTIN_TOOLS
from ..config import CACHE_PREFIX_MODES
from ..errors import InputError
from ..models import SERVICE_TIERS
from .option import Key, check_keys, load_schema, options_of
from .reference import examples_of, read_file, read_reference, validate_examples
from .task import DEFAULT_ANSWER_TOKENS, Task, check_template

__all__ = ["RUN_KEYS", "load_task_file"]

# Every key a task file may hold, with the kinds of value it takes (checked before anything runs).
_KEYS = {
    "name": Key(("text",), 'name = "aspects"'),
    "description": Key(("text",), 'description = "product aspects mentioned in a review"'),
    "system": Key(("text",), 'system = "You analyse product reviews."'),
    "instructions": Key(("text",), 'instructions = "List the product aspects the review mentions."'),
    "template": Key(("text",), 'template = "Review of {product}: {text}"'),
    "answer_tokens": Key(("an integer",), "answer_tokens = 200", minimum=1),
    "thinking": Key(("text", "an integer"), 'thinking = "minimal"'),
    "output": Key(("a table",), '[output] type = "object" (a JSON Schema)'),
    "output_model": Key(("text",), 'output_model = "schema.json" or "mymodule:Model"'),
    "defaults": Key(("a table",), '[defaults] product = "the product"'),
    "streamable": Key(("true or false",), "streamable = false"),
    "tools": Key(("a list", "text"), 'tools = ["google_search"]'),
    "examples": Key(("a list",), '[[examples]] input = "..." output = {...}'),
    "reference": Key(("text",), 'reference = "Short guidelines written inline."'),
    "reference_files": Key(("a list", "text"), 'reference_files = ["guidelines.md"]'),
    "options": Key(("a table",), '[options.audience] help = "Who the analysis is for."'),
    "task": Key(("text",), 'task = "classify"'),
    "run": Key(("a table",), '[run] model = "gemini-3.1-flash-lite" pack = 10 service_tier = "flex"'),
}
# A file based on a built-in task (``task = "classify"``) sets its options and how to run it, not its prompt.
_BASED_KEYS = ("task", "name", "description", "thinking", "defaults", "examples", "reference", "reference_files",
               "run")
# The [run] table: what ``flashlane run`` takes from the file when its command line does not say.
# Checked when the file is read, so ``flashlane run`` and ``lane.map`` refuse a bad one alike.
RUN_KEYS = {
    "model": Key(("text",), 'model = "gemini-3.1-flash-lite"'),
    "pack": Key(("an integer", "text"), 'pack = 10 (or "auto")', minimum=1, choices=("auto",)),
    "service_tier": Key(("text",), 'service_tier = "flex"', choices=SERVICE_TIERS),
    "cache_prefix": Key(("text",), 'cache_prefix = "on"', choices=CACHE_PREFIX_MODES),
}


def load_task_file(path: str | Path) -> Task:
    p = Path(path)
    raw = read_file(p, "task file", "pass a built-in task name or a .toml/.yaml task file")
    try:
        data: Any = tomllib.loads(raw) if p.suffix.lower() == ".toml" else yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as e:  # TOMLDecodeError is a ValueError, as is a 5,000-digit integer
        raise InputError(f"task file {p} is not valid {p.suffix.lstrip('.').upper()}: {str(e).splitlines()[0]}",
                         hint="fix the syntax") from None
    if not isinstance(data, dict):
        raise InputError(f"task file {p} must hold a mapping of settings", hint=f"keys: {', '.join(sorted(_KEYS))}")
    where = f"task file {p}"
    check_keys(data, _KEYS, where)
    run = dict(data.get("run") or {})
    check_keys(run, RUN_KEYS, f"the [run] table of {where}")
    if "task" in data:
        return _based(p, data, run, where)
    if "template" not in data:
        raise InputError(f"task file {p} has no template", hint='add e.g. template = "Text: {text}"')
    for key in ("template", "instructions"):
        check_template(data.get(key, ""), f"{key!r} in {where}")
    output: Any = None
    source = ""
    if "output_model" in data:
        output = load_schema(data["output_model"])
        source = f"the schema {data['output_model']} (output_model in {where})"
    elif "output" in data:
        output = data["output"]
        source = f"the [output] table of {where}"
    schema = Schema.of(output, source) if output is not None else None  # fail now, with the file named
    examples = examples_of(data.get("examples"), where)
    validate_examples(examples, schema, where)
    reference = "\n\n".join(t for t in (str(data.get("reference") or "").strip(),
                                         read_reference(data.get("reference_files"), p.parent, where)) if t)
    tools = data.get("tools") or []
    if isinstance(tools, str):
        tools = [tools]
    if not all(isinstance(t, str) for t in tools):
        raise InputError(f"'tools' in task file {p} must be a list of names",
                         hint='e.g. tools = ["google_search", "url_context"]')
    for t in tools:
        if t.strip().lower().replace("-", "_") not in BUILTIN_TOOLS:
            raise InputError(f"unknown tool {t!r} in task file {p}", hint=f"use one of {', '.join(BUILTIN_TOOLS)}")
    thinking = data.get("thinking")
    return Task(
        name=data.get("name") or p.stem,
        item_template=data["template"],
        instructions=data.get("instructions", ""),
        system=data.get("system", ""),
        output=output,
        answer_tokens=data.get("answer_tokens", DEFAULT_ANSWER_TOKENS),
        thinking=None if thinking is None else str(thinking),  # a budget may be written as a number
        defaults=dict(data.get("defaults") or {}),
        streamable=data.get("streamable", output is None),
        description=data.get("description", ""),
        tools=tuple(tools),
        examples=examples,
        reference=reference,
        params=options_of(data.get("options"), where),
        run=run,
    )


def _based(p: Path, data: dict[str, Any], run: dict[str, Any], where: str) -> Task:
    """A built-in task with the file's options, examples, reference material and run settings."""
    from . import BUILTIN_TASKS

    name = data["task"]
    if name not in BUILTIN_TASKS:
        raise InputError(f"'task' in {where} names no built-in task: {name!r}",
                         hint=f"use one of {', '.join(BUILTIN_TASKS)}, or leave 'task' out and write the prompt")
    extra = sorted(set(data) - set(_BASED_KEYS))
    if extra:
        raise InputError(f"{where} is based on the built-in task {name!r}, so it cannot set {extra[0]!r}",
                         hint=f"a file with 'task' sets only {', '.join(_BASED_KEYS[1:])}")
    base = BUILTIN_TASKS[name]
    defaults = {**base.defaults, **dict(data.get("defaults") or {})}
    examples = examples_of(data.get("examples"), where) or base.examples
    if examples and base.schema_for is not None:
        validate_examples(examples, Schema.of(base.schema_for(defaults)), where)
    reference = "\n\n".join(t for t in (base.reference, str(data.get("reference") or "").strip(),
                                         read_reference(data.get("reference_files"), p.parent, where)) if t)
    thinking = data.get("thinking")
    return replace(base, name=data.get("name") or base.name, description=data.get("description", base.description),
                   thinking=base.thinking if thinking is None else str(thinking), defaults=defaults,
                   examples=examples, reference=reference, run=run)
