"""Per-episode scores of trained checkpoints must not depend on how the test episodes are grouped.

    python benchmarks/check_waves.py 'results/work/pusht-keypoints__diffusion__*/policy.safetensors' \\
        [--waves 50,20,7] [--out results/perf/waves.json]

Each checkpoint is evaluated on the 50 Push-T test seeds with the same sampling seed in waves of
each size (a wave of 7 runs the UNet's small-batch path, 20 and 50 its batched path), then with
its env batch stepped in two worker processes. The per-episode scores of every variant are
compared with the first; the JSON lists the episodes that differ, how many by more than 1e-4, and
the largest difference. Sampling noise is per episode, so what differs is float rounding: BLAS and
oneDNN pick kernels by batch size, and Push-T's contacts can amplify a last-bit difference.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
from pathlib import Path

import torch
from timing import write_result

from dpbench.checkpoint import load_policy, read_checkpoint_meta
from dpbench.evaluate import evaluate
from dpbench.tasks import checkpoint_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoints", help="glob of policy.safetensors files")
    ap.add_argument("--waves", default="50,20,7")
    ap.add_argument("--out", default="results/perf/waves.json")
    args = ap.parse_args()
    paths = sorted(glob.glob(args.checkpoints))
    if not paths:
        raise SystemExit(f"no checkpoints match {args.checkpoints!r}")
    rows = []
    for path in paths:
        meta = read_checkpoint_meta(path)
        task = checkpoint_task(meta)
        mode = task.obs_mode(meta["obs"], meta.get("action_mode"))
        policy, _ = load_policy(path, expect_spec=mode.spec)
        variants = {f"wave {w}": dict(wave=int(w)) for w in args.waves.split(",")}
        results = {
            name: evaluate(policy, task, mode, sampling_seed=0, **kw).episode_scores for name, kw in variants.items()
        }
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        results["2 env workers"] = evaluate(
            policy, dataclasses.replace(task, parallel_eval=True), mode, sampling_seed=0
        ).episode_scores
        torch.set_num_threads(threads)
        ref_name, ref = next(iter(results.items()))
        diffs = {
            name: {
                "episodes": [i for i, (a, b) in enumerate(zip(ref, s)) if a != b],
                "above_1e-4": sum(abs(a - b) > 1e-4 for a, b in zip(ref, s)),
                "max_abs": max(abs(a - b) for a, b in zip(ref, s)),
            }
            for name, s in results.items()
            if name != ref_name
        }
        rows.append(
            {
                "checkpoint": Path(path).parent.name,
                "mean_scores": {k: round(sum(v) / len(v), 5) for k, v in results.items()},
                "differences_from_" + ref_name.replace(" ", "_"): diffs,
            }
        )
        print(
            Path(path).parent.name,
            rows[-1]["mean_scores"],
            {k: (len(v["episodes"]), v["above_1e-4"], round(v["max_abs"], 6)) for k, v in diffs.items()},
            flush=True,
        )
    write_result(args.out, {"rows": rows})


if __name__ == "__main__":
    main()
