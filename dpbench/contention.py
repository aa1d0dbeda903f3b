"""How contended the CPU was while something ran: ``ContentionMeter`` brackets intervals (a cell's
training segments, its evaluations) and reports the cores this process kept busy, the cores other
processes took, and whether those crowded the cores this process left free. Records store its
``summary()`` under ``wall.contention`` so that a timing says whether it was measured alone.

Linux only: it reads ``/proc/stat`` (machine-wide busy time) and ``/proc/<pid>/stat`` (children
still running, which ``os.times`` counts only once they exit); elsewhere its figures are None.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path


def _live_children_cpu_s(tick: float) -> float:
    """CPU seconds of this process's running children (e.g. an evaluation's env workers), which
    ``os.times`` counts only once they have exited."""
    total, me = 0.0, str(os.getpid())
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[1] == me:  # ppid; utime and stime follow at fields 11 and 12
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def _cpu_times() -> tuple[float, float]:
    """(all CPUs' busy seconds since boot, this process's CPU seconds incl. its children, live or exited)."""
    busy, live = 0.0, 0.0
    try:
        tick = os.sysconf("SC_CLK_TCK")
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)  # idle + iowait
        busy = (sum(fields[:8]) - idle) / tick
        live = _live_children_cpu_s(tick)
    except (OSError, ValueError, IndexError):
        pass
    t = os.times()
    return busy, t.user + t.system + t.children_user + t.children_system + live


@dataclass
class ContentionMeter:
    """How much of the usable cores other processes took, and the load average, over some intervals.

    ``start()`` ... ``stop()`` brackets an interval (several may be added up). ``others_cores`` is the
    other processes' CPU time over the wall time (the cores they kept busy on average);
    ``others_cpu_share`` is that over the machine's cores (/proc/stat is machine-wide). The interval was
    ``contended`` when the others used more than the cores this process left free (machine cores -
    its threads) by over a tenth of a core: a sibling sweep worker on its own core does not count, a
    second job on our cores does. ``own_cores`` is this process's CPU time, its children's (an
    evaluation's env workers) included, over the wall time: the cores the cell kept busy, which its
    torch thread count only bounds (docs/DESIGN.md).
    Linux only (elsewhere the figures are None)."""

    wall_s: float = 0.0
    others_cpu_s: float = 0.0
    own_cpu_s: float | None = 0.0  # None: part of the sums came from a process that did not measure it
    load_sum: float = 0.0
    intervals: int = 0
    _t0: tuple[float, float, float] | None = None

    def start(self) -> None:
        """Open an interval."""
        self._t0 = (time.perf_counter(), *_cpu_times())

    def stop(self) -> None:
        """Close the open interval and add it up (a no-op when none is open)."""
        if self._t0 is None:
            return
        t, busy, own = time.perf_counter(), *_cpu_times()
        self.wall_s += t - self._t0[0]
        self.others_cpu_s += max(0.0, (busy - self._t0[1]) - (own - self._t0[2]))
        if self.own_cpu_s is not None:
            self.own_cpu_s += max(0.0, own - self._t0[2])
        try:
            self.load_sum += os.getloadavg()[0]
        except OSError:
            pass
        self.intervals += 1
        self._t0 = None

    def totals(self) -> dict[str, float]:
        """The sums so far, an open interval's part up to now included (it stays open): what a resume
        checkpoint keeps, so that a stopped and resumed cell's record covers every process that ran it."""
        done = replace(self)
        done.stop()
        return {
            "wall_s": done.wall_s,
            "others_cpu_s": done.others_cpu_s,
            "own_cpu_s": done.own_cpu_s,
            "load_sum": done.load_sum,
            "intervals": done.intervals,
        }

    def add(self, totals: Mapping[str, float]) -> None:
        """Add an earlier process's ``totals()`` to these sums (missing keys count 0, but a missing or None
        ``own_cpu_s`` with wall time behind it makes this meter's own CPU time unknown)."""
        wall = float(totals.get("wall_s", 0.0))
        self.wall_s += wall
        self.others_cpu_s += float(totals.get("others_cpu_s", 0.0))
        own = totals.get("own_cpu_s")
        if own is None and wall > 0:
            self.own_cpu_s = None
        elif self.own_cpu_s is not None:
            self.own_cpu_s += float(own or 0.0)
        self.load_sum += float(totals.get("load_sum", 0.0))
        self.intervals += int(totals.get("intervals", 0))

    def summary(self, threads: int) -> dict[str, float | bool | None]:
        """The figures a record stores; ``threads`` is the torch thread count the process ran with."""
        if not self.intervals or self.wall_s <= 0:
            return {
                "own_cores": None,
                "others_cores": None,
                "others_cpu_share": None,
                "loadavg_1min": None,
                "contended": None,
            }
        cores = os.cpu_count() or 1  # /proc/stat counts every core of the machine, whatever our affinity
        others = self.others_cpu_s / self.wall_s
        return {
            "own_cores": None if self.own_cpu_s is None else round(self.own_cpu_s / self.wall_s, 3),
            "others_cores": round(others, 3),
            "others_cpu_share": round(min(1.0, others / cores), 3),
            "loadavg_1min": round(self.load_sum / self.intervals, 2),
            "contended": bool(others > max(0, cores - threads) + 0.1),
        }
