"""The CPU's model and its TDP from the packaged table (``data/cpu-tdp.csv``), and the memory modules the
system reports: the inputs of the power models where no energy counter can be read."""

from __future__ import annotations

import csv
import io
import os
import re
from dataclasses import dataclass
from importlib import resources

UNKNOWN_CPU_TDP_W = 85.0
WATTS_PER_THREAD = 4.0


def normalize_cpu_name(name: str) -> list[str]:
    """Tokens of a CPU model name without vendor marks, clock speed and core counts."""
    text = name.lower()
    text = re.sub(r"\((r|tm|c)\)", " ", text)
    text = re.sub(r"@.*$", " ", text)
    text = re.sub(r"\b\d+-core\b|\bprocessor\b|\bcpu\b|\bwith radeon.*$|\bwith .* graphics.*$", " ", text)
    text = re.sub(r"\b\d+(st|nd|rd|th) gen\b", " ", text)
    return text.replace(",", " ").split()


@dataclass(frozen=True)
class TdpMatch:
    model: str
    tdp_w: float
    matched: str  # table entry, or "" for a fallback
    rule: str  # "table", "per_thread" or "unknown"


def load_tdp_table() -> list[tuple[list[str], str, float]]:
    text = resources.files("tsstats").joinpath("data/cpu-tdp.csv").read_text(encoding="utf-8")
    table = []
    for row in csv.DictReader(io.StringIO(text)):
        try:
            table.append((normalize_cpu_name(row["Name"]), row["Name"], float(row["TDP"])))
        except (KeyError, ValueError):
            continue
    return table


def _is_subsequence(needle: list[str], haystack: list[str]) -> bool:
    iterator = iter(haystack)
    return all(token in iterator for token in needle)


def match_tdp(model: str, threads: int, table: list[tuple[list[str], str, float]] | None = None) -> TdpMatch:
    """TDP of ``model``: the longest table entry whose tokens appear in order in the model's tokens."""
    tokens = normalize_cpu_name(model)
    if not tokens:
        return TdpMatch(model, UNKNOWN_CPU_TDP_W, "", "unknown")
    table = load_tdp_table() if table is None else table
    best = None
    for entry_tokens, entry_name, tdp in table:
        if entry_tokens == tokens:
            return TdpMatch(model, tdp, entry_name, "table")
        if entry_tokens and entry_tokens[-1] in tokens and _is_subsequence(entry_tokens, tokens):
            if best is None or len(entry_tokens) > len(best[0]):
                best = (entry_tokens, entry_name, tdp)
    if best is not None:
        return TdpMatch(model, best[2], best[1], "table")
    return TdpMatch(model, WATTS_PER_THREAD * max(threads, 1), "", "per_thread")


def count_dimms(sys_root: str = "/sys") -> int | None:
    """Memory modules known to the EDAC driver, or None when it says nothing."""
    base = os.path.join(sys_root, "devices/system/edac/mc")
    try:
        controllers = [entry for entry in os.listdir(base) if entry.startswith("mc")]
    except OSError:
        return None
    count = 0
    for controller in controllers:
        try:
            count += sum(1 for entry in os.listdir(os.path.join(base, controller))
                         if re.match(r"^(dimm|rank)\d+$", entry))
        except OSError:
            continue
    return count or None
