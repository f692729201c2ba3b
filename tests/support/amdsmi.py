"""A fake AMD SMI module for in-process tests: the process-test stand-in (``fake_modules/amdsmi.py``) over
GPUs given here rather than in the environment."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path
from types import ModuleType
from typing import Any

FAKE = Path(__file__).parent / "fake_modules" / "amdsmi.py"


def fake_amdsmi(gpus: list[dict[str, Any]], monkeypatch) -> ModuleType:
    """The stand-in module seeing ``gpus`` (see its docstring for the keys); ``monkeypatch`` sets its
    environment for the test alone."""
    monkeypatch.setenv("FAKE_AMDSMI_GPUS", json.dumps(gpus))
    spec = importlib.util.spec_from_file_location("fake_amdsmi", FAKE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert os.environ["FAKE_AMDSMI_GPUS"]
    return module
