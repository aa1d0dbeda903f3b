"""Image-policy speed on Push-T images (96x96): training images/s and chunk latency with the encoder.

    python benchmarks/bench_vision.py [--policies diffusion,bc] [--presets quick,paper] [--out results/perf/vision.json]

Per policy and preset (the preset sets both the policy and the image encoder, as ``dpbench run
--obs image`` does): encoder parameters, model FLOPs per training sample (forward + backward,
``torch.utils.flop_counter``), training samples/s and images/s (T_o images per sample) at the
preset's batch size, and the latency of one ``predict_action`` at batch 1 and batch 50
(encoder included). Medians over repeats, random uint8 images.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from timing import median_time, write_result
from torch.utils.flop_counter import FlopCounterMode

from dpbench.config import build_configs
from dpbench.policies import get_policy_class
from dpbench.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default="diffusion,bc")
    ap.add_argument("--presets", default="quick,paper")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default="results/perf/vision.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    spec = get_task("pusht").obs_mode("image").spec
    rows = []
    for name in args.policies.split(","):
        for preset in args.presets.split(","):
            cls = get_policy_class(name)
            pcfg, tcfg = build_configs(cls, preset, image_obs=True)
            policy = cls(spec, pcfg)
            rng = np.random.default_rng(0)
            policy.fit_statistics({"agent_pos": rng.uniform(0, 512, (64, 2)), "action": rng.uniform(0, 512, (64, 2))})
            b, t = tcfg.batch_size, policy.n_obs_steps
            batch = {
                "image": torch.randint(0, 256, (b, t, 96, 96, 3), dtype=torch.uint8),
                "agent_pos": torch.rand(b, t, 2) * 512,
                "action": torch.rand(b, policy.horizon, 2) * 512,
            }
            policy.train()
            with FlopCounterMode(display=False) as counter:
                policy.compute_loss(batch).backward()
            opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)

            def step(policy: torch.nn.Module = policy, batch: dict = batch, opt: torch.optim.Optimizer = opt) -> None:
                loss = policy.compute_loss(batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()

            sps = b / median_time(step, args.repeats)
            row = {
                "policy": name,
                "preset": preset,
                "vision": pcfg.vision.__dict__,
                "batch_size": b,
                "n_obs_steps": t,
                "encoder_params_M": round(sum(p.numel() for p in policy.image_encoder.parameters()) / 1e6, 3),
                "train_gflop_per_sample": round(counter.get_total_flops() / b / 1e9, 3),
                "train_samples_per_s": round(sps, 1),
                "train_images_per_s": round(sps * t, 1),
            }
            policy.eval()
            for nb in (1, 50):
                obs = {
                    "image": torch.randint(0, 256, (nb, t, 96, 96, 3), dtype=torch.uint8),
                    "agent_pos": torch.rand(nb, t, 2) * 512,
                }
                policy.reset()
                row[f"chunk_b{nb}_ms"] = round(
                    1000 * median_time(lambda policy=policy, obs=obs: policy.predict_action(obs), args.repeats), 1
                )
            rows.append(row)
            print({k: v for k, v in row.items() if k != "vision"}, flush=True)
    write_result(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
