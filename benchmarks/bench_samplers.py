"""Score against latency for the samplers: DDPM-100, DDIM-k and the few-step flow policy.

    python benchmarks/bench_samplers.py \\
        --diffusion 'results/work/pusht-keypoints__diffusion__*/policy.safetensors' \\
        --flow 'results/work/pusht-keypoints__diffusion_flow__*/policy.safetensors' \\
        [--out results/perf/samplers.json] [--figure results/figures/samplers]

Every trained checkpoint (the final EMA weights of a ``dpbench run``) is evaluated under the
paper's Push-T protocol (50 test seeds) with each sampler, unchanged weights: the diffusion
checkpoints with DDPM-100 and DDIM-k, the flow checkpoints with Euler-1/2/4 and midpoint-2/4
(either family may be given alone). The latency is one ``predict_action`` at batch 1 (median of
repeats) and the eval's batch-50 call. Scores are those of the final checkpoint, so they sit
below a run's max-over-checkpoints.
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
from pathlib import Path

import numpy as np
import torch
from timing import median_time, write_result

from dpbench.checkpoint import load_policy, read_checkpoint_meta
from dpbench.diffusion import policy as diffusion_policy
from dpbench.diffusion.policy import FAST_PATH_MAX_BATCH
from dpbench.evaluate import evaluate
from dpbench.tasks import checkpoint_task

# DDIM-k under both timestep spacings: "trailing" starts at the top noise level (99 of 100) for any
# k; "leading" (the original code's, diffusers' default) starts at 100 - 100/k.
DIFFUSION_SAMPLERS = {
    "ddpm100": dict(sampler="ddpm", num_inference_steps=100),
    **{
        f"ddim{k}_{spacing}": dict(sampler="ddim", num_inference_steps=k, timestep_spacing=spacing)
        for spacing in ("trailing", "leading")
        for k in (1, 2, 3, 5, 10)
    },
}
# Speed must not change results: DDIM-10 again on the plain eager path, and with the small-batch
# fast path forced at batch 50 (normally it serves batch <= 8 only).
PATH_CHECKS = {
    "ddim10_naive": dict(sampler="ddim", num_inference_steps=10, fast_inference=False),
    "ddim10_fastpath": dict(sampler="ddim", num_inference_steps=10),
}
FLOW_SAMPLERS = {
    **{f"euler{k}": dict(solver="euler", num_inference_steps=k) for k in (1, 2, 4)},
    **{f"midpoint{k}": dict(solver="midpoint", num_inference_steps=k) for k in (2, 4)},
}


def latency_b1_ms(policy, repeats: int = 15) -> float:
    obs = {k: torch.rand(1, policy.n_obs_steps, *shape) * 512 for k, shape in policy.spec.obs_shapes.items()}
    return 1000 * median_time(lambda: policy.predict_action(obs), repeats)


def measure(paths: list[str], samplers: dict[str, dict], family: str) -> list[dict]:
    rows = []
    for label, over in samplers.items():
        per_ckpt = []
        for path in paths:
            meta = read_checkpoint_meta(path)
            task = checkpoint_task(meta)
            mode = task.obs_mode(meta["obs"], meta.get("action_mode"))
            policy, _ = load_policy(
                path, expect_spec=mode.spec, overrides={f"policy.{k}": str(v) for k, v in over.items()}
            )
            diffusion_policy.FAST_PATH_MAX_BATCH = 10**9 if label.endswith("_fastpath") else FAST_PATH_MAX_BATCH
            res = evaluate(policy, task, mode)
            diffusion_policy.FAST_PATH_MAX_BATCH = FAST_PATH_MAX_BATCH
            per_ckpt.append(
                {
                    "checkpoint": path,
                    "score": res.score,
                    "success": res.success_rate,
                    "b50_ms": res.chunk_latency_ms,
                    "eval_wall_s": res.wall_s,
                    "b1_ms": latency_b1_ms(policy),
                }
            )
            print(f"{family} {label} {path}: score {res.score:.3f} b1 {per_ckpt[-1]['b1_ms']:.1f} ms", flush=True)
        scores = np.array([c["score"] for c in per_ckpt])
        series = (
            family
            if family != "diffusion"
            else ("DDPM" if over["sampler"] == "ddpm" else f"DDIM {over.get('timestep_spacing', 'trailing')}")
        )
        rows.append(
            {
                "family": family,
                "series": series,
                "sampler": label,
                "network_evals": over["num_inference_steps"],
                "n_checkpoints": len(per_ckpt),
                "score_mean": round(float(scores.mean()), 4),
                "score_std": round(float(scores.std()), 4),
                "success_mean": round(float(np.mean([c["success"] for c in per_ckpt])), 4),
                "b1_ms": round(statistics.median(c["b1_ms"] for c in per_ckpt), 2),
                "b50_ms": round(statistics.median(c["b50_ms"] for c in per_ckpt), 1),
                "eval_wall_s": round(statistics.median(c["eval_wall_s"] for c in per_ckpt), 1),
                "per_checkpoint": per_ckpt,
            }
        )
    return rows


def plot(rows: list[dict], stem: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {"DDIM trailing": "o", "DDIM leading": "v", "DDPM": "D", "diffusion_flow": "s"}
    for series, marker in markers.items():
        sel = sorted(
            (
                r
                for r in rows
                if r.get("series", r["family"]) == series and not r["sampler"].endswith(("_naive", "_fastpath"))
            ),
            key=lambda r: r["b1_ms"],
        )
        if sel:
            ax.errorbar(
                [r["b1_ms"] for r in sel],
                [r["score_mean"] for r in sel],
                yerr=[r["score_std"] for r in sel],
                fmt=marker + "-",
                capsize=3,
                label=series,
            )
            for r in sel:
                ax.annotate(
                    r["sampler"], (r["b1_ms"], r["score_mean"]), textcoords="offset points", xytext=(4, -10), fontsize=8
                )
    ax.set_xscale("log")
    ax.set_xlabel("chunk latency, batch 1 (ms, log scale)")
    ax.set_ylabel("Push-T score, final ckpt (mean ± std)")
    ax.set_title("Sampler: score vs latency (2 CPU cores)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    stem.parent.mkdir(parents=True, exist_ok=True)
    for ext in ("png", "svg"):
        fig.savefig(stem.with_suffix("." + ext), dpi=120)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--diffusion", default="", help="glob of diffusion checkpoints")
    ap.add_argument("--flow", default=None, help="glob of diffusion_flow checkpoints")
    ap.add_argument("--out", default="results/perf/samplers.json")
    ap.add_argument("--figure", default="results/figures/samplers")
    ap.add_argument("--replot", action="store_true", help="only redraw the figure from --out's JSON")
    ap.add_argument("--path-checks", type=int, default=2, help="checkpoints that also run the fast/naive path checks")
    ap.add_argument("--skip", default="", help="comma list of sampler labels to leave out, e.g. ddpm100")
    args = ap.parse_args()
    if args.replot:
        plot(json.loads(Path(args.out).read_text())["rows"], Path(args.figure))
        return
    diffusion = sorted(glob.glob(args.diffusion)) if args.diffusion else []
    flow = sorted(glob.glob(args.flow)) if args.flow else []
    if not diffusion and not flow:
        raise SystemExit(f"no checkpoints match --diffusion {args.diffusion!r} or --flow {args.flow!r}")
    skip = set(filter(None, args.skip.split(",")))
    rows = []
    if diffusion:
        rows += measure(diffusion, {k: v for k, v in DIFFUSION_SAMPLERS.items() if k not in skip}, "diffusion")
        rows += measure(diffusion[: args.path_checks], PATH_CHECKS, "diffusion")
    if flow:
        rows += measure(flow, {k: v for k, v in FLOW_SAMPLERS.items() if k not in skip}, "diffusion_flow")
    write_result(args.out, {"rows": rows})
    plot(rows, Path(args.figure))
    for r in rows:
        print(
            f"{r['family']:15s} {r['sampler']:8s} NFE {r['network_evals']:3d}  "
            f"score {r['score_mean']:.3f} ± {r['score_std']:.3f}  "
            f"b1 {r['b1_ms']:7.1f} ms  b50 {r['b50_ms']:7.1f} ms  eval {r['eval_wall_s']:.1f} s"
        )


if __name__ == "__main__":
    main()
