"""Facts about the machine a process runs on, in one place: the cores it may really use, the
torch thread count that follows, the memory available, the device's name, and the provenance
(versions, CPU, date) that records and benchmark results carry. How contended the CPU was while
something ran is ``dpbench.contention``'s.

* **Usable cores** are the CPU affinity (``sched_getaffinity``: taskset, Slurm's cpuset) capped by
  the cgroup CPU quota (cgroup v2 ``cpu.max``, v1 ``cpu.cfs_quota_us / cpu.cfs_period_us``: Docker
  ``--cpus``, Slurm, Kubernetes limits), never the machine's core count.
* **Threads** default to the usable cores (a sweep splits them across its workers); ``--threads``
  or ``DPBENCH_THREADS`` overrides both.
* **OpenMP waits passively.** torch's CPU kernels run on libgomp, whose worker threads spin between
  parallel regions. When another CPU job shares the cores, spinning threads burn the time slices
  the other job's threads need and both slow down many-fold. ``OMP_WAIT_POLICY=PASSIVE`` (set by
  ``configure_openmp`` before torch loads, unless the user set it) makes them sleep instead; it
  changes no result. ``benchmarks/bench_contention.py`` measures the effect.
* **glibc keeps freed memory.** By default glibc returns freed memory at the top of its heap to the
  kernel (trim threshold 128 KiB, raised only as large blocks come and go), and some policies' training
  steps free and re-grow tens of MB every step: LSTM-GMM on Square faulted ~6000 fresh pages per step,
  13% of its CPU time in the kernel. ``configure_allocator`` sets the mmap threshold to glibc's 64-bit
  ceiling (32 MiB) and the trim threshold to 512 MiB, unless the user chose malloc settings
  (``DPBENCH_MALLOC=glibc`` keeps glibc's defaults); scores do not change, timings do.
  ``benchmarks/bench_allocator.py`` measures the effect.

This module is imported by ``dpbench/__init__.py`` before anything loads torch (``configure_openmp``
must run first), so it imports torch only inside the functions that need it.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import math
import os
import platform
import socket
import sys
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dpbench.errors import DpbenchError

if TYPE_CHECKING:
    import torch

THREADS_ENV = "DPBENCH_THREADS"


def openmp_defaults() -> dict[str, str]:
    """The OpenMP variables dpbench sets unless the user set them (chosen by bench_contention.py)."""
    return {"OMP_WAIT_POLICY": "PASSIVE"}


def configure_openmp() -> None:
    """Apply ``openmp_defaults``; must run before torch (and its libgomp) is loaded. A value the user
    set is kept (setting either variable yourself keeps both of ours away), and child processes
    inherit them."""
    if "OMP_WAIT_POLICY" in os.environ or "GOMP_SPINCOUNT" in os.environ:
        return
    if "torch" in sys.modules:  # libgomp has read its settings already; claiming ours would mislead records
        return
    os.environ.update(openmp_defaults())


# dpbench's glibc malloc settings: name -> (mallopt parameter from malloc.h, value in bytes)
ALLOCATOR_SETTINGS = {"mmap_threshold": (-3, 32 << 20), "trim_threshold": (-1, 512 << 20)}
ALLOCATOR_ENV = "DPBENCH_MALLOC"  # "glibc": leave glibc's defaults (benchmarks/bench_allocator.py compares them)
_allocator: str | None = None  # what configure_allocator applied, for environment_info


def _users_malloc_choice() -> bool:
    """Whether the user chose malloc settings: any ``MALLOC_*`` variable, a ``glibc.malloc`` tunable,
    ``DPBENCH_MALLOC=glibc``, or another allocator preloaded (jemalloc, tcmalloc: its ``malloc`` is not libc's)."""
    if os.environ.get(ALLOCATOR_ENV) == "glibc" or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""):
        return True
    if any(k.startswith("MALLOC_") for k in os.environ):
        return True
    if os.environ.get("LD_PRELOAD"):
        try:
            ours = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
            libcs = ctypes.cast(ctypes.CDLL("libc.so.6").malloc, ctypes.c_void_p).value
        except (OSError, AttributeError):
            return True
        return ours != libcs
    return False


def configure_allocator() -> str | None:
    """Apply ``ALLOCATOR_SETTINGS`` to glibc's malloc in this process (``mallopt``; every process that imports
    dpbench, env and sweep workers included, does the same). Not applied off glibc or when the user chose
    (``_users_malloc_choice``). Returns what was applied, as records print it
    ("mmap_threshold=33554432,trim_threshold=536870912"), else None. Scores do not change; training steps that
    churn the heap get faster (docs/measurements.md), and freed memory, up to the trim threshold, stays with
    the process."""
    global _allocator
    if _allocator is not None:
        return _allocator
    if sys.platform != "linux" or platform.libc_ver()[0] != "glibc" or _users_malloc_choice():
        return None
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return None
    applied = [f"{k}={v}" for k, (param, v) in ALLOCATOR_SETTINGS.items() if libc.mallopt(param, v) == 1]
    _allocator = ",".join(applied) or None
    return _allocator


def _own_cgroup_paths(proc_cgroup: Path) -> tuple[str | None, str | None]:
    """(cgroup v2 path, v1 cpu-controller path) of this process, from /proc/self/cgroup."""
    v2 = v1 = None
    try:
        for line in proc_cgroup.read_text().splitlines():
            _, controllers, path = line.split(":", 2)
            if controllers == "":
                v2 = path
            elif "cpu" in controllers.split(","):
                v1 = path
    except (OSError, ValueError):
        pass
    return v2, v1


def cgroup_cpu_limit(
    root: Path = Path("/sys/fs/cgroup"), proc_cgroup: Path = Path("/proc/self/cgroup")
) -> float | None:
    """The CPUs this process's cgroup quota allows (quota / period), or None when unlimited or unknown.

    Reads cgroup v2 ``cpu.max`` ("QUOTA PERIOD", or "max PERIOD" for none) and v1
    ``cpu/cpu.cfs_quota_us`` (-1 for none) / ``cpu.cfs_period_us``, in the process's own cgroup and in
    the hierarchy's root (what a container sees), and returns the tightest."""
    v2, v1 = _own_cgroup_paths(proc_cgroup)
    limits = []
    for base in {root / (v2 or "/").lstrip("/"), root}:
        try:
            quota, period = (base / "cpu.max").read_text().split()[:2]
            if quota != "max":
                limits.append(int(quota) / int(period))
        except (OSError, ValueError):
            pass
    for base in {root / "cpu" / (v1 or "/").lstrip("/"), root / "cpu"}:
        try:
            quota = int((base / "cpu.cfs_quota_us").read_text())
            period = int((base / "cpu.cfs_period_us").read_text())
            if quota > 0 and period > 0:
                limits.append(quota / period)
        except (OSError, ValueError):
            pass
    return min(limits) if limits else None


def affinity_cores() -> int:
    """CPUs this process may be scheduled on (all of them where affinity is unknown)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def usable_cores() -> int:
    """Affinity capped by the cgroup quota (rounded down: 1.5 CPUs of quota run 1 thread unthrottled)."""
    cores = affinity_cores()
    limit = cgroup_cpu_limit()
    return max(1, min(cores, math.floor(limit + 1e-6))) if limit is not None else cores


def default_threads() -> int:
    """Torch threads for this process: ``DPBENCH_THREADS`` when set, else the usable cores.

    Raises DpbenchError for a ``DPBENCH_THREADS`` that is not a positive integer."""
    value = os.environ.get(THREADS_ENV)
    if value:
        if not value.strip().isdigit() or int(value) < 1:
            raise DpbenchError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
        return int(value)
    return usable_cores()


def available_memory_mb() -> float:
    """Memory available to new allocations without swapping (``MemAvailable`` in /proc/meminfo), in MiB;
    ``inf`` where unknown (not Linux), which means no limit."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("inf")


# ------------------------------------------------------------------------------ provenance
def _cpuinfo() -> dict[str, str]:
    """The first processor's fields in /proc/cpuinfo ({} where there is none)."""
    fields: dict[str, str] = {}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if not line.strip():  # the first processor's block is enough
                break
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    return fields


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo), or what ``platform`` knows elsewhere."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def cpu_family() -> str | None:
    """The x86 CPU's family and model numbers from /proc/cpuinfo, e.g. "25/1" (AMD Zen 3) or "26/2"
    (Zen 5), which a virtual machine's generic model name ("AMD EPYC") hides; None where not given."""
    info = _cpuinfo()
    return f"{info['cpu family']}/{info['model']}" if "cpu family" in info and "model" in info else None


def cpu_kind(hardware: Mapping[str, Any]) -> str | None:
    """A record's kind of CPU, as tables and the dry run tell machines apart: torch's SIMD level
    (``hardware["cpu_capability"]``) and, where recorded, the x86 family/model (``cpu_family``), e.g.
    "AVX512 26/2" (Zen 5) against "AVX512 25/17" (Zen 4), which train at different speeds
    (docs/measurements.md); "AVX2" for a record older than ``cpu_family`` (any generation with that SIMD level:
    the dry run's ``estimate.same_kind`` lets it match one that names its family, the tables list it apart);
    None when the SIMD level is unrecorded (records before commit d127b68)."""
    capability = hardware.get("cpu_capability")
    if not capability:
        return None
    family = hardware.get("cpu_family")
    return f"{capability} {family}" if family else str(capability)


def cpu_capability() -> str | None:
    """The SIMD level torch's kernels use here (AVX2, AVX512, ...), as records' ``hardware.cpu_capability``
    holds it; None if torch cannot say."""
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):  # pragma: no cover - older torch
        return None


def device_name(device: torch.device) -> str:
    """A torch device as records name it: the CUDA device's model name (e.g. "NVIDIA H200"), else "cpu"."""
    if device.type != "cuda":
        return "cpu"
    import torch

    return torch.cuda.get_device_name(device)


def resolve_device(name: str) -> torch.device:
    """A ``--device`` name as a torch.device: ``cpu``, ``cuda``, ``cuda:N`` or ``auto`` (cuda when torch sees one,
    else cpu). Raises DpbenchError, before anything loads or trains, for a name torch does not parse, a device type
    dpbench does not run on (mps, xla, meta: torch parses them, then fails mid-run), a cuda device when torch sees
    none, or a cuda index past the devices torch sees."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise DpbenchError(f"unknown --device '{name}'; use cpu, cuda, cuda:N or auto") from None
    if device.type not in ("cpu", "cuda"):
        raise DpbenchError(f"--device {name}: dpbench runs on the CPU or CUDA; use cpu, cuda, cuda:N or auto")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DpbenchError(f"--device {name}: torch {torch.__version__} sees no CUDA device; use --device cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise DpbenchError(f"--device {name}: torch sees {count} CUDA device(s), cuda:0 to cuda:{count - 1}")
    return device


def environment_info(device: str | None = None) -> dict[str, Any]:
    """What a record or benchmark result says about where it ran: ``versions`` (dpbench's version and
    commit, ``dpbench.source.code_version``; python, torch and other packages), ``hardware`` (the CPU,
    the cores this process could use and why, torch's SIMD level and threads, OpenMP's wait policy,
    dpbench's malloc settings, the host, and
    ``device`` when given, e.g. ``device_name(policy.device)``), and ``date`` (ISO 8601, UTC)."""
    import torch

    from dpbench.source import code_version

    # dpbench's own commit first: a record must say which code made it (``dpbench.source``)
    versions = {"dpbench": code_version(), "python": sys.version.split()[0], "torch": torch.__version__}
    for name in ("numpy", "gymnasium", "pymunk", "diffusers"):
        try:
            module = __import__(name)
        except ImportError:  # pragma: no cover - optional packages
            continue
        version = getattr(module, "__version__", None) or getattr(module, "version", None)  # pymunk: .version
        if isinstance(version, str):
            versions[name] = version
    for name in ("robosuite", "mujoco"):  # read from package metadata: importing robosuite is slow
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    hardware = {
        "cpu": cpu_model(),
        "cpu_family": cpu_family(),  # family/model: tells CPU generations apart behind one model name
        "cores": os.cpu_count(),
        "usable_cores": usable_cores(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
        "torch_threads": torch.get_num_threads(),
        "cpu_capability": cpu_capability(),  # the SIMD kernels torch chose (AVX2, AVX512)
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "malloc": _allocator,  # configure_allocator's settings, or None (glibc defaults, or the user's)
        "host": socket.gethostname(),
    }
    if device is not None:
        hardware["device"] = device
    return {
        "versions": versions,
        "hardware": hardware,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
    }
