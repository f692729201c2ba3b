"""The names and addresses this machine is known by: for the Host allowlist of a service bound beyond
loopback."""

from __future__ import annotations

import socket
from typing import Any


def _import_psutil() -> Any:
    import psutil

    return psutil


def machine_names(psutil_module: Any = None) -> list[str]:
    """This machine's host name, its fully qualified name, and the address of each of its interfaces."""
    names = {socket.gethostname(), socket.getfqdn()}
    try:
        psutil = psutil_module if psutil_module is not None else _import_psutil()
        for addresses in psutil.net_if_addrs().values():
            for address in addresses:
                if address.family in (socket.AF_INET, socket.AF_INET6):
                    names.add(address.address.split("%")[0])  # an IPv6 link-local scope is no part of a Host
    except (ImportError, OSError):
        pass
    return sorted(name for name in names if name)
