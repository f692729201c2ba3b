"""``tsstats check``: what this machine can measure and how, with the fix for each thing that is missing."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

from tsstats.assembly import (
    StartupError,
    checked_settings,
    close_sources,
    kernel_rtt_readable,
    open_sources,
    path_warnings,
)
from tsstats.cli.runtime import EXIT_FAILURE
from tsstats.client.service import ServiceClient, ServiceRefused, ServiceUnreachable, read_holder
from tsstats.core.settings import Settings
from tsstats.figures.grid import GridIntensity
from tsstats.sources.gpu import INTEL_REASON, unread_gpus
from tsstats.sources.power import LIBRARIES, hardware_fixes


def describe_machine(settings: Settings, grid: GridIntensity, nvml: Any = None,
                     sys_root: str = "/sys") -> dict[str, Any]:
    """What this machine can measure and how, with the fix for each thing that is missing (``grid``: the one
    ``checked_settings`` resolved)."""
    sources = open_sources(settings, nvml, sys_root)
    meter, gpu, rapl, tdp = sources.meter, sources.gpu, sources.meter.rapl, sources.meter.tdp
    logical_cpus = sources.host.read_fast().logical_cpus
    has_gpu = bool(gpu.gpus)
    gpus = []
    if has_gpu:
        readings = gpu.read()
        for info, gpu_reading in zip(gpu.gpus, readings, strict=False):
            gpus.append({"index": info.index, "name": info.name, "library": info.library, "ok": gpu_reading.ok,
                         "energyCounter": "energy" not in info.unsupported,
                         "power": "power" not in info.unsupported,
                         "unsupported": sorted(info.unsupported)})
    conditions = sources.conditions
    assert conditions is not None  # open_sources always opens the conditions' reader
    condition_sources = conditions.sources()
    close_sources(sources)
    fixes = hardware_fixes(settings.powercap_root, rapl, gpu, sources.dimms_known)
    return {
        "system": sources.host.name,
        "cpu": {"model": tdp.model, "logicalCpus": logical_cpus, "tdpW": tdp.tdp_w,
                "tdpMatch": tdp.matched, "tdpRule": tdp.rule},
        "rapl": {
            "root": settings.powercap_root,
            "packages": [d.name for d in rapl.packages],
            "dram": [d.name for d in rapl.drams],
            "unreadable": [{"domain": d.name, "error": d.error} for d in rapl.unreadable],
            "cpuMethod": meter.cpu_method,
            "memoryMethod": meter.memory_method,
        },
        "memory": {"dimms": meter.dimms if sources.dimms_known else None, "modelW": meter.memory_model_w},
        "gpu": {"available": has_gpu, "readers": gpu.name, "driver": gpu.driver_version, "error": gpu.error or None,
                "gpus": gpus, "notRead": [{"device": device, "vendor": vendor, "reason": INTEL_REASON}
                                          for device, vendor in unread_gpus(sys_root)]},
        "conditions": {"reader": conditions.name,
                       "sources": {group: source or "unavailable" for group, source in condition_sources.items()}},
        "networkLatency": {"kernelRtt": kernel_rtt_readable(), "targets": list(settings.latency_targets)},
        "grid": grid.meta(),
        "database": settings.db,
        "databaseExists": os.path.exists(settings.db),
        "fixes": fixes,
        "warnings": path_warnings(settings),
        "service": serving(settings.db),
    }


def serving(db: str) -> dict[str, Any] | None:
    """The service that holds ``db``, if one answers: where, its rate now and its own footprint (its
    ``/healthz``, which needs no token and does not raise the rate); None when none holds it."""
    holder = read_holder(db, drop_stale=False)
    if holder is None:
        return None
    try:
        health = ServiceClient(holder.url).call("GET", "/healthz")
    except (ServiceUnreachable, ServiceRefused) as error:
        return {"url": holder.url, "error": str(error)}
    return {"url": holder.url, "sampleRateHz": health.get("sampleRateHz"), "footprint": health.get("footprint")}


def footprint_line(service: dict[str, Any] | None) -> str:
    if service is None:
        return "footprint    no tsstats service holds this database now"
    if "error" in service or not service.get("footprint"):
        return f"footprint    the service at {service['url']} did not say ({service.get('error', 'no footprint')})"
    footprint = service["footprint"]
    hours = footprint["seconds"] / 3600.0
    power = footprint["powerW"]
    energy = f", {power:.3g} W ({power * 3.6:.3g} kJ an hour) by a run's attribution" if power is not None else ""
    resident = footprint["residentBytes"]
    memory = f", {resident / 1e6:.3g} MB resident" if resident is not None else ""
    return (f"footprint    the service at {service['url']} (sampling at {service['sampleRateHz']:g} Hz now): "
            f"{footprint['cpuPct'] or 0:.3g} % of a core over its {hours:.3g} h{memory}{energy}")


def run_check(settings: Settings, as_json: bool) -> int:
    """Exit 1 with serve's own message for a setting serve refuses; otherwise 0 and the report."""
    try:
        grid, _ = checked_settings(settings)
    except StartupError as error:
        print(f"tsstats: {error}", file=sys.stderr)
        return EXIT_FAILURE
    report = describe_machine(settings, grid)
    for warning in report["warnings"]:
        print(f"tsstats: warning: {warning}", file=sys.stderr)
    if as_json:
        print(json.dumps(report, indent=2))
        return 0
    cpu, rapl, gpu_report = report["cpu"], report["rapl"], report["gpu"]
    lines = [
        f"CPU          {cpu['model'] or 'unknown model'}, {cpu['logicalCpus']} logical CPUs (read through "
        f"{report['system']})",
        f"CPU power    {rapl['cpuMethod']}"
        + (f" ({', '.join(rapl['packages'])})" if rapl["packages"] else
           f" (TDP {cpu['tdpW']:g} W, {cpu['tdpRule']}{': ' + cpu['tdpMatch'] if cpu['tdpMatch'] else ''})"),
        f"memory power {rapl['memoryMethod']}"
        + (f" ({', '.join(rapl['dram'])})" if rapl["dram"] else
           f" ({report['memory']['modelW']:g} W for {report['memory']['dimms'] or 'an assumed 2'} DIMMs)"),
    ]
    for entry in rapl["unreadable"]:
        lines.append(f"RAPL         {entry['domain']} unreadable: {entry['error']}")
    if gpu_report["available"]:
        lines.append(f"GPUs         {len(gpu_report['gpus'])} through {gpu_report['readers']} (driver "
                     f"{gpu_report['driver'] or 'unknown'})")
        for gpu in gpu_report["gpus"]:
            lines.append(f"  GPU {gpu['index']}      {gpu['name']} ({LIBRARIES[gpu['library']]}): energy counter "
                         f"{'yes' if gpu['energyCounter'] else 'no'}, power {'yes' if gpu['power'] else 'no'}")
    else:
        lines.append(f"GPUs         none ({gpu_report['error']})")
    for other in gpu_report["notRead"]:
        lines.append(f"  {other['vendor']} GPU {other['device']} not read: {other['reason']}")
    conditions = report["conditions"]["sources"]
    read = [f"{group} ({source})" for group, source in conditions.items() if source != "unavailable"]
    missing = [group for group, source in conditions.items() if source == "unavailable"]
    lines.append("conditions   " + (", ".join(read) or "none") + (f"; unavailable here: {', '.join(missing)}"
                                                                    if missing else ""))
    latency = report["networkLatency"]
    lines.append("latency      " + (f"TCP connect to {', '.join(latency['targets'])}" if latency["targets"] else
                                    f"kernel TCP RTT {'readable' if latency['kernelRtt'] else 'unreadable'}"))
    grid_report = report["grid"]
    lines.append(f"grid         {grid_report['region']} ({grid_report['year']}): {grid_report['gPerKwh']:g} g/kWh, "
                 f"{grid_report['renewablePct']:g}% renewable — {grid_report['source']}")
    lines.append(f"database     {report['database']}{'' if report['databaseExists'] else ' (not created yet)'}")
    lines.append(footprint_line(report["service"]))
    if report["fixes"]:
        lines.append("")
        lines.append("To measure more:")
        lines.extend(f"- {fix}" for fix in report["fixes"])
    print("\n".join(lines))
    return 0
