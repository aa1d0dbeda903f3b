"""End-to-end CUDA check of the command line, for a GPU machine: every policy trains on Push-T with
``--device cuda`` and its checkpoint evaluates on the GPU and on the CPU.

    python benchmarks/check_cuda.py --out NEW_DIR [--json results/perf/cuda_check.json] [--episodes 10]
        [--policies P,..] [--obs keypoints,image] [--dataset PATH] [--device cuda|cuda:N|cpu]

Per policy (the smoke preset, keypoints; ``diffusion`` and ``bc`` also with images, for the shared
encoder): ``dpbench run --device cuda``, in a folder of its own under ``--out``, must exit 0 and write one
record whose hardware names the GPU; then ``dpbench eval CHECKPOINT --device cuda`` and ``--device cpu`` must
exit 0 and name the device they ran on, and one process scores the same test seeds on both devices. A
deterministic policy (``bc``) must score each episode alike on both devices up to float rounding;
the others draw their sampling noise from per-episode generators on the policy's device, and CUDA's
generator is another stream than the CPU's, so their scores are reported, not compared. The unit
tests cover the CPU paths; CI has no GPU, so this script is what checks the CUDA ones. The JSON is written
after every case, so a run stopped at a time limit keeps the cases it finished.
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
from dpbench.errors import DpbenchError
from dpbench.evaluate import evaluate
from dpbench.host import device_name, environment_info, resolve_device
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


def episode_scores(ckpt: Path, device: torch.device, episodes: int) -> list[float]:
    """Per-episode max rewards of a checkpoint on the first ``episodes`` test seeds, the policy on ``device``."""
    meta = read_checkpoint_meta(ckpt)
    task = checkpoint_task(meta, None)
    mode = task.obs_mode(meta["obs"], meta.get("action_mode"))
    policy, _ = load_policy(ckpt, expect_spec=mode.spec)
    policy.to(device)
    return evaluate(policy, task, mode, n_episodes=episodes).episode_scores


def check(out: Path, obs: str, policy: str, episodes: int, device: torch.device, dataset: str | None) -> dict[str, Any]:
    """Train one smoke cell on ``device`` through the CLI, in a results dir of its own (a recorded cell would not
    train again), then evaluate its checkpoint there and on the CPU."""
    res: dict[str, Any] = {"policy": policy, "obs": obs, "dataset": dataset or "default", "episodes": episodes}
    cell_out = out / f"{obs}-{policy}"
    rc, secs, tail = cli(
        "run", "--policy", policy, "--env", "pusht", "--obs", obs, "--preset", "smoke", "--device", str(device),
        "--seeds", "1", "--out", str(cell_out), "--quiet", *(["--dataset", dataset] if dataset else []),
    )  # fmt: skip
    res.update(run_rc=rc, run_s=round(secs, 1))
    records = list((cell_out / "records").glob("*.json"))
    if rc != 0 or len(records) != 1:
        return {**res, "ok": False, "error": tail}
    record = json.loads(records[0].read_text())
    ckpt = cell_out / record["checkpoint"]
    name = device_name(device)
    res["record_device"] = record["hardware"]["device"]
    ok = res["record_device"] == name
    for where, on in (("device", device), ("cpu", torch.device("cpu"))):
        rc, secs, tail = cli("eval", str(ckpt), "--episodes", "2", "--device", str(on))
        res[f"cli_eval_{where}"] = {"rc": rc, "s": round(secs, 1), "says": tail}
        ok = ok and rc == 0 and f", {device_name(on)})" in tail  # its timing line names where the policy ran
    on_device, on_cpu = episode_scores(ckpt, device, episodes), episode_scores(ckpt, torch.device("cpu"), episodes)
    res["mean_score"] = {"device": round(sum(on_device) / episodes, 4), "cpu": round(sum(on_cpu) / episodes, 4)}
    diff = max(abs(a - b) for a, b in zip(on_device, on_cpu))
    res["max_episode_diff"] = round(diff, 6)
    if policy in DETERMINISTIC:  # the same actions on both devices, up to rounding that Push-T's contacts amplify
        ok = ok and diff < 0.05
    return {**res, "ok": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="a new folder for the smoke cells (records and checkpoints)")
    ap.add_argument("--json", default=None, help="write the findings here (e.g. results/perf/cuda_check.json)")
    ap.add_argument("--episodes", type=int, default=10, help="test episodes per device in the score comparison (>= 1)")
    ap.add_argument("--policies", default=",".join(POLICIES), help="comma list (default: every built-in policy)")
    ap.add_argument("--obs", default="keypoints,image", help="Push-T obs modes (image: diffusion and bc only)")
    ap.add_argument("--dataset", default=None, help="passed to dpbench run (default: the human demos, else scripted)")
    ap.add_argument("--device", default="cuda", help="the device under test (cpu checks this script itself)")
    args = ap.parse_args()
    try:
        device = resolve_device(args.device)
    except DpbenchError as exc:
        print(f"check_cuda: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    if args.episodes < 1 or (out.exists() and any(out.iterdir())):
        print("check_cuda: give --episodes >= 1 and a new or empty --out", file=sys.stderr)
        return 2
    chosen = args.policies.split(",")
    modes = args.obs.split(",")
    cases = [("keypoints", p) for p in chosen if "keypoints" in modes]
    cases += [("image", p) for p in IMAGE_POLICIES if p in chosen and "image" in modes]
    dataset = str(Path(args.dataset).resolve()) if args.dataset else None
    found: dict[str, Any] = {
        "command": "python benchmarks/check_cuda.py " + " ".join(sys.argv[1:]),
        "environment": environment_info(device=device_name(device)),
        "cases": [],
    }
    for obs, policy in cases:
        found["cases"].append(check(out, obs, policy, args.episodes, device, dataset))
        print(json.dumps(found["cases"][-1]), flush=True)
        if args.json:  # after every case: a run stopped at its time limit keeps what it checked
            write_json_atomic(Path(args.json), found)
    failed = [f"{r['policy']}/{r['obs']}" for r in found["cases"] if not r["ok"]]
    print(f"check_cuda: {len(cases) - len(failed)}/{len(cases)} ok" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
