"""What the emulator reads in a request's documents, so an extraction's answer comes from them.

The live model reads a document and fills the schema from what it says; the emulator, which
reads no pixels, does the part tests can rely on: lines of the form ``Label: value`` ("Invoice
number: INV-7", "Total: 1,234.50") in the text layer of an inline PDF (pypdf, the pages
``media.page_texts`` gives), in the text chunks of a PNG (tEXt/iTXt, a stand-in for OCR that
examples/make_invoices.py writes) or in the user's text fill the schema properties of the same
name (``invoice_number``, ``total``), converted to the property's type, whenever the value is
valid there. Everything else is generated as before (seeded by the request, its media's
bytes included), so an answer is a pure function of the request and tests can assert exact values.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..media import page_texts

__all__ = ["MAX_READ_PAGES", "MISSING", "document_text", "label_key", "labelled", "typed_value"]

# A document's first pages are read, no more: an answer is built on the event loop, and pypdf
# takes a few milliseconds a page. Invoices, receipts and forms say what matters up front.
MAX_READ_PAGES = 10
_LINE = re.compile(r"^[ \t]*([A-Za-z][A-Za-z0-9 _#./()-]{0,40}?)[ \t]*:[ \t]*(\S.*?)[ \t]*$", re.MULTILINE)
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NUMBER = re.compile(r"-?\d[\d,.' ]*")
_TRUE, _FALSE = {"yes", "true", "y", "paid"}, {"no", "false", "n", "unpaid", "due"}
MISSING = object()  # no value from the documents for this property


def document_text(mime: str, data: bytes) -> str:
    """The text a document carries: a PDF's text layer (first pages), a PNG's text chunks; else ""."""
    if mime == "application/pdf":
        try:
            return "\n".join(page_texts(data, MAX_READ_PAGES))
        except ValueError:  # a PDF pypdf cannot read says nothing (it was checked already)
            return ""
    if mime == "image/png":
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                chunks = getattr(im, "text", {}) or {}
        except Exception:  # noqa: BLE001 - an image Pillow cannot read says nothing
            return ""
        return "\n".join(str(v) for v in chunks.values())
    return ""


def label_key(name: str) -> str:
    """``Invoice number``, ``invoice_number``, ``invoiceNumber`` -> ``invoice_number``."""
    return re.sub(r"[^a-z0-9]+", "_", _CAMEL.sub("_", name).lower()).strip("_")


def labelled(texts: Iterable[str]) -> dict[str, str]:
    """``Label: value`` lines, by label key; the first line of a label wins."""
    out: dict[str, str] = {}
    for text in texts:
        for m in _LINE.finditer(text):
            out.setdefault(label_key(m.group(1)), m.group(2))
    return out


def _number(text: str) -> float | None:
    m = _NUMBER.search(text)
    if m is None:
        return None
    token = m.group().strip(" ,.'")
    last = max(token.rfind(","), token.rfind("."))
    if last >= 0 and ("," in token and "." in token or len(token) - last - 1 != 3):
        whole, frac = token[:last], token[last + 1:]  # "1,234.50", "12,50": the last mark is the decimal one
    else:
        whole, frac = token, ""  # "1,234": a thousands separator
    digits = re.sub(r"[^\d-]", "", whole)
    try:
        return float(digits + ("." + frac if frac else ""))
    except ValueError:
        return None


def typed_value(schema: Mapping[str, Any], t: str | None, text: str) -> Any:
    """``text`` as a valid value of a scalar schema of type ``t``, or MISSING."""
    enum = schema.get("enum")
    if enum:
        return next((e for e in enum if str(e).lower() == text.lower()), MISSING)
    if t in ("number", "integer"):
        n = _number(text)
        if n is None or (t == "integer" and not n.is_integer()):
            return MISSING
        lo, hi = schema.get("minimum"), schema.get("maximum")
        if isinstance(lo, (int, float)) and n < lo or isinstance(hi, (int, float)) and n > hi:
            return MISSING
        return int(n) if t == "integer" else n
    if t == "boolean":
        word = text.strip().lower()
        return True if word in _TRUE else False if word in _FALSE else MISSING
    if t in (None, "string"):
        if schema.get("format") or schema.get("pattern") and not re.search(str(schema["pattern"]), text):
            return MISSING  # a format the text may not meet (a date written otherwise): generated instead
        lo, hi = schema.get("minLength"), schema.get("maxLength")
        if isinstance(lo, int) and len(text) < lo or isinstance(hi, int) and len(text) > hi:
            return MISSING
        return text
    return MISSING
