"""Unknown-key checks for the files and control bodies the emulator reads.

A typo in a scenario or projects file must not silently change what a test exercises
(``match: {promt_contains: refund}`` used to match every request). Every mapping read from a
file or the control API goes through ``reject_unknown``, whose ``ValueError`` names the key,
the place, a likely intended key and the accepted ones; the CLI prints it as one line (exit
2), the control API answers it as a 400.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any


def reject_unknown(where: str, data: Mapping[str, Any], accepted: Iterable[str]) -> None:
    allowed = sorted(set(accepted))
    for key in data:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"{where}: unknown key '{key}'{hint}; accepted: {', '.join(allowed)}")


def non_negative_int(where: str, value: Any) -> int:
    """An int >= 0 (bools and fractions refused), for quotas and counts."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{where}: expected a whole number >= 0, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: expected a whole number >= 0, got {value!r}") from None
    if number < 0 or not number.is_integer():
        raise ValueError(f"{where}: expected a whole number >= 0, got {value!r}")
    return int(number)


def non_negative_float(where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{where}: expected a number >= 0, got {value!r}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: expected a number >= 0, got {value!r}") from None
    if not number >= 0 or number == float("inf"):
        raise ValueError(f"{where}: expected a number >= 0, got {value!r}")
    return number
