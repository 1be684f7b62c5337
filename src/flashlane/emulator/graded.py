"""The graded scenario action (issue 24): answers taken from a truth file, wrong at a configured
rate that depends on the request's model, thinking level and pack size. Synthetic by design:
the rates are the scenario's, not Gemini's, so an eval's arithmetic (scores, intervals, the
recommendation) can be checked end to end against numbers known in advance (docs/emulator.md,
"Graded answers").

Which rows are wrong is exact, not drawn: for each (model, thinking, pack size) the truth rows
are ranked by a hash of (model, thinking, pack size, row), and the first ``round(rate × rows)``
are answered wrong. Over the whole truth file the accuracy is therefore exactly ``1 − that
count / rows``; over a sample of it, it varies as a sample does. A request's items are found in
the truth file by their text (the longest truth text the item contains) or by their id (the id
column's value as a whole word in the item).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .keys import reject_unknown

__all__ = ["DEFAULT_THINKING", "Graded", "PACK_MARK"]

# The packed prompt marks each item "### id: i1" (flashlane.pipeline.packing.pack_prompt; a
# client that packs otherwise sends single items as far as this action can tell).
PACK_MARK = re.compile(r"^### id: (\S+)\n", re.MULTILINE)
GRADED_KEYS = ("truth", "rows", "match", "text_column", "id_column", "fields", "error_rate", "models", "thinking",
               "per_pack_item", "choices")
DEFAULT_THINKING = "default"  # the rate key of a request that sets no thinking level or budget


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ValueError(f"graded: cannot read the truth file {path}: {e.strerror}") from None
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return [dict(r) for r in csv.DictReader(raw.splitlines(), delimiter="\t" if suffix == ".tsv" else ",")]
    if suffix == ".jsonl":
        return [json.loads(line) for line in raw.splitlines() if line.strip()]
    data = json.loads(raw)
    if not isinstance(data, list):
        raise ValueError(f"graded: the truth file {path} must hold a list of rows")
    return data


def _rate(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"graded: {what} must be a number, got {value!r}")
    return float(value)


def _set(obj: dict[str, Any], path: str, value: Any) -> None:
    """``address.city`` of a nested answer."""
    *parents, last = path.split(".")
    for step in parents:
        nxt = obj.get(step)
        if not isinstance(nxt, dict):
            nxt = obj[step] = {}
        obj = nxt
    obj[last] = value


def _get(obj: Any, path: str) -> Any:
    for step in path.split("."):
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(step)
    return obj


@dataclass
class Graded:
    spec: dict[str, Any]  # as written (shown by the control API)
    rows: list[dict[str, Any]]
    match: str = "text"
    text_column: str = "text"
    id_column: str = "id"
    fields: list[str] = field(default_factory=list)
    error_rate: float = 0.0
    models: dict[str, float] = field(default_factory=dict)
    thinking: dict[str, float] = field(default_factory=dict)
    per_pack_item: float = 0.0
    choices: dict[str, list[Any]] = field(default_factory=dict)
    _wrong: dict[tuple[str, str, int], set[int]] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, spec: Any, where: str = "scenario rule") -> Graded:
        if not isinstance(spec, dict):
            raise ValueError(f"{where}: 'graded' must be a mapping, got {spec!r}")
        reject_unknown(f"{where} graded", spec, GRADED_KEYS)
        if ("truth" in spec) == ("rows" in spec):
            raise ValueError(f"{where}: 'graded' takes a truth file ('truth') or inline 'rows', one of them")
        rows = _read_rows(Path(str(spec["truth"]))) if "truth" in spec else spec["rows"]
        if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{where}: graded truth must be a non-empty list of rows (mappings)")
        match = str(spec.get("match", "text"))
        if match not in ("text", "id"):
            raise ValueError(f"{where}: graded 'match' must be text or id, got {match!r}")
        text_column, id_column = str(spec.get("text_column", "text")), str(spec.get("id_column", "id"))
        key = text_column if match == "text" else id_column
        if any(key not in r for r in rows):
            raise ValueError(f"{where}: a graded truth row has no {key!r} column")
        fields = spec.get("fields") or [c for c in rows[0] if c not in (text_column, id_column)]
        if not isinstance(fields, list) or not fields:
            raise ValueError(f"{where}: graded 'fields' must be a non-empty list of answer fields")
        models, thinking = spec.get("models") or {}, spec.get("thinking") or {}
        choices = spec.get("choices") or {}
        for name, value in (("models", models), ("thinking", thinking), ("choices", choices)):
            if not isinstance(value, dict):
                raise ValueError(f"{where}: graded '{name}' must be a mapping, got {value!r}")
        return cls(spec=spec, rows=rows, match=match, text_column=text_column, id_column=id_column,
                   fields=[str(f) for f in fields], error_rate=_rate(spec.get("error_rate", 0.0), "error_rate"),
                   models={str(k).removeprefix("models/"): _rate(v, f"models.{k}") for k, v in models.items()},
                   thinking={str(k).lower(): _rate(v, f"thinking.{k}") for k, v in thinking.items()},
                   per_pack_item=_rate(spec.get("per_pack_item", 0.0), "per_pack_item"),
                   choices={str(k): list(v) for k, v in choices.items()})

    # ------------------------------------------------------------------ the rates

    def rate(self, model: str, thinking: str, pack: int) -> float:
        base = self.models.get(model, self.error_rate)
        r = base + self.thinking.get(thinking, 0.0) + self.per_pack_item * (pack - 1)
        return min(max(r, 0.0), 1.0)

    def _hash(self, *parts: Any) -> int:
        h = hashlib.blake2b("\x00".join(map(str, parts)).encode(), digest_size=8)
        return int.from_bytes(h.digest(), "big")

    def wrong_rows(self, model: str, thinking: str, pack: int) -> set[int]:
        key = (model, thinking, pack)
        if key not in self._wrong:
            n = round(self.rate(model, thinking, pack) * len(self.rows))
            ranked = sorted(range(len(self.rows)), key=lambda i: self._hash(model, thinking, pack, i))
            self._wrong[key] = set(ranked[:n])
        return self._wrong[key]

    # ------------------------------------------------------------------ the answer

    def _find(self, segment: str) -> int | None:
        if self.match == "id":
            for i, r in enumerate(self.rows):
                if re.search(rf"(?<!\w){re.escape(str(r[self.id_column]))}(?!\w)", segment):
                    return i
            return None
        best: int | None = None
        for i, r in enumerate(self.rows):
            text = str(r[self.text_column])
            if text and text in segment and (best is None or len(text) > len(str(self.rows[best][self.text_column]))):
                best = i
        return best

    def _wrong_value(self, f: str, truth: Any, generated: Any, enum: list[Any] | None, salt: int) -> Any:
        options = self.choices.get(f) or enum or sorted({str(r.get(f)) for r in self.rows if r.get(f) is not None})
        others = [o for o in options if str(o) != str(truth)]
        if others:
            return others[salt % len(others)]
        return generated if generated != truth else f"not {truth}"

    def _grade(self, answer: dict[str, Any], row: int, wrong: bool, schema: dict[str, Any] | None, salt: int) -> None:
        truth = self.rows[row]
        for f in self.fields:
            value = _get(truth, f) if "." not in f or f not in truth else truth[f]
            if wrong:
                enum = _get((schema or {}).get("properties", {}), f.replace(".", ".properties.") + ".enum")
                value = self._wrong_value(f, value, _get(answer, f), enum if isinstance(enum, list) else None, salt)
                wrong = False  # one field wrong makes the record wrong
            _set(answer, f, value)

    def answer(self, prompt: str, schema: dict[str, Any] | None, text: str, model: str, thinking: str) -> str:
        """The generated answer ``text`` with the truth's fields put in (and made wrong for the
        rows the rates pick); items not found in the truth file keep the generated values."""
        marks = list(PACK_MARK.finditer(prompt))
        if marks:
            segments = {m.group(1): prompt[m.end(): marks[k + 1].start() if k + 1 < len(marks) else len(prompt)]
                        for k, m in enumerate(marks)}
        else:
            segments = {"": prompt}
        pack = len(segments)
        wrong = self.wrong_rows(model, thinking, pack)
        if schema is None:  # free text (a translation): the first field's truth, or the generated text
            row = self._find(prompt)
            return text if row is None or row in wrong else str(_get(self.rows[row], self.fields[0]))
        try:
            data = json.loads(text)
        except ValueError:
            return text
        if marks and isinstance(data, dict) and isinstance(data.get("results"), list):
            item_schema = _get(schema, "properties.results.items")
            for entry in data["results"]:
                if isinstance(entry, dict) and str(entry.get("id")) in segments:
                    row = self._find(segments[str(entry["id"])])
                    if row is not None:
                        self._grade(entry, row, row in wrong, item_schema, self._hash(model, thinking, pack, row, "v"))
        elif isinstance(data, dict):
            row = self._find(prompt)
            if row is not None:
                self._grade(data, row, row in wrong, schema, self._hash(model, thinking, pack, row, "v"))
        return json.dumps(data, indent=2)
