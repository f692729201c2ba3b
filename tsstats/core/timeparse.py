"""Durations and points in time as users write them: ``30s``, ``-15m``, ``now``, RFC 3339, a date alone
(``2026-11-30``: 00:00 UTC that day), Unix seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

from tsstats.core.numbers import shown

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$", re.ASCII)
_UNIX_SECONDS = re.compile(r"^[0-9]+(?:\.[0-9]+)?$", re.ASCII)  # float() alone would take 1e9, 1_000, inf
# Every time a user gives, in any form, lies in this one range: 1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z.
# The end of the range leaves room for the durations added to a time (the end of a grid row, a bucket) without
# ever reaching the year 10000 that Python's datetime cannot hold.
EARLIEST_UNIX_SECONDS = 0.0
LATEST_UNIX_SECONDS = 4102444799.0
TIME_RANGE_TEXT = "1970-01-01T00:00:00Z to 2099-12-31T23:59:59Z"

# The forms above as patterns (ECMA 262 and Python alike), for the OpenAPI document: each string a pattern
# matches is accepted. RFC 3339 is spelled in UTC (``Z`` or ``+00:00``), with every valid day of 1970 to 2099;
# the parser accepts any offset as well.
_YEAR = r"(?:19[7-9][0-9]|20[0-9]{2})"
_LEAP_YEAR = r"(?:19(?:7[26]|8[048]|9[26])|20(?:[02468][048]|[13579][26]))"
_DATE = (rf"(?:{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|1[0-9]|2[0-8])|{_YEAR}-(?:0[13-9]|1[0-2])-(?:29|30)"
         rf"|{_YEAR}-(?:0[13578]|1[02])-31|{_LEAP_YEAR}-02-29)")
RFC3339_UTC_PATTERN = rf"{_DATE}T(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]{{1,6}})?(?:Z|\+00:00)"
# whole Unix seconds up to 4102399999 (2099-12-31T22:13:19Z)
UNIX_SECONDS_PATTERN = r"(?:[0-9]{1,9}|[1-3][0-9]{9}|40[0-9]{8}|410[01][0-9]{6}|4102[0-3][0-9]{5})(?:\.[0-9]{1,3})?"
RELATIVE_PATTERN = r"-[0-9]{1,3}(?:ms|s|m|h|d|w)"  # up to 999 weeks back
ABSOLUTE_TIME_PATTERN = f"^(?:{RFC3339_UTC_PATTERN}|{_DATE}|{UNIX_SECONDS_PATTERN})$"  # a date alone: its 00:00 UTC
TIME_PATTERN = f"^(?:now|{RELATIVE_PATTERN}|{RFC3339_UTC_PATTERN}|{_DATE}|{UNIX_SECONDS_PATTERN})$"
_DATE_ALONE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$", re.ASCII)


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or a number with a unit (ms, s, m, h, d, w, y)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{shown(text)} is not a duration such as 500ms, 30s, 15m, 1h, 7d")
    value = float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"]
    if not math.isfinite(value):
        raise ValueError(f"{shown(text)} is too large")
    return value


def parse_time(text: str, now: float) -> float:
    """Unix seconds for ``now``, ``-30s``/``-7d`` (relative to ``now``), Unix seconds, or RFC 3339; every form
    is checked against the one range (``TIME_RANGE_TEXT``)."""
    moment = _parse_time(text, now)
    if not EARLIEST_UNIX_SECONDS <= moment <= LATEST_UNIX_SECONDS:
        raise ValueError(f"{shown(text.strip())} is outside {TIME_RANGE_TEXT}")
    return moment


def time_value(value: str | int | float, now: float) -> float:
    """Unix seconds for a time given in JSON: a number of Unix seconds, or text as ``parse_time`` reads it."""
    if isinstance(value, str):
        return parse_time(value, now)
    seconds = float(value)
    if not EARLIEST_UNIX_SECONDS <= seconds <= LATEST_UNIX_SECONDS:  # also false for NaN
        raise ValueError(f"{value!r} is outside {TIME_RANGE_TEXT}")
    return seconds


def _parse_time(text: str, now: float) -> float:
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    if value == "now":
        return now
    if value[0] == "-" and value[-1:].isalpha():
        return now - parse_duration(value[1:])
    if _UNIX_SECONDS.match(value):
        return float(value)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown(text)} is not RFC 3339, a date, Unix seconds, now, or a relative time like "
                         f"-15m") from None
    if parsed.tzinfo is None:
        if _DATE_ALONE.match(value):  # a day, as `date -I` writes it: its start in UTC
            return parsed.replace(tzinfo=UTC).timestamp()
        raise ValueError(f"{shown(text)} has no time zone; add Z or an offset such as +00:00")
    return parsed.timestamp()


def rfc3339_ms(epoch_ms: int | float | None) -> str | None:
    """RFC 3339 UTC text with milliseconds for epoch milliseconds, or None: also for a stored time no calendar
    date can name (before the year 1 or after 9999: a value written by hand or an older version), so that
    one such row cannot stop an answer."""
    if epoch_ms is None:
        return None
    try:
        moment = datetime.fromtimestamp(epoch_ms / 1000.0, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch_ms) % 1000:03d}Z"
