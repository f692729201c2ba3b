"""Unit constants, each defined here once. Quantities stay plain floats whose names carry their unit
(``energy_j``, ``power_w``, ``ts_ms``)."""

from __future__ import annotations

JOULES_PER_KWH = 3.6e6
GRAMS_PER_KG = 1000.0
MS_PER_S = 1000.0
SECOND_MS = 1_000
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
YEAR_S = 365.25 * 86_400.0
MIB = 1024 * 1024  # bytes
