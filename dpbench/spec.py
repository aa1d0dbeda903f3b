"""``PolicySpec``: what a policy is told about a task, derived from the policy-side spaces.

A task's observation mode (``dpbench.envs.io.ObsMode``) declares the Gymnasium spaces a policy
sees: a ``Dict`` of per-step observations and a ``Box`` of actions in policy units. The spec is
read off those spaces, so shapes have one source.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces


@dataclass(frozen=True)
class PolicySpec:
    """Observation shapes (per step, in key order), the action size, and which keys are images
    (uint8, (H, W, 3)); every other key is a flat float vector."""

    obs_shapes: dict[str, tuple[int, ...]]
    action_dim: int
    image_keys: tuple[str, ...] = ()

    @property
    def lowdim_keys(self) -> tuple[str, ...]:
        """The non-image observation keys, in key order."""
        return tuple(k for k in self.obs_shapes if k not in self.image_keys)

    @classmethod
    def from_spaces(cls, observation_space: spaces.Dict, action_space: spaces.Box) -> PolicySpec:
        """The spec of a policy-side ``Dict`` observation space (key order kept) and ``Box`` action
        space: uint8 keys of rank 3 are images. Raises ValueError for anything else."""
        if not isinstance(observation_space, spaces.Dict) or not isinstance(action_space, spaces.Box):
            raise ValueError(
                f"expected a Dict observation space and a Box action space, got "
                f"{type(observation_space).__name__} and {type(action_space).__name__}"
            )
        if len(action_space.shape) != 1:
            raise ValueError(f"actions must be flat vectors, got shape {action_space.shape}")
        shapes = {k: tuple(int(n) for n in s.shape) for k, s in observation_space.spaces.items()}
        images = tuple(k for k, s in observation_space.spaces.items() if s.dtype == np.uint8 and len(s.shape) == 3)
        return cls(shapes, int(action_space.shape[0]), images)

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
