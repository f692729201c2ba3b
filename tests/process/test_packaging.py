"""The package as users install it (not the editable checkout): every module, the schema and the data."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_wheel_carries_every_module_and_data_file(tmp_path):
    # from a copy: a build/ folder left in the checkout would hand setuptools last build's files
    source_tree = tmp_path / "src"
    shutil.copytree(ROOT, source_tree, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache", "*.duckdb*"))
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path),
                            str(source_tree)], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr
    wheel = next(tmp_path.glob("tsstats-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    source = {str(path.relative_to(ROOT)) for path in (ROOT / "tsstats").rglob("*")
              if path.is_file() and path.suffix in (".py", ".csv", ".sql", ".js", ".css", ".html")
              and "__pycache__" not in path.parts}
    assert source and source <= names, sorted(source - names)
