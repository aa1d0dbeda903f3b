"""robomimic env benchmark: per task, make / reset / step wall-times (low-dim, and with the two
84x84 cameras), and each scripted demonstrator's success rate, episode length and speed.

    python benchmarks/bench_robomimic_env.py [--steps 200] [--episodes 50] [--out results/robomimic_env.json]
        [--tasks lift,can] [--variants ph,mh] [--modes abs,delta] [--replace]

Steps hold the arm at its current pose (absolute mode), so the cost is the simulator's, not
motion-dependent contact work; camera steps render both cameras offscreen (MUJOCO_GL=egl).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
from timing import command_line

from dpbench.envs.robomimic.demonstrator import PLANNERS, run_episode
from dpbench.envs.robomimic.env import TASK_SPECS, RobomimicEnv
from dpbench.envs.robomimic.rotation import matrix_to_axis_angle
from dpbench.host import environment_info
from dpbench.results import write_json_atomic


def hold_action(env: RobomimicEnv, obs: dict) -> np.ndarray:
    parts = []
    for arm in range(env.spec_.n_arms):
        rot = matrix_to_axis_angle(env.control_rotation(arm))
        parts.append(np.concatenate([obs[f"robot{arm}_eef_pos"], rot, [-1.0]]))
    return np.concatenate(parts)


def env_timing(task: str, n_steps: int, cameras: tuple[str, ...]) -> dict:
    t0 = time.perf_counter()
    env = RobomimicEnv(task, cameras=cameras)
    make_s = time.perf_counter() - t0
    resets = []
    for s in range(5):
        t0 = time.perf_counter()
        obs, _ = env.reset(seed=s)
        resets.append(time.perf_counter() - t0)
    action = hold_action(env, obs)
    for _ in range(10):  # warm-up
        env.step(action)
    times = []
    for _ in range(n_steps):
        t0 = time.perf_counter()
        env.step(action)
        times.append(time.perf_counter() - t0)
    env.close()
    return {
        "make_s": round(make_s, 3),
        "reset_ms": round(1000 * statistics.median(resets), 2),
        "step_ms_median": round(1000 * statistics.median(times), 3),
        "step_ms_mean": round(1000 * float(np.mean(times)), 3),
        "steps": n_steps,
        "cameras": list(cameras),
    }


def demonstrator_stats(task: str, variant: str, n_episodes: int, seed_start: int, action_mode: str = "abs") -> dict:
    env = RobomimicEnv(task, action_mode=action_mode, variant=variant)
    ok, lengths = 0, []
    t0 = time.perf_counter()
    for seed in range(seed_start, seed_start + n_episodes):
        ep = run_episode(env, seed, variant)
        if ep is not None:
            ok += 1
            lengths.append(len(ep["actions"]))
    wall = time.perf_counter() - t0
    env.close()
    return {
        "episodes": n_episodes,
        "seeds": [seed_start, seed_start + n_episodes - 1],
        "successes": ok,
        "success_rate": ok / n_episodes,
        "mean_length": float(np.mean(lengths)) if lengths else None,
        "s_per_episode": round(wall / n_episodes, 3),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--steps",
        type=int,
        default=200,
        help="env steps to time per task; 0 skips the env timings (demonstrators only)",
    )
    ap.add_argument(
        "--episodes",
        type=int,
        default=50,
        help="demonstrator episodes per task and variant; 0 skips the demonstrators (env timings only)",
    )
    ap.add_argument("--seed-start", type=int, default=100000, help="the paper's test seeds by default")
    ap.add_argument("--tasks", default=",".join(TASK_SPECS))
    ap.add_argument("--variants", default="ph,mh", help="demonstrator variants to run, of those each task has")
    ap.add_argument("--modes", default="abs", help="action modes to run the demonstrators in: abs, delta or abs,delta")
    ap.add_argument("--out", default="results/robomimic_env.json")
    ap.add_argument(
        "--replace",
        action="store_true",
        help="start --out afresh; by default the entries of an existing --out that this run does not remeasure "
        "are kept (each entry dated; the earlier run's command, hardware and versions kept under earlier_runs)",
    )
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    tasks = [t for t in args.tasks.split(",") if t]
    modes = [m for m in args.modes.split(",") if m]
    variants = [v for v in args.variants.split(",") if v]
    if not variants or set(variants) - {"ph", "mh"}:
        ap.error(f"--variants {args.variants!r}: give ph, mh or ph,mh")
    if args.steps < 0 or (args.steps == 0 and args.replace):
        ap.error("--steps: 0 (skip the env timings, keeping the file's) or more, and 0 cannot go with --replace")
    for task in tasks:
        if task in PLANNERS and not set(variants) & set(PLANNERS[task].VARIANTS):
            print(
                f"{task}: no demonstrator variant among {args.variants} (it has {', '.join(PLANNERS[task].VARIANTS)})"
            )
    if not modes or set(modes) - {"abs", "delta"}:
        ap.error(f"--modes {args.modes!r}: give abs, delta or abs,delta")
    result = {
        "command": command_line(),
        "mujoco_gl": os.environ.get("MUJOCO_GL", "egl"),
        "envs": {},
        "demonstrators": {},
        **environment_info(),
    }
    previous = json.loads(Path(args.out).read_text()) if not args.replace and Path(args.out).exists() else {}
    for task in tasks if args.steps > 0 else []:
        low = env_timing(task, args.steps, ())
        cams = env_timing(task, max(args.steps // 4, 20), TASK_SPECS[task].default_cameras[:2])
        result["envs"][task] = {"low_dim": low, "cameras": cams, "date": result["date"]}
        print(
            f"{task:<10} make {low['make_s']:.2f} s, reset {low['reset_ms']:.0f} ms, "
            f"step {low['step_ms_median']:.2f} ms "
            f"(low-dim), {cams['step_ms_median']:.1f} ms with {'+'.join(cams['cameras'])}",
            flush=True,
        )
    for task in tasks if args.episodes > 0 else []:
        if task not in PLANNERS:
            continue
        for variant, mode in itertools.product([v for v in PLANNERS[task].VARIANTS if v in variants], modes):
            stats = demonstrator_stats(task, variant, args.episodes, args.seed_start, mode)
            stats["date"] = result["date"]
            key = f"{task}/{variant}" + ("" if mode == "abs" else f"/{mode}")
            result["demonstrators"][key] = stats
            print(
                f"{task:<10} {variant} ({mode}): success {stats['successes']}/{stats['episodes']} "
                f"({stats['success_rate']:.0%}), "
                f"mean length {stats['mean_length']}, {stats['s_per_episode']:.2f} s/episode",
                flush=True,
            )
    for section in ("envs", "demonstrators"):  # keep what this run did not measure, with its date
        kept = {k: {"date": previous.get("date"), **v} for k, v in previous.get(section, {}).items()}
        result[section] = {**kept, **result[section]}
    if previous:
        earlier = {k: v for k, v in previous.items() if k not in ("envs", "demonstrators", "earlier_runs")}
        result["earlier_runs"] = [*previous.get("earlier_runs", []), earlier]
    write_json_atomic(Path(args.out), result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
