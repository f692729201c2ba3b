"""Canned procfs trees (``fixtures/proc``) and the lines a test writes into them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

FIXTURES = Path(__file__).parent / "fixtures"


def write_stat(root: Path, busy: int, idle: int, cpus: int = 4) -> None:
    """An aggregate /proc/stat line with ``busy`` user ticks and ``idle`` idle ticks."""
    lines = [f"cpu  {busy} 0 0 {idle} 0 0 0 0 0 0"]
    lines += [f"cpu{i} 0 0 0 0 0 0 0 0 0 0" for i in range(cpus)]
    (root / "stat").write_text("\n".join(lines) + "\n")


def read_all(reader: Any) -> SimpleNamespace:
    """Both of a host reader's readings at once, by field name."""
    fast, slow = reader.read_fast(), reader.read_slow()
    return SimpleNamespace(cpu=fast.cpu, logical_cpus=fast.logical_cpus, **vars(slow))
