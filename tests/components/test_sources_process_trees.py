"""The process trees' reader over a canned procfs: a tree's CPU time, memory and the time its threads waited for
a CPU, the machine's capacity and steal, and this service's own CPU time; and procfs against psutil here."""

from __future__ import annotations

import math
import os

import psutil
import pytest

from tsstats.sources.processes import ProcfsTrees, PsutilTrees

TICKS = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")


def add_process(proc, pid: int, utime: int, cutime: int = 0, rss_pages: int = 10, state: str = "S",
                threads: dict[int, int] | None = None, children: tuple[int, ...] = ()) -> None:
    """``/proc/PID/stat`` and a task directory per thread (by thread id, the nanoseconds it waited)."""
    fields = [state, "1"] + ["0"] * 9 + [str(utime), "0", str(cutime), "0"] + ["0"] * 6 + [str(rss_pages)]
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "stat").write_text(f"{pid} (python3 x) {' '.join(fields)}\n")
    for index, (tid, waited_ns) in enumerate((threads or {pid: 0}).items()):
        task = proc / str(pid) / "task" / str(tid)
        task.mkdir(parents=True)
        (task / "children").write_text(" ".join(map(str, children)) + " " if index == 0 else "")
        (task / "schedstat").write_text(f"123456 {waited_ns} 7\n")


def canned(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    # cpu user nice system idle iowait irq softirq steal
    (proc / "stat").write_text("cpu  600 0 200 900 100 0 0 50 0 0\ncpu0 0 0 0 0 0 0 0 0 0 0\n")
    (proc / "meminfo").write_text("MemTotal: 1000 kB\nMemAvailable: 400 kB\n")
    add_process(proc, 10, utime=30, cutime=5, threads={10: 2 * 10**9, 11: 10**9}, children=(20,))
    add_process(proc, 20, utime=40, threads={20: 10**9})
    add_process(proc, 99, utime=12, cutime=40)  # the service; the children it reaped are not its own time
    return proc


def test_a_tree_sums_its_processes_and_their_threads_waits(tmp_path):
    trees = ProcfsTrees(str(canned(tmp_path)), service_pid=99)
    tree = trees.tree((10,))
    assert tree.members == frozenset({10, 20}) and tree.running
    assert tree.cpu_ticks == 30 + 5 + 40 and tree.rss_bytes == 20 * PAGE
    assert tree.wait_ticks == pytest.approx(4 * TICKS)  # 2 s + 1 s of its two threads, 1 s of its child


def test_the_machine_s_capacity_steal_and_the_service_s_own_time(tmp_path):
    machine = ProcfsTrees(str(canned(tmp_path)), service_pid=99).machine()
    assert machine.busy_ticks == 850 and machine.total_ticks == 1850 and machine.steal_ticks == 50
    assert machine.service_ticks == 12 and machine.used_bytes == 600 * 1024


def test_without_schedstat_the_wait_is_unknown_and_a_gone_service_reads_nan(tmp_path):
    proc = canned(tmp_path)
    for path in proc.glob("*/task/*/schedstat"):
        path.unlink()
    trees = ProcfsTrees(str(proc), service_pid=12345)
    assert math.isnan(trees.tree((10,)).wait_ticks) and trees.tree((10,)).cpu_ticks == 75
    assert math.isnan(trees.machine().service_ticks)


def test_procfs_and_psutil_agree_on_this_machine():
    if not os.path.exists("/proc/self/stat"):
        pytest.skip("no procfs here")
    procfs, through_psutil = ProcfsTrees(), PsutilTrees(psutil)
    ours, theirs = procfs.machine(), through_psutil.machine()
    assert ours.total_ticks / TICKS == pytest.approx(theirs.total_ticks, rel=0.01)
    assert ours.service_ticks / TICKS == pytest.approx(theirs.service_ticks, abs=0.5)
    assert procfs.tree((os.getpid(),)).wait_ticks >= 0 and math.isnan(through_psutil.tree((os.getpid(),)).wait_ticks)
