"""A task's options as data: name, type, help, whether it is required.

A task lists the options it reads (``Task(params=(Option(...), ...))``; a task file has an
``[options.NAME]`` table for each), and the command line is built from that list: the one-shot
command of a built-in task and ``flashlane run``'s task options alike. Adding an option to a
task is one edit, in the task.

``Option.parse`` turns a command-line string into the value the task reads; values that are
not strings (Python callers, task-file defaults) are the task's already and pass unchanged.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..call.schema import Schema
from ..errors import InputError
from ..media import MEDIA_RESOLUTIONS
from .reference import load_examples_file, read_reference

__all__ = ["Key", "Option", "SHARED_OPTIONS", "TYPES", "check_keys", "load_schema", "options_of"]


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
        except (OSError, UnicodeDecodeError, ValueError) as e:  # JSONDecodeError is a ValueError
            raise InputError(f"cannot read schema file {spec}: {e}", hint="the file must hold a JSON Schema object") from None
        except RecursionError:
            raise InputError(f"cannot read schema file {spec}: nested too deeply",
                             hint="flatten the schema, e.g. with $defs and $ref") from None
        if not isinstance(data, dict):
            raise InputError(f"schema file {spec} does not hold a JSON object", hint="the file must hold a JSON Schema object")
        Schema.of(data, f"schema file {spec}")  # compiled now (refs, depth), so errors name the file
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


def _int(opt: Option, text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise InputError(f"{opt.flag} takes a whole number, not {text!r}", hint=f"e.g. {opt.flag} 20") from None
    if opt.minimum is not None and n < opt.minimum:
        raise InputError(f"{opt.flag} must be at least {opt.minimum}", hint=f"e.g. {opt.flag} {opt.minimum}")
    return n


def _choice(opt: Option, text: str) -> str:
    if text not in opt.choices:
        raise InputError(f"{opt.flag} takes one of {', '.join(opt.choices)}, not {text!r}",
                         hint=f"e.g. {opt.flag} {opt.choices[0]}")
    return text


def _list(opt: Option, text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _map(opt: Option, text: str) -> dict[str, str] | None:
    if not text.strip():
        return None  # an empty --glossary "" means none
    out = {}
    for pair in text.split(","):
        if "=" not in pair:
            raise InputError(f"{opt.flag}: {pair.strip()!r} is not a pair",
                             hint=f"use {opt.metavar or 'key=value'} pairs separated by commas")
        k, v = pair.split("=", 1)
        out[k.strip()] = v.strip()
    return out


def _json(opt: Option, text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise InputError(f"{opt.flag} is not valid JSON: {e}", hint=f"e.g. {opt.flag} '{{\"key\": 1}}'") from None


# How a command-line string becomes the option's value, by the option's type.
TYPES: dict[str, Callable[[Option, str], Any]] = {
    "text": lambda opt, text: text,
    "flag": lambda opt, value: value,  # the command line gives a bool already
    "int": _int,
    "choice": _choice,
    "list": _list,  # comma-separated
    "map": _map,  # key=value pairs, comma-separated (a glossary)
    "json": _json,
    "schema": lambda opt, text: load_schema(text),  # a JSON Schema file or module:Model
    "text_file": lambda opt, text: read_reference(text, Path.cwd(), opt.flag),
    "examples_file": lambda opt, text: list(load_examples_file(text)),
}


@dataclass(frozen=True)
class Option:
    """One option a task reads. ``name`` is its key in the task's options, its keyword in
    Python (``lane.run_task(task, name=...)``) and, dashed, its flag (``--name``)."""

    name: str
    help: str
    type: str = "text"  # a key of TYPES
    required: bool = False  # checked before anything is sent (Task.check_options)
    default: Any = None  # joins the task's defaults
    choices: tuple[str, ...] = ()  # type "choice"
    minimum: int | None = None  # type "int"
    metavar: str | None = None  # how the help shows the value

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise InputError(f"task option name {self.name!r} is not a valid name",
                             hint="use letters, digits and underscores, e.g. max_words")
        if self.type not in TYPES:
            raise InputError(f"task option {self.name!r} has unknown type {self.type!r}",
                             hint=f"use one of {', '.join(TYPES)}")
        if (self.type == "choice") != bool(self.choices):
            raise InputError(f"task option {self.name!r}: choices go with type \"choice\", and it needs them",
                             hint='e.g. type = "choice", choices = ["formal", "informal"]')
        object.__setattr__(self, "choices", tuple(self.choices))

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def what(self) -> str:
        """The help as a phrase inside a sentence (error messages)."""
        return (self.help[:1].lower() + self.help[1:]).rstrip(".")

    def parse(self, value: Any) -> Any:
        return TYPES[self.type](self, value) if isinstance(value, str) else value


# Options every task takes: reference material (task.py: Task.prefix reads these) and the media
# resolution of the files its items hold (pipeline/job.py and tasks/runner.py send it; the token
# counts per level: media.py). A task file sets its own with ``[defaults] media_resolution = "low"``.
SHARED_OPTIONS = (
    Option("reference", type="text_file", metavar="FILE",
           help="Reference text for every request (guidelines, glossary): a text file, sent in the task's cached prefix."),
    Option("examples", type="examples_file", metavar="FILE",
           help="Worked examples (input -> output, checked against the task's schema): .jsonl, .json, .toml, .yaml."),
    Option("media_resolution", type="choice", choices=MEDIA_RESOLUTIONS,
           help="Tokens per image or PDF page: low, medium or high (default: the model's; see docs/documents.md)."),
)

# What a value read from a task file may be, by the names TOML and YAML users know. A bool is
# not an integer here, though Python says it is (``isinstance(True, int)``).
_KINDS: dict[str, tuple[type, ...]] = {"text": (str,), "an integer": (int,), "true or false": (bool,),
                                       "a table": (Mapping,), "a list": (list,)}


@dataclass(frozen=True)
class Key:
    """One key of a task file (or of an ``[options.NAME]`` table): the kinds of value it takes,
    an example for the hint, the least value for an integer and the words a text may be."""

    kinds: tuple[str, ...]
    example: str
    minimum: int | None = None
    choices: tuple[str, ...] | None = None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "true or false"
    found = next((k for k, types in _KINDS.items() if isinstance(value, types)), None)
    return found or ("nothing" if value is None else "a number" if isinstance(value, float) else type(value).__name__)


def check_keys(data: Mapping[str, Any], keys: Mapping[str, Key], where: str) -> None:
    """Every key known and of a kind it takes: else one error naming the key, the kind wanted
    and the kind found (a task file's ``template = 7`` would otherwise send "7" for every row)."""
    for name, value in data.items():
        key = keys.get(name)
        if key is None:
            raise InputError(f"unknown key {name!r} in {where}", hint=f"known keys: {', '.join(sorted(keys))}")
        found = _kind(value)
        if found not in key.kinds:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:37] + "..."
            raise InputError(f"{name!r} in {where} must be {' or '.join(key.kinds)}, not {found} ({shown})",
                             hint=f"e.g. {key.example}")
        if key.minimum is not None and isinstance(value, int) and value < key.minimum:
            raise InputError(f"{name!r} in {where} must be at least {key.minimum}, not {value}",
                             hint=f"e.g. {key.example}")
        if key.choices is not None and isinstance(value, str) and value not in key.choices:
            raise InputError(f"{name!r} in {where} must be one of {', '.join(key.choices)}, not {value!r}",
                             hint=f"e.g. {key.example}")


_ANY = (*_KINDS, "a number")
_OPTION_KEYS = {
    "help": Key(("text",), 'help = "Who the analysis is for."'),
    "type": Key(("text",), f'type = "text" (one of {", ".join(TYPES)})'),
    "required": Key(("true or false",), "required = true"),
    "default": Key(_ANY, 'default = "experts"'),
    "choices": Key(("a list",), 'choices = ["formal", "informal"]'),
    "minimum": Key(("an integer",), "minimum = 1"),
    "metavar": Key(("text",), 'metavar = "WHO"'),
}


def options_of(raw: Any, where: str) -> tuple[Option, ...]:
    """Options from a task file's ``[options.NAME]`` tables (or Python: Option objects, or a
    mapping of name -> table)."""
    if raw is None:
        return ()
    if isinstance(raw, Mapping):
        out = []
        for name, spec in raw.items():
            if not isinstance(spec, Mapping):
                raise InputError(f"option {name!r} in {where} must be a table",
                                 hint=f'e.g. [options.{name}] help = "..." type = "text"')
            check_keys(spec, _OPTION_KEYS, f"option {name!r} of {where}")
            out.append(Option(name=str(name), **{"help": "", **spec}))
        return tuple(out)
    if not all(isinstance(o, Option) for o in raw):
        raise InputError(f"options in {where} must be Option objects", hint='e.g. Option("audience", help="...")')
    return tuple(raw)
