"""Scenario rules: scripted answers and faults, matched per request, first match wins.

A rule (YAML/JSON, from ``--scenario FILE`` or ``POST /_emulator/scenario``)::

    rules:
      - match: {model: gemini-3.1-flash-lite, nth: 3}   # all keys optional; omitted = any
        times: 1                                         # fire at most once (default: unlimited)
        action: {error: 503}

``match`` keys: ``model``, ``project``, ``nth`` (1-based count of generate calls, int or
list; per model when ``per_model: true``), ``every`` (every Nth generate call), ``prompt_contains``,
``header`` ({name: value}), ``method`` (generateContent | streamGenerateContent | countTokens,
or a list). Without ``method`` a rule matches the two generate methods only.

Actions (in ``action:`` or directly on the rule):
``error: 429|400|403|404|500|503|504`` (+ ``message``, ``retry_delay`` seconds, ``quota: rpm|tpm|rpd``
for the QuotaFailure id), ``delay: seconds`` (then answer normally or apply the other actions),
``hang: true`` (no answer until the client disconnects), ``drop: true`` (close the connection, no
response), ``cut_after: N`` (stream N chunks then drop), ``finish: SAFETY|RECITATION|MAX_TOKENS|OTHER|...``,
``block: SAFETY|PROHIBITED_CONTENT|OTHER|...`` (promptFeedback, no candidates), ``empty: true``
(STOP with no text), ``text: "..."``, ``json: {...}``, ``malformed_json: true | "text"``,
``schema_violation: true``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

GENERATE_METHODS = ("generateContent", "streamGenerateContent")
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")
_RULE_META = ("match", "times", "name", "action", "when")


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
    def parse(cls, data: dict[str, Any]) -> Rule:
        if not isinstance(data, dict):
            raise ValueError(f"scenario rule must be a mapping, got {data!r}")
        action = dict(data.get("action") or {})
        for k, v in data.items():
            if k not in _RULE_META:
                action[k] = v
        action = {_snake(k): v for k, v in action.items()}
        match = {_snake(k): v for k, v in (data.get("match") or data.get("when") or {}).items()}
        times = data.get("times")
        return cls(
            match=match,
            action=action,
            times=None if times is None else int(times),
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
        parsed = [Rule.parse(r) for r in rules]
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
            {"name": r.name, "match": r.match, "action": r.action, "times": r.times, "fired": r.fired}
            for r in self.rules
        ]


def rules_from_data(data: Any) -> list[dict[str, Any]]:
    """Accept ``{"rules": [...]}`` or a bare list."""
    if data is None:
        return []
    if isinstance(data, dict):
        data = data.get("rules", [])
    if not isinstance(data, list):
        raise ValueError("scenario: expected a list of rules or {'rules': [...]}")
    return data
