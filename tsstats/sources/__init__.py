"""Readers of the machine: procfs or psutil for the host, process trees, NVML, RAPL energy counters, the CPU
model's TDP, the kernel's TCP round trips, and the advice on what would let this machine measure more.

Owns every OS and driver touchpoint; paths (``proc_root``, ``powercap_root``) and modules (``pynvml``,
``psutil``) are passed in, so that tests hand in canned trees and fakes. Readers are called by the sampler
thread (every tick or once a second), the latency monitor's own thread, and ``tsstats check``. Imports nothing
else of tsstats.
"""
