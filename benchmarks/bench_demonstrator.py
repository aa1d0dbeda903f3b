"""Benchmark the scripted Push-T demonstrator: success rate and generation speed.

    python benchmarks/bench_demonstrator.py --episodes 100 --start-seed 0 --out results/demonstrator.json

Runs ``collect_episode`` on seeds start..start+episodes-1 (one process, one core), prints the
success rate (coverage > 0.95 within 300 steps), seconds per episode and total time, and writes
them to a JSON file with the date, host, CPU, Python/pymunk versions and the command line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import socket
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pymunk
from tqdm import tqdm

from dpbench.envs.pusht.episodes import collect_episode, episode_mode
from dpbench.host import cpu_model


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="number of seeds to run")
    parser.add_argument("--start-seed", type=int, default=0, help="first seed")
    parser.add_argument("--max-steps", type=int, default=300, help="step limit per episode")
    parser.add_argument("--out", type=Path, default=Path("results/demonstrator.json"), help="JSON output")
    args = parser.parse_args(argv)

    seeds = list(range(args.start_seed, args.start_seed + args.episodes))
    per_seed, lengths, modes = [], [], Counter()
    start = time.perf_counter()
    for seed in tqdm(seeds, desc="demonstrations", unit="ep"):
        t0 = time.perf_counter()
        ep = collect_episode(seed, max_steps=args.max_steps)
        row = {"seed": seed, "success": ep is not None, "seconds": round(time.perf_counter() - t0, 3)}
        if ep is not None:
            row["steps"] = len(ep["action"])
            row["mode"] = episode_mode(ep)
            lengths.append(row["steps"])
            modes[row["mode"]] += 1
        per_seed.append(row)
    total = time.perf_counter() - start

    n_ok = sum(r["success"] for r in per_seed)
    rate = n_ok / max(len(seeds), 1)
    result = {
        "benchmark": "pusht_scripted_demonstrator",
        "episodes": len(seeds),
        "start_seed": args.start_seed,
        "max_steps": args.max_steps,
        "successes": n_ok,
        "success_rate": rate,
        "failed_seeds": [r["seed"] for r in per_seed if not r["success"]],
        "total_seconds": round(total, 2),
        "seconds_per_episode": round(total / max(len(seeds), 1), 3),
        "mean_steps_successful": round(float(np.mean(lengths)), 1) if lengths else None,
        "median_steps_successful": float(np.median(lengths)) if lengths else None,
        "first_circling_mode_counts": dict(modes),
        "per_seed": per_seed,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "hostname": socket.gethostname(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "pymunk": pymunk.version,
        "numpy": np.__version__,
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
    }
    print(
        f"success rate {rate:.1%} ({n_ok}/{len(seeds)}), {result['seconds_per_episode']:.2f} s/episode, "
        f"total {total:.1f} s, mean length {result['mean_steps_successful']} steps, "
        f"first circling modes {dict(modes)}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
