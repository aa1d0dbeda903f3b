"""Training throughput when the CPU is shared: quick DP training alone, beside a second training,
and beside a plain numpy CPU hog, each as a ratio to running alone, in one run.

    python benchmarks/bench_contention.py [--seconds 20] [--out results/perf/contention.json]

OpenMP settings are compared, each in fresh processes (libgomp reads them when torch loads it):

* ``before``: what dpbench did until 2026-11-30: libgomp's default wait (worker threads spin for
  300,000 iterations between parallel regions before they sleep).
* ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at once).
* ``spinN``: ``GOMP_SPINCOUNT=N`` (spin N iterations, then sleep).
* ``dpbench``: whatever ``dpbench.host.configure_openmp`` sets today.

Threads are torch's default in every setting (``dpbench.host.default_threads()`` on this machine).

Every training process runs quick-preset Diffusion Policy steps (UNet 64/128/256, batch 64, AdamW)
on synthetic Push-T-shaped batches for ``--seconds`` after a short warm-up and reports its steps/s.
Fair sharing of the cores would keep half of the solo rate for each of two trainings.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()


def train_worker(seconds: float) -> dict:
    import torch

    from dpbench.config import build_configs
    from dpbench.diffusion.policy import DiffusionUnetPolicy
    from dpbench.host import default_threads
    from dpbench.tasks import get_task

    torch.set_num_threads(default_threads())
    torch.manual_seed(0)
    mode = get_task("pusht").obs_mode("keypoints")
    pcfg, tcfg = build_configs(DiffusionUnetPolicy, "quick")
    policy = DiffusionUnetPolicy(mode.spec, pcfg)
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = {
        "obs": torch.rand(tcfg.batch_size, pcfg.n_obs_steps, 20),
        "action": torch.rand(tcfg.batch_size, pcfg.horizon, 2),
    }

    def step() -> None:
        loss = policy.compute_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(5):
        step()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        step()
        n += 1
    return {"steps_per_s": n / (time.perf_counter() - t0), "threads": torch.get_num_threads()}


def hog_worker(seconds: float) -> dict:
    import numpy as np

    a = np.random.default_rng(0).standard_normal((512, 512))
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a = np.tanh(a @ a.T / 512)
        n += 1
    return {"matmuls_per_s": n / (time.perf_counter() - t0)}


def setting_env(setting: str) -> dict[str, str]:
    """The OpenMP variables of a setting (see the module docstring)."""
    if setting == "passive":
        return {"OMP_WAIT_POLICY": "PASSIVE"}
    if setting.startswith("spin"):
        return {"GOMP_SPINCOUNT": setting[4:]}
    if setting == "dpbench":
        from dpbench.host import openmp_defaults

        return openmp_defaults()
    return {}


def launch(kind: str, setting: str, seconds: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    env.update(setting_env(setting), BENCH_SETTING=setting)
    # the worker imports torch before dpbench, so libgomp sees exactly these variables
    return subprocess.Popen(
        [sys.executable, str(HERE), "--worker", kind, "--seconds", str(seconds)],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def run(kinds: list[str], setting: str, seconds: float) -> list[dict]:
    procs = [launch(k, setting, seconds) for k in kinds]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=20.0, help="measured window per process")
    ap.add_argument("--out", default="results/perf/contention.json")
    ap.add_argument("--settings", default="before,passive,dpbench", help="comma list: before, passive, spinN, dpbench")
    ap.add_argument("--worker", choices=["train", "hog"], default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        import torch  # noqa: F401  (libgomp reads its settings now, before dpbench could set any)

        result = train_worker(args.seconds) if args.worker == "train" else hog_worker(args.seconds)
        result["openmp"] = setting_env(os.environ["BENCH_SETTING"]) or "libgomp default"
        print(json.dumps(result))
        return

    from timing import write_result

    rows = []
    for setting in args.settings.split(","):
        (solo,) = run(["train"], setting, args.seconds)
        pair = run(["train", "train"], setting, args.seconds)
        with_hog = run(["train", "hog"], setting, args.seconds)
        row = {
            "setting": setting,
            "threads": solo["threads"],
            "openmp": solo["openmp"],
            "solo_steps_per_s": round(solo["steps_per_s"], 2),
            "pair_steps_per_s": [round(p["steps_per_s"], 2) for p in pair],
            "pair_ratio_to_solo": [round(p["steps_per_s"] / solo["steps_per_s"], 3) for p in pair],
            "beside_hog_steps_per_s": round(with_hog[0]["steps_per_s"], 2),
            "beside_hog_ratio_to_solo": round(with_hog[0]["steps_per_s"] / solo["steps_per_s"], 3),
            "hog_matmuls_per_s": round(with_hog[1]["matmuls_per_s"], 1),
        }
        rows.append(row)
        print(
            f"{setting:6s} threads {row['threads']}  solo {row['solo_steps_per_s']:.1f} steps/s  "
            f"pair {row['pair_ratio_to_solo']} of solo  beside numpy hog {row['beside_hog_ratio_to_solo']} of solo",
            flush=True,
        )
    (alone,) = run(["hog"], "before", args.seconds)
    write_result(
        args.out, {"seconds": args.seconds, "hog_alone_matmuls_per_s": round(alone["matmuls_per_s"], 1), "rows": rows}
    )


if __name__ == "__main__":
    main()
