"""What the gateway reads from requests and answers: paths, token estimates, defaults, usage.

The gateway forwards request bytes unchanged. It parses a body only for what the policy
needs (the input-token estimate of a generate call), re-serialises it only when it adds a
configured default the request lacks, and finds ``usageMetadata`` in an answer by scanning
from its end instead of parsing the candidates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from google.genai import types
from pydantic import ValidationError

from ..call.result import usage_from_response
from ..emulator.errors import ApiError
from ..emulator.errors import error_body as emulator_error_body
from ..emulator.flex import PRIORITY, requested_tier
from ..emulator.wire import blob_bytes
from ..media import SUPPORTED_MIME_TYPES, MediaInfo, measure, media_tokens, normalize_mime
from ..models import ModelInfo, Usage, estimate_tokens

__all__ = [
    "CACHE_CREATE",
    "GENERATE",
    "OWNED",
    "SPENDING_OPS",
    "STREAM",
    "BadPath",
    "Route",
    "apply_defaults",
    "error_body",
    "estimate_input_tokens",
    "mentions_owned",
    "parse_route",
    "rebase_file_uris",
    "references",
    "usage_in",
]

GENERATE = "generateContent"
STREAM = "streamGenerateContent"
COUNT = "countTokens"
BATCH_CREATE = "batchGenerateContent"
EMBED_OPS = frozenset({"embedContent", "batchEmbedContents"})
CACHE_CREATE = "cachedContents.create"  # POST /{v}/cachedContents: the model is named in the body
# Every model method that spends tokens: priced in the ledger under its model and paced by the
# limiter, as is a cache's creation (it buys storage of tokens). Nothing else the gateway serves spends.
SPENDING_OPS = frozenset({GENERATE, STREAM, COUNT, BATCH_CREATE, *EMBED_OPS})
# Resources a tenant creates through the gateway and owns (list key of each collection's answer).
OWNED = {"cachedContents": "cachedContents", "files": "files", "batches": "operations"}
# The calls the gateway serves (http method, shape); a path outside this table is not forwarded.
# Shapes: "" a collection, "id" one item, "id:op" an item's method.
_TABLE: dict[tuple[str, str], dict[str, str]] = {
    ("", "models"): {"GET": "models.list", "GET id": "models.get", "POST id:op": "op"},
    ("", "cachedContents"): {"GET": "list", "POST": CACHE_CREATE, "GET id": "get", "PATCH id": "patch",
                             "DELETE id": "delete"},
    # files.download: the Python SDK asks /{v}/files/ID:download (gemini-api-wire.md §1), the docs' REST /download/…
    ("", "files"): {"GET": "list", "GET id": "get", "DELETE id": "delete", "GET id:op": "download"},
    ("upload", "files"): {"POST": "upload", "PUT": "upload"},
    ("download", "files"): {"GET id:op": "download"},
    ("", "batches"): {"GET": "list", "GET id": "get", "DELETE id": "delete", "POST id:op": "cancel"},
}
_ITEM_OPS = {"files": "download", "batches": "cancel"}  # the one method of an item outside models
# A media part the gateway cannot measure (video, a referenced audio file, unreadable bytes):
# Gemini bills a 258-token tile for an image up to 384 px (ai.google.dev token docs).
INLINE_PART_TOKENS = 258
_VERSION = re.compile(r"^v\d+(?:alpha|beta)?\d*$")
# RFC 3986 path characters without percent-escapes: an escape could hide a separator (%2F) or a dot
# segment (%2e%2e) that the upstream's front end decodes after the gateway has decided what the call is.
_PCHARS = re.compile(rb"^[A-Za-z0-9_~:@!$&'()*+,;=./-]+$")


class BadPath(Exception):
    """A path the gateway does not forward: ``code`` 400 (not canonical) or 404 (no such call)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Route:
    """A request's call, parsed once from its path: what the limiter, the ledger, the model checks
    and the forwarded path (``path``) all use."""

    version: str
    resource: str  # "models" | "cachedContents" | "files" | "batches"
    name: str = ""  # the model ID or resource ID; "" for the collection
    op: str = ""  # the method after ":" ("generateContent", "download", "cancel"), or ""
    transfer: str = ""  # "upload" | "download" | ""
    create_cache: bool = False  # POST /{v}/cachedContents (its model is named in the body)

    @property
    def model(self) -> str:
        return self.name if self.resource == "models" else ""

    @property
    def kind(self) -> str:
        """"models" (list), "model" (get), "op" (model:method), "upload", or "resource"."""
        if self.transfer == "upload":
            return "upload"
        if self.resource != "models":
            return "resource"
        return "op" if self.op else ("model" if self.name else "models")

    @property
    def spends(self) -> bool:
        return self.create_cache or (self.resource == "models" and self.op in SPENDING_OPS)

    @property
    def owned(self) -> str:
        """``files/abc``: the tenant-owned resource this call names, or ""."""
        return f"{self.resource}/{self.name}" if self.name and self.resource in OWNED else ""

    @property
    def path(self) -> str:
        """The canonical path, re-built from the parsed parts: what is forwarded."""
        head = f"/{self.transfer}" if self.transfer else ""
        return f"{head}/{self.version}/{self.resource}" + (f"/{self.name}" if self.name else "") + (
            f":{self.op}" if self.op else "")


def parse_route(method: str, raw_path: bytes) -> Route:
    """The Gemini Developer API call a raw (undecoded) path names. Raises ``BadPath``: 400 for a
    path not in canonical form (empty or dot segments, percent-escapes), 404 for a call the
    gateway does not serve."""
    parts = raw_path.split(b"/")
    if parts[0] or not _PCHARS.match(raw_path) or any(p in (b"", b".", b"..") for p in parts[1:]):
        raise BadPath(400, "the request path is not in canonical form (empty or dot segments, or "
                           "percent-escapes): send /VERSION/RESOURCE[/ID][:METHOD]")
    segs = raw_path.decode("ascii").split("/")[1:]
    transfer = segs[0] if segs[0] in ("upload", "download") else ""
    if transfer:
        segs = segs[1:]
    if len(segs) not in (2, 3) or not _VERSION.match(segs[0]) or ":" in segs[1]:
        raise BadPath(404, "Method not found.")
    version, resource = segs[0], segs[1]
    name = op = shape = ""
    if len(segs) == 3:
        name, _, op = segs[2].partition(":")
        shape = " id:op" if op else " id"
    table = _TABLE.get((transfer, resource))
    if table is None or not name and len(segs) == 3 or ":" in op or (method + shape) not in table:
        raise BadPath(404, "Method not found.")
    if op and op not in (SPENDING_OPS if resource == "models" else (_ITEM_OPS[resource],)):
        raise BadPath(404, f"Method not found: {op}.")
    return Route(version, resource, name, op, transfer, create_cache=table[method + shape] == CACHE_CREATE)


def _texts(content: Any, out: list[str], media: list[dict[str, Any]]) -> None:
    """Append the text parts of a Content (either casing) to ``out``, its media parts to ``media``."""
    if isinstance(content, str):
        out.append(content)
        return
    if not isinstance(content, dict):
        return
    for part in content.get("parts") or ():
        if isinstance(part, dict):
            text = part.get("text")
            if isinstance(text, str):
                out.append(text)
            elif "inlineData" in part or "inline_data" in part or "fileData" in part or "file_data" in part:
                media.append(part)
        elif isinstance(part, str):
            out.append(part)


def media_part_tokens(part: dict[str, Any], model: str) -> int:
    """What one media part costs on ``model``, by the rule the emulator bills with and the client
    estimates with (media.media_tokens): an inline part is measured from its bytes (pages, pixels,
    seconds); a ``fileData`` part, whose bytes stay upstream, as one image or one page of its type.
    A part that cannot be read costs ``INLINE_PART_TOKENS`` (the API's answer will say why)."""
    blob = part.get("inlineData", part.get("inline_data"))
    ref = part.get("fileData", part.get("file_data"))
    try:
        if isinstance(blob, dict):
            mime = normalize_mime(str(blob.get("mimeType", blob.get("mime_type")) or ""))
            return media_tokens(model, measure(mime, blob_bytes(blob)))
        if isinstance(ref, dict):
            mime = normalize_mime(str(ref.get("mimeType", ref.get("mime_type")) or ""))
            if mime in SUPPORTED_MIME_TYPES and not mime.startswith("audio/"):
                return media_tokens(model, MediaInfo(mime, pages=1 if mime == "application/pdf" else None))
    except ValueError:  # not base64, or not readable as its type
        pass
    return INLINE_PART_TOKENS


def asks_priority(body: dict[str, Any]) -> bool:
    """Whether a request asks for the priority tier, whose quota is its own: read as the emulator
    reads ``serviceTier`` (``emulator/flex.requested_tier``, every spelling the API takes)."""
    try:
        return requested_tier(body) == PRIORITY
    except ApiError:
        return False  # a value the API refuses goes upstream as it is, for the API's own 400


def estimate_input_tokens(body: dict[str, Any], model: str = "") -> int:
    """Input tokens of a spending request, estimated per text part as the emulator bills them
    (``models.estimate_tokens``) and per media part by the shared media rule (``media_part_tokens``);
    the limiter reconciles with the real ``promptTokenCount``. Generate, count (either form), embed
    and cache-create bodies name ``contents``; a batch names its inlined requests."""
    inner = body.get("generateContentRequest", body.get("generate_content_request"))
    if isinstance(inner, dict):
        body = inner
    batch = body.get("batch")
    if isinstance(batch, dict):
        reqs = ((batch.get("inputConfig") or batch.get("input_config") or {}).get("requests") or {})
        reqs = reqs.get("requests") if isinstance(reqs, dict) else None
        return sum(estimate_input_tokens(r["request"], model) for r in reqs or ()
                   if isinstance(r, dict) and isinstance(r.get("request"), dict))
    texts: list[str] = []
    media: list[dict[str, Any]] = []
    contents = body.get("contents", body.get("content"))  # embedContent names one ``content``
    if isinstance(contents, (dict, str)):
        contents = [contents]
    for c in contents or ():
        _texts(c, texts, media)
    system = body.get("systemInstruction", body.get("system_instruction"))
    if system is not None:
        _texts(system, texts, media)
    return sum(estimate_tokens(t) for t in texts) + sum(media_part_tokens(p, model) for p in media)


_REFERENCE_KEYS = frozenset({"cachedContent", "cached_content", "fileUri", "file_uri", "fileName", "file_name"})
# A Files API name or URI (``https://HOST/v1beta/files/ID``) or a cache's name. A value that mentions
# one in any other spelling is kept whole, so it is owned by nobody and refused: the upstream might
# read it as the resource. (A public URL whose path has "files/" in it is refused with it.)
_REFERENCE = re.compile(r"^(?:https?://[^/?#]+/v\d+[a-z0-9]*/)?((?:files|cachedContents)/[A-Za-z0-9_-]+)$")


def references(body: dict[str, Any]) -> set[str]:
    """The tenant-owned resources (``files/abc``, ``cachedContents/xyz``) a request body uses: a
    cache named for generation, a file part's URI, a batch's input file. Walked iteratively: the
    body's depth is the client's to choose."""
    found: set[str] = set()
    stack: list[Any] = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _REFERENCE_KEYS and isinstance(v, str):
                    m = _REFERENCE.match(v)
                    if m:
                        found.add(m.group(1))
                    elif "files/" in v or "cachedContents/" in v:
                        found.add(v)
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(x for x in node if isinstance(x, (dict, list)))
    return found


_URI_KEYS = frozenset({"uri", "fileUri", "file_uri"})


def rebase_file_uris(data: Any, old_base: str, new_base: str) -> bool:
    """Rewrite every Files API URI under ``old_base`` (``{old_base}/v1beta/files/ID``) to ``new_base``,
    in place; True if any changed. The gateway shows its clients file URIs that name the gateway, and
    names the upstream again in what it forwards. Walked iteratively: the depth is the client's."""
    changed = False
    prefix = old_base.rstrip("/") + "/"
    stack: list[Any] = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for k, v in node.items():
                if k in _URI_KEYS and isinstance(v, str) and v.startswith(prefix) and "/files/" in v:
                    node[k] = new_base.rstrip("/") + "/" + v[len(prefix):]
                    changed = True
                elif isinstance(v, (dict, list)):
                    stack.append(v)
        elif isinstance(node, list):
            stack.extend(x for x in node if isinstance(x, (dict, list)))
    return changed


def mentions_owned(raw: bytes) -> bool:
    """A cheap first look: can ``references`` find anything in this body at all?"""
    return b"cachedContents/" in raw or b"files/" in raw


_THINKING_KEYS = ("thinkingLevel", "thinking_level", "thinkingBudget", "thinking_budget")


def apply_defaults(body: dict[str, Any], info: ModelInfo | None, *, thinking: str | None,
                   max_output_tokens: int | None) -> bool:
    """Add the configured defaults a generate request does not set (in place). True if the
    body changed (and must be re-serialised). Keys are added in camelCase, the API's JSON names;
    the request's own keys, in whatever casing, are left alone."""
    changed = False
    gc_key = "generation_config" if "generation_config" in body else "generationConfig"
    gc = body.get(gc_key)
    if gc is None:
        gc = {}
    if not isinstance(gc, dict):
        return False
    if thinking is not None and info is not None:
        tc_key = "thinking_config" if "thinking_config" in gc else "thinkingConfig"
        tc = gc.get(tc_key)
        if tc is None or (isinstance(tc, dict) and not any(k in tc for k in _THINKING_KEYS)):
            tc = dict(tc or {})
            level = thinking.lower()
            if info.uses_thinking_levels and level in info.thinking_levels:
                tc["thinkingLevel"] = level.upper()
            elif not info.uses_thinking_levels and level.lstrip("-").isdigit():
                tc["thinkingBudget"] = int(level)
            else:  # a level for a budget model (or the reverse): not ours to guess
                tc = None
            if tc is not None:
                gc[tc_key] = tc
                changed = True
    if max_output_tokens is not None and "maxOutputTokens" not in gc and "max_output_tokens" not in gc:
        gc["maxOutputTokens"] = max_output_tokens
        changed = True
    if changed:
        body[gc_key] = gc
    return changed


_USAGE_KEY = b'"usageMetadata"'
_DECODER = json.JSONDecoder()


def usage_in(data: bytes) -> Usage | None:
    """The last ``usageMetadata`` object in a response body or SSE tail, or None.

    Scans from the end: the usage follows the candidates in every answer (unary and each SSE
    event), so only the small object itself is decoded."""
    at = data.rfind(_USAGE_KEY)
    if at < 0:
        return None
    brace = data.find(b"{", at + len(_USAGE_KEY))
    if brace < 0:
        return None
    try:
        meta, _ = _DECODER.raw_decode(data[brace:].decode("utf-8", "replace"))
    except ValueError:
        return None
    if not isinstance(meta, dict):
        return None
    # Read as the SDK reads an answer off the wire (GenerateContentResponse._from_response drops
    # fields it does not know, then validates), and counted by the one reader of a response's
    # usage, call/result.py: the audio share of promptTokensDetails priced at the audio rate too.
    try:
        answer = types.GenerateContentResponse._from_response(response={"usageMetadata": meta}, kwargs={})
    except ValidationError:
        return None
    return usage_from_response(answer)


def error_body(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> bytes:
    """A Gemini-shaped error body (the emulator's shape), pretty-printed as the live API does."""
    return dumps_error(emulator_error_body(code, message, status, details))


def dumps_error(body: dict[str, Any]) -> bytes:
    return (json.dumps(body, indent=2) + "\n").encode()
