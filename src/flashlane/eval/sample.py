"""``--sample N``: a seeded sample of the labelled rows, stratified by the truth, so a sample of a
large file keeps its label mix (a rare label is not left out by chance, and each label's share is
the file's, to within one row)."""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import TypeVar

__all__ = ["stratified_sample"]

T = TypeVar("T")


def stratified_sample(rows: Sequence[T], strata: Sequence[Hashable], n: int, seed: int) -> list[T]:
    """``n`` of ``rows`` (all of them when ``n`` is not smaller), drawn without replacement from
    ``numpy.random.default_rng(seed)``: each stratum gets its share of ``n`` (largest remainders
    first, so the shares add up to ``n``), and the sample keeps the input order."""
    import numpy as np

    if n >= len(rows):
        return list(rows)
    groups: dict[Hashable, list[int]] = {}
    for i, s in enumerate(strata):
        groups.setdefault(s, []).append(i)
    exact = {k: n * len(v) / len(rows) for k, v in groups.items()}
    take = {k: math.floor(x) for k, x in exact.items()}
    # The rows left over go to the strata with the largest remainders (ties: the larger stratum, then first seen).
    order = sorted(groups, key=lambda k: (-(exact[k] - take[k]), -len(groups[k])))
    for k in order[: n - sum(take.values())]:
        take[k] += 1
    rng = np.random.default_rng(seed)
    chosen = [int(i) for k, idx in groups.items() if take[k] for i in rng.choice(idx, size=take[k], replace=False)]
    return [rows[i] for i in sorted(chosen)]
