"""robomimic observation modes (the paper's Tables I and II) and action encodings.

- ``low_dim``: robomimic's low-dim keys (``object``, then per arm eef position, quaternion and
  gripper joints), flattened into one ``obs`` vector (paper Table I).
- ``image``: the task's default cameras (84x84 RGB, two per arm) plus the arms' eef pose and
  gripper as ``low_dim``, without object state (paper Table II).

Actions: in ``abs`` mode the env takes robosuite absolute OSC poses (position, axis-angle,
gripper: 7 per arm) and the policy predicts rotation-6D (10 per arm), as the original's
``abs_action`` datasets do; in ``delta`` mode both are robosuite's 7 delta numbers per arm.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from dpbench.envs.io import ObsDict, ObsMode, box

from .env import TASK_SPECS
from .rotation import ARM_ROT6D_DIM, decode_abs_actions, encode_abs_actions

# Resident memory of robomimic evaluation envs, MB, per task and obs mode, as (one env, one env worker process
# before its envs). benchmarks/bench_env_memory.py, three runs on 2026-12-06 (4, 4 and 8 envs; results/env_memory.json
# is the 8-env run): an env is the growth in RSS per env after a process's first; a worker process is that first
# env's process less one env (robosuite, MuJoCo, torch and, with cameras, the GL stack). Each figure is the largest
# of the three runs plus 20%, rounded up to 10 MB: envs low_dim lift 106, can 104, square 108, transport 201,
# tool_hang 114; image 190, 199, 197, 332, 223 (image figures vary ~15% between runs, low-dim ones <1%); worker
# processes low_dim 543-629, image 922-1212. Evaluations run their episodes in waves that fit
# (dpbench.evaluate.episodes_per_wave): one 120 MB figure for every task had Transport's waves hold 1.7x their
# share, and two Transport cells ran out of 24 GB.
ENV_MEMORY_MB: dict[str, dict[str, tuple[int, int]]] = {
    "lift": {"low_dim": (130, 660), "image": (230, 1110)},
    "can": {"low_dim": (130, 660), "image": (240, 1130)},
    "square": {"low_dim": (130, 660), "image": (240, 1270)},
    "transport": {"low_dim": (250, 760), "image": (400, 1460)},
    "tool_hang": {"low_dim": (140, 660), "image": (270, 1320)},
}


class _RobomimicMode(ObsMode):
    """Shared by both observation modes: the action encoding for ``action_mode`` (abs | delta)."""

    def __init__(self, task: str, action_mode: str) -> None:
        self.task, self.action_mode = task, action_mode
        spec = TASK_SPECS[task]
        self.abs = action_mode == "abs"
        self.env_action_dim = spec.action_dim
        self.action_space = box(((ARM_ROT6D_DIM if self.abs else 7) * spec.n_arms,))

    def encode_action(self, actions: np.ndarray) -> np.ndarray:
        return (encode_abs_actions(actions) if self.abs else np.asarray(actions)).astype(np.float32)

    def decode_action(self, actions: np.ndarray) -> np.ndarray:
        return decode_abs_actions(actions) if self.abs else actions

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.task!r}, {self.action_mode!r})"


class RobomimicLowDim(_RobomimicMode):
    """``obs`` (lowdim_dim,): the task's low-dim keys concatenated in robomimic's order."""

    def __init__(self, task: str, action_mode: str = "abs") -> None:
        super().__init__(task, action_mode)
        self.env_memory_mb, self.env_process_mb = ENV_MEMORY_MB[task]["low_dim"]
        spec = TASK_SPECS[task]
        self.keys = spec.lowdim_keys
        self.env_kwargs = {"action_mode": action_mode}
        self.dataset_keys = self.keys
        self.observation_space = spaces.Dict({"obs": box((spec.lowdim_dim,))}, sort_keys=False)

    def from_env(self, obs: Any) -> ObsDict:
        return {"obs": np.concatenate([np.asarray(obs[k], np.float32) for k in self.keys], axis=-1)}

    from_dataset = from_env


class RobomimicImage(_RobomimicMode):
    """``<camera>_image`` (84, 84, 3) uint8 per default camera (two per arm), and ``low_dim``: the
    arms' eef position, quaternion and gripper joints (no object state)."""

    def __init__(self, task: str, action_mode: str = "abs") -> None:
        super().__init__(task, action_mode)
        self.env_memory_mb, self.env_process_mb = ENV_MEMORY_MB[task]["image"]
        spec = TASK_SPECS[task]
        cameras = spec.default_cameras[: 2 * spec.n_arms]
        self.image_keys = tuple(f"{c}_image" for c in cameras)
        self.proprio = tuple(k for k in spec.lowdim_keys if k != "object")
        self.env_kwargs = {"action_mode": action_mode, "cameras": cameras}
        self.dataset_keys = self.image_keys + self.proprio
        obs_spaces = {k: box((84, 84, 3), image=True) for k in self.image_keys}
        obs_spaces["low_dim"] = box((sum(spec.key_dims[k] for k in self.proprio),))
        self.observation_space = spaces.Dict(obs_spaces, sort_keys=False)

    def from_env(self, obs: Any) -> ObsDict:
        out: ObsDict = {k: np.asarray(obs[k]) for k in self.image_keys}
        out["low_dim"] = np.concatenate([np.asarray(obs[k], np.float32) for k in self.proprio], axis=-1)
        return out

    from_dataset = from_env


MODES: dict[str, type[_RobomimicMode]] = {"low_dim": RobomimicLowDim, "image": RobomimicImage}
