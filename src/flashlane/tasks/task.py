"""A task is data: instructions, an item template, an output schema, a budget, a thinking level.

Built-in and custom tasks run through the same machinery. A task renders in two parts so
the pipeline can pack many items into one request: ``instructions`` (a template over the
task's options, shared by all items) and ``item_template`` (a template over one item's
fields). The output schema may depend on the options (``classify``'s label enum does).
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from ..caching.prefix import Prefix, join_system
from ..call.media import as_text
from ..call.schema import Schema
from ..call.tools import Builtin, builtin
from ..errors import ConfigError, InputError
from .option import SHARED_OPTIONS, Option, options_of
from .reference import REFERENCE_HEADING, Example, examples_of, validate_examples

__all__ = ["DEFAULT_ANSWER_TOKENS", "JSON_OVERHEAD_TOKENS", "MIN_ANSWER_TOKENS", "Task", "check_template",
           "template_fields"]

DEFAULT_ANSWER_TOKENS = 256  # expected answer size per item when a task does not say
MIN_ANSWER_TOKENS = 48
JSON_OVERHEAD_TOKENS = 24  # braces, keys and quotes around a structured answer

Options = Mapping[str, Any]


def template_fields(template: str) -> list[str]:
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


# str.format's conversions (Python docs, Format String Syntax): anything else fails at render time.
_CONVERSIONS = (None, "r", "s", "a")


def check_template(template: Any, what: str) -> None:
    """Refuse a template that cannot render, now rather than on the first row: unbalanced
    braces ("{text"), positional fields ("{}", "{0}": values come by name) or an unknown
    conversion ("{text!x}")."""
    if not isinstance(template, str):
        raise InputError(f"{what} must be text, not {type(template).__name__}", hint='e.g. "Text: {text}"')
    hint = "name each field, e.g. {text}; write a literal brace as {{ or }}"
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as e:
        raise InputError(f"{what} is not a valid template: {e}", hint=hint) from None
    for _, name, _, conversion in parsed:
        if name is not None and (not name or name[0].isdigit()):
            raise InputError(f"{what} has a field without a name ({{{name}}})", hint=hint)
        if conversion not in _CONVERSIONS:
            raise InputError(f"{what} has an unknown conversion !{conversion} in {{{name}!{conversion}}}", hint=hint)


def _render(template: str, values: Mapping[str, Any], what: str) -> str:
    try:
        return template.format_map(_Strict(values))
    except KeyError as e:
        raise InputError(f"{what} needs a value for {{{e.args[0]}}}",
                         hint=f"provide the field '{e.args[0]}' (or a default for it in the task)") from None
    except (ValueError, IndexError) as e:
        raise InputError(f"bad template in {what}: {e}", hint="escape literal braces as {{ and }}") from None


class _Strict(dict):  # type: ignore[type-arg]
    def __init__(self, values: Mapping[str, Any]) -> None:
        super().__init__(values)

    def __missing__(self, key: str) -> Any:
        raise KeyError(key)


@dataclass(frozen=True)
class Task:
    name: str
    item_template: str = "{text}"
    instructions: str | Callable[[Options], str] = ""  # a template over options, or a function of them
    system: str = ""
    output: Any = None  # Pydantic model, JSON Schema dict, or None for free text
    answer_tokens: int = DEFAULT_ANSWER_TOKENS  # expected answer size per item; thinking room is added on top
    answer_size: Callable[[Options], int] | None = None  # options (and "text") -> answer size, when it varies
    thinking: str | None = None
    defaults: Mapping[str, Any] = field(default_factory=dict)
    schema_for: Callable[[Options], Any] | None = None  # options -> schema, when it depends on them
    convert: Callable[[Any, Options], Any] | None = None  # validated answer -> what the user gets
    streamable: bool = False
    description: str = ""
    # The options the task reads, as data (option.py): the command line is built from them.
    params: tuple[Option, ...] = ()
    # Options the task cannot run without: name -> what it is, with an example. Checked before
    # anything is sent, so a missing one is a usage error naming the option, not a KeyError later.
    # Declared options marked required join it.
    required: Mapping[str, str] = field(default_factory=dict)
    # Built-in tools every request of the task declares: names (google_search, url_context,
    # code_execution) or the objects (fl.GoogleSearch(), ...). Functions are for calls, not tasks:
    # a task's answer is its text or schema, never a function call.
    tools: tuple[Any, ...] = ()
    # Reference material shared by every item (reference.py): worked examples (input -> expected
    # output, validated against the output schema) and reference text (guidelines, glossary, ...).
    # Both form the task's stable prefix; per call they may also come as options of the same names.
    examples: tuple[Example, ...] = ()
    reference: str = ""
    # How to run it (a task file's [run] table, e.g. one ``flashlane eval --write-task`` chose): model,
    # pack, service_tier, cache_prefix. ``flashlane run`` uses each one its command line leaves out.
    run: Mapping[str, Any] = field(default_factory=dict)

    def with_run(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """``given`` (a call's or a command line's settings: model, pack, service_tier,
        cache_prefix, ...) with each [run] setting it leaves out (absent or None) taken from the
        task: what is given still wins. ``flashlane run``, ``lane.map`` and ``flashlane.ray.map``
        all read a task file's [run] table through this."""
        out = dict(given)
        for key, value in self.run.items():
            if out.get(key) is None:
                out[key] = value
        return out

    @property
    def tool_names(self) -> list[str]:
        """The built-ins by name, in order (fingerprints, cache keys, reports)."""
        return [_builtin_name(t) for t in self.tools]

    def __post_init__(self) -> None:
        check_template(self.item_template, f"task '{self.name}' item_template")
        if not callable(self.instructions):
            check_template(self.instructions, f"task '{self.name}' instructions")
        object.__setattr__(self, "tools", _builtins(self.name, self.tools))
        params = options_of(self.params, f"task '{self.name}'")
        names = [o.name for o in (*params, *SHARED_OPTIONS)]
        twice = next((n for n in names if names.count(n) > 1), None)
        if twice:
            raise ConfigError(f"task '{self.name}' declares the option {twice!r} twice (or one every task has)",
                              hint=f"rename it; every task takes {', '.join(o.name for o in SHARED_OPTIONS)}")
        object.__setattr__(self, "params", params)
        object.__setattr__(self, "required", {**{o.name: o.what for o in params if o.required}, **self.required})
        object.__setattr__(self, "defaults", {**{o.name: o.default for o in params if o.default is not None},
                                              **self.defaults})
        if self.examples and not all(isinstance(e, Example) for e in self.examples):
            object.__setattr__(self, "examples", examples_of(self.examples, f"task '{self.name}'"))
        else:
            object.__setattr__(self, "examples", tuple(self.examples))
        if self.examples and self.schema_for is None:  # a fixed schema: check the examples now
            validate_examples(self.examples, Schema.of(self.output) if self.output is not None else None,
                              f"task '{self.name}'")

    @property
    def all_params(self) -> tuple[Option, ...]:
        """The task's own options, then those every task takes (reference material)."""
        return (*self.params, *SHARED_OPTIONS)

    @property
    def structured(self) -> bool:
        return self.output is not None or self.schema_for is not None

    @property
    def item_fields(self) -> list[str]:
        return template_fields(self.item_template)

    def with_defaults(self, **defaults: Any) -> Task:
        return replace(self, defaults={**self.defaults, **defaults})

    def options(self, values: Mapping[str, Any]) -> dict[str, Any]:
        # The item's fields may hold files (fl.File, Path, or a list mixing them with text):
        # they become marked text here, which the request builder turns back into parts.
        fields = self.item_fields
        return {**self.defaults, **{k: as_text(v) if k in fields else v for k, v in values.items() if v is not None}}

    def check_options(self, options: Options) -> None:
        """Raise ConfigError naming the first required option that is missing or empty.

        The message names the CLI flag and the Python keyword, since both reach here."""
        for name, what in self.required.items():
            value = options.get(name)
            if value is None or (isinstance(value, str | list | tuple | dict) and not value):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"task '{self.name}' needs {flag} ({name}= in Python): {what}",
                                  hint=f"add {flag} to the command, or {name}=... to the call")

    def answer_budget(self, options: Options) -> int:
        """Tokens the answer to one item needs (thinking room is added by the caller)."""
        size = self.answer_size(options) if self.answer_size is not None else self.answer_tokens
        return max(size, MIN_ANSWER_TOKENS)

    def schema(self, options: Options) -> Schema | None:
        self.check_options(options)
        raw = self.schema_for(options) if self.schema_for is not None else self.output
        return Schema.of(raw) if raw is not None else None

    def render_instructions(self, options: Options) -> str:
        self.check_options(options)
        if callable(self.instructions):
            return self.instructions(options)
        return _render(self.instructions, options, f"task '{self.name}' instructions") if self.instructions else ""

    def prefix(self, options: Options) -> Prefix | None:
        """The stable head of every request: system text, instructions and reference text as the
        system instruction, worked examples as leading turns. None only for a task with none of
        them. Instructions belong here even without reference material: they are the same for
        every item, so a long guideline is what a context cache pays for (issue 20)."""
        raw_examples = options.get("examples")
        examples = examples_of(raw_examples, f"task '{self.name}'") if raw_examples else self.examples
        reference = str(options.get("reference") or self.reference or "")
        if raw_examples or (examples and self.schema_for is not None):
            validate_examples(examples, self.schema(options), f"task '{self.name}'")
        system = join_system([self.system, self.render_instructions(options),
                              f"{REFERENCE_HEADING}\n{reference.strip()}" if reference.strip() else ""])
        if not system and not examples:
            return None
        turns: list[tuple[str, str]] = []
        for ex in examples:
            turns.append(("user", self.render_item({**options, **ex.values()})))
            turns.append(("model", ex.answer_text()))
        return Prefix(system=system, turns=tuple(turns))

    def sources(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The item's fields as its template reads them (text, maybe holding file markers): what
        provenance searches an answer's values in."""
        return {f: values[f] for f in self.item_fields if isinstance(values.get(f), str)}

    def render_item(self, values: Mapping[str, Any]) -> str:
        return _render(self.item_template, values, f"task '{self.name}'")

    def render(self, values: Mapping[str, Any]) -> str:
        opts = self.options(values)
        head = self.render_instructions(opts)
        body = self.render_item(opts)
        return f"{head}\n\n{body}" if head else body

    def finish(self, parsed: Any, options: Options) -> Any:
        return self.convert(parsed, options) if self.convert is not None else parsed


def _builtin_name(tool: Any) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", type(tool).__name__).lower()


def _builtins(task: str, tools: Any) -> tuple[Builtin, ...]:
    if isinstance(tools, str):
        tools = [tools]
    out = []
    for t in tools or ():
        if isinstance(t, str):
            out.append(builtin(t))
        elif _builtin_name(t) in ("google_search", "url_context", "code_execution", "file_search"):
            out.append(t)
        else:
            raise ConfigError(f"task '{task}' lists {t!r} as a tool; tasks take built-in tools only",
                              hint="use google_search, url_context or code_execution; call functions with "
                                   "lane.generate(..., tools=[fn], run_tools=True)")
    return tuple(out)
