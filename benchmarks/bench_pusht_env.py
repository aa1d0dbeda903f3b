"""Push-T env benchmark: steps/s per observation type, the replay fidelity on the human demos, and
the pixel agreement between our renderer and the demos' recorded 96x96 frames.

    python benchmarks/bench_pusht_env.py [--steps 3000] [--out results/pusht_env.json]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np
from timing import write_result

from dpbench.data.episodes import load_zarr
from dpbench.data.registry import human_pusht_path, portable_path
from dpbench.envs.pusht.env import PushTEnv
from dpbench.envs.pusht.geometry import block_keypoints


def steps_per_second(obs_type: str, n_steps: int) -> float:
    env = PushTEnv(obs_type=obs_type)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    target = np.array([256.0, 256.0])
    t0 = time.perf_counter()
    for i in range(n_steps):
        target = np.clip(target + rng.normal(0, 15, 2), 0, 512)
        _, _, term, _trunc, _ = env.step(target)
        if term or (i + 1) % 300 == 0:
            env.reset(seed=i)
    return n_steps / (time.perf_counter() - t0)


def replay_fidelity(path: Path) -> dict:
    store = load_zarr(path, keys=["state", "action", "keypoint"])
    env = PushTEnv()
    worst = []
    t0 = time.perf_counter()
    for i in range(store.n_episodes):
        ep = store.episode(i)
        states, actions = ep["state"].astype(np.float64), ep["action"].astype(np.float64)
        obs, _ = env.reset(options={"reset_to_state": states[0]})
        w = 0.0
        for t in range(len(actions) - 1):
            obs, *_ = env.step(actions[t])
            w = max(w, float(np.abs(obs[2:4] - states[t + 1, 2:4]).max()))
        worst.append(w)
    worst = np.array(worst)
    kp_err = np.abs(
        np.stack([block_keypoints(s[2:5]) for s in store.data["state"].astype(np.float64)]) - store.data["keypoint"]
    )
    per_step = kp_err.max(axis=(1, 2))
    return {
        "episodes": int(store.n_episodes),
        "within_0.1px": int((worst <= 0.1).sum()),
        "fraction_within_0.1px": float((worst <= 0.1).mean()),
        "worst_episode_px": float(worst.max()),
        "median_episode_max_err_px": float(np.median(worst)),
        "keypoint_err_px": {
            "median": float(np.median(per_step)),
            "p99": float(np.quantile(per_step, 0.99)),
            "max": float(per_step.max()),
            "fraction_within_0.1px": float((per_step < 0.1).mean()),
        },
        "replay_seconds": time.perf_counter() - t0,
        "dataset": portable_path(path),
        "dataset_hash": store.content_hash(),
    }


def render_agreement(path: Path, every: int = 10) -> dict:
    """Mean absolute difference (0-255 scale) between our frame and the recorded ``img`` for the
    same state, on every ``every``-th step of the human data."""
    import zarr

    from dpbench.envs.pusht.render import render_frame

    data = zarr.open_group(str(path), mode="r")["data"]
    states = data["state"][:]
    diffs, exact = [], 0
    for start in range(0, len(states), 161 * 4):  # read a few stored chunks at a time
        imgs = data["img"][start : start + 161 * 4]
        for i in range(0, len(imgs), every):
            ours = render_frame(states[start + i, :2], states[start + i, 2:5], 96)
            d = np.abs(ours.astype(np.float64) - imgs[i])
            diffs.append(d.mean())
            exact += int((d < 0.5).mean() > 0.99)
    diffs = np.array(diffs)
    return {
        "frames": len(diffs),
        "mean_abs_diff": round(float(diffs.mean()), 3),
        "p95_abs_diff": round(float(np.quantile(diffs, 0.95)), 3),
        "max_abs_diff": round(float(diffs.max()), 3),
        "frames_with_99pct_pixels_equal": exact,
        "scale": "0-255, per pixel and channel",
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--out", default="results/pusht_env.json")
    args = ap.parse_args()
    report: dict[str, Any] = {"steps_per_second": {}}
    for obs_type in ("state", "keypoints", "pixels"):
        sps = steps_per_second(obs_type, args.steps if obs_type != "pixels" else args.steps // 3)
        report["steps_per_second"][obs_type] = round(sps, 1)
        print(f"{obs_type:<10} {sps:8.1f} steps/s")
    path = human_pusht_path()
    if path is None:
        print("human demos not found: replay fidelity skipped")
    else:
        fid = replay_fidelity(path)
        report["replay_fidelity"] = fid
        print(
            f"replay: {fid['within_0.1px']}/{fid['episodes']} episodes within 0.1 px "
            f"(worst {fid['worst_episode_px']:.3f} px)"
        )
        print(
            f"keypoints vs recorded: median {fid['keypoint_err_px']['median']:.2e} px, "
            f"p99 {fid['keypoint_err_px']['p99']:.3f} px, "
            f"max {fid['keypoint_err_px']['max']:.2f} px"
        )
        agree = render_agreement(path)
        report["render_agreement"] = agree
        print(
            f"renderer vs recorded frames: mean abs diff {agree['mean_abs_diff']}/255 over {agree['frames']} frames "
            f"(p95 {agree['p95_abs_diff']}, max {agree['max_abs_diff']})"
        )
    write_result(args.out, report)


if __name__ == "__main__":
    main()
