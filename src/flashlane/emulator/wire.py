"""Request parsing: one tolerant reader for what the SDKs and REST users actually send.

The live API accepts proto field names (snake_case) and JSON names (camelCase), and enum
values in either case; the Python SDK relies on that (``thinkingConfig: {"thinking_level":
"MINIMAL"}``). This module normalises a raw body into a ``GenerateRequest`` once, so the rest
of the emulator never looks at spelling. Structural keys are normalised; user data (schema
property names, function args) is left as sent. Bad input raises ``ApiError`` 400 with the
wording the live API uses.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..media import (
    SUPPORTED_MIME_TYPES,
    MediaInfo,
    measure,
    media_tokens,
    modality,
    normalize_mime,
    resolution_of,
)
from ..models import estimate_tokens
from .documents import document_text, labelled
from .errors import (
    MAX_JSON_DEPTH,
    ApiError,
    bad_base64,
    invalid_argument,
    schema_too_complex,
    unreadable_media,
    unsupported_mime,
)
from .responder import over_limit

_camel_cache: dict[str, str] = {}
JSON_HEADERS = [(b"content-type", b"application/json; charset=UTF-8")]
_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def dumps_json(obj: Any) -> bytes:
    """A JSON answer body, pretty-printed as the live API writes them."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) + "\n").encode()


def new_id(length: int) -> str:
    """A random id of lowercase letters and digits, as the API names files, caches and batches."""
    return "".join(_ID_ALPHABET[b % len(_ID_ALPHABET)] for b in os.urandom(length))


def invalid_message(path: str, message: str, value: Any) -> ApiError:
    """The JSON parser's 400 for a value at ``path`` that is not the ``message`` it should be."""
    return invalid_argument(f"Invalid value at '{path}' (type.googleapis.com/google.ai.generativelanguage.v1beta."
                            f"{message}), " + json.dumps(value)[:200])


def camel(key: str) -> str:
    """``max_output_tokens`` -> ``maxOutputTokens``; camelCase and ``$keys`` unchanged."""
    out = _camel_cache.get(key)
    if out is None:
        if "_" in key and not key.startswith(("$", "_")):
            head, *rest = key.split("_")
            out = head + "".join(p[:1].upper() + p[1:] for p in rest)
        else:
            out = key
        _camel_cache[key] = out
    return out


def camel_keys(obj: Any) -> Any:
    """Normalise the keys of one mapping (not recursive)."""
    if not isinstance(obj, dict):
        return obj
    if not any("_" in k for k in obj):
        return obj
    return {camel(k): v for k, v in obj.items()}


_NAME_MAPS = ("properties", "$defs", "defs", "definitions", "patternProperties")


def normalize_schema(schema: Any) -> Any:
    """Camel-case schema keywords recursively, leaving property names and enum values alone."""
    if isinstance(schema, list):
        return [normalize_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for k, v in schema.items():
        ck = camel(k)
        if ck in _NAME_MAPS and isinstance(v, dict):
            out[ck] = {name: normalize_schema(sub) for name, sub in v.items()}
        elif ck in ("enum", "const", "default", "example", "examples", "required", "propertyOrdering"):
            out[ck] = v
        else:
            out[ck] = normalize_schema(v)
    return out


INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def _int_field(value: Any, path: str) -> int:
    """An int32 proto field: JSON number or numeric string, whole, in range (else the 400 the
    live API's JSON parser gives, e.g. for ``maxOutputTokens: 1e12``)."""
    bad = invalid_argument(f"Invalid value at '{path}' (TYPE_INT32), {json.dumps(value)}")
    if isinstance(value, bool):
        raise bad
    number: int | None = None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str):
        try:
            number = int(value.strip())
        except ValueError:
            pass
    if number is None or not INT32_MIN <= number <= INT32_MAX:
        raise bad
    return number


def _float_field(value: Any, path: str, lo: float | None, hi: float | None) -> float:
    """A float proto field with the range the API documents (temperature 0-2, topP 0-1)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise invalid_argument(f"Invalid value at '{path}' (TYPE_FLOAT), {json.dumps(value)}")
    try:
        number = float(value)
    except ValueError:
        raise invalid_argument(f"Invalid value at '{path}' (TYPE_FLOAT), {json.dumps(value)}") from None
    if number != number or (lo is not None and number < lo) or (hi is not None and number > hi):
        span = f"[{lo}, {hi}]" if hi is not None else f">= {lo}"
        raise invalid_argument(
            f"* GenerateContentRequest.{path}: {path.rsplit('.', 1)[-1]} must be in the range {span}, "
            f"got {value}.\n"
        )
    return number


# Schema types both dialects accept (OpenAPI subset upper case, JSON Schema lower case).
SCHEMA_TYPES = frozenset({"string", "number", "integer", "boolean", "array", "object", "null"})
_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMA_ONE = ("items", "additionalProperties", "not")


def check_schema_types(schema: Any, path: str, proto_enum: bool) -> None:
    """Reject a ``type`` no schema dialect knows, with the path to it (``properties.x.type``), and
    a ``minItems``/``minLength`` over the generator's limits (responder.over_limit), before generating.

    The live API parses ``responseSchema`` into a proto whose ``type`` is an enum, so an unknown
    name is the JSON parser's "Invalid value at ... (…Type)" 400; for ``responseJsonSchema`` it
    is a schema error. Either way a nonsense type never reaches the model. A schema it cannot
    serve is refused before generation too (errors.SCHEMA_TOO_COMPLEX_MESSAGE).
    """
    if isinstance(schema, list):
        for i, sub in enumerate(schema):
            check_schema_types(sub, f"{path}[{i}]", proto_enum)
        return
    if not isinstance(schema, dict):
        return
    over = over_limit(schema)
    if over is not None:
        key, value, limit = over
        raise schema_too_complex(f"{key} {value} at '{path}' is over {limit}")
    t = schema.get("type")
    for name in t if isinstance(t, list) and not proto_enum else [t]:
        if name is None:
            continue
        if not isinstance(name, str) or name.lower().removeprefix("type_unspecified") not in SCHEMA_TYPES | {""}:
            if proto_enum:
                raise invalid_argument(
                    f"Invalid value at '{path}.type' "
                    f"(type.googleapis.com/google.ai.generativelanguage.v1beta.Type), {json.dumps(name)}"
                )
            raise invalid_argument(
                f"* GenerateContentRequest.{path}.type: unsupported JSON Schema type {json.dumps(name)}; "
                f"use one of {', '.join(sorted(SCHEMA_TYPES))}.\n"
            )
    for key in ("properties", "$defs", "definitions"):
        subs = schema.get(key)
        if isinstance(subs, dict):
            for pname, sub in subs.items():
                check_schema_types(sub, f"{path}.{key}[{pname}]", proto_enum)
    for key in _SUBSCHEMA_LISTS:
        if isinstance(schema.get(key), list):
            check_schema_types(schema[key], f"{path}.{key}", proto_enum)
    for key in _SUBSCHEMA_ONE:
        if isinstance(schema.get(key), dict):
            check_schema_types(schema[key], f"{path}.{key}", proto_enum)


def _lenient(raw: bytes) -> Any:
    """The body read as the live API's lenient JSON parser reads it, or None. The batch guide's own
    curl starts an upload with ``{'file': {'display_name': ...}}`` (single quotes; gemini-api-wire.md
    §1.3 [guide-batch]) and the live API accepts it; a YAML flow mapping is that JSON with single quotes."""
    try:
        return yaml.safe_load(raw)
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError):
        return None


def parse_json_body(raw: bytes, lenient: bool = False) -> dict[str, Any]:
    """A request body's top-level object (400 in the API's wording otherwise); ``lenient`` also takes
    single-quoted strings, as the Files API upload start does (``_lenient``)."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except RecursionError:
        # the live API's JSON parser has a nesting limit too; never a 500 for a client's body
        raise invalid_argument(
            "Invalid JSON payload received. Message nesting too deep (more than "
            f"{MAX_JSON_DEPTH} levels)."
        ) from None
    except ValueError:  # UnicodeDecodeError included
        body = _lenient(raw) if lenient else None
        if not isinstance(body, dict):
            raise invalid_argument(
                "Invalid JSON payload received. Unexpected token.\n" + raw[:40].decode("utf-8", "replace")
            ) from None
    if not isinstance(body, dict):
        raise invalid_argument(
            "Invalid JSON payload received. Expected an object at the top level, got "
            + type(body).__name__
            + "."
        )
    return body


def content_texts(contents: Any, path: str = "contents") -> list[str]:
    """The text of every text part, validating the Content/Part structure on the way."""
    if isinstance(contents, dict):  # a single Content is tolerated by the REST API
        contents = [contents]
    if not isinstance(contents, list):
        raise invalid_message(path, "Content", contents)
    texts: list[str] = []
    for i, content in enumerate(contents):
        if not isinstance(content, dict):
            raise invalid_message(f"{path}[{i}]", "Content", content)
        parts = content.get("parts", [])
        if isinstance(parts, dict):
            parts = [parts]
        if not isinstance(parts, list):
            raise invalid_message(f"{path}[{i}].parts", "Part", parts)
        for j, part in enumerate(parts):
            if not isinstance(part, dict):
                raise invalid_message(f"{path}[{i}].parts[{j}]", "Part", part)
            text = part.get("text")
            if text is None:
                continue
            if not isinstance(text, str):
                raise invalid_argument(
                    f"Invalid value at '{path}[{i}].parts[{j}].text' (TYPE_STRING), " + json.dumps(text)[:200]
                )
            if not part.get("thought"):
                texts.append(text)
    return texts


_URLSAFE = str.maketrans("-_", "+/")
# Other names the API takes for a type it reads: audio/mpeg for MP3 (the Vertex AI list of supported
# MIME types, as QuantumNous/new-api#1139 quotes it). Other aliases (image/jpg) are refused.
API_MIME_ALIASES = frozenset({"audio/mpeg"})


Media = tuple[MediaInfo, bytes, str | None]  # what a part is, its bytes, its own mediaResolution level


def content_media(contents: Any, path: str = "contents") -> list[Media]:
    """Every ``inlineData`` part as (what it is, its bytes, its own ``mediaResolution`` level or
    None), checked as the API checks them: a MIME type Gemini reads, base64 data, content
    readable as that type."""
    out: list[Media] = []
    for where, part, blob in _parts_with(contents, "inlineData", "inline_data", path):
        if not isinstance(blob, dict):
            raise invalid_message(where, "Blob", blob)
        mime = _read_mime(str(blob.get("mimeType", blob.get("mime_type")) or ""))
        try:
            data = blob_bytes(blob)
        except (binascii.Error, ValueError):
            raise bad_base64(f"{where}.data", str(blob.get("data") or "")) from None
        if not data:
            raise invalid_argument(f"* GenerateContentRequest.{where}.data: data is empty\n")
        out.append(_measured(mime, data, part))
    return out


def _read_mime(sent: str) -> str:
    """The MIME type a part names, as the media rules name it; the API's 400 for one it does not read."""
    base = sent.split(";")[0].strip().lower()
    if base not in SUPPORTED_MIME_TYPES and base not in API_MIME_ALIASES:
        raise unsupported_mime(sent.strip() or "(none)")  # as sent: the API takes no "image/jpg"
    return normalize_mime(base)


def blob_bytes(blob: dict[str, Any]) -> bytes:
    """An ``inlineData`` blob's bytes. Bytes fields take standard or URL-safe base64 (proto3 JSON
    mapping, protobuf.dev/programming-guides/json); the Python SDK sends URL-safe. Raises
    binascii.Error (a ValueError) when the data is not base64."""
    raw = str(blob.get("data") or "").translate(_URLSAFE)
    return base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)


def _parts_with(contents: Any, key: str, snake: str, path: str) -> Iterator[tuple[str, dict[str, Any], Any]]:
    """(where, the part, its value) of every part that has ``key`` (or its snake_case spelling)."""
    if isinstance(contents, dict):
        contents = [contents]
    for i, content in enumerate(contents if isinstance(contents, list) else []):
        parts = content.get("parts", []) if isinstance(content, dict) else []
        for j, part in enumerate(parts if isinstance(parts, list) else [parts]):
            value = part.get(key, part.get(snake)) if isinstance(part, dict) else None
            if value is not None:
                yield f"{path}[{i}].parts[{j}].{snake}", part, value


def _measured(mime: str, data: bytes, part: dict[str, Any]) -> Media:
    # Part.media_resolution is a PartMediaResolution: {"level": "MEDIA_RESOLUTION_LOW"}
    # (google-genai types.PartMediaResolution; the SDK sends it as part.mediaResolution).
    res = part.get("mediaResolution", part.get("media_resolution"))
    level = resolution_of(res.get("level") if isinstance(res, dict) else res)
    try:
        return measure(mime, data), data, level
    except ValueError:
        raise unreadable_media(mime) from None


# fileData: the bytes of a file the request references, by its uri (the Files API's, resolved by
# the app for the caller's project; it raises the API's 403 for a file that does not exist or expired).
FileResolver = Callable[[str], tuple[str, bytes]]
_FILES_URI = re.compile(r"(?:^|/)(files/[a-z0-9-]+)$")


def content_files(contents: Any, resolve: FileResolver | None, path: str = "contents") -> tuple[list[Media], list[str]]:
    """Every ``fileData`` part: the media as ``content_media`` gives inline parts, and the text of
    text files (``text/*``: the API reads them as text, and the emulator bills them as text). Only
    Files API uris are served: the emulator never fetches an external URL (the live API does, for
    public and signed HTTPS URLs since 2026-01-12; docs/documents.md)."""
    out: list[Media] = []
    texts: list[str] = []
    for where, part, ref in _parts_with(contents, "fileData", "file_data", path):
        if not isinstance(ref, dict):
            raise invalid_message(where, "FileData", ref)
        uri = str(ref.get("fileUri", ref.get("file_uri")) or "")
        m = _FILES_URI.search(uri)
        if not uri:
            raise invalid_argument(f"* GenerateContentRequest.{where}.file_uri: file_uri is empty\n")
        if m is None or resolve is None:
            raise invalid_argument(f"Unsupported file uri: {uri[:200]} (the emulator serves Files API uris only)")
        stored_mime, data = resolve(m.group(1))
        sent = str(ref.get("mimeType", ref.get("mime_type")) or stored_mime)
        if sent.strip().lower().startswith("text/"):
            texts.append(data.decode("utf-8", "replace"))
            continue
        out.append(_measured(_read_mime(sent), data, part))
    return out, texts


_ITEM_HEADER = re.compile(r"^### id: (\S+)\s*$", re.M)


def item_media(contents: Any, digests: list[str]) -> dict[str, list[str]]:
    """Which media parts belong to which packed row: a text part whose last ``### id: X`` line
    (the header flashlane's packed prompts put before each row, pipeline/packing.py) opens row X,
    and the media parts after it, up to the next header, are X's. ``digests``: the media parts'
    digests in order (content_media's)."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    n = 0
    for content in contents if isinstance(contents, list) else [contents]:
        parts = content.get("parts", []) if isinstance(content, dict) else []
        for part in parts if isinstance(parts, list) else [parts]:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                found = _ITEM_HEADER.findall(part["text"])
                if found:
                    current = found[-1]
            elif part.get("inlineData", part.get("inline_data")) is not None:
                if current is not None and n < len(digests):
                    out.setdefault(current, []).append(digests[n])
                n += 1
    return out


def media_modalities(model: str, media: list[tuple[MediaInfo, bytes, str | None]],
                     resolution: str | None = None) -> dict[str, int]:
    """Prompt tokens of the media parts by modality (DOCUMENT, IMAGE, AUDIO), each part at its
    own media resolution, else the request's (``resolution``), else the default."""
    out: dict[str, int] = {}
    for info, _, level in media:
        key = modality(info)
        out[key] = out.get(key, 0) + media_tokens(model, info, level or resolution)
    return out


def media_prompt_tokens(model: str, media: list[tuple[MediaInfo, bytes, str | None]],
                        resolution: str | None = None) -> int:
    return sum(media_modalities(model, media, resolution).values())


def count_prompt_tokens(texts: list[str]) -> int:
    """Billing rule shared with countTokens and the client limiter: per-part estimate, summed."""
    return sum(estimate_tokens(t) for t in texts)


@dataclass
class GenerateRequest:
    """A generateContent / streamGenerateContent request, normalised."""

    texts: list[str]
    system_texts: list[str]
    prompt: str
    prompt_tokens: int
    max_output_tokens: int | None = None
    thinking_level: str | None = None
    thinking_budget: int | None = None
    include_thoughts: bool = False
    response_mime_type: str | None = None
    schema: dict[str, Any] | None = None
    schema_kind: str | None = None  # "json" (responseJsonSchema) | "openapi" (responseSchema)
    candidate_count: int = 1
    seed_material: bytes = field(default=b"", repr=False)
    media_digests: list[str] = field(default_factory=list)  # the inline files, so answers depend on their bytes
    # ``Label: value`` lines of the documents and the user's text (documents.py), for schema answers
    known: dict[str, str] = field(default_factory=dict)
    # Of prompt_tokens, the media parts' by modality (usageMetadata.promptTokensDetails; TEXT is the rest).
    media_tokens: dict[str, int] = field(default_factory=dict)
    item_media: dict[str, list[str]] = field(default_factory=dict)  # packed row id -> its files' digests

    def seed(self, model: str) -> int:
        h = hashlib.blake2b(model.encode() + b"\0" + self.seed_material, digest_size=8)
        return int.from_bytes(h.digest(), "big")

    def row_seeds(self, model: str) -> dict[str, int]:
        """A seed per packed row from its own files (not its id or position): responder.packed."""
        return {rid: int.from_bytes(hashlib.blake2b("\0".join([model, *digests]).encode(), digest_size=8).digest(), "big")
                for rid, digests in self.item_media.items()}


_LEVELS = {"minimal", "low", "medium", "high", "xhigh"}


def parse_generate(body: dict[str, Any], model: str = "", files: FileResolver | None = None) -> GenerateRequest:
    """``model`` prices media parts (their tokens differ by model generation, media.py); ``files``
    serves the ``fileData`` parts' Files API uris."""
    body = camel_keys(body)
    if "contents" not in body or body["contents"] in (None, [], ""):
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified\n")
    files_media, file_texts = content_files(body["contents"], files)
    texts = content_texts(body["contents"]) + file_texts
    media = content_media(body["contents"]) + files_media
    system = body.get("systemInstruction")
    system_texts: list[str] = []
    if system is not None:
        if isinstance(system, str):
            system_texts = [system]
        else:
            system_texts = content_texts(system, "system_instruction")
    gc = body.get("generationConfig") or {}
    if not isinstance(gc, dict):
        raise invalid_message("generation_config", "GenerationConfig", gc)
    gc = camel_keys(gc)
    # generationConfig.mediaResolution: the request's level, for parts without their own.
    by_modality = media_modalities(model, media, resolution_of(gc.get("mediaResolution")))
    req = GenerateRequest(
        texts=texts,
        system_texts=system_texts,
        prompt="\n".join(texts),
        prompt_tokens=count_prompt_tokens(texts) + count_prompt_tokens(system_texts) + sum(by_modality.values()),
        media_tokens=by_modality,
    )
    req.media_digests = [hashlib.sha256(data).hexdigest() for _, data, _ in media]
    if media:
        req.item_media = item_media(body["contents"], req.media_digests)
    if gc.get("maxOutputTokens") is not None:
        req.max_output_tokens = _int_field(gc["maxOutputTokens"], "generation_config.max_output_tokens")
        if req.max_output_tokens < 1:
            raise invalid_argument(
                "* GenerateContentRequest.generation_config.max_output_tokens: must be positive\n"
            )
    if gc.get("temperature") is not None:
        _float_field(gc["temperature"], "generation_config.temperature", 0.0, 2.0)
    if gc.get("topP") is not None:
        _float_field(gc["topP"], "generation_config.top_p", 0.0, 1.0)
    if gc.get("topK") is not None:
        _int_field(gc["topK"], "generation_config.top_k")
    if gc.get("candidateCount") is not None:
        req.candidate_count = _int_field(gc["candidateCount"], "generation_config.candidate_count")
    tc = gc.get("thinkingConfig")
    if tc is not None:
        if not isinstance(tc, dict):
            raise invalid_message("generation_config.thinking_config", "ThinkingConfig", tc)
        tc = camel_keys(tc)
        level = tc.get("thinkingLevel")
        if level is not None:
            lv = str(level).lower()
            if lv == "thinking_level_unspecified":
                lv = ""
            elif lv not in _LEVELS:
                raise invalid_argument(
                    "Invalid value at 'generation_config.thinking_config.thinking_level' "
                    f"(type.googleapis.com/google.ai.generativelanguage.v1beta.ThinkingConfig.ThinkingLevel), "
                    f"{json.dumps(level)}"
                )
            req.thinking_level = lv or None
        if tc.get("thinkingBudget") is not None:
            req.thinking_budget = _int_field(
                tc["thinkingBudget"], "generation_config.thinking_config.thinking_budget"
            )
        req.include_thoughts = bool(tc.get("includeThoughts"))
    mime = gc.get("responseMimeType")
    if mime is not None and not isinstance(mime, str):
        raise invalid_argument(
            f"Invalid value at 'generation_config.response_mime_type' (TYPE_STRING), {json.dumps(mime)}"
        )
    req.response_mime_type = mime
    js, os_ = gc.get("responseJsonSchema"), gc.get("responseSchema")
    if js is None and "_responseJsonSchema" in gc:
        js = gc["_responseJsonSchema"]
    if js is not None and os_ is not None:
        raise invalid_argument(
            "* GenerateContentRequest.generation_config.response_schema: "
            "response_schema and response_json_schema cannot both be set.\n"
        )
    schema = js if js is not None else os_
    if schema is not None:
        if not isinstance(schema, dict):
            raise invalid_message("generation_config.response_schema", "Schema", schema)
        if (mime or "").lower() not in ("application/json", "text/x.enum"):
            raise invalid_argument(
                "* GenerateContentRequest.generation_config.response_mime_type: "
                "response_mime_type must be set to application/json or text/x.enum when a response schema is given.\n"
            )
        req.schema = normalize_schema(schema)
        req.schema_kind = "json" if js is not None else "openapi"
        check_schema_types(
            req.schema,
            "generation_config.response_json_schema" if js is not None else "generation_config.response_schema",
            proto_enum=js is None,
        )
        # Documents first (what an extraction reads), then the user's text.
        req.known = labelled([*(document_text(info.mime_type, data) for info, data, _ in media), *texts])
    material = [
        req.prompt,
        "\x1f".join(system_texts),
        mime or "",
        req.thinking_level or "",
        str(req.thinking_budget),
        str(req.max_output_tokens),
    ]
    if schema is not None:
        material.append(json.dumps(schema, sort_keys=True))
    if req.media_digests:  # only then: text requests keep their seeds (and their answers)
        material.extend(req.media_digests)
    req.seed_material = "\x1e".join(material).encode("utf-8", "surrogatepass")
    return req


def parse_count_tokens(body: dict[str, Any], model: str = "",
                       files: FileResolver | None = None) -> tuple[int, dict[str, int]]:
    """countTokens: ``contents`` (+ optional systemInstruction) or a whole ``generateContentRequest``:
    (total tokens, the media parts' tokens by modality)."""
    body = camel_keys(body)
    inner = body.get("generateContentRequest")
    if isinstance(inner, dict):
        req = parse_generate(inner, model, files)
        return req.prompt_tokens, req.media_tokens
    if "contents" not in body or body["contents"] in (None, [], ""):
        raise invalid_argument("* CountTokensRequest.contents: contents is not specified\n")
    files_media, file_texts = content_files(body["contents"], files)
    by_modality = media_modalities(model, content_media(body["contents"]) + files_media)
    total = count_prompt_tokens(content_texts(body["contents"]) + file_texts) + sum(by_modality.values())
    system = body.get("systemInstruction")
    if isinstance(system, dict):
        total += count_prompt_tokens(content_texts(system, "system_instruction"))
    return total, by_modality


def prompt_details(total: int, media: dict[str, int]) -> list[dict[str, Any]]:
    """``promptTokensDetails``: the text's tokens, then each media modality's, as the API lists
    them (``[{"modality": "TEXT", "tokenCount": 9}, {"modality": "IMAGE", ...}]``)."""
    text = total - sum(media.values())
    out = [{"modality": "TEXT", "tokenCount": text}] if text > 0 else []
    return out + [{"modality": k, "tokenCount": v} for k, v in media.items() if v]


__all__ = ["ApiError", "GenerateRequest", "blob_bytes", "camel", "parse_count_tokens", "parse_generate", "parse_json_body"]
