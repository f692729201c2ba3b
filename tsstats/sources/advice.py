"""What would let this machine measure more: one list of fixes for ``tsstats check`` and ``GET /api/check``."""

from __future__ import annotations

from tsstats.sources.gpu import GpuReader
from tsstats.sources.rapl import RAPL_FIX, RaplReader

LIBRARIES = {"nvml": "NVML", "amdsmi": "AMD SMI"}


def hardware_fixes(powercap_root: str, rapl: RaplReader, gpu: GpuReader, dimms_known: bool) -> list[str]:
    """The fix for each thing this machine's readers cannot measure, from the opened readers."""
    fixes = []
    if rapl.unreadable:
        fixes.append(RAPL_FIX)
    if not rapl.packages and not rapl.unreadable:
        fixes.append(f"no RAPL package domain under {powercap_root}: CPU power is modelled from the "
                     f"TDP table. In a container, mount the host's /sys/class/powercap and set powercap_root.")
    if not gpu.gpus:
        fixes.append(f"no NVIDIA or AMD GPU readings ({gpu.error}); GPU figures read 0. With an NVIDIA GPU, "
                     f"install its driver (nvidia-ml-py is installed with tsstats); with an AMD GPU, ROCm and "
                     f"pip install 'tsstats[amd]'.")
    for info in gpu.gpus:
        if "energy" in info.unsupported:
            older = " (older than Volta)" if info.library == "nvml" else ""
            fixes.append(f"GPU {info.index} has no {LIBRARIES.get(info.library, info.library)} energy counter"
                         f"{older}: its power is integrated over time instead.")
    if not dimms_known:
        fixes.append("the number of memory modules is unknown (no EDAC data): memory power assumes 2 DIMMs; "
                     "set dimm_count to the real number.")
    return fixes
