"""End-to-end CUDA check of the command line, for a GPU machine: every policy trains on Push-T with
``--device cuda`` and its checkpoint evaluates on the GPU and on the CPU.

    python benchmarks/check_cuda.py --out DIR [--json results/perf/cuda_check.json] [--episodes 10]

Per policy (the smoke preset, keypoints; ``diffusion`` and ``bc`` also with images, for the shared
encoder): ``dpbench run --device cuda`` must exit 0 and write a record whose hardware names the GPU;
then ``dpbench eval CHECKPOINT --device cuda`` and ``--device cpu`` run on the same test seeds. A
deterministic policy (``bc``) must score each episode alike on both devices up to float rounding;
the others draw their sampling noise from per-episode generators on the policy's device, and CUDA's
generator is another stream than the CPU's, so their scores are reported, not compared. The unit
tests cover the CPU paths; CI has no GPU, so this script is what checks the CUDA ones.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from dpbench.checkpoint import load_policy, read_checkpoint_meta
from dpbench.evaluate import evaluate
from dpbench.host import device_name, environment_info
from dpbench.results import write_json_atomic
from dpbench.tasks import checkpoint_task

POLICIES = ["bc", "bet", "diffusion", "diffusion_flow", "diffusion_transformer", "ibc", "lstm_gmm"]
IMAGE_POLICIES = ["diffusion", "bc"]
DETERMINISTIC = {"bc"}


def cli(*args: str) -> tuple[int, float, str]:
    """Run ``dpbench ARGS`` as a user would; returns (exit status, seconds, the last lines of its output)."""
    t0 = time.perf_counter()
    # from outside the checkout, so the installed dpbench runs, not the source folder beside the cwd
    proc = subprocess.run(
        [sys.executable, "-m", "dpbench.cli", *args], capture_output=True, text=True, cwd=tempfile.gettempdir()
    )
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
    return proc.returncode, time.perf_counter() - t0, tail


def episode_scores(ckpt: Path, device: str, episodes: int) -> list[float]:
    """Per-episode max rewards of a checkpoint on the first ``episodes`` test seeds, the policy on ``device``."""
    meta = read_checkpoint_meta(ckpt)
    task = checkpoint_task(meta, None)
    mode = task.obs_mode(meta["obs"], meta.get("action_mode"))
    policy, _ = load_policy(ckpt, expect_spec=mode.spec)
    policy.to(torch.device(device))
    return evaluate(policy, task, mode, n_episodes=episodes).episode_scores


def check(out: Path, obs: str, policy: str, episodes: int, device: str, dataset: list[str]) -> dict[str, Any]:
    """Train one smoke cell on ``device`` through the CLI, then evaluate its checkpoint there and on the CPU."""
    res: dict[str, Any] = {"policy": policy, "obs": obs}
    cell_out = out / obs
    rc, secs, tail = cli(
        "run", "--policy", policy, "--env", "pusht", "--obs", obs, "--preset", "smoke", "--device", device,
        "--seeds", "1", "--out", str(cell_out), "--quiet", *dataset,
    )  # fmt: skip
    res.update(run_rc=rc, run_s=round(secs, 1))
    if rc != 0:
        return {**res, "ok": False, "error": tail}
    records = [json.loads(p.read_text()) for p in (cell_out / "records").glob(f"pusht-{obs}__{policy}__*.json")]
    record = records[0]
    ckpt = cell_out / record["checkpoint"]
    res["record_device"] = record["hardware"]["device"]
    rcs = []
    for where in ("gpu", "cpu"):
        rc, secs, tail = cli("eval", str(ckpt), "--episodes", "2", "--device", device if where == "gpu" else "cpu")
        res[f"cli_eval_{where}"] = {"rc": rc, "s": round(secs, 1), "says": tail}
        rcs.append(rc)
    gpu, cpu = episode_scores(ckpt, device, episodes), episode_scores(ckpt, "cpu", episodes)
    res["mean_score"] = {"gpu": round(sum(gpu) / len(gpu), 4), "cpu": round(sum(cpu) / len(cpu), 4)}
    diff = max(abs(a - b) for a, b in zip(gpu, cpu))
    res["max_episode_diff"] = round(diff, 6)
    ok = res["record_device"] == device_name(torch.device(device)) and rcs == [0, 0]
    if policy in DETERMINISTIC:  # the same actions on both devices, up to rounding that Push-T's contacts amplify
        ok = ok and diff < 0.05
    return {**res, "ok": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="results dir for the smoke cells (records and checkpoints)")
    ap.add_argument("--json", default=None, help="write the findings here (e.g. results/perf/cuda_check.json)")
    ap.add_argument("--episodes", type=int, default=10, help="test episodes per device in the score comparison")
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma list (default: every built-in policy)")
    ap.add_argument("--obs", default="keypoints,image", help="Push-T obs modes (image: diffusion and bc only)")
    ap.add_argument("--dataset", default=None, help="passed to dpbench run (default: the human demos, else scripted)")
    ap.add_argument("--device", default="cuda", help="the device under test (cpu checks this script itself)")
    args = ap.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("check_cuda: torch sees no CUDA device; run this on a GPU machine", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    chosen = args.policies.split(",")
    modes = args.obs.split(",")
    cases = [("keypoints", p) for p in chosen if "keypoints" in modes]
    cases += [("image", p) for p in IMAGE_POLICIES if p in chosen and "image" in modes]
    dataset = ["--dataset", str(Path(args.dataset).resolve())] if args.dataset else []
    results = []
    for obs, policy in cases:
        r = check(out, obs, policy, args.episodes, args.device, dataset)
        results.append(r)
        print(json.dumps(r), flush=True)
    failed = [f"{r['policy']}/{r['obs']}" for r in results if not r["ok"]]
    print(f"check_cuda: {len(results) - len(failed)}/{len(results)} ok" + (f"; failed: {failed}" if failed else ""))
    if args.json:
        write_json_atomic(
            Path(args.json),
            {"environment": environment_info(device=device_name(torch.device(args.device))), "cases": results},
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
