"""extract: fill a user's schema (Pydantic model, JSON Schema file, or module:Model) from text."""

from __future__ import annotations

from .option import Option, load_schema
from .provenance import PROVENANCE_OPTION
from .task import Task

__all__ = ["EXTRACT", "load_schema"]


EXTRACT = Task(
    name="extract",
    instructions="Extract the fields from the text. Never invent values; use null where the text is silent.",
    item_template="Text:\n{text}",
    schema_for=lambda options: load_schema(options["schema"]),
    answer_tokens=512,
    description="fields of a schema (--schema file.json | module:Model) from text",
    params=(Option("schema", type="schema", required=True, metavar="FILE.json|module:Model",
                   help="The output schema: a JSON Schema file or module:PydanticModel."),
            # Local matching after the answer (provenance.py): no tokens, no requests.
            Option(PROVENANCE_OPTION, type="flag",
                   help="Say where each value was found in the text (character offsets; the page of a PDF), "
                        "checked locally: values not found are flagged. Costs no tokens.")),
)
