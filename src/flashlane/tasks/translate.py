"""translate: text into a target language, with optional source, glossary and formality."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from ..models import estimate_tokens
from .option import Option
from .task import JSON_OVERHEAD_TOKENS, Task

__all__ = ["TRANSLATE", "Translation", "translate_instructions"]


class Translation(BaseModel):
    text: str
    detected_source: str | None = None


def translate_instructions(options: Mapping[str, Any]) -> str:
    parts = [f"Translate the text into {options['to']}."]
    if options.get("source"):
        parts.append(f"The source language is {options['source']}.")
    if options.get("formality"):
        parts.append(f"Use a {options['formality']} register.")
    glossary = options.get("glossary") or {}
    if glossary:
        parts.append("Always translate these terms as given: " + "; ".join(f"{k} -> {v}" for k, v in glossary.items()) + ".")
    parts.append("Keep meaning, tone and formatting; no explanations.")
    return " ".join(parts)


TRANSLATION_GROWTH = 2  # target languages can take twice the source's tokens


def translation_size(options: Mapping[str, Any]) -> int:
    return estimate_tokens(str(options.get("text", ""))) * TRANSLATION_GROWTH + JSON_OVERHEAD_TOKENS


class _Answer(BaseModel):
    detected_source: str
    translation: str


TRANSLATE = Task(
    name="translate",
    instructions=translate_instructions,
    item_template="Text:\n{text}",
    output=_Answer,
    convert=lambda parsed, options: Translation(text=parsed.translation, detected_source=parsed.detected_source),
    answer_size=translation_size,
    streamable=True,
    description="text into another language (--to fr), with --source, --glossary, --formality",
    params=(
        Option("to", required=True, help="Target language, e.g. fr or 'Brazilian Portuguese'."),
        Option("source", help="Source language (detected when omitted)."),
        Option("glossary", type="map", metavar="TERM=TRANSLATION,...",
               help="Fixed term translations: term=translation,term2=translation2."),
        Option("formality", help="Register: formal | informal | ..."),
    ),
)
