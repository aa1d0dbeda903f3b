"""Tasks: how an env and its datasets turn into the observation arrays that policies consume.

A task names its Gymnasium ID, its observation modes and its evaluation protocol. Each
observation mode maps dataset arrays and env observations to the *same* dict of arrays, so
a policy never contains task-specific code.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from dpbench.errors import DpbenchError

ObsDict = dict[str, np.ndarray]


@dataclass(frozen=True)
class PolicySpec:
    """What a policy is told about a task: observation shapes (per step) and the action size."""

    obs_shapes: dict[str, tuple[int, ...]]
    action_dim: int
    image_keys: tuple[str, ...] = ()

    @property
    def lowdim_keys(self) -> tuple[str, ...]:
        return tuple(k for k in self.obs_shapes if k not in self.image_keys)

    def to_dict(self) -> dict[str, Any]:
        return {"obs_shapes": {k: list(v) for k, v in self.obs_shapes.items()}, "action_dim": self.action_dim, "image_keys": list(self.image_keys)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "PolicySpec":
        return cls({k: tuple(v) for k, v in d["obs_shapes"].items()}, int(d["action_dim"]), tuple(d.get("image_keys", ())))


@dataclass(frozen=True)
class ObsMode:
    """One way to observe a task: env kwargs plus the two converters into policy arrays."""

    env_kwargs: dict[str, Any]
    dataset_keys: tuple[str, ...]
    from_dataset: Callable[[dict[str, np.ndarray]], ObsDict]
    from_env: Callable[[Any], ObsDict]
    spec: PolicySpec


@dataclass(frozen=True)
class Task:
    name: str
    gym_id: str
    obs_modes: dict[str, ObsMode]
    default_obs: str
    max_episode_steps: int
    default_dataset: str
    datasets: tuple[str, ...]
    test_seed_start: int = 100000
    n_test_episodes: int = 50
    paper_task: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def obs_mode(self, name: str | None) -> ObsMode:
        name = name or self.default_obs
        if name not in self.obs_modes:
            raise DpbenchError(f"task '{self.name}' has no obs mode '{name}'; choose one of {', '.join(self.obs_modes)}")
        return self.obs_modes[name]


def _pusht_modes() -> dict[str, ObsMode]:
    def kp_from_data(d: dict[str, np.ndarray]) -> ObsDict:
        n = len(d["keypoint"])
        return {"obs": np.concatenate([d["keypoint"].reshape(n, -1), d["state"][:, :2]], axis=1).astype(np.float32)}

    def image_from_env(o: Any) -> ObsDict:
        return {"image": np.asarray(o["pixels"], dtype=np.uint8), "agent_pos": np.asarray(o["agent_pos"], dtype=np.float32)}

    return {
        "keypoints": ObsMode(
            env_kwargs={"obs_type": "keypoints"},
            dataset_keys=("keypoint", "state"),
            from_dataset=kp_from_data,
            from_env=lambda o: {"obs": np.asarray(o, dtype=np.float32)},
            spec=PolicySpec({"obs": (20,)}, 2),
        ),
        "state": ObsMode(
            env_kwargs={"obs_type": "state"},
            dataset_keys=("state",),
            from_dataset=lambda d: {"obs": d["state"].astype(np.float32)},
            from_env=lambda o: {"obs": np.asarray(o, dtype=np.float32)},
            spec=PolicySpec({"obs": (5,)}, 2),
        ),
        "image": ObsMode(
            env_kwargs={"obs_type": "pixels_agent_pos"},
            dataset_keys=("img", "state"),
            from_dataset=lambda d: {"image": d["img"], "agent_pos": d["state"][:, :2].astype(np.float32)},
            from_env=image_from_env,
            spec=PolicySpec({"image": (96, 96, 3), "agent_pos": (2,)}, 2, image_keys=("image",)),
        ),
    }


TASKS: dict[str, Task] = {
    "pusht": Task(
        name="pusht",
        gym_id="dpbench/PushT-v0",
        obs_modes=_pusht_modes(),
        default_obs="keypoints",
        max_episode_steps=300,
        default_dataset="human",
        datasets=("human", "scripted"),
        paper_task="pusht",
    ),
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DpbenchError(f"unknown env '{name}'; valid envs: {', '.join(sorted(TASKS))}")
    return TASKS[name]
