"""OpenAI-shaped lines in a batch input file, and the OpenAI-shaped result lines they get.

LiteLLM (1.110.2, ``litellm/llms/gemini/batches/transformation.py``) uploads a batch file unchanged,
lines ``{"custom_id", "method", "url", "body": <chat completions request>}``, and states in that
module what the live API does with them: "Gemini accepts OpenAI-shaped rows ({custom_id, method, url,
body}) and then writes the output file OpenAI-shaped too ({custom_id, response: {status_code, body}})",
the body's ``usage`` in camelCase (``promptTokens``, ``completionTokens``, ``totalTokens``, the total
including thinking tokens that ``completionTokens`` leaves out: its ``_GeminiBatchOutputUsage``);
LiteLLM counts a line as answered when ``response.status_code == 200`` (``litellm/batches/
batch_utils.py``). No recorded live output line was found, so the rest of the body is OpenAI's
chat.completion object (``choices[].message``, ``finish_reason``) and a failed line carries
``{"status_code": <http>, "body": {"error": <Status>}}``: the shapes LiteLLM's readers accept.
"""

from __future__ import annotations

from typing import Any

from .errors import invalid_argument

ROW_KEYS = ("custom_id", "body")
_ROLES = {"system": None, "developer": None, "user": "user", "assistant": "model"}
_FINISH = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter"}
_RPC_HTTP = {3: 400, 5: 404, 7: 403, 8: 429, 13: 500, 14: 503}


def is_row(line: dict[str, Any]) -> bool:
    """An OpenAI-shaped batch line (it names ``custom_id`` and a ``body``, never ``request``)."""
    return all(k in line for k in ROW_KEYS) and "request" not in line


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": …}, …]
        return "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and "text" in p)
    return ""


def to_request(body: Any) -> dict[str, Any]:
    """The GenerateContentRequest an OpenAI chat completions body stands for."""
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        raise invalid_argument("Invalid request: an OpenAI-shaped batch line needs body.messages.")
    contents: list[dict[str, Any]] = []
    system: list[str] = []
    for m in body["messages"]:
        role = m.get("role") if isinstance(m, dict) else None
        if role not in _ROLES:
            raise invalid_argument(f"Invalid request: unsupported message role {role!r}.")
        text = _text(m.get("content"))
        if _ROLES[role] is None:
            system.append(text)
        else:
            contents.append({"role": _ROLES[role], "parts": [{"text": text}]})
    request: dict[str, Any] = {"contents": contents}
    if system:
        request["systemInstruction"] = {"parts": [{"text": "\n".join(system)}]}
    config: dict[str, Any] = {}
    cap = body.get("max_completion_tokens", body.get("max_tokens"))
    if cap is not None:
        config["maxOutputTokens"] = cap
    for ours, theirs in (("temperature", "temperature"), ("topP", "top_p"), ("candidateCount", "n")):
        if body.get(theirs) is not None:
            config[ours] = body[theirs]
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
        schema = (fmt.get("json_schema") or {}).get("schema") if fmt["type"] == "json_schema" else None
        if isinstance(schema, dict):
            config["responseJsonSchema"] = schema
    if config:
        request["generationConfig"] = config
    return request


def result(custom_id: Any, model: str, response: dict[str, Any] | None, error: dict[str, Any] | None,
           created: int) -> dict[str, Any]:
    """The output line for one OpenAI-shaped input line."""
    if response is None:
        err = error or {"code": 13, "message": "Internal error."}
        code = _RPC_HTTP.get(int(err.get("code") or 13), 500)
        return {"custom_id": custom_id, "response": {"status_code": code, "body": {"error": err}}}
    cand = (response.get("candidates") or [{}])[0]
    parts = (cand.get("content") or {}).get("parts") or []
    text = "".join(p.get("text", "") for p in parts if isinstance(p, dict) and not p.get("thought"))
    u = response.get("usageMetadata") or {}
    prompt, completion = int(u.get("promptTokenCount") or 0), int(u.get("candidatesTokenCount") or 0)
    body = {
        "id": response.get("responseId", ""),
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                     "finish_reason": _FINISH.get(str(cand.get("finishReason")), "stop")}],
        "usage": {"promptTokens": prompt, "completionTokens": completion,
                  "totalTokens": int(u.get("totalTokenCount") or prompt + completion)},
    }
    return {"custom_id": custom_id, "response": {"status_code": 200, "body": body}}
