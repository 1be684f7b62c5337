"""Tools: what a call declares (functions, built-ins, a tool choice), what an answer says about
them (typed calls, grounding sources, URL retrieval status, executed code), and the pure steps
of the opt-in tool loop. The drivers (send, run the functions) live in ``client`` and ``stream``.

Wire facts (gemini-api-wire.md §2–3; recorded samples 04, 05, 07): declarations go out as
``functionDeclarations[{name, description, parameters_json_schema}]``; the choice as
``toolConfig.functionCallingConfig {mode: AUTO|ANY|NONE, allowedFunctionNames}`` (the API takes
allowed names with mode ANY only, ``FunctionCallingConfig`` docstring in google-genai 3.x);
built-ins as ``{googleSearch: {}}``, ``{urlContext: {}}``, ``{codeExecution: {}}``,
``{fileSearch: {fileSearchStoreNames}}``. Gemini 3 answers carry ``thoughtSignature`` on the first
``functionCall`` part, and a function-response turn whose model turn lost it is a 400: the loop
therefore appends the SDK's own ``Content`` of each answer to the history unchanged.

Functions are declared from Python callables (the JSON Schema of a Pydantic model built from the
signature and type hints; the description and per-argument text from the docstring), from Pydantic
models (the model is the argument object), or raw (a dict or ``types.FunctionDeclaration``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import re
import typing
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import to_jsonable_python

from ..errors import ConfigError
from ..models import estimate_tokens
from .schema import Schema

__all__ = [
    "BUILTIN_TOOLS", "CodeExecution", "CodeRun", "Citation", "DEFAULT_MAX_TOOL_ROUNDS", "FileSearch", "FunctionTool",
    "GoogleSearch", "Source", "ToolCall", "ToolParts", "Toolset", "UrlContext", "UrlStatus", "call_functions",
    "acall_functions", "function_tool", "read_parts", "responses_turn",
]

DEFAULT_MAX_TOOL_ROUNDS = 5
TOOL_CHOICES = ("auto", "any", "none")
# The API's rule for a function name (its 400 says so: "Must start with a letter or an underscore.
# Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), colons (:), or dashes (-), with a
# maximum length of 64"); checked here so a bad name fails before anything is sent.
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
_URL_STATUS_PREFIX = "URL_RETRIEVAL_STATUS_"


# ---------------------------------------------------------------------------- built-ins


@dataclass(frozen=True)
class GoogleSearch:
    """Grounding with Google Search: the answer comes with ``Result.sources`` and ``citations``.
    Billed per search query on Gemini 3, per grounded prompt on 2.5 (the catalog's price)."""

    def to_sdk(self) -> types.Tool:
        return types.Tool(google_search=types.GoogleSearch())


@dataclass(frozen=True)
class UrlContext:
    """URL context: the model reads the URLs named in the prompt; ``Result.url_statuses`` says
    which it could retrieve."""

    def to_sdk(self) -> types.Tool:
        return types.Tool(url_context=types.UrlContext())


@dataclass(frozen=True)
class CodeExecution:
    """Code execution: the model writes and runs Python; ``Result.code`` holds each run."""

    def to_sdk(self) -> types.Tool:
        return types.Tool(code_execution=types.ToolCodeExecution())


@dataclass(frozen=True)
class FileSearch:
    """File search over File Search stores (listed as supported on the Flash-Lite model pages,
    model-facts.md 1.1/1.2). Sent as given; the emulator has no File Search stores, so it is not
    exercised offline."""

    stores: tuple[str, ...]
    top_k: int | None = None

    def to_sdk(self) -> types.Tool:
        return types.Tool(file_search=types.FileSearch(file_search_store_names=list(self.stores), top_k=self.top_k))


Builtin = GoogleSearch | UrlContext | CodeExecution | FileSearch
# The names tasks and the CLI use for the built-ins.
BUILTIN_TOOLS: dict[str, Callable[[], Builtin]] = {
    "google_search": GoogleSearch, "url_context": UrlContext, "code_execution": CodeExecution,
}


def builtin(name: str) -> Builtin:
    try:
        return BUILTIN_TOOLS[name.strip().lower().replace("-", "_")]()
    except KeyError:
        raise ConfigError(f"unknown built-in tool {name!r}",
                          hint=f"use one of {', '.join(BUILTIN_TOOLS)}") from None


# ---------------------------------------------------------------------------- functions


@dataclass(frozen=True)
class FunctionTool:
    """One declared function: its declaration and how its arguments are validated (and run)."""

    name: str
    description: str
    json_schema: dict[str, Any]
    fn: Callable[..., Any] | None = None  # what the loop runs; None: the call is the answer
    args_model: type[BaseModel] | None = None  # arguments validate into this (callables, Pydantic)
    instance: bool = False  # args are the model instance itself (a Pydantic declaration)

    def declaration(self) -> types.FunctionDeclaration:
        # parameters_json_schema: JSON Schema as is (the live API took it, ws 04); ``parameters``
        # (the OpenAPI subset) would reject additionalProperties, $ref and friends.
        return types.FunctionDeclaration(name=self.name, description=self.description or None,
                                         parameters_json_schema=self.json_schema)

    def validate(self, args: dict[str, Any]) -> Any:
        """Validated arguments (a model instance for Pydantic declarations, else a dict);
        ValueError with a message fit to show the model."""
        if self.args_model is not None:
            try:
                inst = self.args_model.model_validate(args)
            except ValidationError as e:
                raise ValueError("; ".join(
                    f"at {'/'.join(str(x) for x in err.get('loc', ())) or '(root)'}: {err.get('msg')}"
                    for err in e.errors()[:5])) from None
            return inst if self.instance else {k: getattr(inst, k) for k in type(inst).model_fields}
        return Schema.of(self.json_schema).validate_text(json.dumps(args))


def _parse_doc(doc: str) -> tuple[str, dict[str, str]]:
    """(description, {arg: text}) from a Google-style (``Args:``) or Sphinx (``:param x:``) docstring."""
    lines = doc.splitlines()
    params: dict[str, str] = {}
    summary: list[str] = []
    section: str | None = None
    current: str | None = None
    for line in lines:
        stripped = line.strip()
        m = re.match(r":param\s+(?:\S+\s+)?(\w+):\s*(.*)", stripped)
        if m:
            current, section = m.group(1), "sphinx"
            params[current] = m.group(2)
            continue
        if re.match(r"^(Args|Arguments|Parameters|Params):\s*$", stripped):
            section, current = "args", None
            continue
        if re.match(r"^(Returns?|Raises|Yields|Examples?|Notes?):\s*$", stripped) or stripped.startswith(":return"):
            section, current = "other", None
            continue
        if section == "args":
            m = re.match(r"(\w+)(?:\s*\([^)]*\))?\s*:\s*(.*)", stripped)
            if m and line[:len(line) - len(line.lstrip())].count(" ") <= 8 and m.group(1) not in params:
                current = m.group(1)
                params[current] = m.group(2)
            elif current and stripped:
                params[current] = (params[current] + " " + stripped).strip()
            continue
        if section == "sphinx" and current and stripped and not stripped.startswith(":"):
            params[current] = (params[current] + " " + stripped).strip()
            continue
        if section is None:
            summary.append(line)
    return "\n".join(summary).strip(), params


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ConfigError(f"invalid function name {name!r} for a tool",
                          hint="start with a letter or _, use letters, digits, _ . : - only, at most 64 characters")
    return name


def _from_callable(fn: Callable[..., Any]) -> FunctionTool:
    name = _check_name(getattr(fn, "__name__", ""))
    try:
        sig = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=True)
    except (TypeError, ValueError, NameError) as e:
        raise ConfigError(f"cannot read the signature of tool {name}: {e}",
                          hint="give the function plain parameters with type hints") from None
    description, arg_docs = _parse_doc(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    for pname, p in sig.parameters.items():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ConfigError(f"tool {name} takes *{pname}; a declared function needs named parameters",
                              hint="replace *args/**kwargs with named, typed parameters")
        ann = hints.get(pname, Any)
        default = ... if p.default is p.empty else p.default
        fields[pname] = (ann, Field(default, description=arg_docs.get(pname)))
    try:
        model = create_model(f"{name}_arguments", __config__=ConfigDict(extra="forbid"), **fields)
        schema = model.model_json_schema()
    except Exception as e:  # pydantic raises several types for unusable annotations
        raise ConfigError(f"cannot build a JSON Schema for tool {name}: {e}",
                          hint="use JSON-friendly type hints (str, int, float, bool, lists, dicts, Pydantic models)") from None
    schema.pop("title", None)
    return FunctionTool(name=name, description=description, json_schema=schema, fn=fn, args_model=model)


def _from_model(model: type[BaseModel]) -> FunctionTool:
    name = _check_name(model.__name__)
    schema = model.model_json_schema()
    description = schema.pop("description", None) or ""
    schema.pop("title", None)
    return FunctionTool(name=name, description=description, json_schema=schema, args_model=model, instance=True)


def _from_declaration(decl: types.FunctionDeclaration | dict[str, Any]) -> FunctionTool:
    if isinstance(decl, dict):
        known = {"name", "description", "parameters", "parameters_json_schema", "parametersJsonSchema"}
        unknown = sorted(set(decl) - known)
        if unknown:
            raise ConfigError(f"unknown key {unknown[0]!r} in a function declaration",
                              hint=f"known keys: {', '.join(sorted(known))}")
        name = str(decl.get("name") or "")
        description = str(decl.get("description") or "")
        schema = decl.get("parameters_json_schema", decl.get("parametersJsonSchema", decl.get("parameters")))
    else:
        name, description = decl.name or "", decl.description or ""
        if decl.parameters_json_schema is not None:
            schema = decl.parameters_json_schema
        elif decl.parameters is not None:
            schema = decl.parameters.json_schema.model_dump(mode="json", exclude_none=True, by_alias=True)
        else:
            schema = None
    _check_name(name)
    schema = dict(schema) if isinstance(schema, dict) else {"type": "object", "properties": {}}
    Schema.of(schema)  # an unusable schema fails now, naming the problem
    return FunctionTool(name=name, description=description, json_schema=schema)


def function_tool(obj: Any) -> FunctionTool:
    """A ``FunctionTool`` from a callable, a Pydantic model class or a raw declaration."""
    if isinstance(obj, FunctionTool):
        return obj
    if isinstance(obj, type) and issubclass(obj, BaseModel):
        return _from_model(obj)
    if isinstance(obj, (types.FunctionDeclaration, dict)):
        return _from_declaration(obj)
    if callable(obj):
        return _from_callable(obj)
    raise ConfigError(f"cannot use {obj!r} as a tool",
                      hint="pass functions, Pydantic models, declarations, or fl.GoogleSearch() / "
                           "fl.UrlContext() / fl.CodeExecution()")


# ---------------------------------------------------------------------------- the set a call declares


@dataclass(frozen=True)
class Toolset:
    functions: tuple[FunctionTool, ...] = ()
    builtins: tuple[Builtin, ...] = ()
    choice: str | tuple[str, ...] = "auto"

    @classmethod
    def of(cls, tools: Iterable[Any] | None, choice: str | Sequence[str] | None = None) -> Toolset | None:
        if tools is None:
            if choice is not None:
                raise ConfigError("tool_choice was given without tools", hint="pass tools=[...] as well")
            return None
        if isinstance(tools, Toolset):
            return tools
        functions: list[FunctionTool] = []
        builtins: list[Builtin] = []
        for t in tools:
            if isinstance(t, (GoogleSearch, UrlContext, CodeExecution, FileSearch)):
                builtins.append(t)
            elif isinstance(t, str):
                builtins.append(builtin(t))
            elif isinstance(t, types.Tool):
                raise ConfigError("pass tools as functions, declarations or fl.GoogleSearch() and friends, "
                                  "not google.genai types.Tool", hint="e.g. tools=[my_function, fl.GoogleSearch()]")
            else:
                functions.append(function_tool(t))
        names = [f.name for f in functions]
        dup = next((n for n in names if names.count(n) > 1), None)
        if dup:
            raise ConfigError(f"two tools are named {dup!r}", hint="give each function a distinct name")
        return cls(tuple(functions), tuple(dict.fromkeys(builtins)), _choice(choice, names))

    def get(self, name: str | None) -> FunctionTool | None:
        return next((f for f in self.functions if f.name == name), None)

    @property
    def runnable(self) -> bool:
        return any(f.fn is not None for f in self.functions)

    def sdk_tools(self) -> list[types.Tool]:
        out = [b.to_sdk() for b in self.builtins]
        if self.functions:
            out.append(types.Tool(function_declarations=[f.declaration() for f in self.functions]))
        return out

    def tool_config(self) -> types.ToolConfig | None:
        if not self.functions:
            return None
        # Built-ins and functions in one request: the tool-combination guide
        # (ai.google.dev/gemini-api/docs/tool-combination, generateContent example) sets
        # include_server_side_tool_invocations so the built-ins' calls come back as parts; the model
        # turn, kept unchanged in the loop's history, carries them back as the guide requires.
        combined = True if self.builtins else None
        fcc: types.FunctionCallingConfig | None = None
        if isinstance(self.choice, tuple):
            fcc = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY,
                                              allowed_function_names=list(self.choice))
        elif self.choice != "auto":
            fcc = types.FunctionCallingConfig(mode=types.FunctionCallingConfigMode.ANY if self.choice == "any"
                                              else types.FunctionCallingConfigMode.NONE)
        if fcc is None and combined is None:
            return None
        return types.ToolConfig(function_calling_config=fcc, include_server_side_tool_invocations=combined)

    def declaration_tokens(self) -> int:
        """Input tokens the declarations add (the API bills them as prompt, ws 04)."""
        if not self.functions:
            return 0
        return estimate_tokens(json.dumps([{"name": f.name, "description": f.description, "parameters": f.json_schema}
                                           for f in self.functions], separators=(",", ":")))

    def describe(self) -> list[str]:
        """Stable names of what is declared (cache keys, fingerprints)."""
        out = [type(b).__name__ if not isinstance(b, FileSearch) else f"FileSearch:{','.join(b.stores)}"
               for b in self.builtins]
        out += [f"fn:{f.name}:{json.dumps(f.json_schema, sort_keys=True)}" for f in self.functions]
        return out + [f"choice:{self.choice}"]


def _choice(choice: str | Sequence[str] | None, names: list[str]) -> str | tuple[str, ...]:
    if choice is None:
        return "auto"
    if isinstance(choice, str):
        c = choice.strip().lower()
        if c in TOOL_CHOICES:
            return c
        choice = [choice]
    allowed = tuple(str(n) for n in choice)
    missing = [n for n in allowed if n not in names]
    if missing or not allowed:
        raise ConfigError(f"tool_choice {missing[0] if missing else '[]'!r} is not a declared function",
                          hint=f"use auto, any, none or names among: {', '.join(names) or '(no functions declared)'}")
    return allowed


# ---------------------------------------------------------------------------- what an answer says


@dataclass(frozen=True)
class ToolCall:
    """A function call the model made. ``args`` are validated against the declaration (a Pydantic
    instance when the declaration is a Pydantic model); when they do not validate, ``args`` is the
    raw dict and ``error`` says why. After the loop ran it, ``result`` is what was sent back."""

    name: str
    args: Any
    raw_args: dict[str, Any] = field(default_factory=dict)
    id: str | None = None
    error: str | None = None
    result: dict[str, Any] | None = None
    thought_signature: bytes | None = None  # as received on the call's part (Gemini 3: the first call)
    round: int = 1  # the answer (1-based) that made the call; the loop adds one per round

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "args": to_jsonable_python(self.args, fallback=str), "id": self.id,
                "error": self.error, "result": to_jsonable_python(self.result, fallback=str), "round": self.round}


@dataclass(frozen=True)
class Citation:
    """A span of the answer (``start``/``end`` in UTF-8 bytes, as the API counts) and the
    ``sources`` (indices into ``Result.sources``) that support it."""

    text: str
    start: int
    end: int
    sources: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"text": self.text, "start": self.start, "end": self.end, "sources": list(self.sources)}


@dataclass(frozen=True)
class Source:
    """A grounding source: a web page (search, URL context) or a retrieved document (file search)."""

    index: int
    uri: str | None
    title: str | None
    kind: str = "web"
    segments: tuple[Citation, ...] = ()  # the answer spans it supports

    def as_dict(self) -> dict[str, Any]:
        return {"index": self.index, "uri": self.uri, "title": self.title, "kind": self.kind,
                "segments": [s.as_dict() for s in self.segments]}


@dataclass(frozen=True)
class UrlStatus:
    url: str
    status: str  # SUCCESS | ERROR | PAYWALL | UNSAFE | UNSPECIFIED (URL_RETRIEVAL_STATUS_ dropped)

    @property
    def ok(self) -> bool:
        return self.status == "SUCCESS"

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status}


@dataclass(frozen=True)
class CodeRun:
    code: str
    language: str = "PYTHON"
    outcome: str | None = None  # OUTCOME_OK | OUTCOME_FAILED | OUTCOME_DEADLINE_EXCEEDED
    output: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"code": self.code, "language": self.language, "outcome": self.outcome, "output": self.output}


@dataclass
class ToolParts:
    """Everything tool-related one answer carries."""

    calls: list[ToolCall] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    citations: list[Citation] = field(default_factory=list)
    search_queries: list[str] = field(default_factory=list)
    url_statuses: list[UrlStatus] = field(default_factory=list)
    code: list[CodeRun] = field(default_factory=list)


def enum_name(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "name", value))


def model_parts(chunks: Sequence[Any]) -> list[types.Part]:
    """The parts of the first candidate across one answer's responses (one, or a stream's chunks)."""
    out: list[types.Part] = []
    for r in chunks:
        cands = getattr(r, "candidates", None) or []
        if cands and cands[0].content is not None:
            out.extend(cands[0].content.parts or [])
    return out


def make_call(part: types.Part, toolset: Toolset | None, round_: int = 1) -> ToolCall:
    fc = part.function_call
    assert fc is not None
    raw = dict(fc.args or {})
    sig = part.thought_signature
    fn = toolset.get(fc.name) if toolset is not None else None
    if fn is None:
        return ToolCall(name=fc.name or "", args=raw, raw_args=raw, id=fc.id, round=round_, thought_signature=sig,
                        error=None if toolset is None else f"no function named {fc.name!r} was declared")
    try:
        return ToolCall(name=fn.name, args=fn.validate(raw), raw_args=raw, id=fc.id, round=round_,
                        thought_signature=sig)
    except ValueError as e:
        return ToolCall(name=fn.name, args=raw, raw_args=raw, id=fc.id, round=round_, thought_signature=sig,
                        error=f"invalid arguments: {e}")


def read_parts(chunks: Sequence[Any], toolset: Toolset | None, round_: int = 1) -> ToolParts:
    """Typed tool parts of one answer (its responses: one, or every chunk of a stream)."""
    out = ToolParts()
    for p in model_parts(chunks):
        if p.function_call is not None:
            out.calls.append(make_call(p, toolset, round_))
        if p.executable_code is not None:
            out.code.append(CodeRun(code=p.executable_code.code or "",
                                    language=enum_name(p.executable_code.language) or "PYTHON"))
        if p.code_execution_result is not None:
            res = p.code_execution_result
            if out.code and out.code[-1].outcome is None:
                last = out.code.pop()
                out.code.append(CodeRun(last.code, last.language, enum_name(res.outcome), res.output))
            else:
                out.code.append(CodeRun(code="", outcome=enum_name(res.outcome), output=res.output))
    gm = next((c.grounding_metadata for r in reversed(chunks) for c in (getattr(r, "candidates", None) or [])[:1]
               if c.grounding_metadata is not None), None)
    ucm = next((c.url_context_metadata for r in reversed(chunks) for c in (getattr(r, "candidates", None) or [])[:1]
                if c.url_context_metadata is not None), None)
    if gm is not None:
        out.search_queries = [str(q) for q in gm.web_search_queries or []]
        for s in gm.grounding_supports or []:
            seg = s.segment
            if seg is None:
                continue
            out.citations.append(Citation(text=seg.text or "", start=seg.start_index or 0, end=seg.end_index or 0,
                                          sources=tuple(s.grounding_chunk_indices or ())))
        for i, chunk in enumerate(gm.grounding_chunks or []):
            segs = tuple(c for c in out.citations if i in c.sources)
            if chunk.web is not None:
                out.sources.append(Source(i, chunk.web.uri, chunk.web.title, "web", segs))
            elif chunk.retrieved_context is not None:
                rc = chunk.retrieved_context
                out.sources.append(Source(i, rc.uri, rc.title, "retrieved", segs))
            else:
                out.sources.append(Source(i, None, None, "other", segs))
    if ucm is not None:
        for m in ucm.url_metadata or []:
            status = (enum_name(m.url_retrieval_status) or "URL_RETRIEVAL_STATUS_UNSPECIFIED").removeprefix(_URL_STATUS_PREFIX)
            out.url_statuses.append(UrlStatus(url=m.retrieved_url or "", status=status))
    return out


# ---------------------------------------------------------------------------- the loop's pure steps


def model_turn(chunks: Sequence[Any]) -> types.Content:
    """The model's turn to put back in the history. One response: its own ``Content`` object,
    unchanged (the thought signature is echoed exactly as received). A stream: the chunks'
    parts in order, dropping only empty text parts that carry nothing (no signature, not a thought)."""
    if len(chunks) == 1 and chunks[0].candidates and chunks[0].candidates[0].content is not None:
        return chunks[0].candidates[0].content  # type: ignore[no-any-return]
    parts = [p for p in model_parts(chunks)
             if not (p.text == "" and p.thought_signature is None and not p.thought
                     and p.function_call is None)]
    return types.Content(role="model", parts=parts)


def response_for(value: Any) -> dict[str, Any]:
    """What a function returned, as the ``response`` object: the SDK docs' ``output`` key
    (``FunctionResponse.response``: "Use 'output' key to specify function output and 'error' key
    to specify error details")."""
    return {"output": to_jsonable_python(value, fallback=str)}


def error_response(error: BaseException | str) -> dict[str, Any]:
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return {"error": text}


def _ready(call: ToolCall, toolset: Toolset) -> tuple[FunctionTool | None, dict[str, Any] | None]:
    """(function to run, or the response to send without running anything)."""
    if call.error is not None:
        return None, error_response(call.error)
    fn = toolset.get(call.name)
    if fn is None or fn.fn is None:
        return None, error_response(f"function {call.name!r} cannot be run")
    return fn, None


def call_functions(calls: Sequence[ToolCall], toolset: Toolset) -> list[ToolCall]:
    """Run each call (a raising function becomes ``{"error": ...}``); the calls with results."""
    out = []
    for call in calls:
        fn, response = _ready(call, toolset)
        if fn is not None and fn.fn is not None:
            try:
                value = fn.fn(**call.args)
                if inspect.isawaitable(value):
                    value = _run_awaitable(value)
                response = response_for(value)
            except Exception as e:  # the model sees the failure and may recover; the loop goes on
                response = error_response(e)
        out.append(replace(call, result=response))
    return out


async def acall_functions(calls: Sequence[ToolCall], toolset: Toolset) -> list[ToolCall]:
    """As ``call_functions``, concurrently: coroutine functions are awaited, plain ones run in a thread."""

    async def one(call: ToolCall) -> ToolCall:
        fn, response = _ready(call, toolset)
        if fn is not None and fn.fn is not None:
            try:
                if inspect.iscoroutinefunction(fn.fn):
                    value = await fn.fn(**call.args)
                else:
                    value = await asyncio.to_thread(fn.fn, **call.args)
                    if inspect.isawaitable(value):
                        value = await value
                response = response_for(value)
            except Exception as e:  # see call_functions
                response = error_response(e)
        return replace(call, result=response)

    return list(await asyncio.gather(*(one(c) for c in calls)))


def _run_awaitable(value: Any) -> Any:
    async def wait() -> Any:
        return await value

    return asyncio.run(wait())


def responses_turn(calls: Sequence[ToolCall]) -> types.Content:
    """One user turn holding a functionResponse part per call, in the calls' order."""
    parts = [types.Part(function_response=types.FunctionResponse(id=c.id, name=c.name, response=c.result or {}))
             for c in calls]
    return types.Content(role="user", parts=parts)


def has_runnable(calls: Sequence[ToolCall], toolset: Toolset | None) -> bool:
    """Does the loop go on? Only when every call names a function it can run (or is invalid, which
    the model is told): a call to a declaration without a function is the answer itself."""
    if not calls or toolset is None:
        return False
    return all(c.error is not None or (toolset.get(c.name) is not None and toolset.get(c.name).fn is not None)  # type: ignore[union-attr]
               for c in calls)


# ---------------------------------------------------------------------------- showing a grounded answer


def cite(text: str, citations: Sequence[Citation]) -> str:
    """The answer with numbered markers (``[1]``, 1-based source numbers) after each supported span.
    Offsets are UTF-8 bytes (``Segment`` docs: "measured in bytes"); a span that does not fit the
    text (a stream cut, another candidate) is left unmarked rather than guessed."""
    data = text.encode("utf-8")
    ends: dict[int, list[int]] = {}
    for c in citations:
        if 0 <= c.start <= c.end <= len(data) and c.sources:
            ends.setdefault(c.end, []).extend(i + 1 for i in c.sources)
    for end in sorted(ends, reverse=True):
        try:
            data[:end].decode("utf-8")
        except UnicodeDecodeError:
            continue
        marks = "".join(f"[{n}]" for n in sorted(set(ends[end])))
        data = data[:end] + marks.encode() + data[end:]
    return data.decode("utf-8")


def source_lines(sources: Sequence[Source]) -> list[str]:
    """``[n] title: uri`` per source, numbered as ``cite`` marks them."""
    return [f"[{s.index + 1}] {s.title + ': ' if s.title else ''}{s.uri or '(no link)'}" for s in sources]
