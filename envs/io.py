"""Observation and action modes: the one place where env data becomes policy data and back.

An ``ObsMode`` is a small, picklable transform that a task builds for each way of observing it
(Push-T keypoints / state / image, robomimic low_dim / image, each with its action encoding). It
converts, in both directions and for both sources:

- env observations -> policy observations (``from_env``), and dataset arrays -> the same
  policy observations (``from_dataset``), so training and evaluation see identical inputs;
- dataset/env actions -> policy actions (``encode_action``, e.g. robomimic's axis-angle ->
  rotation-6D) and back (``decode_action``).

At evaluation the mode wraps each env (``wrap``: a Gymnasium wrapper), so the evaluator steps
policy-side observations and actions only. The policy's ``PolicySpec`` is read off the mode's
spaces (``spec``). Modes hold plain data (no lambdas), so env worker processes can unpickle them.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dpbench.spec import PolicySpec

ObsDict = dict[str, np.ndarray]


def box(shape: tuple[int, ...], image: bool = False) -> spaces.Box:
    """A policy-side space: uint8 0-255 for images (H, W, 3), unbounded float32 otherwise."""
    if image:
        return spaces.Box(0, 255, shape, dtype=np.uint8)
    return spaces.Box(-np.inf, np.inf, shape, dtype=np.float32)


class ObsMode:
    """Base class: identity actions; subclasses set the fields and implement ``from_env`` and
    ``from_dataset``.

    Attributes:
        env_kwargs: keyword arguments for ``gym.make`` (e.g. ``{"obs_type": "keypoints"}``).
        dataset_keys: the dataset arrays ``from_dataset`` reads.
        observation_space: ``Dict`` of per-step policy observations, in the policy's key order.
        action_space: ``Box`` of policy actions (policy units, e.g. rotation-6D).
        env_action_dim: the env's and datasets' action size (differs when actions are encoded).
        env_memory_mb: rough resident memory of one env in this mode (0: negligible); an
            evaluation runs its episodes in waves that fit (``dpbench.evaluate.episodes_per_wave``).
        env_process_mb: rough resident memory of an env worker process before its envs (its imports and
            simulator), where an evaluation spreads its envs over processes (``dpbench.evaluate.env_procs``).
    """

    env_kwargs: dict[str, Any]
    dataset_keys: tuple[str, ...]
    observation_space: spaces.Dict
    action_space: spaces.Box
    env_action_dim: int
    env_memory_mb: int = 0
    env_process_mb: int = 0

    @property
    def spec(self) -> PolicySpec:
        """The PolicySpec read off ``observation_space`` and ``action_space``."""
        return PolicySpec.from_spaces(self.observation_space, self.action_space)

    def from_env(self, obs: Any) -> ObsDict:
        """One env observation (or a batch of them, stacked on a leading axis) -> policy arrays."""
        raise NotImplementedError

    def from_dataset(self, data: dict[str, np.ndarray]) -> ObsDict:
        """Dataset arrays ``(N, ...)`` (the ``dataset_keys``) -> policy arrays ``(N, ...)``."""
        raise NotImplementedError

    def encode_action(self, actions: np.ndarray) -> np.ndarray:
        """Env/dataset actions ``(..., env_action_dim)`` -> policy actions ``(..., action_dim)``, float32."""
        return np.asarray(actions, dtype=np.float32)

    def decode_action(self, actions: np.ndarray) -> np.ndarray:
        """Policy actions ``(..., action_dim)`` -> env actions ``(..., env_action_dim)``."""
        return actions

    def wrap(self, env: gym.Env) -> gym.Env:
        """``env`` seen through this mode: policy observations out, policy actions in."""
        return PolicyIOWrapper(env, self)


class PolicyIOWrapper(gym.Wrapper):
    """Applies an ``ObsMode`` to one env: ``reset``/``step`` return ``mode.from_env(obs)`` and
    ``step`` sends ``mode.decode_action(action)`` to the env. Rewards, flags and info pass through."""

    def __init__(self, env: gym.Env, mode: ObsMode) -> None:
        super().__init__(env)
        self.mode = mode
        self.observation_space = mode.observation_space
        self.action_space = mode.action_space

    def reset(self, **kwargs: Any) -> tuple[ObsDict, dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        return self.mode.from_env(obs), info

    def step(self, action: np.ndarray) -> tuple[ObsDict, float, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(self.mode.decode_action(np.asarray(action)))
        return self.mode.from_env(obs), reward, terminated, truncated, info
