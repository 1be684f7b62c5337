"""Scenario rules: scripted answers and faults, matched per request, first match wins.

The file format and examples are in docs/emulator.md (Projects and scenarios); the tool actions
(``function_calls``, ``url_status``, ``search_queries``, ``code*``) under Tools, and the batch rules
(``batch_state``, ``done_fraction``, ``error_keys``/``error_rate``/``error_code``, ``shuffle``,
``turnaround``, ``inline_results``) under Batch API. This is the full list of keys.

``match`` keys: ``model``, ``project``, ``nth`` (1-based count of generate calls, int or
list; per model when ``per_model: true``), ``every`` (every Nth generate call), ``prompt_contains``,
``header`` ({name: value}), ``method`` (generateContent | streamGenerateContent | countTokens,
or a list; or a control-plane call: ``cachedContents.create|list|get|patch|delete``,
``files.upload|download``, ``batches.get|list|cancel|delete``, where ``error``, ``delay`` and ``drop`` apply, and
``batchGenerateContent``). Without ``method`` a rule matches the two generate methods only.

Actions (in ``action:`` or directly on the rule):
``error: 429|400|403|404|500|503|504`` (+ ``message``, ``status``, ``retry_delay`` seconds, ``quota:
rpm|tpm|rpd`` for the QuotaFailure id, ``quota_value``), ``delay: seconds`` (then answer normally or
apply the other actions), ``hang: true`` (no answer until the client disconnects), ``drop: true``
(close the connection, no response), ``cut_after: N`` (stream N chunks then drop), ``finish:
SAFETY|RECITATION|MAX_TOKENS|OTHER|...``, ``block: SAFETY|PROHIBITED_CONTENT|OTHER|...``
(promptFeedback, no candidates), ``empty: true`` (STOP with no text), ``text: "..."``, ``json:
{...}``, ``malformed_json: true | "text"``, ``schema_violation: true``, ``graded: {...}`` (answers from a truth file at configured error rates,
graded.py), ``raw_body: "..."`` (+
``content_type``: a 200 whose body is exactly that text, e.g. cut-off JSON or an HTML page; in a
stream, one event with that data), ``no_quota: true`` (a 429 whose every violation says limit 0:
the project's tier has no quota for this model at all, as python-genai #2044 reports), ``shed:
true`` (the flex shed answer, see ``flex``), ``served_tier: standard|flex|priority`` (the tier the
answer's ``usageMetadata.serviceTier`` names, whatever was asked: a flex or priority request served on
another tier). Batch: ``cancel_delay`` (seconds of emulator time between ``batches.cancel`` and the
job reading CANCELLED; until then it reads as before). ``inline_results`` follows maximhq/bifrost #3951.

Unknown keys (in a rule, its ``match`` or its ``action``) are errors naming the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .graded import Graded
from .keys import reject_unknown

GENERATE_METHODS = ("generateContent", "streamGenerateContent")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_RULE_META = ("match", "times", "name", "action", "when")
MATCH_KEYS = frozenset(
    {"model", "project", "nth", "every", "per_model", "prompt_contains", "header", "headers", "method"}
)
GENERATE_ACTION_KEYS = frozenset(
    {
        "error", "message", "status", "retry_delay", "quota", "quota_value", "no_quota", "delay",
        "hang", "drop", "cut_after", "finish", "block", "empty", "text", "json", "malformed_json",
        "schema_violation", "shed", "served_tier", "raw_body", "content_type",
        # answers from a truth file at configured error rates (graded.py)
        "graded",
        # tools (tools.py)
        "function_calls", "url_status", "search_queries", "code", "code_output", "code_outcome",
    }
)
BATCH_ACTION_KEYS = frozenset(
    {"batch_state", "done_fraction", "error_keys", "error_rate", "error_code", "shuffle", "turnaround",
     "inline_results", "cancel_delay"}
)
ACTION_KEYS = GENERATE_ACTION_KEYS | BATCH_ACTION_KEYS
BATCH_STATES = ("pending", "running", "succeeded", "failed", "cancelled", "expired")


def _snake(key: str) -> str:
    return _CAMEL.sub("_", key).lower()


@dataclass
class Rule:
    match: dict[str, Any]
    action: dict[str, Any]
    times: int | None = None
    name: str = ""
    fired: int = 0

    @classmethod
    def parse(cls, data: dict[str, Any], index: int = 0) -> Rule:
        where = f"scenario rule {index}" if index else "scenario rule"
        if not isinstance(data, dict):
            raise ValueError(f"{where} must be a mapping, got {data!r}")
        raw_action = data.get("action") or {}
        raw_match = data.get("match") or data.get("when") or {}
        for part, value in (("action", raw_action), ("match", raw_match)):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: '{part}' must be a mapping, got {value!r}")
        reject_unknown(where, {k: v for k, v in data.items() if _snake(k) not in ACTION_KEYS},
                       [*_RULE_META, *ACTION_KEYS])
        action = dict(raw_action)
        for k, v in data.items():
            if k not in _RULE_META:
                action[k] = v
        _check_snaked(f"{where} action", action, ACTION_KEYS)
        _check_snaked(f"{where} match", raw_match, MATCH_KEYS)
        action = {_snake(k): v for k, v in action.items()}
        match = {_snake(k): v for k, v in raw_match.items()}
        _check_values(where, action)
        if "graded" in action:  # the truth file is read once, when the rule is loaded
            action["graded"] = Graded.parse(action["graded"], where)
        times = data.get("times")
        if times is not None and (isinstance(times, bool) or not isinstance(times, int) or times < 0):
            raise ValueError(f"{where}: 'times' must be a whole number >= 0, got {times!r}")
        return cls(
            match=match,
            action=action,
            times=times,
            name=str(data.get("name", "")),
        )

    def exhausted(self) -> bool:
        return self.times is not None and self.fired >= self.times

    def matches(self, ctx: dict[str, Any]) -> bool:
        m = self.match
        methods = m.get("method")
        if methods is None:
            if ctx["method"] not in GENERATE_METHODS:
                return False
        else:
            allowed = [methods] if isinstance(methods, str) else list(methods)
            if ctx["method"] not in allowed:
                return False
        if "model" in m:
            models = [m["model"]] if isinstance(m["model"], str) else list(m["model"])
            if ctx["model"] not in [x.removeprefix("models/") for x in models]:
                return False
        if "project" in m and ctx["project"] != m["project"]:
            return False
        n = ctx["n_model"] if m.get("per_model") else ctx["n_global"]
        if "nth" in m:
            nth = m["nth"]
            wanted = {int(x) for x in nth} if isinstance(nth, list) else {int(nth)}
            if n not in wanted:
                return False
        if "every" in m:
            every = int(m["every"])
            if every <= 0 or n % every:
                return False
        if "prompt_contains" in m and str(m["prompt_contains"]) not in ctx["prompt"]:
            return False
        headers = m.get("header") or m.get("headers")
        if headers:
            for hname, value in headers.items():
                if ctx["headers"].get(hname.lower()) != str(value):
                    return False
        return True


@dataclass
class ScenarioBook:
    rules: list[Rule] = field(default_factory=list)
    n_global: int = 0
    n_by_model: dict[str, int] = field(default_factory=dict)

    def load(self, rules: list[dict[str, Any]], replace: bool = True) -> None:
        parsed = [Rule.parse(r, i) for i, r in enumerate(rules, 1)]
        self.rules = parsed if replace else self.rules + parsed

    def clear(self) -> None:
        self.rules = []

    def reset(self) -> None:
        self.rules = []
        self.n_global = 0
        self.n_by_model = {}

    def count(self, method: str, model: str) -> tuple[int, int]:
        """Advance the generate-call counters (other methods do not count)."""
        if method in GENERATE_METHODS:
            self.n_global += 1
            self.n_by_model[model] = self.n_by_model.get(model, 0) + 1
        return self.n_global, self.n_by_model.get(model, 0)

    def pick(self, ctx: dict[str, Any]) -> dict[str, Any] | None:
        for rule in self.rules:
            if rule.exhausted() or not rule.matches(ctx):
                continue
            rule.fired += 1
            return rule.action
        return None

    def describe(self) -> list[dict[str, Any]]:
        return [
            {"name": r.name, "match": r.match, "times": r.times, "fired": r.fired,
             "action": {k: v.spec if isinstance(v, Graded) else v for k, v in r.action.items()}}
            for r in self.rules
        ]


def rules_from_data(data: Any) -> list[dict[str, Any]]:
    """Accept ``{"rules": [...]}`` or a bare list."""
    if data is None:
        return []
    if isinstance(data, dict):
        reject_unknown("scenario", data, ("rules", "replace"))
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise ValueError("scenario: expected a list of rules or {'rules': [...]}")
    return data


def _check_snaked(where: str, data: dict[str, Any], accepted: frozenset[str]) -> None:
    """Keys may be camelCase or snake_case; report the key as the user wrote it."""
    reject_unknown(where, {k: v for k, v in data.items() if _snake(k) not in accepted}, accepted)


def _check_values(where: str, action: dict[str, Any]) -> None:
    """Values that would otherwise fail per request (as a plain 500) fail at load time."""
    code = action.get("error")
    if code is not None and (isinstance(code, bool) or not str(code).isdigit() or not 400 <= int(code) <= 599):
        raise ValueError(f"{where}: 'error' must be an HTTP status from 400 to 599, got {code!r}")
    tier = action.get("served_tier")
    if tier is not None and str(tier).lower() not in ("standard", "flex", "priority"):
        raise ValueError(f"{where}: 'served_tier' must be standard, flex or priority, got {tier!r}")
    for name in ("delay", "retry_delay", "turnaround", "cancel_delay"):
        value = action.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0):
            raise ValueError(f"{where}: '{name}' must be a number of seconds >= 0, got {value!r}")
    for name in ("done_fraction", "error_rate"):
        value = action.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not 0 <= value <= 1):
            raise ValueError(f"{where}: '{name}' must be a number from 0 to 1, got {value!r}")
    state = action.get("batch_state")
    if state is not None and str(state).lower().removeprefix("batch_state_") not in BATCH_STATES:
        raise ValueError(f"{where}: 'batch_state' must be one of {', '.join(BATCH_STATES)}, got {state!r}")
    quota = action.get("quota")
    if quota is not None and str(quota).lower() not in ("rpm", "tpm", "rpd"):
        raise ValueError(f"{where}: 'quota' must be rpm, tpm or rpd, got {quota!r}")
    keys = action.get("error_keys")
    if keys is not None and not isinstance(keys, list):
        raise ValueError(f"{where}: 'error_keys' must be a list of request keys, got {keys!r}")
