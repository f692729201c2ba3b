"""The lines ``tsstats run`` prints when the command ends: what it cost, and how each figure was obtained."""

from __future__ import annotations

from typing import Any


def joules(value: float) -> str:
    if value == 0:
        return "0 J"
    for limit, unit, scale in ((1e6, "MJ", 1e-6), (1e3, "kJ", 1e-3), (1.0, "J", 1.0), (1e-3, "mJ", 1e3)):
        if abs(value) >= limit:
            return f"{value * scale:.3g} {unit}"
    return f"{value * 1e6:.3g} uJ"


def grams(value: float) -> str:
    if value == 0:
        return "0 g CO2e"
    for limit, unit, scale in ((1e3, "kg", 1e-3), (1.0, "g", 1.0), (1e-3, "mg", 1e3)):
        if abs(value) >= limit:
            return f"{value * scale:.3g} {unit} CO2e"
    return f"{value * 1e6:.3g} ug CO2e"


def summary_lines(name: str, outcome: str, code: int, wall_s: float, record: dict[str, Any] | None) -> list[str]:
    lines = [f"tsstats: {name}: {outcome} (exit {code}) in {wall_s:.2f} s"]
    if record is None or record.get("energyJ") is None:
        return lines + ["  not measured: no figures from the service"]
    methods = record.get("methods") or {}
    estimated = set(record.get("estimated") or [])
    by_component = record.get("energyByComponentJ")
    if by_component:
        parts = [f"{component} {joules(value)} ({methods.get(component, '?')}"
                 f"{', estimated' if component in estimated else ''})" for component, value in by_component.items()]
        lines.append(f"  energy   {joules(record['energyJ'])}: " + ", ".join(parts))
    else:
        how = ", ".join(f"{component} {method}" for component, method in methods.items())
        lines.append(f"  energy   {joules(record['energyJ'])} (the machine's, shared with the runs beside it; "
                     f"{how})")
    grid = record.get("grid") or {}
    lines.append(f"  carbon   {grams(record['carbonG'])} at {grid.get('gPerKwh', '?')} g/kWh "
                 f"({grid.get('region', '?')}, {grid.get('source', '?')})")
    if record.get("items"):
        sci = record.get("sci")
        includes = " + ".join(record.get("sciIncludes") or [])
        lines.append(f"  per item {joules(record['energyPerItemJ'])}, {grams(record['carbonPerItemG'])} over "
                     f"{record['items']:,g} items; SCI {grams(sci) if sci is not None else '-'} per item ({includes})")
    machine = record.get("machineEnergyJ")
    energy = record.get("energyJ")
    if machine and energy is not None:
        lines.append(f"  share    {100.0 * energy / machine:.1f} % of the machine's energy over the run "
                     f"({joules(machine)})")
    if record.get("fair") is not None:
        reasons = "; ".join(record.get("unfairReasons") or [])
        lines.append("  fair     yes: nothing spoiled the comparison (docs/conditions.md)" if record["fair"] else
                     f"  fair     no: {reasons} (left out of ?fair=true and of a study's statistics)")
    return lines
