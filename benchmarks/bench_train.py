"""Training-speed benchmark: dpbench's training step against a plain eager step, in one run.

    python benchmarks/bench_train.py [--sizes quick,paper] [--threads 1] [--rounds 5]
                                     [--variants plain,dpbench,...] [--run-steps 400]
                                     [--out results/perf/train.json]

For each UNet size (``quick``: down_dims 64/128/256, 4.2M parameters; ``paper``: 256/512/1024,
65.8M) and batch size, one process times every step variant on the same random Push-T keypoints
batch, alternating the variants round by round (ABCABC...), so a slow spell of the machine hits
them all; the figure per variant is its median over rounds. Variants:

- ``plain``: the original repository's step structure: ``compute_loss`` through the UNet's eager
  ``forward`` (dpbench's ``forward`` is the original's ConditionalUnet1D structure), torch's default
  AdamW (the single-tensor loop on CPU), the LambdaLR schedule, ``loss.item()`` for the log, and the
  original EMAModel's per-parameter ``mul_``/``add_`` loop;
- ``dpbench``: ``dpbench.train.train_step``, the step every ``dpbench run`` takes;
- candidates, each on top of ``dpbench`` and kept in dpbench only where this benchmark shows a gain:
  ``foreach`` / ``fused`` (AdamW's multi-tensor and fused CPU kernels), ``channels_last`` (the
  unfold-matmul convolutions of the inference fast path, used for training), ``compile``
  (``torch.compile`` of the UNet, compile time reported apart), ``bf16`` (the loss under CPU
  autocast to bfloat16: convolutions and matmuls in bf16, weights and optimizer in fp32).

Beside them: the fp32 peak (the faster of an MKL matmul and a oneDNN conv1d on the benchmark's
threads, before and after the rounds; the largest is used), the model FLOPs per sample
(``torch.utils.flop_counter``, forward + backward), hence each variant's fraction of peak. With
``--run-steps N``, a real ``dpbench run`` (data sampling, batch assembly, the progress bar and the
resumable checkpoint included) of the quick preset for N steps, whose training steps/s is set
against the model-only ``dpbench`` step at the same batch.

Figures vary up to 2x between machines of one kind; compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from bench_speed import make_policy, random_batch, train_flops_per_sample
from timing import median_time
from torch.nn import functional as F

from dpbench.diffusion.unet1d import ConditionalUnet1D
from dpbench.host import environment_info
from dpbench.results import write_json_atomic
from dpbench.train import EMA, lr_lambda, make_optimizer, train_step

Step = Callable[[], None]
ALL_VARIANTS = ("plain", "dpbench", "foreach", "fused", "channels_last", "compile", "bf16")


def peak_gflops(repeats: int = 7) -> dict[str, float]:
    """fp32 GFLOP/s of two dense kernels on the current torch threads (median of ``repeats``): ``matmul``
    (2048 x 2048, MKL's sgemm) and ``conv1d`` (oneDNN: batch 256, 256 -> 256 channels, kernel 5, length 16,
    the quick UNet's widest layer). On AMD CPUs MKL's sgemm runs well below the vector units' peak
    (about half of oneDNN's conv here), so the larger of the two is the reference."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    x, w = torch.randn(256, 256, 16), torch.randn(256, 256, 5)
    conv_flops = 2 * 256 * 16 * 256 * 256 * 5
    return {
        "matmul": round(2 * 2048**3 / median_time(lambda: a @ b, repeats, warmup=3) / 1e9, 1),
        "conv1d": round(conv_flops / median_time(lambda: F.conv1d(x, w, padding=2), repeats, warmup=3) / 1e9, 1),
    }


class LoopEMA(EMA):
    """The original's EMAModel.step: the same decay, applied by a Python loop of ``mul_`` and ``add_`` per
    parameter (dpbench's ``EMA.update`` is one ``_foreach_lerp_``)."""

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.decay()
        for ema_p, p in zip(self.model.parameters(), model.parameters()):
            ema_p.mul_(d)
            ema_p.add_(p.detach(), alpha=1 - d)
        self.step += 1


def channels_last_forward(model: ConditionalUnet1D) -> Callable[..., torch.Tensor]:
    """``model.forward`` on the inference fast path's channels-last unfold-matmul convolutions,
    with each block's FiLM summed per sample (same function, different kernels)."""

    def forward(sample, timestep, obs_cond=None, obs_films=None):
        if timestep.ndim == 0:
            timestep = timestep.expand(sample.shape[0])
        emb = F.mish(model.step_encoder(timestep))
        films = [
            b.film_step(emb) if o is None else b.film_step(emb) + o
            for b, o in zip(model.res_blocks(), obs_films, strict=True)
        ]
        return model.forward_fast(sample, films)

    return forward


def make_step(variant: str, size: str, batch: dict[str, torch.Tensor], state: dict[str, Any]) -> Step:
    """A closure doing one training step of ``variant`` on a fresh policy (same seed, same weights)."""
    torch.manual_seed(0)
    policy, tcfg = make_policy("diffusion", size)
    policy.train()
    if variant == "plain":
        optimizer = torch.optim.AdamW(
            policy.parameters(), lr=tcfg.lr, betas=tuple(tcfg.betas), weight_decay=tcfg.weight_decay
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tcfg))
        ema = LoopEMA(policy, tcfg.ema_power, tcfg.ema_max_decay)

        def step() -> None:
            loss = policy.compute_loss(batch)
            float(loss.item())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            ema.update(policy)

        return step
    if variant in ("foreach", "fused"):  # make_optimizer's AdamW with the multi-tensor or fused kernel
        optimizer = torch.optim.AdamW(
            policy.param_groups(tcfg.weight_decay), lr=tcfg.lr, betas=tuple(tcfg.betas), **{variant: True}
        )
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(tcfg))
    else:
        optimizer, scheduler = make_optimizer(policy, tcfg)
    if variant == "channels_last":
        policy.model.forward = channels_last_forward(policy.model)
    elif variant == "compile":
        t0 = time.perf_counter()
        policy.model = torch.compile(policy.model)
    ema = EMA(policy, tcfg.ema_power, tcfg.ema_max_decay)
    counter = [0]
    if variant == "bf16":
        fp32_loss = policy.compute_loss

        def bf16_loss(b: dict[str, torch.Tensor]) -> torch.Tensor:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                return fp32_loss(b).float()

        policy.compute_loss = bf16_loss

    def step() -> None:
        train_step(policy, batch, optimizer, scheduler, ema, tcfg, counter[0])
        counter[0] += 1

    if variant == "compile":
        step()  # the compilation
        state["compile_s"] = round(time.perf_counter() - t0, 1)
    return step


def time_variants(
    size: str, batch_size: int, variants: list[str], rounds: int, steps_per_round: int
) -> dict[str, dict[str, float]]:
    """Median samples/s of each variant over ``rounds`` alternating rounds of ``steps_per_round`` steps."""
    policy, _ = make_policy("diffusion", size)
    torch.manual_seed(1)
    batch = random_batch(policy, batch_size)
    extra: dict[str, dict[str, Any]] = {v: {} for v in variants}
    steps = {v: make_step(v, size, batch, extra[v]) for v in variants}
    for step in steps.values():  # warm-up: allocator, oneDNN primitives
        step()
    rates: dict[str, list[float]] = {v: [] for v in variants}
    for r in range(rounds):
        for v in variants:
            t0 = time.perf_counter()
            for _ in range(steps_per_round):
                steps[v]()
            rates[v].append(batch_size * steps_per_round / (time.perf_counter() - t0))
        done = ", ".join(f"{v} {rates[v][-1]:.1f}" for v in variants)
        print(f"  {size} b{batch_size} round {r + 1}/{rounds}: {done}", flush=True)
    out = {}
    for v in variants:
        xs = sorted(rates[v])
        out[v] = {"samples_per_s": round(xs[len(xs) // 2], 1), "rounds": [round(x, 1) for x in rates[v]], **extra[v]}
    return out


def real_run_steps_per_s(steps: int, threads: int) -> dict[str, Any]:
    """Training steps/s of a real ``dpbench run`` (quick preset, Push-T keypoints): the record's training
    seconds, which exclude its one tiny evaluation."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            sys.executable, "-m", "dpbench.cli", "run", "--policy", "diffusion", "--env", "pusht", "--seeds", "1",
            "--preset", "quick", "--threads", str(threads), "--quiet", "--out", tmp,
            "--set", f"train.steps={steps}", "--set", f"train.eval_every={steps}",
            "--set", "train.eval_after=0", "--set", f"train.checkpoint_every={steps}",
            "--set", "train.eval_episodes=1", "--set", "train.heldout_episodes=0",
        ]  # fmt: skip
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        (record,) = Path(tmp, "records").glob("*.json")
        rec = json.loads(record.read_text())
    train_s = rec["history"][-1]["train_seconds"]
    return {
        "command": "dpbench run --policy diffusion --env pusht --seeds 1 --preset quick "
        f"--threads {threads} --set train.steps={steps} (one 1-episode evaluation, no held-out)",
        "dataset": rec.get("dataset", {}).get("kind"),
        "steps": steps,
        "batch_size": rec["config"]["train"]["batch_size"],
        "train_seconds": train_s,
        "steps_per_s": round(steps / train_s, 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="quick,paper", help="UNet sizes: quick, paper (comma-separated)")
    ap.add_argument(
        "--threads", default="1", help="torch thread counts, comma-separated (dpbench's sweeps train on 1 per job)"
    )
    ap.add_argument("--seconds", type=float, default=2.0, help="seconds per variant per round (at least one step)")
    ap.add_argument("--rounds", type=int, default=5, help="alternating rounds per size and batch")
    ap.add_argument("--variants", default=",".join(ALL_VARIANTS), help=f"step variants, from {ALL_VARIANTS}")
    ap.add_argument("--run-steps", type=int, default=400, help="steps of the real dpbench run (0: skip it)")
    ap.add_argument("--out", default="results/perf/train.json", help="where the JSON goes")
    args = ap.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    unknown = set(variants) - set(ALL_VARIANTS)
    if unknown:
        sys.exit(f"bench_train: unknown variants {sorted(unknown)}; choose from {ALL_VARIANTS}")
    rows, peaks = [], {}
    for threads in (int(t) for t in args.threads.split(",")):
        torch.set_num_threads(threads)
        peak_before = peak_gflops()
        first = len(rows)
        for size in args.sizes.split(","):
            policy, tcfg = make_policy("diffusion", size)
            flops = train_flops_per_sample(policy)
            for b in sorted({tcfg.batch_size, 256}):
                one = time_variants(size, b, ["dpbench"], 1, 1)["dpbench"]["samples_per_s"]
                per_round = max(1, round(args.seconds * one / b))
                rows.append(
                    {
                        "threads": threads,
                        "size": size,
                        "params_M": round(sum(p.numel() for p in policy.parameters()) / 1e6, 2),
                        "train_gflop_per_sample": round(flops / 1e9, 4),
                        "batch_size": b,
                        "steps_per_round": per_round,
                        "variants": time_variants(size, b, variants, args.rounds, per_round),
                    }
                )
        peak_after = peak_gflops()
        peak = max(*peak_before.values(), *peak_after.values())
        peaks[threads] = {"before": peak_before, "after": peak_after, "peak": peak}
        for row in rows[first:]:
            base = row["variants"].get("plain", {}).get("samples_per_s")
            for v in row["variants"].values():
                v["pct_peak"] = round(100 * v["samples_per_s"] * row["train_gflop_per_sample"] / peak, 1)
                if base:
                    v["vs_plain"] = round(v["samples_per_s"] / base, 3)
    result: dict[str, Any] = {
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        **environment_info(),  # its hardware.torch_threads is the last count run; each row has its own
        # per thread count: the dense kernels' GFLOP/s before and after its rows; pct_peak is of the largest
        "peak_gflops": peaks,
        "rows": rows,
    }
    if args.run_steps:
        threads = int(args.threads.split(",")[0])
        real = real_run_steps_per_s(args.run_steps, threads)
        model = next(
            (
                r["variants"]["dpbench"]
                for r in rows
                if (r["threads"], r["size"], r["batch_size"]) == (threads, "quick", real["batch_size"])
            ),
            None,
        )
        if model is not None:
            model_steps = model["samples_per_s"] / real["batch_size"]
            real["model_only_steps_per_s"] = round(model_steps, 3)
            real["fraction_of_model_only"] = round(real["steps_per_s"] / model_steps, 3)
        result["real_run"] = real
    write_json_atomic(Path(args.out), result)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
