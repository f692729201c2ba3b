"""A second's conditions as sample-row fields: shares and rates from two readings of the counters."""

from __future__ import annotations

import math

from tsstats.sources.conditions import Conditions, busy_share, counter_rate, kind_shares

NAN = math.nan
CONDITION_FIELDS = (
    "cpu_user_pct", "cpu_system_pct", "cpu_iowait_pct", "cpu_steal_pct", "psi_cpu_pct", "psi_memory_pct",
    "psi_io_pct", "swap_used_bytes", "swap_in_bps", "swap_out_bps", "disk_read_bps", "disk_write_bps",
    "disk_read_ops", "disk_write_ops", "fs_used_pct", "cpu_temp_c", "cpu_core_temp_c", "cpu_freq_mhz",
    "cpu_freq_min_mhz", "cpu_freq_pct", "cpu_throttle_eps", "cpu_core_max_pct",
)


def condition_values(previous: Conditions | None, current: Conditions, elapsed_s: float) -> dict[str, float]:
    """HOST_ROW fields by name; rates and shares are NaN without a previous reading, and where a counter
    went back (a device reset is a gap, never a negative rate)."""
    values = dict.fromkeys(CONDITION_FIELDS, NAN)
    if previous is not None and previous.kinds is not None and current.kinds is not None:
        shares = kind_shares(previous.kinds, current.kinds)
        values.update(cpu_user_pct=shares["user"], cpu_system_pct=shares["system"],
                      cpu_iowait_pct=shares["iowait"], cpu_steal_pct=shares["steal"])
    if previous is not None and len(previous.cores) == len(current.cores) and current.cores:
        values["cpu_core_max_pct"] = max(busy_share(before, now) for before, now in
                                         zip(previous.cores, current.cores, strict=True))
    values.update(psi_cpu_pct=current.pressure_pct.get("cpu", NAN),
                  psi_memory_pct=current.pressure_pct.get("memory", NAN),
                  psi_io_pct=current.pressure_pct.get("io", NAN), swap_used_bytes=current.swap_used_bytes,
                  fs_used_pct=current.filesystem_used_pct)
    if previous is not None:
        values.update(swap_in_bps=counter_rate(previous.swapped_in_bytes, current.swapped_in_bytes, elapsed_s),
                      swap_out_bps=counter_rate(previous.swapped_out_bytes, current.swapped_out_bytes, elapsed_s))
        if previous.disks is not None and current.disks is not None:
            before, now = previous.disks, current.disks
            values.update(disk_read_bps=counter_rate(before.read_bytes, now.read_bytes, elapsed_s),
                          disk_write_bps=counter_rate(before.write_bytes, now.write_bytes, elapsed_s),
                          disk_read_ops=counter_rate(before.reads, now.reads, elapsed_s),
                          disk_write_ops=counter_rate(before.writes, now.writes, elapsed_s))
        values["cpu_throttle_eps"] = counter_rate(previous.sensors.throttle_count, current.sensors.throttle_count,
                                                  elapsed_s)
    sensors = current.sensors
    share = 100.0 * sensors.freq_mean_mhz / sensors.freq_max_mhz if sensors.freq_max_mhz > 0 else NAN
    values.update(cpu_temp_c=sensors.package_c, cpu_core_temp_c=sensors.hottest_core_c,
                  cpu_freq_mhz=sensors.freq_mean_mhz, cpu_freq_min_mhz=sensors.freq_min_mhz, cpu_freq_pct=share)
    return values
