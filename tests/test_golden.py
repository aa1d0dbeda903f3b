"""Golden outputs: per policy, a fixed input and its stored output, so a refactor of a sampler, a
fast path, the rollout loop or an observation/action transform shows any numeric drift at once.

The stored values (tests/golden/*.npz) were written by the code at the commit that added them,
not derived from the code under test: a change here is a change in behaviour, to be explained.
Regenerate deliberately with ``DPBENCH_REGEN_GOLDEN=1 pytest tests/test_golden.py``.

Three levels per policy (the smoke preset's small networks, Push-T keypoints shapes):
- ``loss``: ``compute_loss`` on a fixed batch under ``torch.manual_seed(1)``;
- ``action``: the executed actions for a fixed observation window (sampling seed 0);
- ``rollout``: the actions a policy sends into the env over the first steps of two evaluation
  episodes, and their scores (the whole loop: windows, chunks, transforms, seeding).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dpbench.config import build_configs
from dpbench.evaluate import evaluate
from dpbench.policies import available_policies, get_policy_class
from dpbench.policy import Policy
from dpbench.spec import PolicySpec
from dpbench.tasks import get_task

GOLDEN = Path(__file__).parent / "golden"
REGEN = os.environ.get("DPBENCH_REGEN_GOLDEN") == "1"
SPEC = PolicySpec({"obs": (20,)}, 2)
POLICIES = sorted(n for n in available_policies() if n != "diffusion_cnn")  # an alias of diffusion
ROLLOUT_STEPS = 24  # per episode: enough for several replans of every policy, short of chaotic divergence


@pytest.fixture(autouse=True)
def one_thread():
    """The stored outputs were computed on one torch thread: another thread count sums in another
    order, which moves float32 actions of ~500 px by a few ulps (1e-4 px measured for DP-T on 2)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _policy(name: str, spec: PolicySpec = SPEC) -> Policy:
    cls = get_policy_class(name)
    torch.manual_seed(0)
    policy = cls(spec, build_configs(cls, "smoke")[0])
    rng = np.random.default_rng(0)
    obs_dim = spec.obs_shapes["obs"][0]
    lo, hi = (0.0, 512.0) if spec == SPEC else (-1.0, 1.0)
    policy.fit_statistics(
        {
            "obs": rng.uniform(lo, hi, (256, obs_dim)).astype(np.float32),
            "action": rng.uniform(lo, hi, (256, spec.action_dim)).astype(np.float32),
        }
    )
    return policy


def _check(name: str, got: dict[str, np.ndarray], atol: float, rtol: float = 0.0) -> None:
    path = GOLDEN / f"{name}.npz"
    if REGEN:
        path.parent.mkdir(exist_ok=True)
        np.savez_compressed(path, **got)
        pytest.skip(f"regenerated {path.name}")
    if not path.exists():
        pytest.fail(f"{path} is missing; regenerate with DPBENCH_REGEN_GOLDEN=1")
    want = np.load(path)
    assert sorted(want.files) == sorted(got), f"{name}: stored keys {sorted(want.files)} != {sorted(got)}"
    for key in want.files:
        assert got[key].shape == want[key].shape, f"{name}/{key}: shape {got[key].shape} != stored {want[key].shape}"
        np.testing.assert_allclose(got[key], want[key], rtol=rtol, atol=atol, err_msg=f"{name}/{key} drifted")


@pytest.mark.parametrize("name", POLICIES)
def test_policy_golden(name: str) -> None:
    policy = _policy(name)
    g = torch.Generator().manual_seed(7)
    batch = {
        "obs": torch.rand(4, policy.n_obs_steps, 20, generator=g) * 512,
        "action": torch.rand(4, policy.horizon, 2, generator=g) * 512,
    }
    torch.manual_seed(1)
    loss = policy.compute_loss(batch)
    policy.eval()
    obs = {"obs": torch.rand(3, policy.n_obs_steps, 20, generator=g) * 512}
    policy.reset()
    policy.seed(0)
    with torch.no_grad():
        first = policy.predict_action(obs)
        second = policy.predict_action(obs)  # recurrent policies: the state carries over
    _check(
        f"policy_{name}",
        {"loss": np.float64(loss.item()), "action": first.numpy(), "action_again": second.numpy()},
        atol=1e-4,
        # torch picks float32 kernels by the CPU's SIMD level, and they sum in another order: on an AVX2 CPU the
        # DP actions (~500 px, after 10 sampler steps) were up to 3.7e-4 px (6.3e-6 relative) off the stored ones,
        # written on AVX-512. A change in behaviour moves them by far more.
        rtol=2e-5,
    )


class _ActionLog:
    """Patches an env class's ``step`` to log each action it receives and to end every episode after
    ``steps`` steps (truncated), so the rollout stays short."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, env_cls: type, steps: int) -> None:
        self.actions: list[np.ndarray] = []
        original, counts = env_cls.step, {}
        log = self

        def step(env: Any, action: np.ndarray) -> tuple:
            counts[id(env)] = counts.get(id(env), 0) + 1
            log.actions.append(np.array(action, dtype=np.float64))
            obs, reward, terminated, truncated, info = original(env, action)
            return obs, reward, terminated, truncated or counts[id(env)] >= steps, info

        orig_reset = env_cls.reset

        def reset(env: Any, *args: Any, **kwargs: Any) -> tuple:
            counts[id(env)] = 0
            return orig_reset(env, *args, **kwargs)

        monkeypatch.setattr(env_cls, "step", step)
        monkeypatch.setattr(env_cls, "reset", reset)


@pytest.mark.parametrize("name", POLICIES)
def test_rollout_golden_pusht(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dpbench.envs.pusht.env import PushTEnv

    log = _ActionLog(monkeypatch, PushTEnv, ROLLOUT_STEPS)
    task = get_task("pusht")
    policy = _policy(name)
    res = evaluate(policy, task, task.obs_mode("keypoints"), n_episodes=2, sampling_seed=3)
    _check(
        f"rollout_pusht_{name}",
        {
            "actions": np.stack(log.actions),
            "scores": np.array(res.episode_scores),
            "final": np.array(res.episode_final),
        },
        atol=1e-3,
    )


def test_rollout_golden_lift_abs_actions(monkeypatch: pytest.MonkeyPatch) -> None:
    """robomimic low-dim with absolute actions: the policy predicts rotation-6D, the env receives
    axis-angle (the action decoding sits between them)."""
    pytest.importorskip("robosuite")
    from dpbench.envs.robomimic.env import RobomimicEnv

    log = _ActionLog(monkeypatch, RobomimicEnv, 12)
    task = get_task("lift")
    mode = task.obs_mode("low_dim")
    policy = _policy("bc", mode.spec)
    res = evaluate(policy, task, mode, n_episodes=2, sampling_seed=0)  # one thread: envs step in this process
    _check("rollout_lift_bc", {"actions": np.stack(log.actions), "scores": np.array(res.episode_scores)}, atol=1e-4)
