"""Hypothesis strategies for hostile input: any text (lone surrogates included), numbers of any size, JSON of
any shape, times and numbers as people type them, and bodies and queries shaped like the routes'."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

NOW = 1_800_000_000.0
# any code point, lone surrogates included
ANY_TEXT = st.text(alphabet=st.characters(codec=None, blacklist_categories=()), max_size=40)
NUMBERS = st.integers(min_value=-(10 ** 400), max_value=10 ** 400) | st.floats(allow_nan=True, allow_infinity=True)
SCALARS = st.none() | st.booleans() | NUMBERS | ANY_TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(ANY_TEXT, inner, max_size=4),
                    max_leaves=12)
# numbers and times as people and programs type them, and near misses
TIME_TEXT = st.one_of(
    ANY_TEXT, st.from_regex(r"\A-?[0-9¹²³٣]{1,25}(\.[0-9]{1,3})?(ms|s|m|h|d|w|y)?\Z"),
    st.from_regex(r"\A[0-9]{1,5}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}:[0-9]{2})?\Z"),
    st.sampled_from(["now", "-0s", "-1e400s", "1e400", "nan", "inf", "-inf", "-99999999999999999999d"]))
FIELDS = ("name", "models", "status", "accuracy", "speed", "latencyMs", "error", "metadata", "kg", "note", "at")


def bodies() -> Any:
    """JSON bodies shaped like the routes' (known fields with any values) and anything else."""
    shaped = st.dictionaries(st.sampled_from(FIELDS) | ANY_TEXT, JSON | SCALARS, max_size=6)
    return shaped | JSON


def query_args(names: tuple[str, ...]) -> Any:
    keys = st.sampled_from(names) | ANY_TEXT
    return st.dictionaries(keys, st.lists(TIME_TEXT, min_size=1, max_size=2), max_size=5)
