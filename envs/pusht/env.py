"""Push-T (Chi et al., RSS 2023) on pymunk 7 and gymnasium 1.x.

A kinematic disc (the agent) is driven by a PD controller towards the action target and pushes a
T-shaped block onto a fixed goal pose. The physics reproduces the paper's env: 100 Hz simulation,
10 Hz control, k_p=100, k_v=20, a frictionless T of mass 1 whose centre of gravity is the mean
of its two rectangles' centroids, zero gravity and space damping 0 (pymunk then keeps no velocity
between steps, so the block stops when it is no longer pushed). The world and the controller
live in :mod:`dpbench.envs.pusht.physics`, shared with the scripted demonstrator's push model.
Replaying the 206 human demonstrations open loop reproduces their recorded block trajectories
(tests/test_pusht_env.py).
"""

from __future__ import annotations

import math
from typing import Any

import gymnasium as gym
import numpy as np
import pymunk
from gymnasium import spaces

from dpbench.errors import DpbenchError

from .geometry import GOAL_POSE, SUCCESS_COVERAGE, WORKSPACE, block_keypoints, coverage
from .physics import CONTROL_HZ, SIM_HZ, SUBSTEPS, build_space, pd_step
from .render import render_frame

OBS_TYPES = ("state", "keypoints", "pixels", "pixels_agent_pos")
AGENT_MARGIN = 64.0


class PushTEnv(gym.Env):
    """Push the T block onto the goal. Actions are absolute agent targets in [0, 512]^2 px.

    Two reset paths: ``reset(seed=s)`` draws the paper's initial state for ``s`` and places it as
    the original's ``legacy_test`` evaluation does (position, then angle: the paper's 50 test
    states are seeds 100000..100049); ``reset(options={"reset_to_state": s})`` places a recorded
    state exactly (angle, then position), which replaying the human demonstrations needs.

    Observations by ``obs_type``:
      * ``state``: ``[agent_x, agent_y, block_x, block_y, block_angle mod 2pi]``
      * ``keypoints``: the 9 block keypoints (x, y interleaved) then the agent position (20,)
      * ``pixels``: uint8 image (96, 96, 3)
      * ``pixels_agent_pos``: ``{"pixels": (96, 96, 3) uint8, "agent_pos": (2,)}``
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": CONTROL_HZ}

    def __init__(
        self,
        obs_type: str = "state",
        render_mode: str | None = None,
        observation_size: int = 96,
        render_size: int = 256,
    ) -> None:
        if obs_type not in OBS_TYPES:
            raise DpbenchError(f"unknown Push-T obs_type {obs_type!r}; choose one of {', '.join(OBS_TYPES)}")
        if render_mode not in (None, "rgb_array"):
            raise DpbenchError(f"unsupported render_mode {render_mode!r}; Push-T renders 'rgb_array' only")
        self.obs_type = obs_type
        self.render_mode = render_mode
        self.observation_size = observation_size
        self.render_size = render_size

        ws = float(WORKSPACE)
        self.action_space = spaces.Box(low=0.0, high=ws, shape=(2,), dtype=np.float64)
        pixels = spaces.Box(0, 255, shape=(observation_size, observation_size, 3), dtype=np.uint8)
        # Actions are clipped to the workspace, but the PD-driven agent can overshoot a target at the
        # border by a few pixels: its position gets a margin. The block has no bound: a hard push can
        # drive it through a wall (pymunk does not prevent tunnelling; 69 px past the border was seen),
        # so its coordinates are declared unbounded rather than a bound that does not hold.
        lo, hi = -AGENT_MARGIN, ws + AGENT_MARGIN
        inf = np.inf
        agent_pos = spaces.Box(low=lo, high=hi, shape=(2,), dtype=np.float64)
        self.observation_space = {
            "state": spaces.Box(
                low=np.array([lo, lo, -inf, -inf, 0]), high=np.array([hi, hi, inf, inf, 2 * math.pi]), dtype=np.float64
            ),
            "keypoints": spaces.Box(
                low=np.array([-inf] * 18 + [lo, lo]), high=np.array([inf] * 18 + [hi, hi]), dtype=np.float64
            ),
            "pixels": pixels,
            "pixels_agent_pos": spaces.Dict({"pixels": pixels, "agent_pos": agent_pos}),
        }[obs_type]

        self.space: pymunk.Space | None = None
        self.agent: pymunk.Body | None = None
        self.block: pymunk.Body | None = None
        self._n_contact_points = 0
        self._latest_action: np.ndarray | None = None

    # ------------------------------------------------------------------ physics
    def _build_space(self) -> None:
        self.space, self.agent, self.block = build_space(agent_position=(256, 400), block_pose=(256, 300, 0.0))
        self.space.on_collision(0, 0, post_solve=self._count_contacts)

    def _count_contacts(self, arbiter: pymunk.Arbiter, space: pymunk.Space, data: Any) -> None:
        self._n_contact_points += len(arbiter.contact_point_set.points)

    def _set_state(self, state: np.ndarray, legacy: bool) -> None:
        """Place agent and block, then take one physics step (as the original env does).

        ``legacy=False`` (exact): the angle is set before the position, so the block's origin lands
        exactly on ``state[2:4]``. ``legacy=True`` (the paper's test states, the original's
        ``legacy_test: True``): the position is set first, then the angle, which rotates the T about
        its centre of gravity and moves its origin by ``cog - R(angle) cog``.
        """
        state = [float(v) for v in state]
        self.agent.position = (state[0], state[1])
        if legacy:
            self.block.position = (state[2], state[3])
            self.block.angle = state[4]
        else:
            self.block.angle = state[4]
            self.block.position = (state[2], state[3])
        self.space.step(1.0 / SIM_HZ)

    # ------------------------------------------------------------------ gym API
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
        """Start an episode: the paper's initial state for ``seed``, or ``options["reset_to_state"]``.

        Returns the observation (see the class docstring) and the info dict of :meth:`step`.

        Raises:
            DpbenchError: ``reset_to_state`` is not 5 finite numbers.
        """
        super().reset(seed=seed)
        self._build_space()
        self._latest_action = None
        self._n_contact_points = 0
        options = options or {}
        if options.get("reset_to_state") is not None:
            # Replaying recorded data: the exact pose, as the human demonstrations were recorded.
            state = np.asarray(options["reset_to_state"], dtype=np.float64)
            if state.shape != (5,) or not np.all(np.isfinite(state)):
                raise DpbenchError(
                    "reset_to_state must be 5 finite numbers [agent_x, agent_y, block_x, block_y, angle], "
                    f"got {state!r}"
                )
            self._set_state(state, legacy=False)
        else:
            # A seeded reset: the paper's test initial states (legacy placement).
            self._set_state(
                self.initial_state(seed if seed is not None else int(self.np_random.integers(0, 2**31 - 1))),
                legacy=True,
            )
        return self._observation(), self._info(coverage(self._block_pose()))

    @staticmethod
    def initial_state(seed: int) -> np.ndarray:
        """The drawn initial state ``[agent_x, agent_y, block_x, block_y, angle]`` for ``seed``, with the
        original's legacy ``RandomState`` draws. A seeded ``reset`` places it the legacy way, so the
        block's observed pose differs from the drawn one (see ``_set_state``)."""
        rs = np.random.RandomState(seed=seed)
        return np.array(
            [
                rs.randint(50, 450),
                rs.randint(50, 450),
                rs.randint(100, 400),
                rs.randint(100, 400),
                rs.randn() * 2 * np.pi - np.pi,
            ],
            dtype=np.float64,
        )

    def step(self, action: np.ndarray) -> tuple[Any, float, bool, bool, dict[str, Any]]:
        """Drive the agent toward ``action`` (an absolute (x, y) target in px, clipped to the
        workspace) for one control step (``SUBSTEPS`` PD-controlled physics steps, 0.1 s).

        Returns ``(observation, reward, terminated, truncated, info)``: the reward is the goal
        coverage / 0.95 clipped to [0, 1]; ``terminated`` when the coverage exceeds 0.95 (never
        truncated here: the registration's TimeLimit ends long episodes). ``info`` has
        ``coverage``, ``is_success``, ``n_contacts`` (contact points per physics step, rounded up,
        block-wall contacts included), ``agent_pos`` (2,), ``block_pose`` (3,) and ``goal_pose`` (3,).

        Raises:
            RuntimeError: before the first :meth:`reset`.
            DpbenchError: the action is not 2 finite numbers.
        """
        if self.space is None:
            raise RuntimeError("call reset() before step()")
        action = np.asarray(action, dtype=np.float64).reshape(-1)
        if action.shape != (2,) or not np.all(np.isfinite(action)):
            raise DpbenchError(f"Push-T action must be 2 finite numbers (an x, y target in px), got {action!r}")
        action = np.clip(action, 0.0, float(WORKSPACE))  # a target outside the workspace means its border
        self._latest_action = action
        self._n_contact_points = 0
        pd_step(self.space, self.agent, float(action[0]), float(action[1]))

        cov = coverage(self._block_pose())
        reward = float(np.clip(cov / SUCCESS_COVERAGE, 0.0, 1.0))
        terminated = bool(cov > SUCCESS_COVERAGE)
        return self._observation(), reward, terminated, False, self._info(cov)

    def render(self) -> np.ndarray | None:
        """An RGB frame (render_size, render_size, 3) uint8 with ``render_mode="rgb_array"``, else None."""
        if self.render_mode != "rgb_array":
            return None
        return render_frame(
            np.array(self.agent.position), self._block_pose(), self.render_size, action=self._latest_action
        )

    # ------------------------------------------------------------------ observations
    def _block_pose(self) -> np.ndarray:
        x, y = self.block.position
        return np.array([x, y, self.block.angle], dtype=np.float64)

    def state(self) -> np.ndarray:
        """``[agent_x, agent_y, block_x, block_y, block_angle mod 2pi]`` (float64)."""
        ax, ay = self.agent.position
        bx, by = self.block.position
        return np.array([ax, ay, bx, by, self.block.angle % (2 * np.pi)], dtype=np.float64)

    def _observation(self) -> Any:
        if self.obs_type == "state":
            return self.state()
        agent_pos = np.array(self.agent.position, dtype=np.float64)
        if self.obs_type == "keypoints":
            return np.concatenate([block_keypoints(self._block_pose()).reshape(-1), agent_pos])
        pixels = render_frame(agent_pos, self._block_pose(), self.observation_size)
        if self.obs_type == "pixels":
            return pixels
        return {"pixels": pixels, "agent_pos": agent_pos}

    def _info(self, cov: float) -> dict[str, Any]:
        return {
            "coverage": float(cov),
            "is_success": bool(cov > SUCCESS_COVERAGE),
            "n_contacts": math.ceil(self._n_contact_points / SUBSTEPS),
            "agent_pos": np.array(self.agent.position, dtype=np.float64),
            "block_pose": self._block_pose(),
            "goal_pose": np.array(GOAL_POSE, dtype=np.float64),
        }
