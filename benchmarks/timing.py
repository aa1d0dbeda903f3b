"""Helpers shared by the benchmark scripts (run them as ``python benchmarks/NAME.py``): timing, workers started
together, and the result writer."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def median_time(fn: Callable[[], Any], repeats: int, warmup: int = 1) -> float:
    """Median wall seconds of ``fn()`` over ``repeats`` calls, after ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run_together(argvs: list[list[str]], env: dict[str, str]) -> list[dict[str, Any]]:
    """Start one process per argv, wait until each prints "ready", send every one "go" at once, and return the
    JSON object each prints last. The workers build their state first, so their timed windows overlap."""
    procs = [
        subprocess.Popen(argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for argv in argvs
    ]
    for p in procs:
        assert p.stdout is not None and p.stdout.readline().strip() == "ready", f"worker {p.args} failed to start"
    for p in procs:
        assert p.stdin is not None
        p.stdin.write("go\n")
        p.stdin.flush()
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def command_line() -> str:
    """The command that ran this benchmark, its script named relative to the repository (no machine path)."""
    return " ".join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def write_result(out: str, fields: dict[str, Any]) -> None:
    """Write a benchmark's JSON result to ``out`` (atomically): the command that ran it (script path relative to
    the repository, so no machine path), ``fields``, then the versions, hardware and date
    (``dpbench.host.environment_info``)."""
    from dpbench.host import environment_info
    from dpbench.results import write_json_atomic

    write_json_atomic(Path(out), {"command": command_line(), **fields, **environment_info()})
    print(f"wrote {out}")
