"""A stand-in for nvidia-ml-py, for servers and commands that tests start as processes.

Tests put this folder and ``tests/`` first on PYTHONPATH, so such a process sees the GPUs described by the
environment variable ``FAKE_NVML_GPUS`` (a JSON list, ``support.nvml.FakeGpu.from_json``), whatever the host has;
unset or empty: no driver. The module is ``support.nvml.fake_nvml``'s, the one fake of the tests.
"""

import json
import os

from support.nvml import FakeGpu, fake_nvml

_GPUS = [FakeGpu.from_json(gpu) for gpu in json.loads(os.environ.get("FAKE_NVML_GPUS") or "[]")]
globals().update({name: value for name, value in vars(fake_nvml(_GPUS, init_fails=not _GPUS)).items()})
