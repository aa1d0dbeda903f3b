"""Host facts: the cores a process may use (affinity, cgroup quota), thread overrides, OpenMP's
wait policy and the contention meter."""

from __future__ import annotations

import os
import platform
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dpbench import contention, host
from dpbench.errors import DpbenchError


def _cgroup(tmp_path: Path, files: dict[str, str], own: str = "0::/\n") -> tuple[Path, Path]:
    for rel, text in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    proc = tmp_path / "proc_self_cgroup"
    proc.write_text(own)
    return tmp_path, proc


def test_cgroup_quota_is_read_from_v2_and_v1_files(tmp_path):
    root, proc = _cgroup(tmp_path / "v2", {"cpu.max": "150000 100000\n"})
    assert host.cgroup_cpu_limit(root, proc) == 1.5
    root, proc = _cgroup(
        tmp_path / "v2own", {"cpu.max": "max 100000\n", "job/cpu.max": "100000 100000\n"}, own="0::/job\n"
    )
    assert host.cgroup_cpu_limit(root, proc) == 1.0  # the process's own cgroup, under an unlimited root
    root, proc = _cgroup(
        tmp_path / "v1",
        {"cpu/cpu.cfs_quota_us": "300000\n", "cpu/cpu.cfs_period_us": "100000\n"},
        own="4:cpu,cpuacct:/\n",
    )
    assert host.cgroup_cpu_limit(root, proc) == 3.0
    root, proc = _cgroup(
        tmp_path / "none",
        {"cpu.max": "max 100000\n", "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"},
    )
    assert host.cgroup_cpu_limit(root, proc) is None


def test_usable_cores_and_the_worker_plan_follow_the_quota(monkeypatch):
    from dpbench.sweep import plan_workers

    monkeypatch.setattr(host, "affinity_cores", lambda: 8)
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda: 2.5)
    assert host.usable_cores() == 2  # rounded down: 2.5 CPUs of quota run 2 threads unthrottled
    monkeypatch.delenv(host.THREADS_ENV, raising=False)
    assert plan_workers(10, None) == (2, 1)
    assert plan_workers(1, None) == (1, 2)
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda: 0.5)
    assert host.usable_cores() == 1 and plan_workers(10, None) == (1, 1)
    monkeypatch.setattr(host, "cgroup_cpu_limit", lambda: None)
    assert host.usable_cores() == 8


def test_threads_override(monkeypatch):
    from dpbench.sweep import plan_workers

    monkeypatch.setattr(host, "usable_cores", lambda: 4)
    monkeypatch.setenv(host.THREADS_ENV, "2")
    assert host.default_threads() == 2
    assert plan_workers(10, None) == (2, 2)  # 4 cores / 2 threads each
    assert plan_workers(10, 3) == (3, 2)  # explicit workers and threads: as asked
    monkeypatch.setenv(host.THREADS_ENV, "zero")
    with pytest.raises(DpbenchError, match="DPBENCH_THREADS must be a positive integer"):
        host.default_threads()


def test_openmp_waits_passively_unless_the_user_chose(tmp_path):
    code = "import os, dpbench; print(os.environ['OMP_WAIT_POLICY'])"
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "PASSIVE"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**env, "OMP_WAIT_POLICY": "ACTIVE"},
        check=True,
    )
    assert out.stdout.strip() == "ACTIVE"


CHURN = """
import resource, numpy as np
import dpbench.host as h
def churn():
    blocks = [np.ones(12_000) for _ in range(800)]  # 96 KB each: under glibc's 128 KiB mmap threshold, on the heap
    del blocks  # 77 MB free at the heap's top: above any trim threshold glibc's defaults reach (at most 64 MiB)
churn()
f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    churn()
print(h.configure_allocator(), (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / 5)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's malloc only")
@pytest.mark.skipif(bool(os.environ.get("LD_PRELOAD")), reason="another allocator may be preloaded")
def test_glibc_keeps_freed_memory_unless_the_user_chose_malloc_settings():
    """A training step that frees and re-grows the heap faults its pages back in every round under glibc's
    defaults (~19k here); under dpbench's settings it reuses them. A user's malloc settings win."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MALLOC_", "DPBENCH_MALLOC", "GLIBC_TUNABLES"))}

    def run(extra: dict[str, str]) -> tuple[str, float]:
        cmd = [sys.executable, "-c", CHURN]
        out = subprocess.run(cmd, capture_output=True, text=True, env={**env, **extra}, check=True)
        applied, faults = out.stdout.split()
        return applied, float(faults)

    applied, ours = run({})
    assert applied == "mmap_threshold=33554432,trim_threshold=536870912"
    none, default = run({"DPBENCH_MALLOC": "glibc"})
    assert none == "None"
    assert default > 10_000  # 77 MB trimmed and faulted back in every round (18.8k pages of 4 KiB)
    assert ours < default / 100
    assert run({"MALLOC_ARENA_MAX": "2"})[0] == "None"
    assert run({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"})[0] == "None"
    assert run({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"})[0] == applied  # not a malloc setting
    assert host.environment_info()["hardware"]["malloc"] == host.configure_allocator()


SPIN = "import time\nt = time.time()\nwhile time.time() - t < 3: pass"


def _measure(cmd: list[str]) -> dict:
    meter = contention.ContentionMeter()
    spinner = subprocess.Popen(cmd)
    try:
        time.sleep(0.5)  # the spinner is up
        meter.start()
        time.sleep(1.5)
        meter.stop()
    finally:
        spinner.wait()
    return meter.summary(threads=os.cpu_count() or 1)


def test_contention_meter_counts_another_process_but_not_its_own_workers():
    # The same spinner twice: as another job's process (a grandchild: the shell is our child, the spinner is
    # not), then as our own worker (as an evaluation's env workers are). Only the first is contention. The two
    # are compared with each other, not with zero: a spinner runs in both, so other jobs on the machine (a grid
    # beside the tests) get the same share in both and cancel out; the difference is the spinner's own CPU.
    stranger = _measure(["sh", "-c", f"{sys.executable} -c '{SPIN}' & wait"])
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = _measure([sys.executable, "-c", SPIN])
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The kernel's count of the reaped spinner's CPU time, not the meter's: where it got under half a core over
    # its 3 s (niced beside saturating jobs: 0.1), nothing here can be told apart. A broken meter still fails.
    spun = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    if spun < 1.5:
        pytest.skip(f"the machine is saturated by other jobs: our spinner ran {spun:.2f} CPU-s of its 3 s")
    assert stranger["contended"] is True
    assert 0 < stranger["others_cpu_share"] <= 1 and stranger["loadavg_1min"] is not None
    assert stranger["others_cores"] - own["others_cores"] > 0.4, (stranger, own)
    # and the cell's own cores count its workers: ~1 for the spinning child, ~0 while only another job spins
    assert own["own_cores"] - stranger["own_cores"] > 0.4, (stranger, own)
    assert 0 <= stranger["own_cores"] < 0.5 < own["own_cores"] <= 1.2, (stranger, own)
    assert contention.ContentionMeter().summary(threads=1)["contended"] is None  # nothing measured


def test_contention_totals_leave_the_interval_open_and_add_up(monkeypatch):
    clock = iter(range(0, 1000, 10))  # CPU readings 10 s apart: all CPUs 3 s per s, ours 1 s per s

    def fake() -> tuple[float, float]:
        t = next(clock)
        return 3.0 * t, float(t)

    monkeypatch.setattr(contention, "_cpu_times", fake)
    meter = contention.ContentionMeter()
    meter.start()  # t = 0
    snap = meter.totals()  # t = 10, as if stopped there; still open
    assert snap["others_cpu_s"] == 20.0 and snap["own_cpu_s"] == 10.0 and snap["intervals"] == 1
    meter.stop()  # t = 20: the whole interval counts, not only its part after the snapshot
    assert meter.others_cpu_s == 40.0 and meter.own_cpu_s == 20.0 and meter.intervals == 1
    later = contention.ContentionMeter()
    later.add(snap)
    later.add({})  # a checkpoint from before meters travelled in it
    assert later.others_cpu_s == 20.0 and later.own_cpu_s == 10.0 and later.intervals == 1
    # a checkpoint from before the own CPU time was measured: its wall time has no CPU time to go with it
    later.add({"wall_s": 10.0, "others_cpu_s": 20.0, "intervals": 1})
    assert later.own_cpu_s is None and later.summary(threads=1)["own_cores"] is None
    later.add(snap)  # stays unknown
    assert later.own_cpu_s is None and later.others_cpu_s == 60.0


def test_cpu_family_is_the_first_processors_family_and_model():
    # a virtual machine's model name ("AMD EPYC") hides the generation; the numbers do not (family 25: Zen 3 at
    # model 1, Zen 4 at model 17; 26: Zen 5)
    from dpbench.host import cpu_family

    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        pytest.skip("no /proc/cpuinfo")
    family = re.search(r"^cpu family\s*:\s*(\S+)", text, re.M)
    model = re.search(r"^model\s*:\s*(\S+)", text, re.M)
    if not (family and model):
        pytest.skip("this CPU's /proc/cpuinfo gives no family and model (not x86)")
    assert cpu_family() == f"{family.group(1)}/{model.group(1)}"


def test_a_cpu_kind_is_the_simd_level_and_where_recorded_the_family():
    from dpbench.host import cpu_kind

    assert cpu_kind({"cpu_capability": "AVX512", "cpu_family": "25/17"}) == "AVX512 25/17"
    assert cpu_kind({"cpu_capability": "AVX512", "cpu_family": "26/2"}) != cpu_kind(
        {"cpu_capability": "AVX512", "cpu_family": "25/17"}
    )
    # a record older than cpu_family names its SIMD level alone; one older than that names nothing
    assert cpu_kind({"cpu_capability": "AVX2", "cpu_family": None}) == "AVX2"
    assert cpu_kind({"cpu": "AMD EPYC"}) is None


def test_a_device_name_is_refused_before_anything_runs_unless_dpbench_can_use_it(monkeypatch):
    """torch parses mps, xla and meta, then fails mid-run with a traceback (meta after the episodes start); a cuda
    index past the visible devices failed at the first .to(). Each is one DpbenchError line up front."""
    import torch

    assert host.resolve_device("cpu") == torch.device("cpu")
    for name, says in (
        ("gpu0", "unknown --device 'gpu0'"),
        ("cuda:abc", "unknown --device 'cuda:abc'"),  # a typo, not a missing GPU
        ("mps", "runs on the CPU or CUDA"),
        ("meta", "runs on the CPU or CUDA"),
        ("xla", "runs on the CPU or CUDA"),
    ):
        with pytest.raises(DpbenchError, match=re.escape(says)):
            host.resolve_device(name)
    # a machine with one GPU, as torch would report it
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert host.resolve_device("cuda:0") == torch.device("cuda:0")
    assert host.resolve_device("auto") == torch.device("cuda")
    with pytest.raises(DpbenchError, match=re.escape("torch sees 1 CUDA device(s), cuda:0 to cuda:0")):
        host.resolve_device("cuda:7")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DpbenchError, match="sees no CUDA device"):
        host.resolve_device("cuda:0")
    assert host.resolve_device("auto") == torch.device("cpu")
