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

from ..errors import InputError
from .reference import load_examples_file, read_reference

__all__ = ["Option", "SHARED_OPTIONS", "TYPES", "load_schema", "options_of"]


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


# Reference material every task takes (task.py: Task.prefix reads these options).
SHARED_OPTIONS = (
    Option("reference", type="text_file", metavar="FILE",
           help="Reference text for every request (guidelines, glossary): a text file, sent in the task's cached prefix."),
    Option("examples", type="examples_file", metavar="FILE",
           help="Worked examples (input -> output, checked against the task's schema): .jsonl, .json, .toml, .yaml."),
)

_OPTION_KEYS = {"help", "type", "required", "default", "choices", "minimum", "metavar"}


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
            unknown = sorted(set(spec) - _OPTION_KEYS)
            if unknown:
                raise InputError(f"unknown key {unknown[0]!r} in option {name!r} of {where}",
                                 hint=f"known keys: {', '.join(sorted(_OPTION_KEYS))}")
            out.append(Option(name=str(name), **{"help": "", **spec}))
        return tuple(out)
    if not all(isinstance(o, Option) for o in raw):
        raise InputError(f"options in {where} must be Option objects", hint='e.g. Option("audience", help="...")')
    return tuple(raw)
