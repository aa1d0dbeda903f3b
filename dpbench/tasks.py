"""Tasks: how an env and its datasets turn into the observation arrays that policies consume.

A task names its Gymnasium ID, its observation modes and its evaluation protocol. Each
observation mode maps dataset arrays and env observations to the *same* dict of arrays, so
a policy never contains task-specific code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
        return {
            "obs_shapes": {k: list(v) for k, v in self.obs_shapes.items()},
            "action_dim": self.action_dim,
            "image_keys": list(self.image_keys),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PolicySpec:
        return cls(
            {k: tuple(v) for k, v in d["obs_shapes"].items()}, int(d["action_dim"]), tuple(d.get("image_keys", ()))
        )


@dataclass(frozen=True)
class ObsMode:
    """One way to observe a task: env kwargs plus the two converters into policy arrays."""

    env_kwargs: dict[str, Any]
    dataset_keys: tuple[str, ...]
    from_dataset: Callable[[dict[str, np.ndarray]], ObsDict]
    from_env: Callable[[Any], ObsDict]
    spec: PolicySpec
    # Actions as stored in datasets and taken by the env <-> what the policy predicts (e.g. the
    # robomimic tasks' absolute axis-angle actions <-> rotation-6D). None: the same numbers.
    encode_action: Callable[[np.ndarray], np.ndarray] | None = None
    decode_action: Callable[[np.ndarray], np.ndarray] | None = None
    env_action_dim: int | None = None  # the env's (and datasets') action size, when encoded
    # Rough resident memory of one env in this mode (0: negligible); an evaluation runs its
    # episodes in waves that fit in memory (dpbench.evaluate.episodes_per_wave).
    env_memory_mb: int = 0

    @property
    def native_action_dim(self) -> int:
        return self.env_action_dim or self.spec.action_dim


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
    # Held-out test seeds: the selected checkpoint's second opinion (TrainConfig.heldout_episodes).
    # Far from the paper's test seeds (100000-100049) and from the demonstration seeds (0 on).
    heldout_seed_start: int = 200000
    paper_task: str = ""
    parallel_eval: bool = False  # env steps are costly: evaluate over one process per core
    # Dataset kind -> the paper's cap on training episodes (the original's ``max_train_episodes``).
    paper_max_train_episodes: dict[str, int] = field(default_factory=dict)
    # Tasks whose env can be driven in several action modes (robomimic: abs | delta). The mode
    # comes from the dataset (``action_mode_of``); ``build_mode(obs, action_mode)`` makes its ObsMode.
    action_modes: tuple[str, ...] = ()
    build_mode: Callable[[str, str], ObsMode] | None = None
    action_mode_of: Callable[[dict[str, Any]], str] | None = None
    # Checks a dataset file against the env before training: (path, obs keys) -> an agreement
    # whose ``apply(data)`` maps the file's arrays to the env's layout (robomimic: replayed states).
    verify_dataset: Callable[[Any, tuple[str, ...]], Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def obs_mode(self, name: str | None, action_mode: str | None = None) -> ObsMode:
        name = name or self.default_obs
        if name not in self.obs_modes:
            raise DpbenchError(
                f"task '{self.name}' has no obs mode '{name}'; choose one of {', '.join(self.obs_modes)}"
            )
        if action_mode is None or self.build_mode is None or action_mode == self.action_modes[0]:
            return self.obs_modes[name]
        if action_mode not in self.action_modes:
            raise DpbenchError(
                f"task '{self.name}' has no action mode '{action_mode}'; choose one of {', '.join(self.action_modes)}"
            )
        return self.build_mode(name, action_mode)

    def max_train_episodes(self, dataset_kind: str, train_episodes: str, explicit: int | None) -> int | None:
        """The cap on training episodes: an explicit one, else the paper's for this dataset kind
        (``train_episodes="paper"``) or none (``"all"``; the runner has checked the value)."""
        if explicit is not None:
            return explicit
        return self.paper_max_train_episodes.get(dataset_kind) if train_episodes == "paper" else None

    def dataset_action_mode(self, dataset_attrs: dict[str, Any]) -> str | None:
        """The action mode a dataset was recorded in (checked against this task), or None."""
        return self.action_mode_of(dataset_attrs) if self.action_mode_of else None


def _pusht_modes() -> dict[str, ObsMode]:
    def kp_from_data(d: dict[str, np.ndarray]) -> ObsDict:
        n = len(d["keypoint"])
        return {"obs": np.concatenate([d["keypoint"].reshape(n, -1), d["state"][:, :2]], axis=1).astype(np.float32)}

    def image_from_env(o: Any) -> ObsDict:
        return {
            "image": np.asarray(o["pixels"], dtype=np.uint8),
            "agent_pos": np.asarray(o["agent_pos"], dtype=np.float32),
        }

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


def _robomimic_mode(task: str, obs: str, action_mode: str) -> ObsMode:
    """robomimic observation modes. ``low_dim``: the robomimic keys flattened into ``obs`` (paper
    Table I). ``image``: the task's two default cameras (84x84) plus the robot's eef pose and
    gripper as ``low_dim`` (paper Table II; no object state)."""
    from dpbench.envs.robomimic.env import TASK_SPECS
    from dpbench.envs.robomimic.rotation import ARM_ROT6D_DIM, decode_abs_actions, encode_abs_actions

    spec = TASK_SPECS[task]
    abs_mode = action_mode == "abs"
    action_dim = (ARM_ROT6D_DIM if abs_mode else 7) * spec.n_arms
    codec: dict[str, Any] = {}
    if abs_mode:
        codec = {
            "encode_action": lambda a: encode_abs_actions(a).astype(np.float32),
            "decode_action": decode_abs_actions,
            "env_action_dim": spec.action_dim,
        }
    if obs == "low_dim":
        keys = spec.lowdim_keys

        def flatten(d: Any) -> ObsDict:
            return {"obs": np.concatenate([np.asarray(d[k], np.float32) for k in keys], axis=-1)}

        return ObsMode(
            {"action_mode": action_mode},
            keys,
            flatten,
            flatten,
            PolicySpec({"obs": (spec.lowdim_dim,)}, action_dim),
            **codec,
        )
    cameras = spec.default_cameras[: 2 * spec.n_arms]
    image_keys = tuple(f"{c}_image" for c in cameras)
    proprio = tuple(k for k in spec.lowdim_keys if k != "object")
    proprio_dim = sum(spec.key_dims[k] for k in proprio)

    def split(d: Any) -> ObsDict:
        out: ObsDict = {k: np.asarray(d[k]) for k in image_keys}
        out["low_dim"] = np.concatenate([np.asarray(d[k], np.float32) for k in proprio], axis=-1)
        return out

    shapes: dict[str, tuple[int, ...]] = dict.fromkeys(image_keys, (84, 84, 3))
    shapes["low_dim"] = (proprio_dim,)
    # Measured: Lift envs with two 84x84 cameras (EGL) take ~165 MB each after a process's first
    # (~1.1 GB with robosuite and the GL stack); 250 leaves a margin.
    return ObsMode(
        {"action_mode": action_mode, "cameras": cameras},
        image_keys + proprio,
        split,
        split,
        PolicySpec(shapes, action_dim, image_keys=image_keys),
        env_memory_mb=250,
        **codec,
    )


def _robomimic_task(name: str, paper_task: str) -> Task:
    from functools import partial

    from dpbench.envs import ROBOMIMIC_IDS
    from dpbench.envs.robomimic.env import TASK_SPECS

    gym_id, horizon = ROBOMIMIC_IDS[name]
    build = partial(_robomimic_mode, name)
    return Task(
        name=name,
        gym_id=gym_id,
        obs_modes={obs: build(obs, "abs") for obs in ("low_dim", "image")},
        default_obs="low_dim",
        max_episode_steps=horizon,
        default_dataset="scripted",
        datasets=("scripted", "scripted-mh"),
        paper_task=paper_task,
        parallel_eval=True,
        action_modes=("abs", "delta"),
        build_mode=build,
        action_mode_of=partial(_robomimic_action_mode, name),
        verify_dataset=partial(_robomimic_verify, name),
        extra={"robosuite_env": TASK_SPECS[name].robosuite_env},
    )


def _robomimic_verify(task: str, path: Any, keys: tuple[str, ...]) -> Any:
    from dpbench.envs.robomimic.agreement import check_dataset

    return check_dataset(task, path, keys)


def _robomimic_action_mode(task: str, attrs: dict[str, Any]) -> str:
    from dpbench.envs.robomimic.datasets import action_mode_from_env_args

    return action_mode_from_env_args(task, attrs.get("env_args"), attrs.get("path", "the dataset"))


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
        paper_max_train_episodes={"human": 90},  # config/task/pusht_*.yaml: max_train_episodes: 90
    ),
    **{name: _robomimic_task(name, name) for name in ("lift", "can", "square", "transport", "tool_hang")},
}


def get_task(name: str) -> Task:
    if name not in TASKS:
        raise DpbenchError(f"unknown env '{name}'; valid envs: {', '.join(sorted(TASKS))}")
    return TASKS[name]
