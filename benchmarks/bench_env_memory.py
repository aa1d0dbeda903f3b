"""Resident memory of one robomimic evaluation env, per task and observation mode.

    MUJOCO_GL=egl python benchmarks/bench_env_memory.py [--envs 4] [--tasks lift,can] [--modes low_dim,image]
        [--out results/env_memory.json]

An evaluation steps its test episodes side by side, as many as fit in a share of the available memory
(``dpbench.evaluate.episodes_per_wave``, from the mode's ``env_memory_mb`` and ``env_process_mb``). Each
(task, mode) is measured in a fresh process, as an env worker builds its envs: one env built, reset and stepped
(``first_env_process_mb``: the process with its imports, robosuite, MuJoCo, the GL stack, and that env), then
``--envs`` more; the figure per env is the growth in resident set size (``/proc/self/status`` VmRSS) divided by
``--envs``, and a worker's own cost is the first figure less one env. Steps send the delta action mode's zeros
(hold still), so the memory is the simulator's, not a motion's.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import sys
from pathlib import Path
from queue import Empty

import numpy as np
from timing import write_result

from dpbench.envs.robomimic.env import TASK_SPECS

MODES = ("low_dim", "image")


def rss_mb() -> float:
    """This process's resident set size, MB (VmRSS)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def measure(task: str, mode_name: str, n_envs: int) -> dict[str, float]:
    """In this (fresh) process: RSS after one env, and the growth per env over ``n_envs`` more."""
    from dpbench.envs.robomimic.io import MODES as MODE_CLASSES
    from dpbench.tasks import get_task
    from dpbench.vector import EnvBatch, EnvMaker

    mode = MODE_CLASSES[mode_name](task, "delta")
    maker = EnvMaker(get_task(task).gym_id, dict(mode.env_kwargs), mode)

    def build(n: int) -> EnvBatch:
        batch = EnvBatch(maker, n)  # in this process, as a one-thread evaluation runs them
        batch.reset(seed=100000)
        for _ in range(5):
            batch.step(np.zeros((n, *mode.action_space.shape), np.float32))
        return batch

    first = build(1)
    base = rss_mb()
    more = build(n_envs)
    grown = rss_mb()
    first.close(), more.close()
    return {"first_env_process_mb": round(base, 1), "per_env_mb": round((grown - base) / n_envs, 1)}


def _child(task: str, mode: str, n_envs: int, queue: mp.Queue) -> None:
    queue.put(measure(task, mode, n_envs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--envs", type=int, default=4, help="envs built after the first (default 4)")
    ap.add_argument("--tasks", default=",".join(TASK_SPECS), help="robomimic tasks, comma-separated")
    ap.add_argument("--modes", default=",".join(MODES), help="observation modes: low_dim, image")
    ap.add_argument("--out", default="results/env_memory.json", help="where the JSON result goes")
    args = ap.parse_args()
    ctx = mp.get_context("spawn")  # a fresh interpreter per measurement: nothing of the last one's heap
    rows = []
    for task in args.tasks.split(","):
        for mode in args.modes.split(","):
            queue = ctx.Queue()
            proc = ctx.Process(target=_child, args=(task, mode, args.envs, queue))
            proc.start()
            try:  # a child that dies (EGL missing, out of memory) sends nothing
                row = {"task": task, "mode": mode, **queue.get(timeout=900)}
            except Empty:
                proc.kill()
                sys.exit(f"{task} {mode}: the measuring process died or hung (exit {proc.exitcode}); MUJOCO_GL=egl?")
            proc.join()
            rows.append(row)
            print(
                f"{task:10s} {mode:8s} first env's process {row['first_env_process_mb']:7.1f} MB, "
                f"then {row['per_env_mb']:6.1f} MB per env",
                flush=True,
            )
    write_result(args.out, {"envs": args.envs, "rows": rows})


if __name__ == "__main__":
    main()
