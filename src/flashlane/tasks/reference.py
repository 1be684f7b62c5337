"""A task's reference material: worked examples (input -> expected output) and reference text
(guidelines, a glossary, a catalogue), the same for every item of a run.

Both go into the task's stable prefix (``prefix.Prefix``): the reference text into the system
instruction, each example as a user turn (the input, rendered like a real item) followed by a
model turn (the expected answer as the model should write it: JSON for structured tasks).
Examples are validated against the task's output schema when the task is loaded, so a typo in
an example is an error naming it, not a silently misleading demonstration on every request.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..call.schema import Schema
from ..errors import InputError

__all__ = ["Example", "REFERENCE_HEADING", "examples_of", "load_examples_file", "read_file", "read_reference", "validate_examples"]

REFERENCE_HEADING = "Reference material:"  # marks where the task's own guidelines begin


@dataclass(frozen=True)
class Example:
    """One worked example. ``input`` is the item's text, or a mapping of the fields the
    task's item template reads; ``output`` is the answer before the task's conversion (the
    JSON object for a structured task, the text for a free-text one)."""

    input: str | Mapping[str, Any]
    output: Any
    name: str = ""  # how errors name it (default "example N")

    def values(self) -> dict[str, Any]:
        return dict(self.input) if isinstance(self.input, Mapping) else {"text": self.input}

    def answer_text(self) -> str:
        return self.output if isinstance(self.output, str) else json.dumps(self.output, ensure_ascii=False)


def examples_of(raw: Any, where: str) -> tuple[Example, ...]:
    """Examples from task-file data or Python: a list of ``Example`` or of mappings with
    ``input`` and ``output`` (and an optional ``name``)."""
    if raw is None:
        return ()
    if not isinstance(raw, Sequence) or isinstance(raw, (str, bytes)):
        raise InputError(f"examples in {where} must be a list", hint='e.g. [[examples]] input = "..." output = {...}')
    out: list[Example] = []
    for n, ex in enumerate(raw, 1):
        if isinstance(ex, Example):
            out.append(ex if ex.name else Example(ex.input, ex.output, f"example {n}"))
            continue
        if not isinstance(ex, Mapping):
            raise InputError(f"example {n} in {where} must be a table with input and output",
                             hint='e.g. input = "text", output = {label = "billing"}')
        unknown = sorted(set(ex) - {"input", "output", "name"})
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r} in example {n} of {where}",
                             hint="known keys: input, name, output")
        for key in ("input", "output"):
            if key not in ex:
                raise InputError(f"example {n} in {where} has no {key}", hint=f"add {key} = ... to the example")
        if not isinstance(ex["input"], (str, Mapping)):
            raise InputError(f"example {n} in {where}: input must be text or a table of fields",
                             hint='e.g. input = "the item text"')
        out.append(Example(ex["input"], ex["output"], str(ex.get("name") or f"example {n}")))
    return tuple(out)


def validate_examples(examples: Sequence[Example], schema: Schema | None, where: str) -> None:
    """Every example's output must be an answer the task would accept."""
    for n, ex in enumerate(examples, 1):
        label = ex.name or f"example {n}"
        if schema is None:
            if not isinstance(ex.output, str):
                raise InputError(f"{label} of {where}: the task answers in free text, so the output must be text",
                                 hint="write the expected answer as a string")
            continue
        if isinstance(ex.output, str):
            raise InputError(f"{label} of {where}: the output must be a table matching the output schema, not text",
                             hint="write output = { field = value, ... }")
        try:
            schema.validate_text(json.dumps(ex.output))
        except ValueError as e:
            raise InputError(f"{label} of {where} does not match the output schema: {e}",
                             hint="fix the example's output so the task would accept it") from None


def read_reference(paths: Any, base: Path, where: str) -> str:
    """The text of reference files, named relative to ``base`` (the task file's folder)."""
    if paths is None:
        return ""
    items = [paths] if isinstance(paths, str) else paths
    if not isinstance(items, Sequence) or not all(isinstance(p, str) for p in items):
        raise InputError(f"reference_files in {where} must be a file name or a list of them",
                         hint='e.g. reference_files = ["guidelines.md"]')
    texts = []
    for name in items:
        p = Path(name)
        p = p if p.is_absolute() else base / p
        try:
            texts.append(p.read_text(encoding="utf-8").strip())
        except FileNotFoundError:
            raise InputError(f"reference file {p} (named in {where}) does not exist",
                             hint="file names are relative to the task file's folder") from None
        except (OSError, UnicodeDecodeError) as e:
            raise InputError(f"cannot read reference file {p}: {e}", hint="save it as UTF-8 text") from None
    return "\n\n".join(t for t in texts if t)


def read_file(p: Path, what: str, missing_hint: str) -> str:
    """A UTF-8 file the user named (a task file, an examples file), or an error naming it."""
    try:
        return p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{what} {p} does not exist", hint=missing_hint) from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"cannot read {what} {p}: {e}", hint="save it as UTF-8 text") from None


def load_examples_file(path: str) -> tuple[Example, ...]:
    """Worked examples from a file (``--examples``): a JSON list, JSONL (one object a line), or a
    TOML / YAML file with an ``examples`` list; each entry has ``input`` and ``output``."""
    import tomllib

    import yaml

    p = Path(path)
    raw = read_file(p, "examples file", "pass a .jsonl, .json, .toml or .yaml file")
    suffix = p.suffix.lower()
    try:
        if suffix == ".jsonl":
            data: Any = [json.loads(line) for line in raw.splitlines() if line.strip()]
        elif suffix == ".json":
            data = json.loads(raw)
        elif suffix == ".toml":
            data = tomllib.loads(raw)
        else:
            data = yaml.safe_load(raw)
    except (ValueError, yaml.YAMLError) as e:
        raise InputError(f"examples file {p} cannot be parsed: {str(e).splitlines()[0]}", hint="fix the syntax") from None
    if isinstance(data, Mapping):
        unknown = sorted(set(data) - {"examples"})
        if unknown:
            raise InputError(f"unknown key {unknown[0]!r} in examples file {p}", hint="known keys: examples")
        data = data.get("examples")
    return examples_of(data, f"examples file {p}")
