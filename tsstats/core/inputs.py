"""Input as users write it, read one way everywhere: the error every bad input raises, numbers written as text,
durations and points in time, and the checks that query parameters and request bodies share.

Numbers (query parameters, CSV fields, settings) are ASCII decimal only. Python's ``int`` and ``float`` also read
``1_000``, Arabic-Indic and other Unicode digits, ``inf``, ``nan`` and (``int``) thousands of digits slowly before
refusing them; every number a user writes goes through here instead, so that each of those is refused the same
way, and the length is checked before any conversion.

Times: durations (``30s``, ``-15m``), ``now``, RFC 3339, a date alone (``2026-11-30``: 00:00 UTC that day), Unix
seconds.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any


class InputError(ValueError):
    """Bad input from a client: ``status`` is the HTTP status, ``field`` the offending field."""

    def __init__(self, message: str, field: str | None = None, status: int = 400):
        super().__init__(message)
        self.message = message
        self.field = field
        self.status = status


class NonFiniteNumber:
    """What a body's ``NaN``, ``Infinity`` or ``-Infinity`` parses to, so that the field holding it is named in
    the 400 (JSON has no such numbers)."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def is_ascii_digits(text: str) -> bool:
    """Only 0-9: ``str.isdigit`` also accepts superscripts and other digits that ``int`` refuses."""
    return text.isascii() and text.isdigit()


def whole_number(value: Any) -> int | None:
    """A JSON integer as Python's ``int``, or None: ``5`` and ``5.0`` are the same number in JSON (and to JSON
    Schema's ``integer``); ``true``, ``5.5`` and strings are not integers."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def check_text(value: str, field: str) -> str:
    """A string that can be stored: a lone surrogate (``"\\ud800"`` in JSON) has no UTF-8 form."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(f"{field} holds an unpaired surrogate, which is not valid text", field=field) from None
    return value


def single_values(args: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, str]:
    """Each query parameter's one value; an unknown parameter or one given twice is a 400 naming it."""
    values = {}
    for key, items in args.items():
        if key not in allowed:
            raise InputError(f"unknown parameter {key!r}; allowed: {', '.join(allowed) or 'none'}", field=key)
        if len(items) > 1:
            raise InputError(f"{key} is given more than once", field=key)
        values[key] = items[0]
    return values


def time_range(values: dict[str, str], default_from: str, now_s: float) -> tuple[int, int]:
    """``from`` and ``to`` (default ``default_from`` and ``now``) in epoch ms, ``from`` not after ``to``."""
    bounds = {}
    for key, default in (("from", default_from), ("to", "now")):
        try:
            bounds[key] = parse_time(values.get(key, default), now_s)
        except ValueError as error:
            raise InputError(f"{key}: {error}", field=key) from None
    if bounds["from"] > bounds["to"]:
        raise InputError("from is after to", field="from")
    return int(math.floor(bounds["from"] * 1000)), int(math.ceil(bounds["to"] * 1000))


# -- fields of a JSON body ------------------------------------------------------------------------------
def require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise InputError("the body must be a JSON object")
    return body


def reject_unknown(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise InputError(f"unknown field {key!r}; allowed: {', '.join(allowed)}", field=key)


def boolean_value(values: dict[str, str], name: str) -> bool | None:
    """A query parameter that is ``true`` or ``false`` (None when absent); anything else is a 400 naming it."""
    if name not in values:
        return None
    if values[name] not in ("true", "false"):
        raise InputError(f"{name} must be true or false", field=name)
    return values[name] == "true"


def number_field(body: dict[str, Any], name: str, low: float, high: float, low_open: bool = False) -> float | None:
    if name not in body or body[name] is None:
        return None
    value = body[name]
    if isinstance(value, NonFiniteNumber):
        raise InputError(f"{name} must be a finite number, not {value.text}", field=name)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InputError(f"{name} must be a number", field=name)
    try:
        value = float(value)
    except OverflowError:
        value = math.inf
    if not math.isfinite(value) or value < low or value > high or (low_open and value == low):
        bound = f"greater than {low:g}" if low_open else f"at least {low:g}"
        raise InputError(f"{name} must be {bound} and at most {high:g}", field=name)
    return value


def text_field(body: dict[str, Any], name: str, maximum: int, default: str | None = None) -> str | None:
    if name not in body or body[name] is None:
        return default
    value = body[name]
    if not isinstance(value, str):
        raise InputError(f"{name} must be a string", field=name)
    if len(value) > maximum:
        raise InputError(f"{name} must be at most {maximum} characters", field=name)
    return check_text(value, name)


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
