"""The eval's metrics, by task kind, each with a seeded bootstrap 95 % interval.

Classification scores come from scikit-learn and chrF from sacrebleu (well-kept libraries, not
hand-written arithmetic); both are the optional extra ``flashlane[eval]``. Extraction and custom
tasks compare field by field after normalisation (numbers, dates, whitespace, case).

The interval is the percentile bootstrap (Efron & Tibshirani, *An Introduction to the Bootstrap*,
1993, ch. 13): resample the items with replacement ``BOOTSTRAP_RESAMPLES`` times from a
``numpy.random.default_rng(seed)``, recompute the metric, take the 2.5th and 97.5th percentiles.
A failed item counts as wrong (its predicted label is ``FAILED_LABEL``): a configuration that
fails more must not look more accurate.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["BOOTSTRAP_RESAMPLES", "CI_LEVEL", "DEFAULT_SEED", "FAILED_LABEL", "classification_metrics",
           "field_metrics", "normalise", "translation_metrics", "require_eval_extra"]

BOOTSTRAP_RESAMPLES = 1000  # the usual count for percentile intervals (Efron & Tibshirani 1993, §13.3)
CI_LEVEL = 0.95
DEFAULT_SEED = 0
FAILED_LABEL = "(failed)"  # the prediction of an item that got no answer: never equal to a truth label
# Date spellings read as dates before comparing (ISO first; day-first before month-first for
# numeric dates is a choice: a truth file in US order should be written as ISO dates).
DATE_FORMATS = ("%Y-%m-%d", "%Y/%m/%d", "%d/%m/%Y", "%d.%m.%Y", "%d %B %Y", "%d %b %Y", "%B %d, %Y", "%b %d, %Y",
                "%B %d %Y", "%b %d %Y")
_NUMBER = re.compile(r"^[+-]?(\d{1,3}(,\d{3})+|\d+)(\.\d+)?$")
_SPACE = re.compile(r"\s+")


def require_eval_extra() -> None:
    """Fail in one line, before any request, when the eval's libraries are missing."""
    try:
        import numpy  # noqa: F401
        import sacrebleu  # noqa: F401
        import sklearn  # noqa: F401
    except ImportError as e:
        raise ConfigError(f"flashlane eval needs {e.name}", hint="pip install 'flashlane[eval]'") from None


def _interval(stat: Callable[[Any], float], n: int, seed: int, resamples: int) -> tuple[float, float]:
    import numpy as np

    if n == 0:
        return (math.nan, math.nan)
    rng = np.random.default_rng(seed)
    draws = np.array([stat(rng.integers(0, n, n)) for _ in range(resamples)])
    alpha = (1 - CI_LEVEL) / 2
    return (float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha)))


def _mean_with_ci(values: Sequence[float], seed: int, resamples: int) -> dict[str, Any]:
    import numpy as np

    arr = np.asarray(values, dtype=float)
    if not len(arr):
        return {"value": None, "ci": None}
    rng = np.random.default_rng(seed)
    means = arr[rng.integers(0, len(arr), (resamples, len(arr)))].mean(axis=1)  # vectorised: one draw per row
    alpha = (1 - CI_LEVEL) / 2
    return {"value": float(arr.mean()), "ci": [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]}


def classification_metrics(truth: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str], *,
                           seed: int = DEFAULT_SEED, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """Accuracy and macro-F1 (each with an interval), per-label precision/recall and the confusion
    matrix (rows: truth, columns: prediction, over ``labels`` then ``FAILED_LABEL``)."""
    import numpy as np
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    y = np.asarray([str(t) for t in truth], dtype=object)
    p = np.asarray([FAILED_LABEL if x is None else str(x) for x in predicted], dtype=object)
    classes = list(labels)
    correct = (y == p).astype(float)

    def macro_f1(idx: Any) -> float:
        return float(f1_score(y[idx], p[idx], labels=classes, average="macro", zero_division=0))

    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=classes, zero_division=0)
    shown = [*classes, FAILED_LABEL]
    return {
        "n": len(y),
        "accuracy": _mean_with_ci(correct, seed, resamples),
        "macro_f1": {"value": macro_f1(np.arange(len(y))) if len(y) else None,
                     "ci": list(_interval(macro_f1, len(y), seed, resamples)) if len(y) else None},
        "per_label": {lab: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                            "support": int(support[i])} for i, lab in enumerate(classes)},
        "confusion": {"labels": shown,
                      "matrix": confusion_matrix(y, p, labels=shown).tolist() if len(y) else []},
    }


def normalise(value: Any) -> Any:
    """The form two answers are compared in: numbers as floats (thousands separators dropped),
    dates as ISO dates, text case-folded with runs of whitespace made one space; lists and
    mappings element by element; empty text as None (a blank truth cell means "no value")."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, Mapping):
        return {str(k): normalise(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [normalise(v) for v in value]
    text = _SPACE.sub(" ", str(value)).strip()
    if not text:
        return None
    if _NUMBER.match(text):
        return float(text.replace(",", ""))
    for fmt in DATE_FORMATS:
        try:
            return dt.datetime.strptime(text, fmt).date().isoformat()
        except ValueError:
            continue
    try:  # an ISO datetime: compared as written, to the second
        return dt.datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    return text.casefold()


def field_of(value: Any, path: str) -> Any:
    """``address.city`` of a nested answer (a mapping), or None when a step is missing."""
    for step in path.split("."):
        if not isinstance(value, Mapping) or step not in value:
            return None
        value = value[step]
    return value


def field_metrics(truth: Sequence[Mapping[str, Any]], predicted: Sequence[Mapping[str, Any] | None],
                  fields: Sequence[str], *, seed: int = DEFAULT_SEED,
                  resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """Per-field exact match after ``normalise`` and whole-record accuracy (every field right),
    each with an interval. ``truth[i][f]`` is the truth column ``f``; ``predicted[i]`` the answer
    as JSON data (None: the item failed, every field wrong)."""
    per_field: dict[str, list[float]] = {f: [] for f in fields}
    records: list[float] = []
    for t, p in zip(truth, predicted, strict=True):
        ok_all = True
        for f in fields:
            ok = p is not None and normalise(field_of(p, f)) == normalise(t.get(f))
            per_field[f].append(float(ok))
            ok_all = ok_all and ok
        records.append(float(ok_all))
    return {"n": len(records),
            "record_accuracy": _mean_with_ci(records, seed, resamples),
            "fields": {f: _mean_with_ci(v, seed, resamples) for f, v in per_field.items()}}


def translation_metrics(references: Sequence[str], hypotheses: Sequence[str | None], *, seed: int = DEFAULT_SEED,
                        resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """chrF (sacrebleu, default settings: character 6-grams, beta 2; Popović 2015): the corpus
    score, and the mean sentence score with its interval (a failed item scores 0)."""
    from sacrebleu.metrics import CHRF

    chrf = CHRF()
    hyps = ["" if h is None else str(h) for h in hypotheses]
    refs = [str(r) for r in references]
    sentence = [chrf.sentence_score(h, [r]).score if h else 0.0 for h, r in zip(hyps, refs, strict=True)]
    corpus = chrf.corpus_score(hyps, [refs]).score if refs else None
    return {"n": len(refs), "chrf": _mean_with_ci(sentence, seed, resamples), "corpus_chrf": corpus}
