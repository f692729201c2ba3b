"""Helpers of the test suite, imported by tests as ``support.<module>``: canned procfs trees, fake NVML and
powercap trees for hardware this machine may lack, the real server as a process, the real app in process,
small file systems, and the checks every API error answer shares."""
