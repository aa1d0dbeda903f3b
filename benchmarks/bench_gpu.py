"""GPU benchmark for the diffusion policies: training throughput and chunk latency on one CUDA
device, eager PyTorch against one CUDA graph of the whole sampling loop.

    python benchmarks/bench_gpu.py [--checkpoints DP.safetensors,FLOW.safetensors] [--out results/perf/gpu.json]

One run measures, on one GPU:

- matmul peaks (8192^3): fp32 without TF32, TF32 and bf16, in TFLOP/s;
- per policy and preset: training FLOPs per sample (``torch.utils.flop_counter``) and training
  samples/s at batch 256 in fp32, TF32 and bf16 autocast, with the fraction of the matching peak;
- the latency of one chunk (``sample_chunk``) at batch 1 and 50 for DDPM-100 / DDIM-10 (Euler-1 and
  midpoint-2 for the flow policy): the plain eager path, the default path, and a CUDA graph that replays the
  whole denoising loop (one launch per chunk instead of ~30 kernels per network call);
- that the graph gives the eager path's actions from the same noise (max abs difference);
- with ``--checkpoints``: each trained Push-T checkpoint's 50-episode evaluation (paper seeds)
  with the sampler eager on the CPU, eager on the GPU and graphed on the GPU: score and wall-time.

CUDA graphs here are a benchmark, not a training-loop feature: the library's CPU paths are what
CI tests. Figures are medians over repeats.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_speed import OBS_DIM, make_policy, random_batch, sampler_variants
from timing import median_time, write_result
from torch.utils.flop_counter import FlopCounterMode

from dpbench.checkpoint import load_policy
from dpbench.policy import Policy
from dpbench.tasks import get_task

CASES = [
    ("diffusion", "quick"),
    ("diffusion", "paper"),
    ("diffusion_flow", "quick"),
    ("diffusion_flow", "paper"),
    ("diffusion_transformer", "quick"),
    ("diffusion_transformer", "paper"),
]


def cuda_time(fn: Callable[[], Any], repeats: int, warmup: int = 2) -> float:
    """Median seconds of ``fn()``, each call ending in a device synchronize."""
    return median_time(lambda: (fn(), torch.cuda.synchronize()), repeats, warmup)


def matmul_peaks(n: int = 8192) -> dict[str, float]:
    a, b = torch.randn(n, n, device="cuda"), torch.randn(n, n, device="cuda")
    out = {}
    for name, dtype, tf32 in (
        ("fp32", torch.float32, False),
        ("tf32", torch.float32, True),
        ("bf16", torch.bfloat16, False),
    ):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        x, y = a.to(dtype), b.to(dtype)
        out[name] = round(2 * n**3 / cuda_time(lambda x=x, y=y: x @ y, 10, 3) / 1e12, 1)
    torch.backends.cuda.matmul.allow_tf32 = False
    return out


def cuda_policy(name: str, preset: str, **over: Any) -> Policy:
    return make_policy(name, preset, **over)[0].cuda()


def train_rows(policy: Policy, peaks: dict[str, float], batch: int = 256) -> dict[str, float]:
    policy.train()
    data = random_batch(policy, batch)
    with FlopCounterMode(display=False) as counter:
        policy.compute_loss(data).backward()
    flops = counter.get_total_flops() / batch
    opt = torch.optim.AdamW(policy.parameters(), lr=1e-4)
    row = {"train_gflop_per_sample": round(flops / 1e9, 4)}
    for precision in ("fp32", "tf32", "bf16"):
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = precision == "tf32"

        def step(precision: str = precision) -> None:
            with torch.autocast("cuda", torch.bfloat16, enabled=precision == "bf16"):
                loss = policy.compute_loss(data)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        sps = batch / cuda_time(step, 20, 3)
        row[f"train_b{batch}_{precision}_samples_per_s"] = round(sps, 1)
        row[f"train_b{batch}_{precision}_pct_peak"] = round(100 * sps * flops / 1e12 / peaks[precision], 2)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    return row


class GraphedSampler:
    """One CUDA graph per batch size replaying ``policy.sample_chunk`` from static obs/noise buffers.

    The sampler's own randomness (DDPM's per-step noise) comes from the default CUDA generator,
    which graphs can replay; the initial noise is drawn outside the graph from the policy's own
    generator, so DDIM and flow chunks equal the eager ones for the same seed."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        self.graphs: dict[tuple, tuple[torch.cuda.CUDAGraph, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]] = {}

    def _capture(self, obs: dict[str, torch.Tensor], noise: torch.Tensor) -> tuple:
        static_obs = {k: v.clone() for k, v in obs.items()}
        static_noise = noise.clone()
        self.policy.row_generators(noise.shape[0])  # create the per-row generators outside the capture
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):  # warm up (allocator, cuBLAS handles) off the capture stream
            for _ in range(2):
                self.policy.sample_chunk(static_obs, static_noise)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            out = self.policy.sample_chunk(static_obs, static_noise)
        return graph, static_obs, static_noise, out

    def sample_chunk(self, obs: dict[str, torch.Tensor], noise: torch.Tensor | None = None) -> torch.Tensor:
        noise = self.policy.initial_noise(next(iter(obs.values())).shape[0]) if noise is None else noise
        key = tuple((k, tuple(v.shape)) for k, v in sorted(obs.items()))
        if key not in self.graphs:
            self.graphs[key] = self._capture(obs, noise)
        graph, static_obs, static_noise, out = self.graphs[key]
        for k, v in obs.items():
            static_obs[k].copy_(v)
        static_noise.copy_(noise)
        graph.replay()
        return out.clone()

    def predict_action(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        start = self.policy.n_obs_steps - 1
        return self.sample_chunk(obs)[:, start : start + self.policy.n_action_steps]


def latency_rows(name: str, preset: str, state: dict[str, torch.Tensor]) -> dict[str, float]:
    row: dict[str, float] = {}
    for label, over in sampler_variants(cuda_policy(name, preset)):
        paths = {"default": cuda_policy(name, preset, **over)}
        if name != "diffusion_transformer":
            paths["naive"] = cuda_policy(name, preset, fast_inference=False, **over)
        for p in paths.values():
            p.load_state_dict(state)
            p.eval()
            p.seed(0)
        graphed = GraphedSampler(paths["default"])
        for batch in (1, 50):
            obs = {"obs": torch.rand(batch, paths["default"].n_obs_steps, OBS_DIM, device="cuda") * 512}
            noise = paths["default"].initial_noise(batch)
            for path, p in paths.items():
                row[f"{label}_{path}_b{batch}_ms"] = round(
                    1000 * cuda_time(lambda p=p, obs=obs, noise=noise: p.sample_chunk(obs, noise), 7), 3
                )
            row[f"{label}_graph_b{batch}_ms"] = round(
                1000 * cuda_time(lambda g=graphed, obs=obs, noise=noise: g.sample_chunk(obs, noise), 20), 3
            )
            if not label.startswith("ddpm"):  # deterministic given the noise: the graph must give the eager actions
                eager, replay = paths["default"].sample_chunk(obs, noise), graphed.sample_chunk(obs, noise)
                row[f"{label}_graph_vs_eager_b{batch}_max_abs"] = float((eager - replay).abs().max())
    return row


def eval_rows(path: str) -> dict[str, Any]:
    """One trained checkpoint's paper-protocol Push-T evaluation: CPU eager, GPU eager, GPU graph."""
    from dpbench.evaluate import evaluate

    task = get_task("pusht")
    mode = task.obs_mode("keypoints")
    policy, meta = load_policy(path)
    row: dict[str, Any] = {"checkpoint": Path(path).name, "policy": meta["policy"]}
    for label in ("cpu_eager", "gpu_eager", "gpu_graph"):
        policy = policy.to("cpu" if label == "cpu_eager" else "cuda")
        if label == "gpu_graph":  # select_action plans through predict_action: route it through the graph
            policy.predict_action = GraphedSampler(policy).predict_action
        result = evaluate(policy, task, mode)
        row[label] = {
            "score": round(result.score, 4),
            "success_rate": result.success_rate,
            "wall_s": round(result.wall_s, 2),
            "chunk_ms": round(result.chunk_latency_ms, 3),
        }
        print(
            f"  {row['policy']} {label}: score {result.score:.4f}, {result.wall_s:.1f} s, "
            f"{result.chunk_latency_ms:.2f} ms/chunk",
            flush=True,
        )
    return row


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(f"{n}:{p}" for n, p in CASES), help="policy:preset pairs")
    ap.add_argument("--checkpoints", default="", help="comma-separated trained Push-T keypoint checkpoints to evaluate")
    ap.add_argument("--out", default="results/perf/gpu.json")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        sys.exit("bench_gpu.py needs a CUDA device; benchmarks/bench_speed.py measures the CPU")
    torch.manual_seed(0)
    peaks = matmul_peaks()
    print(f"{torch.cuda.get_device_name()}: matmul peak TFLOP/s {peaks}", flush=True)
    rows = []
    for case in args.cases.split(","):
        name, preset = case.split(":")
        policy = cuda_policy(name, preset)
        row: dict[str, Any] = {
            "policy": name,
            "preset": preset,
            "params_M": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
        }
        row.update(train_rows(policy, peaks))
        row.update(latency_rows(name, preset, policy.state_dict()))
        rows.append(row)
        print(row, flush=True)
    evals = [eval_rows(p) for p in args.checkpoints.split(",") if p]
    fields = {"gpu": torch.cuda.get_device_name(), "matmul_peak_tflops": peaks, "rows": rows, "evals": evals}
    write_result(args.out, fields)


if __name__ == "__main__":
    main()
