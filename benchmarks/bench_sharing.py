"""What one process loses when a second runs beside it on the other core, per workload, in one run.

    python benchmarks/bench_sharing.py [--seconds 15] [--envs 50] [--out results/perf/sharing.json]

docs/measurements.md reports that two robomimic cells side by side, one torch thread each, take
1.8-2.4x as long per 50-episode evaluation as one cell alone, while small single-thread probes lose
little. This benchmark is those probes, plus the evaluation's own env stepping, so the claim can be
rerun. Each workload runs alone, then as two copies at once (one per core), in fresh processes
pinned to one thread (torch, OpenMP, BLAS); each copy builds its state, waits until both are
ready, then counts iterations for ``--seconds``. The ratio is the paired rate over the solo rate:
1.0 means no loss, 0.5 means two copies on two cores gained nothing over one. ``A+B`` runs workload A
beside workload B instead of two copies (``envbatch+mlp``: an evaluation's env stepping beside training).

Workloads (one iteration each):

* ``python``: 100,000 integer additions in a Python loop.
* ``matmul``: one 512 x 512 float64 numpy product (tanh-squashed, so values stay finite).
* ``mlp``: one forward-backward-Adam step of a 4-layer, 128-wide MLP on 16,448 rows (Square's
  training windows: 64 windows x 257 rows is the same order).
* ``env``: one step of one Square ph env (robosuite via ``dpbench.envs``) under a zero action.
* ``envbatch``: one lockstep step of ``--envs`` Square envs in this process, as the evaluation
  steps its test episodes (``dpbench.vector.EnvBatch``, one process), zero actions; an env whose
  episode ends is reset.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

from timing import run_together, write_result

HERE = Path(__file__).resolve()
WORKLOADS = ("python", "matmul", "mlp", "env", "envbatch")
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def build(kind: str, n_envs: int) -> Callable[[], None]:
    """The workload's state, built before the timed window; returns one iteration."""
    import numpy as np

    if kind == "python":

        def python_loop() -> None:
            s = 0
            for i in range(100_000):
                s += i

        return python_loop
    if kind == "matmul":
        a = np.random.default_rng(0).standard_normal((512, 512))

        def product() -> None:
            nonlocal a
            a = np.tanh(a @ a.T / 512)

        return product
    import torch

    torch.set_num_threads(1)
    if kind == "mlp":
        torch.manual_seed(0)
        layers: list[torch.nn.Module] = []
        for _ in range(4):
            layers += [torch.nn.Linear(128, 128), torch.nn.Mish()]
        net = torch.nn.Sequential(*layers)
        opt = torch.optim.Adam(net.parameters(), lr=1e-4)
        x, y = torch.randn(16_448, 128), torch.randn(16_448, 128)

        def train_step() -> None:
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return train_step
    from dpbench.tasks import get_task
    from dpbench.vector import EnvBatch, EnvMaker

    task = get_task("square")
    mode = task.obs_mode("low_dim")
    batch = EnvBatch(EnvMaker(task.gym_id, dict(mode.env_kwargs), mode), 1 if kind == "env" else n_envs)
    batch.reset(seed=100_000)
    zeros = np.zeros((batch.n, mode.spec.action_dim), dtype=np.float32)
    seed = [100_000 + batch.n]

    def env_step() -> None:
        _, _, terminated, truncated, _ = batch.step(zeros)
        if (terminated | truncated).any():  # keep every env stepping: a fresh episode for all
            batch.reset(seed=seed[0])
            seed[0] += batch.n

    return env_step


def worker(kind: str, seconds: float, n_envs: int) -> dict:
    step = build(kind, n_envs)
    step()  # warm-up
    print("ready", flush=True)
    sys.stdin.readline()  # the parent's "go", once every copy is ready
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    cpu = time.process_time()
    return {"per_s": n / (time.perf_counter() - t0), "iterations": n, "process_cpu_s": round(cpu, 1)}


def run(kinds: list[str], seconds: float, n_envs: int) -> list[float]:
    """Iterations per second of each workload in ``kinds``, all running at once, one process each."""
    argvs = [
        [sys.executable, str(HERE), "--worker", k, "--seconds", str(seconds), "--envs", str(n_envs)] for k in kinds
    ]
    return [r["per_s"] for r in run_together(argvs, {**os.environ, **ONE_THREAD})]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=15.0, help="timed window per process (default 15)")
    ap.add_argument(
        "--envs", type=int, default=50, help="Square envs in the envbatch workload (default 50, the evaluation's)"
    )
    ap.add_argument(
        "--workloads",
        default=",".join([*WORKLOADS, "envbatch+mlp"]),
        help=f"comma list of {', '.join(WORKLOADS)} (two copies at once), or A+B (A beside B)",
    )
    ap.add_argument("--out", default="results/perf/sharing.json", help="where the JSON result goes")
    ap.add_argument("--worker", choices=WORKLOADS, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.seconds, args.envs)))
        return

    rows = []
    for item in args.workloads.split(","):
        kinds = item.split("+") if "+" in item else [item, item]  # "A+B": A beside B; "A": two copies of A
        if len(kinds) != 2 or not set(kinds) <= set(WORKLOADS):
            sys.exit(f"unknown workload {item!r}; choose from {', '.join(WORKLOADS)}, or A+B of two")
        solo = [run([k], args.seconds, args.envs)[0] for k in dict.fromkeys(kinds)]
        solo_of = dict(zip(dict.fromkeys(kinds), solo))
        pair = run(kinds, args.seconds, args.envs)
        row = {
            "workload": item,
            "solo_per_s": [round(solo_of[k], 2) for k in kinds],
            "pair_per_s": [round(p, 2) for p in pair],
            "pair_ratio_to_solo": [round(p / solo_of[k], 3) for p, k in zip(pair, kinds)],
        }
        rows.append(row)
        print(f"{item:14s} solo {row['solo_per_s']}/s  paired {row['pair_per_s']}  ratio {row['pair_ratio_to_solo']}")
    write_result(args.out, {"seconds": args.seconds, "envs": args.envs, "rows": rows})


if __name__ == "__main__":
    main()
