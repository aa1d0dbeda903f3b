"""Why a robomimic evaluation takes ~2x as long when two cells share the 2 cores: env processes, not interference.

    python benchmarks/bench_eval_sharing.py [--episodes 50] [--out results/perf/eval_sharing.json]

A robomimic evaluation spreads its test episodes' envs over one worker process per torch thread
(``dpbench.evaluate.make_env_batch``: ``task.parallel_eval``). A cell alone at 2 threads therefore steps
its envs on both cores, and a cell of a sweep at one thread (``--workers 2``) on one. This runs the one
evaluation loop (``dpbench.evaluate.evaluate``) on Square ph, low_dim, in fresh processes, in three
settings:

* ``alone_t2``: one evaluation at 2 torch threads (2 env processes), nothing beside it;
* ``alone_t1``: one evaluation at 1 torch thread (1 env process), nothing beside it;
* ``paired_t1``: two 1-thread evaluations at once (different test seeds), one per core.

If sharing the cores cost nothing, ``paired_t1`` would take as long as ``alone_t1``, and ``alone_t2``
about half (less the inference, which gains less from a second thread). The policy is the quick-preset
DP-C at random weights (``square_diffusion``): its actions fail every episode, so each runs
to the 400-step horizon and every setting does the same env work. Each row reports the wall seconds,
the inference's share (calls x mean chunk latency), and the CPU seconds of the process and its env
workers. Nothing else should run meanwhile.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path
from typing import Any

from timing import run_together, write_result

HERE = Path(__file__).resolve()
SETTINGS = {"alone_t2": [2], "alone_t1": [1], "paired_t1": [1, 1]}


def square_diffusion() -> Any:
    """The quick-preset DP-C at Square low_dim's shapes, random weights, its normalizers fitted to uniform
    [-1, 1] data."""
    import numpy as np
    import torch

    from dpbench.config import build_configs
    from dpbench.policies import get_policy_class
    from dpbench.tasks import get_task

    torch.manual_seed(0)
    cls = get_policy_class("diffusion")
    spec = get_task("square").obs_mode("low_dim").spec
    policy = cls(spec, build_configs(cls, "quick", {})[0])
    rng = np.random.default_rng(0)
    arrays = {k: rng.uniform(-1, 1, (1024, *shape)).astype(np.float32) for k, shape in spec.obs_shapes.items()}
    policy.fit_statistics({**arrays, "action": rng.uniform(-1, 1, (1024, spec.action_dim)).astype(np.float32)})
    return policy


def worker(threads: int, episodes: int, seed_start: int) -> dict[str, Any]:
    import torch

    from dpbench.evaluate import evaluate
    from dpbench.tasks import get_task

    torch.set_num_threads(threads)
    policy = square_diffusion()
    task = get_task("square")
    print("ready", flush=True)
    sys.stdin.readline()  # the parent's "go", once every copy is ready
    t0 = time.perf_counter()
    res = evaluate(policy, task, task.obs_mode("low_dim"), n_episodes=episodes, seed_start=seed_start)
    wall = time.perf_counter() - t0
    cpu = sum(
        getattr(resource.getrusage(who), f)
        for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
        for f in ("ru_utime", "ru_stime")
    )
    return {
        "threads": threads,
        "wall_s": round(wall, 1),
        "inference_s": round(res.chunk_latency_ms * res.n_policy_calls / 1000, 1),
        "chunk_latency_ms": round(res.chunk_latency_ms, 1),
        "policy_calls": res.n_policy_calls,
        "env_steps_per_episode": round(sum(res.episode_lengths) / len(res.episode_lengths), 1),
        "cpu_s_with_env_workers": round(cpu, 1),  # includes the set-up before "go"
    }


def run(threads: list[int], episodes: int) -> list[dict[str, Any]]:
    """One evaluation per entry of ``threads``, all at once, each in a fresh process (test seeds apart)."""
    argvs = [
        [sys.executable, str(HERE), "--worker", str(t), "--episodes", str(episodes), "--seed-start", str(s)]
        for t, s in zip(threads, (100_000, 100_000 + episodes))
    ]
    return run_together(argvs, {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--episodes", type=int, default=50, help="test episodes per evaluation (default 50, the paper's)")
    ap.add_argument("--out", default="results/perf/eval_sharing.json", help="where the JSON result goes")
    ap.add_argument("--worker", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--seed-start", type=int, default=100_000, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.episodes, args.seed_start)))
        return

    rows = {}
    for name, threads in SETTINGS.items():
        rows[name] = run(threads, args.episodes)
        for r in rows[name]:
            print(
                f"{name:10s} {r['threads']} thread(s): {r['wall_s']:6.1f} s wall, inference {r['inference_s']:5.1f} s "
                f"({r['policy_calls']} calls x {r['chunk_latency_ms']} ms), {r['cpu_s_with_env_workers']} CPU-s"
            )
    alone = rows["alone_t1"][0]["wall_s"]
    write_result(
        args.out,
        {
            "episodes": args.episodes,
            "paired_over_alone_t1": [round(r["wall_s"] / alone, 2) for r in rows["paired_t1"]],
            "alone_t1_over_alone_t2": round(alone / rows["alone_t2"][0]["wall_s"], 2),
            "rows": rows,
        },
    )


if __name__ == "__main__":
    main()
