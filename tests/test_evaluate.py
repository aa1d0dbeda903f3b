"""The evaluation loop on a toy env whose episodes end at different times."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces

from dpbench.config import PolicyConfig
from dpbench.envs.io import ObsMode, box
from dpbench.evaluate import evaluate
from dpbench.policy import Policy
from dpbench.tasks import Task


class CountdownEnv(gym.Env):
    """Episode i (seed i) succeeds after i+1 steps with reward 1; rewards before are 0.1."""

    observation_space = spaces.Box(-1e6, 1e6, shape=(1,), dtype=np.float64)
    action_space = spaces.Box(-1, 1, shape=(1,), dtype=np.float64)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.left = (seed or 0) % 100 + 1
        self.t = 0
        return np.array([float(self.left)]), {}

    def step(self, action):
        self.t += 1
        done = self.t >= self.left
        return np.array([float(self.left - self.t)]), 1.0 if done else 0.1, done, False, {"is_success": done}


gym.register("dpbench-test/Countdown-v0", entry_point=CountdownEnv, max_episode_steps=10)


class CountdownState(ObsMode):
    env_kwargs: dict = {}
    dataset_keys = ("obs",)
    observation_space = spaces.Dict({"obs": box((1,))})
    action_space = box((1,))
    env_action_dim = 1

    def from_env(self, obs):
        return {"obs": np.asarray(obs, np.float32)}

    def from_dataset(self, data):
        return data


SPEC = CountdownState().spec
TASK = Task(
    name="countdown",
    gym_id="dpbench-test/Countdown-v0",
    obs_modes={"state": CountdownState()},
    default_obs="state",
    default_dataset="",
    datasets=(),
    test_seed_start=0,
    n_test_episodes=4,
)


class ZeroPolicy(Policy):
    name = "zero"

    def __init__(self) -> None:
        super().__init__(SPEC, PolicyConfig(n_obs_steps=2, horizon=4, n_action_steps=3))
        self.calls: list[torch.Tensor] = []

    def predict_action(self, obs):
        self.calls.append(obs["obs"].clone())
        return torch.zeros(obs["obs"].shape[0], 3, 1)


def test_episodes_that_end_early_keep_their_result():
    policy = ZeroPolicy()
    res = evaluate(policy, TASK, TASK.obs_mode(None), n_episodes=4, seed_start=0)
    # seeds 0..3 succeed after 1..4 steps; later autoreset episodes are ignored
    assert res.episode_success == [True, True, True, True]
    assert res.episode_lengths == [1, 2, 3, 4]  # each ended at its success
    assert res.episode_scores == [1.0, 1.0, 1.0, 1.0]
    assert res.success_rate == 1.0 and res.n_policy_calls == 2  # 4 steps need two chunks of 3
    first = policy.calls[0]
    assert first.shape == (4, 2, 1)
    assert torch.equal(first[:, 0], first[:, 1])  # the window starts as copies of the first obs


def test_time_limit_and_failures_count():
    policy = ZeroPolicy()
    res = evaluate(policy, TASK, TASK.obs_mode(None), n_episodes=2, seed_start=20)
    assert res.episode_success == [False, False]  # 21+ steps needed, time limit 10
    assert res.episode_steps == 10 and res.episode_lengths == [10, 10]  # both ran to the horizon
    assert res.score == 0.1 and res.success_ci95[0] == 0.0


def test_env_batch_worker_failure_is_one_clear_error() -> None:
    from dpbench.errors import DpbenchError
    from dpbench.vector import EnvBatch, EnvMaker

    with pytest.raises(DpbenchError, match="env worker failed: unknown Push-T obs_type 'nope'"):
        EnvBatch(EnvMaker("dpbench/PushT-v0", {"obs_type": "nope"}), 4, n_procs=2)


def test_waves_of_episodes_give_the_same_episodes_as_one_batch():
    """Seeds 4..10 need 5..11 steps (the last one fails at the limit of 10): waves of 3 (3+3+1, the last
    partial) run the same episodes with the same seeds as one batch of 7."""
    together = evaluate(ZeroPolicy(), TASK, TASK.obs_mode(None), n_episodes=7, seed_start=4)
    policy = ZeroPolicy()
    waves = evaluate(policy, TASK, TASK.obs_mode(None), n_episodes=7, seed_start=4, wave=3)
    assert waves.episode_scores == together.episode_scores
    assert waves.episode_success == together.episode_success == [True] * 6 + [False]
    assert {c.shape[0] for c in policy.calls} == {3}  # one env batch of 3, reused by every wave


def test_envs_that_need_much_memory_run_in_waves_that_fit(monkeypatch):

    from dpbench import evaluate as ev

    heavy = CountdownState()
    heavy.env_memory_mb = 800
    monkeypatch.setattr(ev, "available_memory_mb", lambda: 10_000.0)
    assert ev.episodes_per_wave(heavy, 50) == 4  # 35% of 10 GB / 0.8 GB per env
    assert ev.episodes_per_wave(TASK.obs_mode(None), 50) == 50  # light envs: all at once
    monkeypatch.setattr(ev, "available_memory_mb", lambda: 100.0)
    assert ev.episodes_per_wave(heavy, 50) == 1  # always at least one


def test_an_evaluations_bar_counts_every_wave_to_its_horizon(monkeypatch):
    # a robomimic evaluation is minutes long: its bar (status lines in a log) runs over the waves' steps. Seeds
    # 0..6 end after 1..7 steps, the horizon is 10: waves of 3 (3+3+1) are 3 x 10 steps however early they end.
    import dpbench.evaluate as ev

    bars, make = [], ev.terminal_bar

    def recording_bar(**kwargs):
        bars.append(make(**kwargs))
        return bars[-1]

    monkeypatch.setattr(ev, "terminal_bar", recording_bar)
    evaluate(ZeroPolicy(), TASK, TASK.obs_mode(None), n_episodes=7, seed_start=0, wave=3, progress=True, desc="x")
    (bar,) = bars
    assert bar.total == 30 and bar.n == 30 and bar.desc == "x"
