"""Provenance: where in its source each extracted value was found, checked locally.

It costs no tokens and no requests: nothing is asked of the model. Once an answer is validated,
each value in it (every leaf of the JSON, named by its path: ``vendor``, ``lines[0].sku``) is
searched for in the item's text, and in the text layer of each page of the item's PDFs (as
pypdf extracts it, ``media.page_texts``). A value the source does not contain is flagged
(``not_found``), never silently trusted.

The search, first hit wins:

1. strings as written, then normalised: Unicode NFKC, case folded, each run of whitespace one
   space, typographic quotes and dashes as ASCII, the value's own leading and trailing
   punctuation ignored. A match must not start or end inside a word ("12" is not in "2012");
2. numbers among the numbers written in the source, read with ``,`` ``.`` ``'`` or spaces as
   thousands separators and ``.`` or ``,`` as the decimal mark ("1.234,50" and "1,234.50" both
   match 1234.5), so "12.50" matches 12.5 but "112.5" does not;
3. an ISO date (2026-03-01) also as the source may write it: "1 March 2026", "March 1st, 2026",
   "01/03/2026" or "03/01/2026", "2026/03/01".

Statuses per field: ``found`` (``start``/``end``: character offsets, as Python indexes a str, into
the item's text, or into the page's text with ``page``, 1-based, for a PDF), ``not_found`` (flagged:
``Provenance.unverified``), ``empty`` (null or "": nothing to check), ``unchecked`` (true/false, or
an item whose source has no text: an image, audio, a PDF without a text layer).
"""

from __future__ import annotations

import re
import unicodedata
from array import array
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass
from typing import Any

from ..call.media import File, split_marked
from ..media import page_texts

__all__ = ["EMPTY", "FOUND", "NOT_FOUND", "PROVENANCE_OPTION", "UNCHECKED", "Extraction", "Located", "Provenance",
           "locate", "wants_provenance"]

FOUND, NOT_FOUND, EMPTY, UNCHECKED = "found", "not_found", "empty", "unchecked"
PROVENANCE_OPTION = "provenance"  # the task option that asks for it (extract declares it)
ROOT_PATH = "value"  # the path of an answer that is one scalar, not an object
# Typographic characters written as their ASCII look-alikes before comparing.
_ASCII = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-",
                        "\u2212": "-", "\u00a0": " ", "\u202f": " "})
_EDGE_PUNCT = " \t\n.,;:!?'\"()[]{}"
_WS = re.compile(r"\s+")
# A number as written: digits in groups of three with one kind of separator, maybe a decimal
# part; or plain digits, maybe with a decimal part. Never starting or ending inside another number.
_GROUPED = re.compile(r"(?<![\d.,])-?\d{1,3}([,.' ])\d{3}(?:\1\d{3})*(?:[.,]\d+)?(?![.,]?\d)")
_PLAIN = re.compile(r"(?<![\d.,])-?\d+(?:[.,]\d+)?(?![.,]?\d)")
_REL_TOLERANCE = 1e-9
# Dates: an ISO value (2026-03-01) is also looked for as the source may write it: 01/03/2026 or
# 03/01/2026 (day or month first), 1.3.26, 2026/03/01, "1 March 2026", "March 1, 2026", "1 Mar 2026".
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
_MONTH = r"(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|" \
         r"oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?"
_DATES = (
    (re.compile(r"(?<!\d)(\d{1,2})[./-](\d{1,2})[./-](\d{4}|\d{2})(?!\d)"), ("dmy", "mdy")),
    (re.compile(r"(?<!\d)(\d{4})[./](\d{1,2})[./](\d{1,2})(?!\d)"), ("ymd",)),
    (re.compile(r"(?<!\d)(\d{1,2})(?:st|nd|rd|th)?\s+" + _MONTH + r",?\s+(\d{4})(?!\d)", re.I), ("dMy",)),
    (re.compile(_MONTH + r"\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})(?!\d)", re.I), ("Mdy",)),
)


@dataclass(frozen=True)
class Located:
    """Where one value was found (or why it was not)."""

    status: str  # found | not_found | empty | unchecked
    start: int | None = None  # character offsets of the match ([start, end))
    end: int | None = None
    quote: str | None = None  # the source's text at [start, end)
    page: int | None = None  # 1-based page of the PDF it was found on
    file: str | None = None  # which file, when the item has several
    source: str | None = None  # which of the item's fields, when it has several

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


class Provenance(Mapping[str, Located]):
    """Per field path (``vendor``, ``lines[0].sku``), where its value was found."""

    def __init__(self, fields: Mapping[str, Located]) -> None:
        self._fields = dict(fields)

    def __getitem__(self, path: str) -> Located:
        return self._fields[path]

    def __iter__(self) -> Iterator[str]:
        return iter(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    @property
    def unverified(self) -> list[str]:
        """The fields whose value the source does not contain: check these by hand."""
        return [p for p, loc in self._fields.items() if loc.status == NOT_FOUND]

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return {p: loc.as_dict() for p, loc in self._fields.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Any]]) -> Provenance:
        return cls({p: Located(**d) for p, d in data.items()})

    def __repr__(self) -> str:
        return f"Provenance({self.as_dict()!r})"


@dataclass(frozen=True)
class Extraction:
    """What ``lane.extract(..., provenance=True)`` returns: the value and where it came from."""

    value: Any
    provenance: Provenance

    @property
    def unverified(self) -> list[str]:
        return self.provenance.unverified

    def as_dict(self) -> dict[str, Any]:
        """As JSON data, with the keys a run's output rows use: result, provenance, unverified."""
        from pydantic_core import to_jsonable_python

        return {"result": to_jsonable_python(self.value, fallback=str), "provenance": self.provenance.as_dict(),
                "unverified": self.unverified}


class _Text:
    """One searchable text (a field's text between files, or one PDF page), normalised on first use."""

    def __init__(self, text: str, offset: int = 0, page: int | None = None, file: str | None = None,
                 source: str | None = None) -> None:
        self.text, self.offset, self.page, self.file, self.source = text, offset, page, file, source
        self._norm: tuple[str, array[int]] | None = None
        self._numbers: list[tuple[int, int, tuple[float, ...]]] | None = None

    def located(self, start: int, end: int) -> Located:
        return Located(FOUND, self.offset + start, self.offset + end, self.text[start:end], self.page, self.file,
                       self.source)

    def find(self, value: str) -> tuple[int, int] | None:
        span = _find_bounded(self.text, value)
        if span is not None:
            return span
        needle = _normalise(value)[0].strip(_EDGE_PUNCT)
        if not needle:
            return None
        if self._norm is None:
            self._norm = _normalise(self.text)
        norm, where = self._norm
        found = _find_bounded(norm, needle)
        if found is None:
            return None
        return where[found[0]], where[found[1] - 1] + 1

    def find_date(self, year: int, month: int, day: int) -> tuple[int, int] | None:
        for pattern, orders in _DATES:
            for m in pattern.finditer(self.text):
                if any(_date_of(m.groups(), order) == (year, month, day) for order in orders):
                    return m.start(), m.end()
        return None

    def find_number(self, value: float) -> tuple[int, int] | None:
        if self._numbers is None:
            self._numbers = _numbers(self.text)
        for start, end, readings in self._numbers:
            if any(abs(r - value) <= _REL_TOLERANCE * max(1.0, abs(value)) for r in readings):
                return start, end
        return None


def _find_bounded(text: str, needle: str) -> tuple[int, int] | None:
    """The first occurrence of ``needle`` in ``text`` that does not start or end inside a word."""
    pos = text.find(needle)
    while pos >= 0:
        end = pos + len(needle)
        if not (needle[0].isalnum() and pos > 0 and text[pos - 1].isalnum()) and \
                not (needle[-1].isalnum() and end < len(text) and text[end].isalnum()):
            return pos, end
        pos = text.find(needle, pos + 1)
    return None


def _normalise(text: str) -> tuple[str, array[int]]:
    """``text`` compared loosely, with the index in ``text`` each of its characters came from."""
    out: list[str] = []
    where: array[int] = array("l")
    if text.isascii():  # the common case, done by whole runs
        lowered = text.lower()
        for m in re.finditer(r"\S+|\s+", lowered):
            if m.group()[0].isspace():
                if out:
                    out.append(" ")
                    where.append(m.start())
            else:
                out.append(m.group())
                where.extend(range(m.start(), m.end()))
        return "".join(out), where
    space = True
    for i, ch in enumerate(text):
        for c in unicodedata.normalize("NFKC", ch).casefold().translate(_ASCII):
            if c.isspace():
                if space:
                    continue
                c, space = " ", True
            else:
                space = False
            out.append(c)
            where.append(i)
    return "".join(out), where


def _numbers(text: str) -> list[tuple[int, int, tuple[float, ...]]]:
    """Every number written in ``text``: its span and the values it can be read as."""
    found: dict[tuple[int, int], set[float]] = {}
    text = text.translate(_ASCII)  # same length: a no-break space is a thousands separator
    for m in _GROUPED.finditer(text):
        token, sep = m.group(), m.group(1)
        digits, decimal = token, ""
        last = re.search(r"[.,](\d+)$", token)
        if last and token[last.start()] != sep:  # "1,234.50": the last mark is the decimal one
            digits, decimal = token[:last.start()], last.group(1)
        number = float(digits.replace(sep, "") + ("." + decimal if decimal else ""))
        found.setdefault((m.start(), m.end()), set()).add(number)
    for m in _PLAIN.finditer(text):
        found.setdefault((m.start(), m.end()), set()).add(float(m.group().replace(",", ".")))
    for (start, end), readings in list(found.items()):
        if text[start] == "-" and start > 0 and text[start - 1].isalnum():  # "INV-2026", "pages 1-3": a hyphen
            found.setdefault((start + 1, end), set()).update(abs(r) for r in readings)
    return [(s, e, tuple(v)) for (s, e), v in sorted(found.items())]


def _date_of(groups: tuple[str, ...], order: str) -> tuple[int, int, int] | None:
    """(year, month, day) of a matched date read in ``order`` (d, m, y digits; M a month's name)."""
    parts = dict(zip(order, groups, strict=True))
    try:
        year = int(parts["y"])
        month = _MONTHS.index(next(n for n in _MONTHS if n.startswith(parts["M"].lower().rstrip(".")[:3]))) + 1 \
            if "M" in parts else int(parts["m"])
        day = int(parts["d"])
    except (StopIteration, ValueError):
        return None
    return (year + 2000 if year < 100 else year), month, day


def _leaves(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        for k, v in value.items():
            yield from _leaves(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            yield from _leaves(v, f"{path}[{i}]")
    else:
        yield path or ROOT_PATH, value


def _texts(sources: Mapping[str, str]) -> list[_Text]:
    """The item's searchable texts: each field's text around its files, and each PDF page's text."""
    named = [k for k, v in sources.items() if isinstance(v, str) and v]
    pieces: list[tuple[str, int, str | File]] = []
    for name in named:
        pos = 0
        for piece in split_marked(sources[name]):
            pieces.append((name, pos, piece))
            pos += len(str(piece))
    files = [p for _, _, p in pieces if isinstance(p, File)]
    out: list[_Text] = []
    for name, pos, piece in pieces:
        source = name if len(named) > 1 else None
        if isinstance(piece, str):
            if piece.strip():
                out.append(_Text(piece, pos, source=source))
        elif piece.mime_type == "application/pdf":
            try:
                pages = page_texts(str(piece.path) if piece.path is not None else piece.data())
            except ValueError:
                continue  # unreadable now: nothing to check against
            file = piece.name if len(files) > 1 else None
            out.extend(_Text(t, 0, page=i + 1, file=file, source=source) for i, t in enumerate(pages) if t.strip())
    return out


def _locate_one(value: Any, texts: list[_Text]) -> Located:
    if value is None or value == "":
        return Located(EMPTY)
    if isinstance(value, bool) or not texts:
        return Located(UNCHECKED)
    for t in texts:
        if isinstance(value, (int, float)):
            span = t.find_number(float(value))
        else:
            span = t.find(str(value))
        if span is not None:
            return t.located(*span)
    iso = _ISO_DATE.match(value) if isinstance(value, str) else None
    if iso is not None:  # an ISO date the source writes otherwise
        ymd = (int(iso.group(1)), int(iso.group(2)), int(iso.group(3)))
        for t in texts:
            span = t.find_date(*ymd)
            if span is not None:
                return t.located(*span)
    return Located(NOT_FOUND)


def wants_provenance(structured: bool, options: Mapping[str, Any]) -> bool:
    """Does this call or run ask for provenance? Only a structured answer has fields to locate."""
    return structured and bool(options.get(PROVENANCE_OPTION))


def locate(value: Any, sources: Mapping[str, str]) -> Provenance:
    """Where each leaf of ``value`` (an answer: a Pydantic model, or JSON data) occurs in
    ``sources`` (the item's fields: text, maybe holding file markers)."""
    from pydantic_core import to_jsonable_python  # a model's fields as its JSON has them

    value = to_jsonable_python(value, fallback=str)
    texts = _texts(sources)
    return Provenance({path: _locate_one(v, texts) for path, v in _leaves(value)})
