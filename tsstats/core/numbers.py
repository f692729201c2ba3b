"""Numbers written as text (query parameters, CSV fields, settings): ASCII decimal only.

Python's ``int`` and ``float`` also read ``1_000``, Arabic-Indic and other Unicode digits, ``inf``, ``nan`` and
(``int``) thousands of digits slowly before refusing them; every number a user writes goes through here instead,
so that each of those is refused the same way, and the length is checked before any conversion.
"""

from __future__ import annotations

import re

MAX_NUMBER_CHARS = 40  # longer than any number tsstats takes (a double's 17 digits, sign, point, exponent)
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]{1,3})?", re.ASCII)
_WHOLE = re.compile(r"[+-]?[0-9]+", re.ASCII)


def decimal_number(text: str) -> float | None:
    """``text`` (surrounding spaces allowed) as a float when it is an ASCII decimal number, else None."""
    value = text.strip()
    if len(value) > MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(value):
        return None
    return float(value)


def whole_number_text(text: str) -> int | None:
    """``text`` (surrounding spaces allowed) as an int when it is ASCII decimal digits with an optional sign, else
    None."""
    value = text.strip()
    if len(value) > MAX_NUMBER_CHARS or not _WHOLE.fullmatch(value):
        return None
    return int(value)


def shown(text: str, limit: int = 40) -> str:
    """``text`` quoted for an error message, cut to ``limit`` characters (a 5,000-digit value is not echoed)."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"... ({len(text)} characters)"
