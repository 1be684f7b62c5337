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
import importlib.util
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ConfigError

__all__ = ["BOOTSTRAP_RESAMPLES", "CI_LEVEL", "DEFAULT_SEED", "FAILED_LABEL", "classification_metrics",
           "field_metrics", "label_set", "multilabel_metrics", "normalise", "translation_metrics",
           "require_eval_extra"]

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
EVAL_LIBRARIES = ("numpy", "sacrebleu", "sklearn")  # the flashlane[eval] extra, by import name


def require_eval_extra() -> None:
    """Fail in one line, before any request, when the eval's libraries are missing. Found, not
    imported: importing scikit-learn takes seconds, and only the scoring needs it."""
    for name in EVAL_LIBRARIES:
        if importlib.util.find_spec(name) is None:
            raise ConfigError(f"flashlane eval needs {name}", hint="pip install 'flashlane[eval]'")


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

    prec, rec, f1, support = precision_recall_fscore_support(y, p, labels=classes, zero_division=0)
    shown = [*classes, FAILED_LABEL]
    # The resampled macro-F1s from per-label counts, all resamples at once (scikit-learn's f1_score per
    # resample costs ~25 ms, so 1,000 resamples × a grid took minutes); the point value is scikit-learn's.
    codes = {lab: i for i, lab in enumerate(classes)}
    yc = np.asarray([codes.get(str(x), -1) for x in y])
    pc = np.asarray([codes.get(str(x), -1) for x in p])
    lo_hi: list[float] | None = None
    if len(y):
        idx = np.random.default_rng(seed).integers(0, len(y), (resamples, len(y)))
        yr, pr = yc[idx], pc[idx]
        per = []
        for k in range(len(classes)):
            t, q = yr == k, pr == k
            denom = t.sum(axis=1) + q.sum(axis=1)
            per.append(np.where(denom > 0, 2 * (t & q).sum(axis=1) / np.maximum(denom, 1), 0.0))
        draws = np.mean(per, axis=0) if per else np.zeros(resamples)
        alpha = (1 - CI_LEVEL) / 2
        lo_hi = [float(np.quantile(draws, alpha)), float(np.quantile(draws, 1 - alpha))]
    return {
        "n": len(y),
        "accuracy": _mean_with_ci(correct, seed, resamples),
        "macro_f1": {"value": float(f1_score(y, p, labels=classes, average="macro", zero_division=0))
                     if len(y) else None, "ci": lo_hi},
        "per_label": {lab: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1[i]),
                            "support": int(support[i])} for i, lab in enumerate(classes)},
        "confusion": {"labels": shown,
                      "matrix": confusion_matrix(y, p, labels=shown).tolist() if len(y) else []},
    }


_LABEL_SEP = re.compile(r"[;,|]")


def label_set(value: Any) -> list[str]:
    """A multi-label truth cell or answer as labels: a list, a JSON list, or text separated by
    ``;``, ``,`` or ``|`` (blank: no label)."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v).strip() for v in value if str(v).strip()]
    text = str(value).strip()
    if text.startswith("["):
        try:
            return label_set(json.loads(text))
        except ValueError:
            pass
    return [x.strip() for x in _LABEL_SEP.split(text) if x.strip()]


def multilabel_metrics(truth: Sequence[Any], predicted: Sequence[Sequence[str] | None], labels: Sequence[str], *,
                       seed: int = DEFAULT_SEED, resamples: int = BOOTSTRAP_RESAMPLES) -> dict[str, Any]:
    """Multi-label: micro- and macro-F1 over ``labels`` (scikit-learn, on binarised label sets),
    each with an interval; exact-set accuracy (every label right) and per-label precision/recall.
    A failed item predicts no label (its true labels are all missed)."""
    import numpy as np
    from sklearn.metrics import f1_score, precision_recall_fscore_support
    from sklearn.preprocessing import MultiLabelBinarizer

    mlb = MultiLabelBinarizer(classes=list(labels))
    known = set(labels)
    # A label outside the set (a truth typo) is not scored by the binariser: it is named instead.
    y = mlb.fit_transform([[x for x in label_set(t) if x in known] for t in truth])
    p = mlb.transform([[x for x in (q or []) if x in known] for q in predicted])
    n = len(y)

    # Resampled F1s from per-label counts, all resamples at once (as classification_metrics does); the
    # point values are scikit-learn's.
    alpha = (1 - CI_LEVEL) / 2
    draws: dict[str, Any] = {}
    if n:
        idx = np.random.default_rng(seed).integers(0, n, (resamples, n))
        tp = (y[idx] & p[idx]).sum(axis=1)  # resamples × labels
        denom = y[idx].sum(axis=1) + p[idx].sum(axis=1)
        draws["micro"] = np.where(denom.sum(axis=1) > 0, 2 * tp.sum(axis=1) / np.maximum(denom.sum(axis=1), 1), 0.0)
        draws["macro"] = np.where(denom > 0, 2 * tp / np.maximum(denom, 1), 0.0).mean(axis=1) \
            if len(labels) else np.zeros(resamples)

    def scored(avg: str) -> dict[str, Any]:
        if not n:
            return {"value": None, "ci": None}
        return {"value": float(f1_score(y, p, average=avg, zero_division=0)),
                "ci": [float(np.quantile(draws[avg], alpha)), float(np.quantile(draws[avg], 1 - alpha))]}

    prec, rec, f1s, support = precision_recall_fscore_support(y, p, zero_division=0)
    exact = [float(set(label_set(t)) == set(q or [])) for t, q in zip(truth, predicted, strict=True)]
    unknown = sorted({x for t in truth for x in label_set(t)} - known)
    return {"n": n, "micro_f1": scored("micro"), "macro_f1": scored("macro"),
            "exact_set_accuracy": _mean_with_ci(exact, seed, resamples),
            "per_label": {lab: {"precision": float(prec[i]), "recall": float(rec[i]), "f1": float(f1s[i]),
                                "support": int(support[i])} for i, lab in enumerate(labels)},
            "unknown_truth_labels": unknown}


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
    import numpy as np

    per_field: dict[str, list[float]] = {f: [] for f in fields}
    records: list[float] = []
    counts: list[tuple[int, int, int]] = []  # per record: (true positives, false positives, false negatives)
    for t, p in zip(truth, predicted, strict=True):
        ok_all = True
        tp = fp = fn = 0
        for f in fields:
            want, got = normalise(t.get(f)), None if p is None else normalise(field_of(p, f))
            ok = p is not None and got == want
            per_field[f].append(float(ok))
            ok_all = ok_all and ok
            # Field-level F1 (as in information extraction): a value given and right is a true positive;
            # a value given and wrong (or given where the truth has none) a false positive; a truth value
            # not given, or given wrong, a false negative. Both empty: nothing to count.
            if got is not None and ok:
                tp += 1
            else:
                fp += got is not None
                fn += want is not None
        records.append(float(ok_all))
        counts.append((tp, fp, fn))
    c = np.asarray(counts, dtype=float).reshape(-1, 3)

    def micro_f1(idx: Any) -> float:
        tp, fp, fn = c[idx].sum(axis=0)
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 1.0

    n = len(records)
    return {"n": n,
            "record_accuracy": _mean_with_ci(records, seed, resamples),
            "field_f1": {"value": micro_f1(np.arange(n)) if n else None,
                         "ci": list(_interval(micro_f1, n, seed, resamples)) if n else None,
                         "tp": int(c[:, 0].sum()), "fp": int(c[:, 1].sum()), "fn": int(c[:, 2].sum())},
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
