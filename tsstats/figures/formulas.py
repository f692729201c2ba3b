"""Pure numeric functions behind the dashboard's figures: arrays in, numbers out, no I/O.

Among them the Green Software Foundation's Software Carbon Intensity of a run: SCI = (E x I + M) / R. E x I is
the run's operational carbon (its energy at the grid's intensity through the run, location-based), M the
machine's embodied carbon amortised over the run's time and the run's share of the machine, R the items it
processed (the functional unit). Offsets never enter it: the specification forbids lowering SCI with them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tsstats.core.units import GRAMS_PER_KG, JOULES_PER_KWH, MS_PER_S, SIGNIFICANT, YEAR_S
from tsstats.figures.grid import WORLD_INTENSITY


def finite_mean(values: np.ndarray) -> float:
    """Mean of the finite values, NaN when there are none."""
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else float("nan")


def last_finite(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    finite = values[np.isfinite(values)]
    return float(finite[-1]) if finite.size else float("nan")


def mean_power_w(energy_j: np.ndarray, interval_s: np.ndarray) -> float:
    """Watts over the samples that have an energy: their joules over their seconds (NaN without any)."""
    known = np.isfinite(energy_j) & np.isfinite(interval_s)
    seconds = float(interval_s[known].sum())
    return float(energy_j[known].sum()) / seconds if seconds > 0 else float("nan")


def system_load_pct(load1: float, logical_cpus: float) -> float:
    """1-minute load average over logical CPUs, in % (above 100 when overloaded)."""
    if not logical_cpus or not math.isfinite(load1):
        return float("nan")
    return 100.0 * load1 / logical_cpus


def uptime_pct(now_ms: float, first_sample_ms: float | None, window_ms: float, outages: np.ndarray) -> float:
    """Share of the availability window covered by samples, in %.

    The window is the last ``window_ms``, or since the first sample if younger; ``outages`` holds
    (start_ms, end_ms) rows of sampling gaps, each counted as down time where it overlaps the window.
    """
    if first_sample_ms is None:
        return float("nan")
    start = max(now_ms - window_ms, first_sample_ms)
    span = now_ms - start
    if span <= 0:
        return 100.0
    outages = np.asarray(outages, dtype=float).reshape(-1, 2)
    overlap = np.clip(np.minimum(outages[:, 1], now_ms) - np.maximum(outages[:, 0], start), 0, None).sum()
    return float(100.0 * max(span - overlap, 0.0) / span)


def find_outages(ts_ms: np.ndarray, interval_s: np.ndarray, restarted_after_ms: float | None,
                 max_gap_ms: float) -> np.ndarray:
    """(start, end) of every time the sampler was not sampling for longer than ``max_gap_ms``.

    Within a run, a sample whose interval (from the monotonic clock, which counts suspend where the system
    has one that does) is that long ends an outage: a step of the wall clock is none. Across a restart
    (``restarted_after_ms``: the newest sample stored before it), the wall-clock gap to the first new sample
    is the only measure there is."""
    ts = np.asarray(ts_ms, dtype=float)
    interval_ms = np.nan_to_num(np.asarray(interval_s, dtype=float) * MS_PER_S, nan=0.0)
    long = interval_ms > max_gap_ms
    outages = np.column_stack((ts[long] - interval_ms[long], ts[long]))
    if restarted_after_ms is not None and ts.size and ts[0] - restarted_after_ms > max_gap_ms:
        outages = np.vstack(([[restarted_after_ms, ts[0]]], outages))
    return outages.reshape(-1, 2)


def kwh(joules: float) -> float:
    return joules / JOULES_PER_KWH


def carbon_kg(energy_kwh: float, g_per_kwh: float) -> float:
    """Emissions of ``energy_kwh`` at ``g_per_kwh``, in kg CO2e."""
    return energy_kwh * g_per_kwh / GRAMS_PER_KG


def carbon_g(energy_kwh: float, g_per_kwh: float) -> float:
    """Emissions of ``energy_kwh`` at ``g_per_kwh``, in g CO2e (the dashboard's "Current Carbon")."""
    return energy_kwh * g_per_kwh


@dataclass(frozen=True)
class Activity:
    """responseTime and errorRate over the comparisons finished within the activity window."""

    response_ms: float  # mean reported latencyMs; NaN when none reported one
    error_pct: float  # failed / (completed + failed) in %; NaN when none completed or failed
    finished: int  # comparisons finished in the window, cancelled ones included
    with_latency: int  # of those, how many reported latencyMs
    accuracy_pct: float = math.nan  # mean reported accuracy of those completed
    speed: float = math.nan  # mean reported speed of those completed
    items_per_s: float = math.nan  # items of the completed that reported items, over their run time


@dataclass(frozen=True)
class Outcomes:
    """Counts of the comparisons finished within the activity window (cancelled ones included in ``finished``)."""

    finished: int = 0
    with_latency: int = 0
    latency_sum_ms: float = 0.0
    completed: int = 0
    failed: int = 0
    accuracy_sum: float = 0.0
    with_accuracy: int = 0
    speed_sum: float = 0.0
    with_speed: int = 0
    items: float = 0.0  # items of the completed that reported items
    items_s: float = 0.0  # their run time


def _mean(total: float, count: float) -> float:
    return total / count if count else math.nan


def comparison_activity(outcomes: Outcomes) -> Activity:
    """The dashboard's responseTime (mean reported latencyMs) and errorRate (failed / (completed + failed))."""
    judged = outcomes.completed + outcomes.failed
    return Activity(
        response_ms=_mean(outcomes.latency_sum_ms, outcomes.with_latency),
        error_pct=100.0 * outcomes.failed / judged if judged else math.nan,
        finished=outcomes.finished, with_latency=outcomes.with_latency,
        accuracy_pct=_mean(outcomes.accuracy_sum, outcomes.with_accuracy),
        speed=_mean(outcomes.speed_sum, outcomes.with_speed),
        items_per_s=_mean(outcomes.items, outcomes.items_s))


def energy_efficiency_pct(cpu_j: float, cpu_active_j: float, gpu_j: float, gpu_idle_j: float) -> float:
    """Share of CPU and GPU energy attributable to active work, in %.

    Active: CPU energy x utilization (``cpu_active_j``) plus GPU energy above its idle floor.
    """
    total = cpu_j + gpu_j
    if total <= 0 or not math.isfinite(total):
        return 0.0
    active = cpu_active_j + max(gpu_j - gpu_idle_j, 0.0)
    return float(min(max(100.0 * active / total, 0.0), 100.0))


def intensity_score(g_per_kwh: float, world: float = WORLD_INTENSITY) -> float:
    """S_I = 100 x clamp(1 - I / (2 x I_world), 0, 1)."""
    return 100.0 * min(max(1.0 - g_per_kwh / (2.0 * world), 0.0), 1.0)


def green_score(g_per_kwh: float, efficiency_pct: float, renewable_pct: float) -> float:
    """round(0.5 x S_I + 0.3 x energyEfficiency + 0.2 x renewableEnergyUsage)."""
    return float(round(0.5 * intensity_score(g_per_kwh) + 0.3 * efficiency_pct + 0.2 * renewable_pct))


def carbon_saved_kg(energy_j: float, covered_s: float, g_per_kwh: float, baseline_power_w: float | None,
                    baseline_intensity: float | None) -> float | None:
    """Carbon saved against a declared baseline, in kg CO2e; None without a baseline.

    Baseline energy is ``baseline_power_w`` over the covered time (or the measured energy when only an
    intensity is declared); baseline intensity is ``baseline_intensity`` (or the grid's). Savings are the
    baseline's emissions minus the measured emissions, negative when the machine did worse.
    """
    if baseline_power_w is None and baseline_intensity is None:
        return None
    baseline_j = baseline_power_w * covered_s if baseline_power_w is not None else energy_j
    baseline_g = baseline_intensity if baseline_intensity is not None else g_per_kwh
    return carbon_kg(kwh(baseline_j), baseline_g) - carbon_kg(kwh(energy_j), g_per_kwh)


def running_counts(ts_ms: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """How many of the intervals [start, end] contain each timestamp."""
    ts = np.asarray(ts_ms, dtype=float)
    starts = np.sort(np.asarray(starts, dtype=float))
    ends = np.sort(np.asarray(ends, dtype=float))
    return np.searchsorted(starts, ts, side="right") - np.searchsorted(ends, ts, side="left")


def shared_energy_j(ts_ms: np.ndarray, energy_j: np.ndarray, start_ms: float, end_ms: float,
                    starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Each sample's energy given to an interval [start_ms, end_ms]: shared equally among the intervals running
    then (0 outside it). ``starts``/``ends`` are every comparison's running interval, this one's included."""
    ts = np.asarray(ts_ms, dtype=float)
    energy = np.asarray(energy_j, dtype=float)
    inside = (ts >= start_ms) & (ts <= end_ms) & np.isfinite(energy)
    shared = np.zeros(len(ts))
    if inside.any():
        shared[inside] = energy[inside] / np.maximum(running_counts(ts[inside], starts, ends), 1)
    return shared


def round_significant(values: np.ndarray, digits: int) -> np.ndarray:
    """Each finite value to ``digits`` significant digits, as the double nearest that decimal (so its shortest
    text is the decimal, without float noise); zeros, non-finite values and those beyond 1e-12 to 1e31 (with
    10 digits) as they are."""
    values = np.asarray(values, dtype=float)
    out = values.copy()
    usable = np.isfinite(values) & (values != 0)
    if not usable.any():
        return out
    shift = np.full(values.shape, np.inf)
    shift[usable] = digits - 1 - np.floor(np.log10(np.abs(values[usable])))
    usable &= np.abs(shift) <= 22  # beyond, a power of ten is no longer exact: such values stay as they are
    shift = shift[usable]
    chosen = values[usable]
    up = shift >= 0  # scale up, round to an integer, and divide by a power of ten (exact below 1e22)
    rounded = np.empty_like(chosen)
    rounded[up] = np.round(chosen[up] * 10.0 ** shift[up]) / 10.0 ** shift[up]
    rounded[~up] = np.round(chosen[~up] / 10.0 ** -shift[~up]) * 10.0 ** -shift[~up]
    out[usable] = rounded
    return out


def finite_or_none(value: float, digits: int) -> float | None:
    """A measured value to ``digits`` decimals for JSON; None (null) where it is NaN or infinite: unavailable."""
    return round(value, digits) if math.isfinite(value) else None


def rounded(value: float | None) -> float | None:
    """A derived figure to ``SIGNIFICANT`` digits (docs/api.md, Units and precision); None and non-finite values
    as they are."""
    if value is None:
        return None
    return float(round_significant(np.array([value], dtype=float), SIGNIFICANT)[0])


def embodied_g(embodied_kg: float, lifetime_years: float, duration_s: float, machine_share: float) -> float:
    """M: the machine's embodied emissions x (the run's time / its lifetime) x the run's share of the machine,
    in g CO2e."""
    share = min(max(machine_share, 0.0), 1.0)
    return embodied_kg * GRAMS_PER_KG * max(duration_s, 0.0) / (lifetime_years * YEAR_S) * share


def per_item(value: float | None, items: float | None) -> float | None:
    """``value`` per item; None without items (no functional unit) or without the value."""
    if value is None or not items:
        return None
    return value / items


def sci_per_item(operational_g: float | None, embodied: float | None, items: float | None) -> float | None:
    """(E x I + M) / R in g CO2e per item; M counts as 0 where the machine's embodied carbon is not declared
    (and the record says so)."""
    if operational_g is None:
        return None
    return per_item(operational_g + (embodied or 0.0), items)
