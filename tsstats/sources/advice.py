"""What would let this machine measure more: one list of fixes for ``tsstats check`` and ``GET /api/check``."""

from __future__ import annotations

from tsstats.sources.nvml import NvmlReader
from tsstats.sources.rapl import RAPL_FIX, RaplReader


def hardware_fixes(powercap_root: str, rapl: RaplReader, gpu: NvmlReader, dimms_known: bool) -> list[str]:
    """The fix for each thing this machine's readers cannot measure, from the opened readers."""
    fixes = []
    if rapl.unreadable:
        fixes.append(RAPL_FIX)
    if not rapl.packages and not rapl.unreadable:
        fixes.append(f"no RAPL package domain under {powercap_root}: CPU power is modelled from the "
                     f"TDP table. In a container, mount the host's /sys/class/powercap and set powercap_root.")
    if not gpu.gpus:
        fixes.append(f"no NVIDIA GPU readings ({gpu.error}); GPU figures read 0. With an NVIDIA GPU, install "
                     f"its driver; nvidia-ml-py is installed with tsstats.")
    for info in gpu.gpus:
        if "energy" in info.unsupported:
            fixes.append(f"GPU {info.index} has no NVML energy counter (older than Volta): its power is "
                         f"integrated over time instead.")
    if not dimms_known:
        fixes.append("the number of memory modules is unknown (no EDAC data): memory power assumes 2 DIMMs; "
                     "set dimm_count to the real number.")
    return fixes
