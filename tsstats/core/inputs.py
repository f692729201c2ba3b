"""Request input: the error every bad input raises, and the checks that query parameters share."""

from __future__ import annotations

import math
from typing import Any

from tsstats.core.timeparse import parse_time


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
