"""Tools: function calling with Gemini 3 thought signatures, and the built-in Google Search, URL
context and code execution tools, answered synthetically in the live API's shapes.

What a client sees (calls, signatures and their 400s, the built-ins' metadata, the scenario actions)
is in docs/emulator.md (Tools); here are the sources and the rules behind it.

Request side (gemini-api-wire.md §2; [ws 04, 07, 20]): ``tools[]`` holding ``functionDeclarations``
(``parameters``, ``parametersJsonSchema`` or the snake_case ``parameters_json_schema`` the Python SDK
passes through), ``googleSearch``, ``urlContext``, ``codeExecution``;
``toolConfig.functionCallingConfig`` ``{mode: AUTO|ANY|NONE|VALIDATED, allowedFunctionNames}`` (SDK
enum ``FunctionCallingConfigMode``). Call args are instances of the declared parameters from the
responder's schema generator, seeded by the request; mode ANY keeps calling after a response
("constrained to always predicting function calls", SDK docstring; [ws 04] calls again).

Thought signatures (Gemini 3 models only, i.e. the catalog's thinking-level models), per the official
thought-signatures page (ai.google.dev/gemini-api/docs/thought-signatures): on the *first*
``functionCall`` part only, or on a text answer's last part (signed only when the request declares
tools, so tool-free answers stay as they were). Validation covers the current turn: the model
contents after the latest user content with ordinary parts (not only ``functionResponse``). The
missing-signature wording is quoted in langgenius/dify#29187, lbjlaq/Antigravity-Manager#938 and
csells/dartantic#86 ("position" is the 1-based index of the content); ``Corrupted thought
signature.`` in google-gemini/gemini-cli#13467 and openclaw/openclaw#23771. The two placeholders
the docs allow pass ([ws 04] sends the first). Signatures are compared as bytes, so standard or
URL-safe base64 both echo ([ws 07] echoes URL-safe what it received as standard).

Built-ins: field names checked against google-genai ``types.GroundingMetadata``,
``UrlContextMetadata``, ``ExecutableCode``, ``CodeExecutionResult`` and pydantic-ai's live cassettes
``test_google_model_web_search_tool``, ``..._web_fetch_tool[True]``, ``..._code_execution_tool``.
Grounding chunks use RFC 2606 example domains, never a real site; ``groundingSupports`` offsets are
UTF-8 bytes with zero omitted, as the API does; URL context reads at most ``MAX_URLS``; arithmetic
in the prompt is evaluated safely (numbers and + - * / // % ** only). ``toolUsePromptTokenCount``
adds to ``totalTokenCount`` as in the cassettes above (17 + 225 + 167 + 109 = 518).
"""

from __future__ import annotations

import ast
import base64
import binascii
import hashlib
import json
import operator
import random
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from ..models import ModelInfo, estimate_tokens
from .answer import Answer
from .errors import invalid_argument
from .responder import MAX_GENERATED_CHARS, Generator
from .wire import camel_keys, normalize_schema

MAX_PARALLEL_CALLS = 4
MAX_URLS = 20  # URL context reads up to 20 URLs per request (URL context docs)
SEARCH_CHUNKS = (2, 3)  # grounding sources per answer, chosen per request
SEARCH_TOOL_TOKENS_PER_SOURCE = 120  # synthetic toolUsePromptTokenCount per search source
URL_TOOL_TOKENS_PER_PAGE = 900  # synthetic toolUsePromptTokenCount per retrieved page
EXAMPLE_DOMAINS = ("example.com", "example.org", "example.net")
MODES = ("AUTO", "ANY", "NONE", "VALIDATED")
# A turn of function calls thinks briefly: the recorded gemini-3-flash-preview call of ``multiply(5, 3)``
# at its default (high) level reported 16 candidate tokens and 32 thinking tokens (llm-gemini cassette
# ``test_tools_with_gemini_3_thought_signatures.yaml`` @2a8c855), so a call's thinking is at most this
# many times its own tokens, never the level's full spend. (No recorded call turn has a finishMessage.)
CALL_THOUGHTS_PER_TOKEN = 2

MISSING_SIGNATURE = (
    "Function call is missing a thought_signature in functionCall parts. This is required for tools to "
    "work correctly, and missing thought_signature may lead to degraded model performance. Additional "
    "data, function call `default_api:{name}` , position {position}. Please refer to "
    "https://ai.google.dev/gemini-api/docs/thought-signatures for more details."
)
CORRUPTED_SIGNATURE = "Corrupted thought signature."
INVALID_NAME = (
    "* GenerateContentRequest.tools[{t}].function_declarations[{f}].name: Invalid function name. Must "
    "start with a letter or an underscore. Must be alphameric (a-z, A-Z, 0-9), underscores (_), dots (.), "
    "colons (:), or dashes (-), with a maximum length of 64.\n"
)
PLACEHOLDER_SIGNATURES = frozenset({b"skip_thought_signature_validator", b"context_engineering_is_the_way_to_go"})
_SIGNATURE_MAGIC = b"\x0aflashlane-emulator-thought\x12"
_SIGNATURE_KEY = b"flashlane emulator thought signature v1"  # fixed: signatures survive restarts
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:\-]{0,63}$")
_URL = re.compile(r"https?://[^\s<>\"')\]]+")
_EXPR = re.compile(r"[-+(]*\d[\d.\s]*(?:(?:\*\*|//|[-+*/%])[\s(]*-?\d[\d.\s)]*)+")
_BAD_HOSTS = (".invalid", ".test", ".example", ".localhost")


@dataclass
class Function:
    name: str
    schema: dict[str, Any] | None


@dataclass
class ToolSet:
    functions: list[Function] = field(default_factory=list)
    mode: str = "AUTO"
    allowed: list[str] | None = None
    google_search: bool = False
    url_context: bool = False
    code_execution: bool = False
    declaration_tokens: int = 0  # what the declarations add to promptTokenCount

    @property
    def builtins(self) -> bool:
        return self.google_search or self.url_context or self.code_execution


def parse(body: dict[str, Any]) -> ToolSet | None:
    """The request's tools and tool config (camelCase or snake_case), or None without tools."""
    tools = body.get("tools")
    if not tools:
        return None
    if isinstance(tools, dict):
        tools = [tools]
    ts = ToolSet()
    errors: list[str] = []
    for t, tool in enumerate(tools if isinstance(tools, list) else []):
        tool = camel_keys(tool) if isinstance(tool, dict) else {}
        for f, decl in enumerate(tool.get("functionDeclarations") or []):
            decl = camel_keys(decl) if isinstance(decl, dict) else {}
            name = decl.get("name")
            if not isinstance(name, str) or not _NAME.match(name):
                errors.append(INVALID_NAME.format(t=t, f=f))
                continue
            schema = decl.get("parametersJsonSchema", decl.get("parameters"))
            ts.functions.append(Function(name, normalize_schema(schema) if isinstance(schema, dict) else None))
        ts.google_search |= "googleSearch" in tool or "googleSearchRetrieval" in tool
        ts.url_context |= "urlContext" in tool
        ts.code_execution |= "codeExecution" in tool
    if errors:
        raise invalid_argument("".join(errors))
    ts.declaration_tokens = declaration_tokens(tools)
    config = camel_keys(body.get("toolConfig") or {})
    fcc = camel_keys(config.get("functionCallingConfig") or {}) if isinstance(config, dict) else {}
    mode = str(fcc.get("mode") or "AUTO").upper()
    if mode == "MODE_UNSPECIFIED":
        mode = "AUTO"
    if mode not in MODES:
        raise invalid_argument(
            "Invalid value at 'tool_config.function_calling_config.mode' "
            f"(type.googleapis.com/google.ai.generativelanguage.v1beta.FunctionCallingConfig.Mode), {json.dumps(fcc.get('mode'))}"
        )
    ts.mode = mode
    allowed = fcc.get("allowedFunctionNames")
    ts.allowed = [str(n) for n in allowed] if isinstance(allowed, list) and allowed else None
    return ts


def declaration_tokens(tools: Any) -> int:
    """Input tokens the function declarations cost: the live API bills them as prompt (ws 04: a
    13-token question with a 6-token system instruction and two declarations was 69 prompt tokens).
    Estimated on their compact JSON with keywords camel-cased (so spelling does not change the count),
    the same rule for generate, countTokens and cachedContents."""
    decls: list[Any] = []
    for tool in tools if isinstance(tools, list) else [tools] if isinstance(tools, dict) else []:
        tool = camel_keys(tool) if isinstance(tool, dict) else {}
        decls.extend(tool.get("functionDeclarations") or [])
    if not decls:
        return 0
    return estimate_tokens(json.dumps(normalize_schema(decls), separators=(",", ":"), sort_keys=True))


# ---------------------------------------------------------------------- thought signatures
def signs(info: ModelInfo) -> bool:
    """Gemini 3 (the catalog's thinking-level models) issues and validates thought signatures."""
    return info.uses_thinking_levels


def _mac(nonce: bytes) -> bytes:
    return hashlib.blake2b(nonce, key=_SIGNATURE_KEY, digest_size=16).digest()


def issue_signature(rng: random.Random) -> str:
    nonce = rng.getrandbits(128).to_bytes(16, "big")
    return base64.b64encode(_SIGNATURE_MAGIC + nonce + _mac(nonce)).decode()


def _decode(value: Any, path: str) -> bytes:
    text = value if isinstance(value, str) else ""
    try:
        padded = text + "=" * (-len(text) % 4)
        return base64.b64decode(padded.replace("-", "+").replace("_", "/"), validate=True)
    except (binascii.Error, ValueError):
        raise invalid_argument(
            f"Invalid value at '{path}' (TYPE_BYTES), Base64 decoding failed for {json.dumps(value)[:80]}"
        ) from None


def signature_ok(raw: bytes) -> bool:
    if raw in PLACEHOLDER_SIGNATURES:
        return True
    n = len(_SIGNATURE_MAGIC)
    return len(raw) == n + 32 and raw[:n] == _SIGNATURE_MAGIC and raw[n + 16 :] == _mac(raw[n : n + 16])


def _parts(content: Any) -> list[dict[str, Any]]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if isinstance(parts, dict):
        parts = [parts]
    return [camel_keys(p) for p in parts if isinstance(p, dict)] if isinstance(parts, list) else []


def _turn_start(contents: list[Any]) -> int:
    """Index after the latest user content with ordinary parts (the start of the current turn)."""
    for i in range(len(contents) - 1, -1, -1):
        c = contents[i]
        if (isinstance(c, dict) and c.get("role", "user") == "user"
                and any("functionResponse" not in p for p in _parts(c))):
            return i + 1
    return 0


def check_signatures(info: ModelInfo, contents: list[Any]) -> None:
    """400 as the live API gives for a dropped or altered signature in the current turn."""
    if not signs(info):
        return
    for i in range(_turn_start(contents), len(contents)):
        c = contents[i]
        if not isinstance(c, dict) or c.get("role") != "model":
            continue
        first = True
        for j, part in enumerate(_parts(c)):
            sig = part.get("thoughtSignature")
            if "functionCall" in part:
                if first and sig is None:
                    name = (camel_keys(part["functionCall"]) or {}).get("name", "")
                    raise invalid_argument(MISSING_SIGNATURE.format(name=name, position=i + 1))
                first = False
            if sig is not None and not signature_ok(_decode(sig, f"contents[{i}].parts[{j}].thought_signature")):
                raise invalid_argument(CORRUPTED_SIGNATURE)


# ---------------------------------------------------------------------- answering
def _contents(body: dict[str, Any]) -> list[Any]:
    contents = body.get("contents") or []
    return contents if isinstance(contents, list) else [contents]


def _turn_text(contents: list[Any]) -> str:
    start = _turn_start(contents)
    c = contents[start - 1] if start else None
    return "\n".join(str(p["text"]) for p in _parts(c) if isinstance(p.get("text"), str))


def _responses_back(contents: list[Any]) -> bool:
    last = contents[-1] if contents else None
    return any("functionResponse" in p for p in _parts(last))


def _calls(ts: ToolSet, act: dict[str, Any], rng: random.Random, budget: int, prompt: str) -> list[dict[str, Any]]:
    scripted = act.get("function_calls")
    by_name = {f.name: f for f in ts.functions}
    if scripted:
        out = []
        for item in scripted if isinstance(scripted, list) else [scripted]:
            name = item if isinstance(item, str) else str(item.get("name"))
            args = item.get("args") if isinstance(item, dict) and "args" in item else None
            if args is None:
                fn = by_name.get(name)
                args = _args(fn, rng, budget, prompt) if fn else {}
            out.append({"name": name, "args": args})
        return out
    pool = [f for f in ts.functions if ts.allowed is None or f.name in ts.allowed]
    return [{"name": f.name, "args": _args(f, rng, budget, prompt)} for f in pool[:MAX_PARALLEL_CALLS]]


def _args(fn: Function, rng: random.Random, budget: int, prompt: str = "") -> dict[str, Any]:
    """An instance of the declared parameters; top-level strings and numbers the prompt names are
    taken from it (``_from_prompt``), so "Weather in Paris?" calls with ``{"city": "Paris"}``."""
    if not fn.schema:
        return {}
    gen = Generator(fn.schema, rng, budget)
    value = gen.instance(fn.schema)
    if not isinstance(value, dict):
        return {}
    if prompt:
        _from_prompt(value, gen.resolve(fn.schema), prompt)
    return value


# Synthetic behaviour (the live model reads the prompt; nothing to record): a string parameter named
# for a place takes the capitalised words after "in/at/to/from/for/near" ("Weather in New York?"),
# one named for a search takes the question itself, any other takes a quoted value or a capitalised
# name from the prompt; number parameters take the prompt's numbers in order ("What is 5 times 3?"
# -> x=5, y=3, as the recorded call in llm-gemini's test_tools_with_gemini_3_thought_signatures.yaml).
_PLACE_NAMES = ("city", "location", "place", "country", "destination", "origin", "town", "region", "state",
                "address", "where", "area")
_QUERY_NAMES = ("query", "question", "search", "prompt", "topic", "q", "text", "keywords")
_PLACE = re.compile(r"\b(?:in|at|to|from|for|near|of)\s+((?:[A-Z][\w'-]*)(?:\s+[A-Z][\w'-]*){0,3})")
_QUOTED = re.compile(r"[\"'“‘]([^\"'”’\n]{1,80})[\"'”’]")
_PROPER = re.compile(r"(?<![.!?]\s)(?<!^)(?<![.!?])\b([A-Z][\w'-]+(?:\s+[A-Z][\w'-]+){0,3})")
_NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _from_prompt(args: dict[str, Any], schema: dict[str, Any], prompt: str) -> None:
    props = schema.get("properties") or {}
    text = prompt.strip()
    places = _PLACE.findall(text)
    quoted = _QUOTED.findall(text)
    proper = [p for p in _PROPER.findall(text) if p not in places]
    numbers = _NUMBER.findall(text)
    used: set[str] = set()
    for name in list(args):
        sub = props.get(name)
        if not isinstance(sub, dict) or "enum" in sub or "const" in sub or sub.get("format"):
            continue
        kind = Generator.type_of(sub)
        key = name.lower().replace("-", "_")
        if kind == "string":
            if any(key == n or key.endswith("_" + n) for n in _PLACE_NAMES):
                pool = places or quoted or proper
            elif key in _QUERY_NAMES or key.endswith(("_query", "_question")):
                pool = [text.rstrip("?!. ")]
            else:
                pool = quoted or proper
            fresh = [v for v in pool if v not in used]
            if pool:
                args[name] = (fresh or pool)[0]
                used.add(args[name])
        elif kind in ("integer", "number") and numbers:
            raw = numbers.pop(0)
            number = float(raw)
            if kind == "integer" and number.is_integer():
                args[name] = int(number)
            elif kind == "number":
                args[name] = number


def apply(
    info: ModelInfo, ts: ToolSet | None, body: dict[str, Any], ans: Answer, act: dict[str, Any] | None,
    seed: int, budget: int = MAX_GENERATED_CHARS,
) -> None:
    """Turn a plain answer into what the declared tools make of it (in place); each call's args
    are generated within ``budget`` characters (responder.Generator)."""
    act = act or {}
    rng = random.Random(seed ^ 0x7E57)
    if ts is None or ans.block_reason or ans.text is None and not act.get("function_calls"):
        if ts is None and ans.text and ans.thoughts_tokens and signs(info):
            ans.text_signature = issue_signature(rng)  # a Gemini 3 answer that thought is signed [ws 05, 17]
        return
    contents = _contents(body)
    scripted_text = any(k in act for k in ("text", "json", "empty", "malformed_json", "schema_violation"))
    wants_calls = bool(ts.functions) and ts.mode != "NONE" and (ts.mode == "ANY" or not _responses_back(contents))
    if act.get("function_calls") or (wants_calls and not scripted_text):
        calls = _calls(ts, act, rng, budget, _turn_text(contents))
        if calls:
            parts: list[dict[str, Any]] = [{"functionCall": c} for c in calls]
            if signs(info):
                parts[0]["thoughtSignature"] = issue_signature(rng)
            ans.text = None
            ans.finish = "STOP"
            ans.lead_parts = parts
            ans.candidates_tokens = estimate_tokens(json.dumps(calls, separators=(",", ":")))
            ans.thoughts_tokens = min(ans.thoughts_tokens, CALL_THOUGHTS_PER_TOKEN * ans.candidates_tokens)
            return
    if not ans.text:
        return
    if signs(info):
        ans.text_signature = issue_signature(rng)
    prompt = _turn_text(contents)
    if ts.code_execution:
        _code(ans, prompt, act)
    chunks: list[dict[str, Any]] = []
    metadata: dict[str, Any] = {}
    if ts.url_context:
        urls = list(dict.fromkeys(u.rstrip(".,;:!?") for u in _URL.findall(prompt)))[:MAX_URLS]
        if urls:
            meta = [{"retrievedUrl": u, "urlRetrievalStatus": _url_status(u, act)} for u in urls]
            ans.extras["urlContextMetadata"] = {"urlMetadata": meta}
            ok = [m["retrievedUrl"] for m in meta if m["urlRetrievalStatus"] == "URL_RETRIEVAL_STATUS_SUCCESS"]
            chunks += [{"web": {"uri": u, "title": urlparse(u).hostname or u}} for u in ok]
            ans.tool_use_tokens += URL_TOOL_TOKENS_PER_PAGE * len(ok)
    if ts.google_search:
        queries = act.get("search_queries") or [_query(prompt)]
        n = rng.randint(*SEARCH_CHUNKS)
        slug = "-".join(re.findall(r"[a-z0-9]+", queries[0].lower())[:6]) or "result"
        for k in range(n):
            domain = EXAMPLE_DOMAINS[k % len(EXAMPLE_DOMAINS)]
            chunks.append({"web": {"uri": f"https://www.{domain}/{slug}/{k + 1}", "title": domain}})
        metadata["webSearchQueries"] = [str(q) for q in queries]
        metadata["searchEntryPoint"] = {"renderedContent": _entry_point(metadata["webSearchQueries"])}
        ans.tool_use_tokens += SEARCH_TOOL_TOKENS_PER_SOURCE * n
    if chunks:
        metadata["groundingChunks"] = chunks
        metadata["groundingSupports"] = _supports(ans.text, len(chunks))
        ans.extras["groundingMetadata"] = metadata


def _supports(text: str, n_chunks: int) -> list[dict[str, Any]]:
    """One support per sentence, offsets in UTF-8 bytes (the Segment docs: "measured in bytes")."""
    out: list[dict[str, Any]] = []
    data = text.encode("utf-8")
    for k, m in enumerate(re.finditer(r"[^.!?\n]+[.!?]?", text)):
        sentence = m.group(0).strip()
        if not sentence:
            continue
        start = len(text[: m.start() + m.group(0).index(sentence)].encode("utf-8"))
        end = start + len(sentence.encode("utf-8"))
        segment: dict[str, Any] = {"endIndex": end, "text": data[start:end].decode("utf-8")}
        if start:
            segment = {"startIndex": start, **segment}
        out.append({"segment": segment, "groundingChunkIndices": [k % n_chunks]})
    return out


def _query(prompt: str) -> str:
    words = re.findall(r"[A-Za-z0-9][A-Za-z0-9'-]*", prompt)
    return " ".join(words[:8]).lower() or "search"


def _entry_point(queries: list[str]) -> str:
    chips = "".join(f'<a class="chip" href="https://www.example.com/search?q={q.replace(" ", "+")}">{q}</a>'
                    for q in queries)
    return ('<style>\n.container { display: flex; }\n.chip { display: inline-block; }\n</style>\n'
            f'<div class="container">\n  <div class="carousel">\n    {chips}\n  </div>\n</div>\n')


def _url_status(url: str, act: dict[str, Any]) -> str:
    for needle, status in (act.get("url_status") or {}).items():
        if needle in url:
            s = str(status).upper()
            return s if s.startswith("URL_RETRIEVAL_STATUS_") else "URL_RETRIEVAL_STATUS_" + s
    host = (urlparse(url).hostname or "").lower()
    low = url.lower()
    if host in ("localhost", "") or host.endswith(_BAD_HOSTS) or "fail" in low or "unreachable" in low:
        return "URL_RETRIEVAL_STATUS_ERROR"
    if "paywall" in low:
        return "URL_RETRIEVAL_STATUS_PAYWALL"
    if "unsafe" in low:
        return "URL_RETRIEVAL_STATUS_UNSAFE"
    return "URL_RETRIEVAL_STATUS_SUCCESS"


_OPS: dict[type, Any] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow,
    ast.USub: operator.neg, ast.UAdd: operator.pos,
}


def evaluate(expr: str) -> int | float:
    """Arithmetic on number literals only; anything else raises ValueError."""

    def ev(node: ast.AST) -> Any:
        if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            return node.value
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            left, right = ev(node.left), ev(node.right)
            if isinstance(node.op, ast.Pow) and abs(right) > 64:
                raise ValueError("exponent too large")
            return _OPS[type(node.op)](left, right)
        if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](ev(node.operand))
        raise ValueError("not arithmetic")

    try:
        value = ev(ast.parse(expr.strip(), mode="eval").body)
    except (SyntaxError, ZeroDivisionError, OverflowError, RecursionError) as e:
        raise ValueError(str(e)) from None
    return round(value, 10) if isinstance(value, float) else value


def _code(ans: Answer, prompt: str, act: dict[str, Any]) -> None:
    code = act.get("code")
    output = act.get("code_output")
    computed = None
    if code is None:
        for m in _EXPR.finditer(prompt):
            try:
                computed = evaluate(m.group(0))
            except ValueError:
                continue
            code = f"result = {m.group(0).strip()}\nprint(result)"
            break
    if code is None:
        words = re.findall(r"[A-Za-z]{4,}", prompt)[:5]
        code = f"words = {words!r}\nprint(len(words))"
        computed = len(words)
    if output is None:
        output = f"{computed}\n"
    ans.lead_parts = [
        {"executableCode": {"language": "PYTHON", "code": str(code)}},
        {"codeExecutionResult": {"outcome": str(act.get("code_outcome") or "OUTCOME_OK").upper(), "output": str(output)}},
    ]
    text = ans.text or ""
    if computed is not None and "text" not in act and not text.lstrip().startswith(("{", "[")):
        ans.text = f"The result is {computed}. " + text
        ans.candidates_tokens = estimate_tokens(ans.text)
    ans.tool_use_tokens += estimate_tokens(str(code)) + estimate_tokens(str(output))
