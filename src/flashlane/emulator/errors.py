"""Error bodies in the shapes the live Gemini API sends (see shared/wire-samples 14, 21, 23, 26).

Every error the emulator returns is built here, so the shape (``{"error": {code, message,
status, details?}}``) and the message wording live in one place. Nothing here ever receives
an API key, so no key can leak into an error body.
"""

from __future__ import annotations

import math
from typing import Any

STATUS_BY_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

DEFAULT_MESSAGES = {
    400: "Request contains an invalid argument.",
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: "Resource has been exhausted (e.g. check quota).",
    500: "An internal error has occurred. Please retry or report in "
    "https://developers.generativeai.google/guide/troubleshooting",
    503: "The model is overloaded. Please try again later.",
    504: "Deadline expired before operation could complete.",
}

API_KEY_INVALID_MESSAGE = "API key not valid. Please pass a valid API key."
UNREGISTERED_CALLER_MESSAGE = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
# The live API's 400 for a response schema it will not serve (quoted in full from gemini-2.5-flash in
# bethington/ghidra-mcp#440 and flutter/genui#428); it names no limit, so the emulator adds its own.
SCHEMA_TOO_COMPLEX_MESSAGE = (
    "The specified schema produces a constraint that has too many states for serving. Typical causes of "
    "this error are schemas with lots of text (for example, very long property or enum names), schemas with "
    "long array length limits (especially when nested), or schemas using complex value matchers (for "
    "example, integers or numbers with minimum/maximum bounds or strings with complex formats like date-time)"
)
# Inline media the API refuses, in its words (all 400 INVALID_ARGUMENT): a type it does not read,
# named as sent ("Unsupported MIME type: png" for mimeType "png", charmbracelet/crush#995; "image/jpg"
# too, brianpetro/obsidian-smart-connections#1238); a PDF it cannot open (google-gemini/gemini-cli#13808);
# an image it cannot decode (AmberSahdev/Open-Interface#64); bytes that are not base64, quoting them
# (google-gemini/gemini-cli#8003). The live wording for undecodable audio was not found: the emulator
# words it as the image case.
UNSUPPORTED_MIME_MESSAGE = "Unsupported MIME type: {}"
NO_PAGES_MESSAGE = "The document has no pages."
INVALID_IMAGE_MESSAGE = "Provided image is not valid"
INVALID_AUDIO_MESSAGE = "Provided audio is not valid"
BASE64_MESSAGE = "Invalid value at '{}' (TYPE_BYTES), Base64 decoding failed for \"{}\""
BASE64_QUOTED_CHARS = 100  # how much of the bad value the message quotes
PAYLOAD_LIMIT_BYTES = 20 * 1024 * 1024
MAX_JSON_DEPTH = 100  # protobuf's JSON parser's default recursion limit
PAYLOAD_TOO_LARGE_MESSAGE = f"Request payload size exceeds the limit: {PAYLOAD_LIMIT_BYTES} bytes."
QUOTA_HELP_URL = "https://ai.google.dev/gemini-api/docs/rate-limits"
QUOTA_MESSAGE_HEAD = (
    "You exceeded your current quota, please check your plan and billing details. "
    f"For more information on this error, head to: {QUOTA_HELP_URL}."
)
_TYPE = "type.googleapis.com/google.rpc."


class ApiError(Exception):
    """Raised inside the emulator to return an error body; carries the HTTP code and body."""

    def __init__(self, code: int, body: dict[str, Any]):
        super().__init__(body["error"]["message"])
        self.code = code
        self.body = body


def error_body(
    code: int, message: str | None = None, status: str | None = None, details: list[Any] | None = None
) -> dict[str, Any]:
    err: dict[str, Any] = {
        "code": code,
        "message": message if message is not None else DEFAULT_MESSAGES.get(code, "Error"),
        "status": status or STATUS_BY_CODE.get(code, "UNKNOWN"),
    }
    if details:
        err["details"] = details
    return {"error": err}


def api_error(code: int, message: str | None = None, status: str | None = None) -> ApiError:
    return ApiError(code, error_body(code, message, status))


def invalid_argument(message: str) -> ApiError:
    return api_error(400, message)


def unsupported_mime(mime: str) -> ApiError:
    return invalid_argument(UNSUPPORTED_MIME_MESSAGE.format(mime))


def unreadable_media(mime: str) -> ApiError:
    """The 400 for inline data that is not what its MIME type says."""
    if mime == "application/pdf":
        return invalid_argument(NO_PAGES_MESSAGE)
    return invalid_argument(INVALID_IMAGE_MESSAGE if mime.startswith("image/") else INVALID_AUDIO_MESSAGE)


def bad_base64(path: str, value: str) -> ApiError:
    return invalid_argument(BASE64_MESSAGE.format(path, value[:BASE64_QUOTED_CHARS]))


def schema_too_complex(reason: str) -> ApiError:
    """The live 400 for a schema it refuses, then which of the emulator's limits it is over."""
    return invalid_argument(f"{SCHEMA_TOO_COMPLEX_MESSAGE}. Emulator limit: {reason}.")


def model_not_found(model: str, version: str, method: str) -> ApiError:
    return api_error(
        404,
        f"models/{model} is not found for API version {version}, or is not supported for {method}. "
        "Call ModelService.ListModels to see the list of available models and their supported methods.",
    )


def api_key_invalid() -> ApiError:
    details = [
        {
            "@type": _TYPE + "ErrorInfo",
            "reason": "API_KEY_INVALID",
            "domain": "googleapis.com",
            "metadata": {"service": "generativelanguage.googleapis.com"},
        },
        {"@type": _TYPE + "LocalizedMessage", "locale": "en-US", "message": API_KEY_INVALID_MESSAGE},
    ]
    return ApiError(400, error_body(400, API_KEY_INVALID_MESSAGE, details=details))


def unregistered_caller() -> ApiError:
    return api_error(403, UNREGISTERED_CALLER_MESSAGE)


def format_delay(seconds: float) -> str:
    """A protobuf Duration string, rounded up to the millisecond so waiting it is enough."""
    ms = max(0, math.ceil(seconds * 1000 - 1e-6))
    whole, frac = divmod(ms, 1000)
    return f"{whole}s" if frac == 0 else f"{whole}.{frac:03d}".rstrip("0") + "s"


def quota_exhausted(
    violations: list[dict[str, Any]], retry_delay: float, message: str | None = None
) -> ApiError:
    """429 RESOURCE_EXHAUSTED: QuotaFailure, Help, RetryInfo (the order of ws 21)."""
    delay = format_delay(retry_delay)
    if message is None:
        lines = [QUOTA_MESSAGE_HEAD]
        for v in violations:
            # no stated quotaValue (the emulator's quota is unlimited) -> no "limit: N" either
            limit = f", limit: {v['quotaValue']}" if "quotaValue" in v else ""
            lines.append(
                f"* Quota exceeded for metric: {v['quotaMetric']}{limit}, "
                f"model: {v['quotaDimensions']['model']}"
            )
        lines.append(f"Please retry in {delay}.")
        message = "\n".join(lines)
    details: list[Any] = []
    if violations:
        details.append({"@type": _TYPE + "QuotaFailure", "violations": violations})
    details.append(
        {
            "@type": _TYPE + "Help",
            "links": [{"description": "Learn more about Gemini API quotas", "url": QUOTA_HELP_URL}],
        }
    )
    details.append({"@type": _TYPE + "RetryInfo", "retryDelay": delay})
    return ApiError(429, error_body(429, message, details=details))
