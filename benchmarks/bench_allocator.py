"""Training steps and env steps under glibc's default malloc settings and under dpbench's
(``dpbench.host.configure_allocator``), as a ratio measured in one run.

    python benchmarks/bench_allocator.py [--seconds 20] [--repeats 2] [--task square]
        [--policies lstm_gmm,ibc,diffusion,diffusion_transformer,bet] [--out results/perf/allocator.json]

Each measurement is a fresh process pinned to one core with one torch thread, as a sweep cell runs:

* ``train:<policy>``: the shared training step (``dpbench.train.train_step``: loss, backward, AdamW,
  EMA where the preset has it) of the policy's quick preset for ``--task`` (low-dim shapes, in the
  paper's action space for the policy) on one synthetic batch, for ``--seconds`` after a warm-up.
* ``env``: steps of the task's low-dim env with uniform random delta actions in [-1, 1], resetting when an
  episode ends (a reset is counted in the window it falls in: it allocates the sim anew, ~25k page faults).

Settings, each in its own process (glibc reads its malloc variables at start-up):

* ``glibc``: glibc's defaults (``DPBENCH_MALLOC=glibc`` keeps dpbench's settings away).
* ``dpbench``: what ``configure_allocator`` sets today.

Settings alternate within each repeat (the order flips every repeat), so drift in the machine's
speed falls on both. Reported per measurement: steps/s, minor page faults per step, and the
fraction of CPU time spent in the kernel, per setting; and the ratio dpbench / glibc of the
median steps/s.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

from timing import write_result

HERE = Path(__file__).resolve()
SETTINGS = ("glibc", "dpbench")


def _window(step, seconds: float) -> dict:
    for _ in range(5):
        step()
    before, n, t0 = resource.getrusage(resource.RUSAGE_SELF), 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    wall, after = time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF)
    user, sys_s = after.ru_utime - before.ru_utime, after.ru_stime - before.ru_stime
    return {
        "steps_per_s": n / wall,
        "minflt_per_step": (after.ru_minflt - before.ru_minflt) / max(n, 1),
        "kernel_share": sys_s / max(user + sys_s, 1e-9),
    }


def train_worker(policy_name: str, task_name: str, seconds: float) -> dict:
    import torch

    from dpbench.config import build_configs
    from dpbench.paper_cells import PAPER_ACTION_MODE
    from dpbench.policies import get_policy_class
    from dpbench.results import PAPER_POLICY_NAMES
    from dpbench.tasks import get_task
    from dpbench.train import EMA, make_optimizer, train_step

    torch.manual_seed(0)
    # the action space the paper trains this policy in (DP absolute, the baselines delta)
    action_mode = PAPER_ACTION_MODE.get(PAPER_POLICY_NAMES.get(policy_name, policy_name))
    spec = get_task(task_name).obs_mode("low_dim", action_mode).spec
    cls = get_policy_class(policy_name)
    pcfg, tcfg = build_configs(cls, "quick", task=task_name)
    policy = cls(spec, pcfg)
    gen = torch.Generator().manual_seed(0)
    stats = {k: torch.randn(256, *spec.obs_shapes[k], generator=gen).numpy() for k in spec.lowdim_keys}
    policy.fit_statistics({**stats, "action": torch.randn(256, spec.action_dim, generator=gen).numpy()})
    b = tcfg.batch_size
    batch = {k: torch.randn(b, policy.n_obs_steps, *spec.obs_shapes[k], generator=gen) for k in spec.lowdim_keys}
    batch["action"] = torch.randn(b, policy.horizon, spec.action_dim, generator=gen)
    optimizer, scheduler = make_optimizer(policy, tcfg)
    ema = EMA(policy, tcfg.ema_power, tcfg.ema_max_decay) if tcfg.ema else None
    i = 0

    def step() -> None:
        nonlocal i
        train_step(policy, batch, optimizer, scheduler, ema, tcfg, i % tcfg.steps)
        i += 1

    return _window(step, seconds)


def env_worker(task_name: str, seconds: float) -> dict:
    import numpy as np

    from dpbench.tasks import get_task
    from dpbench.vector import EnvMaker

    task = get_task(task_name)
    mode = task.obs_mode("low_dim", "delta" if "delta" in task.action_modes else None)  # bounded actions
    env = EnvMaker(task.gym_id, dict(mode.env_kwargs), mode)()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = np.maximum(env.action_space.low, -1.0), np.minimum(env.action_space.high, 1.0)

    def step() -> None:
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high))
        if terminated or truncated:
            env.reset()

    try:
        return _window(step, seconds)
    finally:
        env.close()


def measure(kind: str, setting: str, task: str, seconds: float, core: int) -> dict:
    env = dict(os.environ, MUJOCO_GL=os.environ.get("MUJOCO_GL", "egl"), DPBENCH_THREADS="1")
    for name in [k for k in env if k.startswith("MALLOC_") or k in ("GLIBC_TUNABLES", "LD_PRELOAD", "DPBENCH_MALLOC")]:
        del env[name]
    if setting == "glibc":
        env["DPBENCH_MALLOC"] = "glibc"  # glibc's defaults (host.configure_allocator)
    cmd = ["taskset", "-c", str(core), sys.executable, str(HERE), "--worker", kind, "--task", task]
    out = subprocess.run(cmd + ["--seconds", str(seconds)], env=env, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{kind} ({setting}) failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per process, seconds")
    ap.add_argument("--repeats", type=int, default=2, help="processes per setting and measurement")
    ap.add_argument("--task", default="square", help="a robomimic task: its low-dim shapes and env")
    ap.add_argument("--policies", default="lstm_gmm,ibc,diffusion,diffusion_transformer,bet", help="comma list")
    ap.add_argument("--no-env", action="store_true", help="skip the env-step measurement")
    ap.add_argument("--core", type=int, default=0, help="the core every measured process is pinned to")
    ap.add_argument("--out", default="results/perf/allocator.json", help="where the JSON result goes")
    ap.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch

        torch.set_num_threads(1)
        from dpbench.host import configure_allocator

        if args.worker == "env":
            result = env_worker(args.task, args.seconds)
        else:
            result = train_worker(args.worker.split(":", 1)[1], args.task, args.seconds)
        result["malloc"] = configure_allocator()
        print(json.dumps(result))
        return

    from dpbench.errors import DpbenchError
    from dpbench.tasks import get_task

    try:
        has_low_dim = "low_dim" in get_task(args.task).obs_modes
    except DpbenchError as e:
        ap.error(f"--task: {e}")
    if not has_low_dim:
        ap.error(f"--task {args.task}: no low_dim observations; give a robomimic task (lift, can, square, ...)")
    kinds = [f"train:{p}" for p in args.policies.split(",") if p] + ([] if args.no_env else ["env"])
    rows = []
    for kind in kinds:
        runs: dict[str, list[dict]] = {s: [] for s in SETTINGS}
        for rep in range(args.repeats):
            for setting in SETTINGS if rep % 2 == 0 else SETTINGS[::-1]:
                runs[setting].append(measure(kind, setting, args.task, args.seconds, args.core))
        row: dict = {"measurement": kind}
        for setting, rs in runs.items():
            row[setting] = {
                "steps_per_s": [round(r["steps_per_s"], 3) for r in rs],
                "minflt_per_step": round(statistics.median(r["minflt_per_step"] for r in rs), 1),
                "kernel_share": round(statistics.median(r["kernel_share"] for r in rs), 3),
                "malloc": rs[0]["malloc"],
            }
        med = {s: statistics.median(row[s]["steps_per_s"]) for s in SETTINGS}
        row["ratio_dpbench_to_glibc"] = round(med["dpbench"] / med["glibc"], 3)
        rows.append(row)
        print(
            f"{kind:30s} glibc {med['glibc']:8.2f} steps/s ({row['glibc']['minflt_per_step']:.0f} faults/step, "
            f"{row['glibc']['kernel_share']:.0%} kernel)  dpbench {med['dpbench']:8.2f} steps/s "
            f"({row['dpbench']['minflt_per_step']:.0f} faults/step, {row['dpbench']['kernel_share']:.0%} kernel)  "
            f"ratio {row['ratio_dpbench_to_glibc']:.2f}",
            flush=True,
        )
    write_result(args.out, {"seconds": args.seconds, "repeats": args.repeats, "task": args.task, "rows": rows})


if __name__ == "__main__":
    main()
