"""Durations and points in time as users write them: ``30s``, ``-15m``, ``now``, RFC 3339, Unix seconds."""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 7 * 86400.0, "y": 365 * 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w|y)?\s*$", re.ASCII)
# Unix seconds from 1970 to 9999 fit below this bound.
LATEST_UNIX_SECONDS = 253402300799.0


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a number of seconds, or a number with a unit (ms, s, m, h, d, w, y)."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration such as 500ms, 30s, 15m, 1h, 7d")
    value = float(match.group(1)) * UNIT_SECONDS[match.group(2) or "s"]
    if not math.isfinite(value):
        raise ValueError(f"{text!r} is too large")
    return value


def parse_time(text: str, now: float) -> float:
    """Unix seconds for ``now``, ``-30s``/``-7d`` (relative to ``now``), Unix seconds, or RFC 3339."""
    value = text.strip()
    if not value:
        raise ValueError("empty time")
    if value == "now":
        return now
    if value[0] == "-" and value[-1:].isalpha():
        moment = now - parse_duration(value[1:])
        if moment < 0:
            raise ValueError(f"{text!r} reaches before 1970")
        return moment
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        if not math.isfinite(seconds) or not 0 <= seconds <= LATEST_UNIX_SECONDS:
            raise ValueError(f"{text!r} is outside the Unix seconds from 1970 to 9999")
        return seconds
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is not RFC 3339, Unix seconds, now, or a relative time like -15m") from None
    if parsed.tzinfo is None:
        raise ValueError(f"{text!r} has no time zone; add Z or an offset such as +00:00")
    return parsed.timestamp()


def rfc3339_ms(epoch_ms: int | None) -> str | None:
    """RFC 3339 UTC text with milliseconds for epoch milliseconds, or None."""
    if epoch_ms is None:
        return None
    moment = datetime.fromtimestamp(epoch_ms / 1000.0, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(epoch_ms) % 1000:03d}Z"
