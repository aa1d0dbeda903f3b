"""Push-T's observation modes (the paper's): ``keypoints`` (9 block keypoints + agent position,
20 numbers), ``state`` (agent x, y, block x, y, angle) and ``image`` (96x96 RGB + agent position).
Actions are the agent's target position in pixels (2,), the same for env, dataset and policy."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from dpbench.envs.io import ObsDict, ObsMode, box


class PushTKeypoints(ObsMode):
    """``obs`` (20,): the block's 9 keypoints (x, y), then the agent's (x, y); datasets store the
    keypoints (N, 9, 2) and the state (N, 5), whose first two numbers are the agent's position."""

    env_kwargs = {"obs_type": "keypoints"}
    dataset_keys = ("keypoint", "state")
    observation_space = spaces.Dict({"obs": box((20,))}, sort_keys=False)
    action_space = box((2,))
    env_action_dim = 2

    def from_env(self, obs: Any) -> ObsDict:
        return {"obs": np.asarray(obs, dtype=np.float32)}

    def from_dataset(self, data: dict[str, np.ndarray]) -> ObsDict:
        n = len(data["keypoint"])
        return {
            "obs": np.concatenate([data["keypoint"].reshape(n, -1), data["state"][:, :2]], axis=1).astype(np.float32)
        }


class PushTState(ObsMode):
    """``obs`` (5,): agent x, y, block x, y, block angle (radians)."""

    env_kwargs = {"obs_type": "state"}
    dataset_keys = ("state",)
    observation_space = spaces.Dict({"obs": box((5,))}, sort_keys=False)
    action_space = box((2,))
    env_action_dim = 2

    def from_env(self, obs: Any) -> ObsDict:
        return {"obs": np.asarray(obs, dtype=np.float32)}

    def from_dataset(self, data: dict[str, np.ndarray]) -> ObsDict:
        return {"obs": data["state"].astype(np.float32)}


class PushTImage(ObsMode):
    """``image`` (96, 96, 3) uint8 and ``agent_pos`` (2,); datasets store ``img`` and ``state``."""

    env_kwargs = {"obs_type": "pixels_agent_pos"}
    dataset_keys = ("img", "state")
    observation_space = spaces.Dict({"image": box((96, 96, 3), image=True), "agent_pos": box((2,))}, sort_keys=False)
    action_space = box((2,))
    env_action_dim = 2

    def from_env(self, obs: Any) -> ObsDict:
        return {
            "image": np.asarray(obs["pixels"], dtype=np.uint8),
            "agent_pos": np.asarray(obs["agent_pos"], dtype=np.float32),
        }

    def from_dataset(self, data: dict[str, np.ndarray]) -> ObsDict:
        return {"image": data["img"], "agent_pos": data["state"][:, :2].astype(np.float32)}


MODES: dict[str, type[ObsMode]] = {"keypoints": PushTKeypoints, "state": PushTState, "image": PushTImage}
