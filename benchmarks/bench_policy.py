"""Policy speed benchmark: training samples/s and action-chunk latency per policy and preset.

    python benchmarks/bench_policy.py [--policies diffusion,diffusion_transformer] [--presets quick,paper]
                                      [--out results/perf/policy_speed.json]

Training throughput is measured on random Push-T-shaped batches (keypoint obs, 2-D actions) at
the preset's batch size and, for comparison, at batch 256. Latency is one ``predict_action`` call
at batch 1 and batch 50: DDPM-100 and DDIM-10 for diffusion, 1 and 2 Euler steps for the flow
policy, one call for the baselines (which return T_a actions per call: 1 for lstm_gmm, ibc and
bet, 8 for bc). Figures are medians over repeats.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

from dpbench.policy import build_configs, get_policy_class
from dpbench.results import environment_info, write_json_atomic
from dpbench.tasks import get_task


def _make(name: str, preset: str, **over: str):
    cls = get_policy_class(name)
    pcfg, tcfg = build_configs(cls, preset, {f"policy.{k}": v for k, v in over.items()})
    spec = get_task("pusht").obs_mode("keypoints").spec
    policy = cls(spec, pcfg)
    rng = np.random.default_rng(0)
    policy.fit_statistics({"obs": rng.uniform(0, 512, (256, 20)), "action": rng.uniform(0, 512, (256, 2))})
    return policy, tcfg


def train_samples_per_s(policy, batch_size: int, seconds: float) -> float:
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    batch = {"obs": torch.rand(batch_size, policy.n_obs_steps, 20) * 512, "action": torch.rand(batch_size, policy.horizon, 2) * 512}
    policy.train()
    times = []
    t_end = time.perf_counter() + seconds
    while len(times) < 3 or (time.perf_counter() < t_end and len(times) < 50):
        t0 = time.perf_counter()
        loss = policy.compute_loss(batch)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return batch_size / statistics.median(times[1:])


def chunk_latency_ms(policy, batch: int, repeats: int) -> float:
    policy.eval()
    policy.reset()  # recurrent policies keep per-batch state
    obs = {"obs": torch.rand(batch, policy.n_obs_steps, 20) * 512}
    policy.predict_action(obs)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        policy.predict_action(obs)
        times.append(time.perf_counter() - t0)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--policies", default="diffusion,diffusion_transformer,diffusion_flow,bc,lstm_gmm,ibc,bet")
    ap.add_argument("--presets", default="quick,paper")
    ap.add_argument("--seconds", type=float, default=15.0, help="time budget per training measurement")
    ap.add_argument("--out", default="results/perf/policy_speed.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    rows = []
    for name in args.policies.split(","):
        for preset in args.presets.split(","):
            policy, tcfg = _make(name, preset)
            params = sum(p.numel() for p in policy.parameters())
            row = {"policy": name, "preset": preset, "params_M": round(params / 1e6, 2), "batch_size": tcfg.batch_size}
            row["train_samples_per_s"] = round(train_samples_per_s(policy, tcfg.batch_size, args.seconds), 1)
            if tcfg.batch_size != 256:
                row["train_samples_per_s_b256"] = round(train_samples_per_s(policy, 256, args.seconds), 1)
            fields = {f.name for f in dataclasses.fields(policy.config)}
            if "sampler" in fields:  # DDPM/DDIM diffusion policies
                variants = [(f"{s}{k}", dict(sampler=s, num_inference_steps=k)) for s, k in (("ddpm", "100"), ("ddim", "10"))]
            elif "num_inference_steps" in fields:  # few-step samplers
                variants = [(f"euler{k}", dict(num_inference_steps=k)) for k in ("1", "2")]
            else:
                variants = [("chunk", {})]
            for label, over in variants:
                p, _ = _make(name, preset, **over)
                p.load_state_dict(policy.state_dict())
                slow = preset == "paper" and label.startswith("ddpm")
                for b in (1, 50):
                    row[f"{label}_b{b}_ms"] = round(chunk_latency_ms(p, b, 1 if slow else 5), 1)
            rows.append(row)
            print(row, flush=True)
    report = {"command": "python " + " ".join(sys.argv), **environment_info(), "rows": rows}
    write_json_atomic(Path(args.out), report)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
