"""summarize: a summary of at most N words, in a chosen style."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from .option import Option
from .task import Task

__all__ = ["SUMMARIZE", "Summary", "summarize_instructions"]

DEFAULT_SUMMARY_WORDS = 80
TOKENS_PER_WORD = 1.4  # English averages ~1.3; a little headroom


def summary_size(options: Mapping[str, Any]) -> int:
    return int(int(options.get("max_words") or DEFAULT_SUMMARY_WORDS) * TOKENS_PER_WORD)


class Summary(BaseModel):
    text: str


def summarize_instructions(options: Mapping[str, Any]) -> str:
    words = int(options.get("max_words") or DEFAULT_SUMMARY_WORDS)
    style = options.get("style")
    out = f"Summarize the text in at most {words} words."
    if style:
        out += f" Style: {style}."
    return out + " Only facts from the text; answer with the summary only."


SUMMARIZE = Task(
    name="summarize",
    instructions=summarize_instructions,
    item_template="Text:\n{text}",
    output=None,  # free text: summaries stream
    convert=lambda text, options: Summary(text=text.strip()),
    answer_size=summary_size,
    streamable=True,
    description="a summary (--max-words N, --style bullet|abstract|...)",
    params=(
        Option("max_words", type="int", minimum=1,
               help=f"Upper bound on summary length, in words (default {DEFAULT_SUMMARY_WORDS})."),
        Option("style", help="Summary style, e.g. bullet points, one sentence, executive."),
    ),
)
