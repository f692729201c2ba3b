"""Unit constants, each defined here once. Quantities stay plain floats whose names carry their unit
(``energy_j``, ``power_w``, ``ts_ms``)."""

from __future__ import annotations

JOULES_PER_KWH = 3.6e6
GRAMS_PER_KG = 1000.0
MS_PER_S = 1000.0
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
YEAR_S = 365.25 * 86_400.0
MIB = 1024 * 1024  # bytes

# Precision outside the dashboard's object (docs/api.md, Units and precision). A figure tsstats derives
# (energy, carbon, per item, SCI, durations, grid means) keeps SIGNIFICANT digits (figures.formulas.rounded):
# finer than its inputs (RAPL counts in 61 uJ, a grid intensity to 3 or 4 digits, a power model within a few
# per cent) and coarse enough that no binary noise shows (473, not 473.00000000000006). History values, in
# JSON and in exports alike, keep SERIES_SIGNIFICANT digits: the stored samples' own resolution (0.1 % of CPU,
# 1 mJ) and means over millions of them both fit, and an export's averages equal /api/history's.
SIGNIFICANT = 7
SERIES_SIGNIFICANT = 10

