"""Speed benchmark: model FLOPs, chunk latency, evaluation wall-time (training speed: bench_train.py).

    python benchmarks/bench_speed.py [--policies diffusion,diffusion_flow] [--presets quick,paper]
                                     [--eval] [--out results/perf/speed.json]

One run on one machine measures, per policy and preset:

- model FLOPs per training sample (forward + backward, ``torch.utils.flop_counter``); training
  samples/s, against a plain eager step and the peak, is ``benchmarks/bench_train.py``'s job;
- the latency of one ``predict_action`` call at batch 1 and batch 50 for each sampler (DDPM-100
  and DDIM-10; Euler-1 and midpoint-2 for the flow policy; one call for the baselines), for the
  fast path and, where a policy has one, the plain eager path (``fast_inference=false``), plus
  batch 1 on one thread (real-time control runs one episode, where thread hand-offs cost more
  than they give);
- for the UNet policies, a floor under one denoising step at batch 1 on one thread: every conv
  weight is read once per step (the FiLM terms are precomputed per chunk), so the step costs at
  least one read of those bytes (measured as a ``sum`` over a buffer of that size) and at least the
  UNet's matmuls alone at one row each (no norms, activations or copies);
- with ``--eval``: the wall-time of a 50-episode Push-T evaluation (paper seeds, 300 steps) for
  the quick diffusion policies. Weights are untrained, so no episode ends early: an upper bound.

Figures are medians over repeats; these machines are noisy, so compare ratios within one run.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import numpy as np
import torch
from timing import median_time, write_result
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

from dpbench.config import build_configs
from dpbench.diffusion.unet1d import ConditionalUnet1D
from dpbench.policies import get_policy_class
from dpbench.policy import Policy
from dpbench.tasks import get_task

OBS_DIM, ACTION_DIM = 20, 2  # Push-T keypoints


def make_policy(name: str, preset: str, **over: Any) -> tuple[Policy, Any]:
    cls = get_policy_class(name)
    pcfg, tcfg = build_configs(cls, preset, {f"policy.{k}": str(v) for k, v in over.items()})
    policy = cls(get_task("pusht").obs_mode("keypoints").spec, pcfg)
    rng = np.random.default_rng(0)
    policy.fit_statistics(
        {"obs": rng.uniform(0, 512, (256, OBS_DIM)), "action": rng.uniform(0, 512, (256, ACTION_DIM))}
    )
    return policy, tcfg


def random_batch(policy: Policy, batch_size: int) -> dict[str, torch.Tensor]:
    return {
        "obs": torch.rand(batch_size, policy.n_obs_steps, OBS_DIM, device=policy.device) * 512,
        "action": torch.rand(batch_size, policy.horizon, ACTION_DIM, device=policy.device) * 512,
    }


def train_flops_per_sample(policy: Policy, batch_size: int = 64) -> float:
    policy.train()
    with FlopCounterMode(display=False) as counter:
        policy.compute_loss(random_batch(policy, batch_size)).backward()
    policy.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch_size


def chunk_latency_ms(policy: Policy, batch: int, repeats: int) -> float:
    policy.eval()
    policy.reset()
    obs = {"obs": torch.rand(batch, policy.n_obs_steps, OBS_DIM) * 512}
    return 1000 * median_time(lambda: policy.predict_action(obs), repeats)


def sampler_variants(policy: Policy) -> list[tuple[str, dict[str, Any]]]:
    fields = {f.name for f in dataclasses.fields(policy.config)}
    if "sampler" in fields:  # DDPM over every trained noise level (100 except in smoke), and DDIM-10
        n = policy.config.num_train_timesteps
        return [
            (f"ddpm{n}", dict(sampler="ddpm", num_inference_steps=n)),
            ("ddim10", dict(sampler="ddim", num_inference_steps=min(10, n))),
        ]
    if "num_inference_steps" in fields:
        return [
            ("euler1", dict(solver="euler", num_inference_steps=1)),
            ("midpoint2", dict(solver="midpoint", num_inference_steps=2)),
        ]
    return [("chunk", {})]


def latency_rows(name: str, preset: str, state: dict[str, torch.Tensor], threads: int) -> dict[str, float]:
    row: dict[str, float] = {}
    base, _ = make_policy(name, preset)
    paths = (
        [("fast", {}), ("naive", dict(fast_inference=False))]
        if "fast_inference" in {f.name for f in dataclasses.fields(base.config)}
        else [("", {})]
    )
    for label, over in sampler_variants(base):
        for path, path_over in paths:
            policy, _ = make_policy(name, preset, **over, **path_over)
            policy.load_state_dict(state)
            key = f"{label}_{path}" if path else label
            slow = preset == "paper" and label.startswith("ddpm")
            for batch in (1, 50):
                row[f"{key}_b{batch}_ms"] = round(chunk_latency_ms(policy, batch, 1 if slow else 7), 2)
            torch.set_num_threads(1)
            row[f"{key}_b1_1thread_ms"] = round(chunk_latency_ms(policy, 1, 1 if slow else 7), 2)
            torch.set_num_threads(threads)
    return row


def weight_stream_floor(policy: Policy) -> dict[str, float]:
    """Lower bounds for one batch-1 denoising step of the UNet on one thread (see the module doc)."""
    convs = [m for m in policy.model.modules() if isinstance(m, (nn.Conv1d, nn.ConvTranspose1d))]
    weights = [m.weight.detach().reshape(m.weight.shape[0], -1).contiguous() for m in convs]
    flat = torch.cat([w.reshape(-1) for w in weights])
    rows = [torch.randn(1, w.shape[1]) for w in weights]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    read_s = median_time(flat.sum, 50, warmup=5)
    matmul_s = median_time(lambda: [F.linear(x, w) for x, w in zip(rows, weights)], 50, warmup=5)
    torch.set_num_threads(threads)
    n_bytes = flat.numel() * flat.element_size()
    return {
        "step_weights_MB": round(n_bytes / 1e6, 2),
        "weight_read_GBps_1thread": round(n_bytes / read_s / 1e9, 2),
        "step_floor_read_ms": round(1000 * read_s, 3),
        "step_floor_matmuls_ms": round(1000 * matmul_s, 3),
        **batch1_call_profile(policy),
    }


def batch1_call_profile(policy: Policy, calls: int = 20) -> dict[str, float]:
    """One batch-1 ``forward_fast`` call on one thread: its time, FLOPs, and the share its matmuls take."""
    from torch.profiler import ProfilerActivity, profile

    from dpbench.diffusion.policy import total_films

    cond = policy.obs_features({"obs": torch.rand(1, policy.n_obs_steps, OBS_DIM) * 512}).flatten(1)
    films = total_films(policy.model, cond, torch.tensor([50.0]))[0]
    x = torch.randn(1, policy.horizon, ACTION_DIM)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with torch.inference_mode():
        call_s = median_time(lambda: policy.model.forward_fast(x, films), 50, warmup=5)
        with FlopCounterMode(display=False) as counter:
            policy.model.forward_fast(x, films)
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(calls):
                policy.model.forward_fast(x, films)
    torch.set_num_threads(threads)
    matmul_s = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key == "aten::addmm") / calls / 1e6
    flops = counter.get_total_flops()
    return {
        "call_ms_1thread": round(1000 * call_s, 3),
        "call_mflop": round(flops / 1e6, 2),
        "call_matmul_ms_profiled": round(1000 * matmul_s, 3),
        "call_matmul_gflops": round(flops / matmul_s / 1e9, 1),
    }


def eval_wall_s(name: str, fast: bool) -> dict[str, float]:
    from dpbench.evaluate import evaluate

    task = get_task("pusht")
    policy, _ = make_policy(name, "quick", fast_inference=fast)
    result = evaluate(policy, task, task.obs_mode("keypoints"))
    return {
        "eval50_wall_s": round(result.wall_s, 2),
        "eval50_policy_ms_per_call": round(result.chunk_latency_ms, 1),
        "eval50_policy_calls": result.n_policy_calls,
    }


def print_table(rows: list[dict[str, Any]]) -> None:
    """Every latency column a row has (fast/naive pairs side by side)."""
    print(f"\n{'policy':22s} {'preset':6s} {'params':>7s} {'GFLOP/smp':>9s}  latency ms (b1 / b50 / b1 on 1 thread)")
    for r in rows:
        lat = []
        for key in r:
            if key.endswith("_b1_ms") and not key.endswith("1thread_ms"):
                label = key[: -len("_b1_ms")]
                lat.append(
                    f"{label} {r[key]:g}/{r.get(label + '_b50_ms', float('nan')):g}/"
                    f"{r.get(label + '_b1_1thread_ms', float('nan')):g}"
                )
        print(
            f"{r['policy']:22s} {r['preset']:6s} {r['params_M']:6.2f}M {r['train_gflop_per_sample']:9.4f}  "
            + "; ".join(lat)
        )
        if "step_floor_matmuls_ms" in r:
            print(
                f"{'':30s} batch-1 step floor, 1 thread: {r['step_weights_MB']} MB of weights "
                f"at {r['weight_read_GBps_1thread']} GB/s "
                f"= {r['step_floor_read_ms']} ms; matmuls alone {r['step_floor_matmuls_ms']} ms"
            )
        if "eval50_wall_s_fast" in r:
            print(f"{'':30s} 50-episode eval: {r['eval50_wall_s_fast']} s fast, {r['eval50_wall_s_naive']} s naive")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--policies", default="diffusion,diffusion_transformer,diffusion_flow,bc,lstm_gmm,ibc,bet")
    ap.add_argument("--presets", default="quick,paper")
    ap.add_argument(
        "--paper-policies",
        default="diffusion,diffusion_transformer,diffusion_flow",
        help="the policies measured at the paper preset too (baselines' paper sizes are GPU-only)",
    )
    ap.add_argument(
        "--eval", action="store_true", help="also time 50-episode Push-T evaluations (quick diffusion policies)"
    )
    ap.add_argument("--floor-only", action="store_true", help="only the batch-1 step floors of the UNet policies")
    ap.add_argument("--out", default="results/perf/speed.json")
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.floor_only:
        rows = []
        for name in args.policies.split(","):
            for preset in args.presets.split(","):
                policy, _ = make_policy(name, preset)
                if isinstance(getattr(policy, "model", None), ConditionalUnet1D):
                    rows.append({"policy": name, "preset": preset, **weight_stream_floor(policy)})
        write_result(args.out, {"rows": rows})
        for r in rows:
            print(r)
        return
    threads = torch.get_num_threads()
    rows = []
    for name in args.policies.split(","):
        for preset in args.presets.split(","):
            if preset == "paper" and name not in args.paper_policies.split(","):
                continue
            policy, _ = make_policy(name, preset)
            flops = train_flops_per_sample(policy)
            row: dict[str, Any] = {
                "policy": name,
                "preset": preset,
                "params_M": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
            }
            row["train_gflop_per_sample"] = round(flops / 1e9, 4)
            row.update(latency_rows(name, preset, policy.state_dict(), threads))
            if isinstance(getattr(policy, "model", None), ConditionalUnet1D):
                row.update(weight_stream_floor(policy))
            if args.eval and preset == "quick" and name in ("diffusion", "diffusion_flow"):
                for fast in (True, False):
                    row.update({f"{k}_{'fast' if fast else 'naive'}": v for k, v in eval_wall_s(name, fast).items()})
            rows.append(row)
            print(row, flush=True)
    print_table(rows)
    write_result(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
