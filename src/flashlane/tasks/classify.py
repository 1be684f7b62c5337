"""classify: one label (or several) from a closed set, with confidence and a short reason."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from ..errors import InputError
from .option import Option
from .task import Task

__all__ = ["CLASSIFY", "Classification", "classify_options"]

MAX_REASON_WORDS = 8  # enough to audit a label; long reasons cost output tokens on every row


class Classification(BaseModel):
    label: str | None = None
    labels: list[str] = Field(default_factory=list)
    confidence: float = 0.0
    reasoning: str = ""


def _labels(options: Mapping[str, Any]) -> list[str]:
    labels = options.get("labels")
    if isinstance(labels, str):
        labels = [x.strip() for x in labels.split(",")]
    labels = [str(x).strip() for x in (labels or []) if str(x).strip()]
    if len(labels) < 2:
        raise InputError("classify needs at least two labels", hint="pass labels, e.g. --labels positive,negative,neutral")
    if len(set(labels)) != len(labels):
        raise InputError("classify labels must be distinct", hint="remove the repeated label")
    return labels


def classify_options(labels: Any, multi_label: bool = False, descriptions: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"labels": labels, "multi_label": multi_label, "descriptions": descriptions}


def _schema(options: Mapping[str, Any]) -> dict[str, Any]:
    labels = _labels(options)
    props: dict[str, Any] = {
        "reasoning": {"type": "string", "description": f"at most {MAX_REASON_WORDS} words"},
    }
    if options.get("multi_label"):
        props["labels"] = {"type": "array", "items": {"type": "string", "enum": labels}, "minItems": 0,
                           "maxItems": len(labels)}
        required = ["reasoning", "labels", "confidence"]
    else:
        props["label"] = {"type": "string", "enum": labels}
        required = ["reasoning", "label", "confidence"]
    props["confidence"] = {"type": "number", "minimum": 0, "maximum": 1}
    return {"type": "object", "properties": props, "required": required, "additionalProperties": False}


def _instructions(options: Mapping[str, Any]) -> str:
    labels = _labels(options)
    desc = options.get("descriptions") or {}
    many = options.get("multi_label")
    pick = "every label that applies (possibly none) from" if many else "exactly one of"
    if desc:
        listing = "\n" + "\n".join(f"- {lab}: {desc[lab]}" if lab in desc else f"- {lab}" for lab in labels) + "\n"
    else:
        listing = " " + ", ".join(labels) + ". "
    # Short on purpose: the schema already enforces the labels and fields, and every
    # instruction token is paid on every row.
    return f"Classify the text as {pick}:{listing}Reason in at most {MAX_REASON_WORDS} words; confidence 0-1."


def _convert(parsed: Any, options: Mapping[str, Any]) -> Classification:
    data = dict(parsed)
    if options.get("multi_label"):
        labels = list(dict.fromkeys(data.get("labels") or []))
        return Classification(labels=labels, label=labels[0] if labels else None,
                               confidence=float(data.get("confidence", 0)), reasoning=data.get("reasoning", ""))
    return Classification(label=data["label"], labels=[data["label"]], confidence=float(data.get("confidence", 0)),
                          reasoning=data.get("reasoning", ""))


CLASSIFY = Task(
    name="classify",
    instructions=_instructions,
    item_template="Text:\n{text}",
    schema_for=_schema,
    convert=_convert,
    answer_tokens=64,
    description="one label from a closed set (--labels a,b,c), with confidence and a short reason",
    params=(
        # Text, not a list: _labels splits it, and a run's fingerprint holds the option as given.
        Option("labels", required=True, help="Comma-separated labels to choose from, e.g. positive,negative,neutral."),
        Option("multi_label", type="flag", help="Allow any number of labels."),
    ),
)
