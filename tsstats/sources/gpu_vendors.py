"""GPUs this machine has that no reader reads yet, found by PCI vendor under ``/sys/class/drm``."""

from __future__ import annotations

import os

VENDORS_NOT_READ = {"0x8086": "Intel"}
INTEL_REASON = ("Intel GPUs are not read yet: their utilization and power come from the i915/xe PMU through "
                "perf events (as intel_gpu_top reads them), which needs CAP_PERFMON; their energy shows in RAPL's "
                "package domain")


def unread_gpus(sys_root: str = "/sys") -> list[tuple[str, str]]:
    """(device, vendor) of each display device (``cardN``) of a vendor no reader reads."""
    drm = os.path.join(sys_root, "class", "drm")
    try:
        cards = sorted(name for name in os.listdir(drm) if name.startswith("card") and name[4:].isdigit())
    except OSError:
        return []
    found = []
    for card in cards:
        try:
            with open(os.path.join(drm, card, "device", "vendor"), encoding="ascii") as handle:
                vendor = handle.read().strip().lower()
        except OSError:
            continue
        if vendor in VENDORS_NOT_READ:
            found.append((card, VENDORS_NOT_READ[vendor]))
    return found
