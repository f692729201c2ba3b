"""Readers of the machine, one module each: ``host`` (procfs or psutil: CPU time, memory, load, network, the
machine's names), ``processes`` (process trees), ``gpu`` (NVML, AMD SMI, the GPUs no reader reads), ``power``
(RAPL energy counters, the power models' inputs, what would let this machine measure more), ``conditions``
(temperatures, clocks, throttling, swap and steal), ``latency`` (the kernel's TCP round trips).

Owns every OS and driver touchpoint; paths (``proc_root``, ``powercap_root``) and modules (``pynvml``,
``psutil``) are passed in, so that tests hand in canned trees and fakes. Readers are called by the sampler
thread (every tick or once a second), the latency monitor's own thread, and ``tsstats check``. Imports nothing
else of tsstats.
"""
