"""Small file systems for the faults of a full disk (a tmpfs needs root, as CI runs; else the test skips)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def small_tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` mounted at ``mount`` (needs root, as CI runs; skips otherwise)."""
    mount.mkdir(exist_ok=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("mounting a tmpfs needs root")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=True)


def fill_up(directory: Path) -> Path:
    """Write zeros into ``directory`` until its file system is full; returns the file (remove it to free)."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        block = bytes(1 << 16)
        try:
            while True:
                out.write(block)
                out.flush()
        except OSError:
            pass
    return filler
