"""The readers behind CPU and memory power: RAPL domains on a fake powercap tree, the CPU's TDP from the
table, and the memory modules the system reports."""

from __future__ import annotations

import pytest
from support.powercap import FakePowercap

from tsstats.sources.power import RaplReader, count_dimms, counter_delta, match_tdp, normalize_cpu_name


def test_counter_delta_wraps():
    assert counter_delta(100, 250, 1000) == 150
    assert counter_delta(900, 50, 1000) == 150

def test_rapl_counts_packages_only_and_dram_apart(tmp_path):
    tree = FakePowercap(tmp_path)
    rapl = RaplReader(str(tmp_path)).discover()
    assert sorted(d.name for d in rapl.packages) == ["intel-rapl:0 (package-0)", "intel-rapl:1 (package-1)"]
    assert sorted(d.name for d in rapl.drams) == ["intel-rapl:0:2 (dram)", "intel-rapl:1:2 (dram)"]
    assert rapl.cpu_available and rapl.dram_available
    # one second at 30 W and 20 W on the packages; the core subdomains move too and must not be added
    tree.set("intel-rapl:0", 30_000_000)
    tree.set("intel-rapl:1", 20_000_000)
    tree.set("intel-rapl:0:0", 25_000_000)
    tree.set("intel-rapl:9", 99_000_000)  # psys
    tree.set("intel-rapl-mmio:0", 30_000_000)
    tree.set("intel-rapl:0:2", 3_000_000)
    assert rapl.cpu_joules() == pytest.approx(50.0)
    assert rapl.dram_joules() == pytest.approx(3.0)

def test_no_powercap_at_all(tmp_path):
    rapl = RaplReader(str(tmp_path / "absent")).discover()
    assert not rapl.cpu_available and not rapl.dram_available and rapl.unreadable == []

@pytest.mark.parametrize("model, threads, tdp, rule", [
    ("Intel(R) Xeon(R) Gold 6248 CPU @ 2.50GHz", 40, 150.0, "table"),
    ("Intel(R) Xeon(R) Gold 6248R CPU @ 3.00GHz", 48, 205.0, "table"),
    ("AMD EPYC 7763 64-Core Processor", 128, 280.0, "table"),
    ("AMD EPYC", 2, 8.0, "per_thread"),
    ("Some Future CPU 9000", 16, 64.0, "per_thread"),
    ("", 16, 85.0, "unknown"),
])
def test_tdp_matching(model, threads, tdp, rule):
    match = match_tdp(model, threads)
    assert (match.tdp_w, match.rule) == (tdp, rule)

def test_normalize_cpu_name():
    assert normalize_cpu_name("12th Gen Intel(R) Core(TM) i7-12700K") == ["intel", "core", "i7-12700k"]

def test_count_dimms_from_edac(tmp_path):
    for controller, dimms in (("mc0", 2), ("mc1", 2)):
        for i in range(dimms):
            (tmp_path / "devices/system/edac/mc" / controller / f"dimm{i}").mkdir(parents=True)
    assert count_dimms(str(tmp_path)) == 4
    assert count_dimms(str(tmp_path / "none")) is None
