from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("DPBENCH_CACHE", str(Path(__file__).resolve().parent / ".cache"))
# One torch thread per process unless the caller chose: the tests' models are tiny, so a second intra-op thread
# costs more than it saves on a 2-core machine, where the test's own env workers want the other core (2026-12-05,
# the torch-heavy tests alone: 165 s at the default 2 threads, 138 s at one). Set before torch is imported.
os.environ.setdefault("DPBENCH_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

from dpbench.data.episodes import EpisodeStore, write_hdf5
from dpbench.data.registry import human_pusht_path
from dpbench.envs.pusht.env import PushTEnv
from dpbench.envs.pusht.geometry import block_keypoints
from dpbench.envs.pusht.render import render_frame


def random_pusht_episodes(n_episodes: int = 4, length: int = 30, seed: int = 0) -> list[dict[str, np.ndarray]]:
    """Short Push-T episodes from a smooth random walk of the agent target (zarr-style keys)."""
    rng = np.random.default_rng(seed)
    env = PushTEnv(obs_type="state")
    episodes = []
    for e in range(n_episodes):
        obs, _ = env.reset(seed=seed * 1000 + e)
        target = obs[:2].copy()
        rows: dict[str, list] = {"state": [], "action": [], "keypoint": [], "n_contacts": [], "img": []}
        for _ in range(length):
            target = np.clip(target + rng.normal(0, 15, size=2), 20, 490)
            rows["state"].append(obs.astype(np.float32))
            rows["keypoint"].append(block_keypoints(env._block_pose()).astype(np.float32))
            rows["img"].append(render_frame(obs[:2], env._block_pose(), 96))
            rows["action"].append(target.astype(np.float32))
            obs, _, _, _, info = env.step(target)
            rows["n_contacts"].append(np.float32([info["n_contacts"]]))
        episodes.append({k: np.stack(v) for k, v in rows.items()})
    return episodes


def _fit(policy, make_batch, lr: float, steps: int = 300) -> None:
    """A few hundred Adam steps on batches from ``make_batch()``, then eval mode, sampling seed 0."""
    import torch

    opt = torch.optim.Adam(policy.parameters(), lr=lr)
    for _ in range(steps):
        loss = policy.compute_loss(make_batch())
        opt.zero_grad()
        loss.backward()
        opt.step()
    policy.eval()
    policy.seed(0)


def _smoke_argv(policy: str, dataset: Path | str, out: Path | str, *extra: str) -> list[str]:
    return ["run", "--policy", policy, "--env", "pusht", "--preset", "smoke", "--dataset", str(dataset),
            "--out", str(out), "--quiet", *extra]  # fmt: skip


@pytest.fixture(scope="session")
def smoke_argv():
    """``smoke_argv(policy, dataset, out, *extra)``: the argv of a quiet smoke-preset Push-T run."""
    return _smoke_argv


@pytest.fixture(scope="session")
def fit():
    """The tests' one small training loop: ``fit(policy, make_batch, lr, steps=300)``."""
    return _fit


@pytest.fixture(scope="session")
def tiny_pusht_hdf5(tmp_path_factory) -> Path:
    store = EpisodeStore.from_episodes(random_pusht_episodes(), source="tiny")
    return write_hdf5(store, tmp_path_factory.mktemp("data") / "tiny_pusht.hdf5", env_args={"env_name": "pusht"})


@pytest.fixture(scope="session")
def human_zarr() -> Path:
    path = human_pusht_path()
    if path is None:
        pytest.skip(
            "human Push-T demos not found (../shared/data/pusht or DPBENCH_PUSHT_ZARR); skipping this human-data check"
        )
    return path
