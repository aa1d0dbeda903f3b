"""Scripted demonstrators for the robomimic tasks, in absolute (world-frame) OSC_POSE actions.

A demonstration is a list of :class:`Waypoint` s planned from the object poses at reset; the
executor interpolates between them (linear in position, geodesic in rotation) and each step's
interpolated target *is* the recorded action, so actions are smooth and exactly what the
controller was told. Two variants, like robomimic's datasets:

* ``ph`` (proficient human): one consistent strategy, fixed speeds.
* ``mh`` (multi-human): per episode, a randomly chosen strategy (a grasp mode that differs by a
  symmetry of the object, a via-point on one side or the other), random speeds and small grasp
  offsets. The modes are exact alternatives, so a policy that averages them (unimodal MSE)
  grasps or moves in between and fails, which is what the paper's mh datasets test.

Only successful episodes are kept (the executor returns ``None`` otherwise). Each task's
planner is one function; :data:`PLANNERS` lists them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from .env import RobomimicEnv
from .rotation import axis_angle_to_matrix, matrix_to_axis_angle, quat_to_matrix

VARIANTS = ("ph", "mh")
OPEN, CLOSED = -1.0, 1.0
# Top-down grasp: the gripper's z axis points down (180 degrees about world x).
DOWN = np.diag([1.0, -1.0, -1.0])


@dataclass(frozen=True)
class Waypoint:
    pos: np.ndarray  # world-frame target position (3,)
    rot: np.ndarray  # world-frame target orientation (3, 3)
    gripper: float  # -1 open, +1 closed
    steps: int  # control steps to reach it from the previous waypoint (20 Hz)


def yaw_matrix(yaw: float) -> np.ndarray:
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def top_down(yaw: float) -> np.ndarray:
    """A downward-pointing gripper rotated by ``yaw`` about world z."""
    return yaw_matrix(yaw) @ DOWN


def object_yaw(quat_xyzw: np.ndarray) -> float:
    """Heading of an object's x axis in the world xy-plane."""
    m = quat_to_matrix(np.asarray(quat_xyzw, np.float64))
    return float(np.arctan2(m[1, 0], m[0, 0]))


def wrap_to(angle: float, period: float) -> float:
    """``angle`` modulo ``period``, in [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


class Planner:
    """Base of a task planner: ``plan`` returns the waypoints from the env's state after reset."""

    def __init__(self, variant: str, rng: np.random.Generator) -> None:
        self.variant, self.rng = variant, rng

    @property
    def mh(self) -> bool:
        return self.variant == "mh"

    def speed(self) -> float:
        """Duration multiplier: 1 for ph, random 0.7-1.5 per episode for mh."""
        return 1.0 if not self.mh else float(self.rng.uniform(0.7, 1.5))

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        raise NotImplementedError


class LiftPlanner(Planner):
    """Grasp the cube from above with the fingers square to its faces, then lift it 20 cm.

    mh: the cube's 90-degree symmetry gives two grasp yaws that are equally good; each
    episode picks one at random (their average, 45 degrees off, cannot grasp the cube)."""

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        cube = obs["object"][:3].astype(np.float64)
        yaw = wrap_to(object_yaw(obs["object"][3:7]), np.pi / 2)
        if self.mh and self.rng.random() < 0.5:
            yaw = yaw + (np.pi / 2 if yaw < 0 else -np.pi / 2)
        s = self.speed()
        offset = np.zeros(3) if not self.mh else np.r_[self.rng.uniform(-0.008, 0.008, 2), 0.0]
        grasp = cube + offset + np.array([0.0, 0.0, -0.005])
        rot = top_down(yaw)
        return [
            Waypoint(grasp + [0, 0, 0.10], rot, OPEN, int(25 * s)),
            Waypoint(grasp, rot, OPEN, int(15 * s)),
            Waypoint(grasp, rot, OPEN, 4),  # let the arm settle before closing
            Waypoint(grasp, rot, CLOSED, 10),
            Waypoint(grasp + [0, 0, 0.20], rot, CLOSED, int(20 * s)),
        ]


PLANNERS: dict[str, Callable[[str, np.random.Generator], Planner]] = {"lift": LiftPlanner}


def run_episode(env: RobomimicEnv, seed: int, variant: str = "ph", hold_steps: int = 0) -> dict[str, np.ndarray] | None:
    """One scripted episode from ``reset(seed=seed)``; the recorded arrays, or None on failure.

    The episode ends at the first successful step (plus ``hold_steps``), like robomimic's
    demonstrations; arrays are ``actions`` (T, 7 * n_arms) and one per observation key (T, ...),
    where ``obs[t]`` is what the policy saw when it chose ``actions[t]``."""
    if env.task not in PLANNERS:
        raise ValueError(f"no scripted demonstrator for {env.task!r}")
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    if env.action_mode != "abs":
        raise ValueError("the scripted demonstrators act in action_mode='abs'")
    rng = np.random.default_rng(seed + (0 if variant == "ph" else 7_919_000))
    obs, _ = env.reset(seed=seed)
    planner = PLANNERS[env.task](variant, rng)
    waypoints = planner.plan(env, obs)
    horizon = env.spec_.horizon
    pos = obs["robot0_eef_pos"].astype(np.float64)
    rot = env.control_rotation(0)
    record: dict[str, list[np.ndarray]] = {"actions": []}
    success_at = None
    for target in interpolate(pos, rot, waypoints):
        if len(record["actions"]) >= horizon:
            break
        for k, v in obs.items():
            record.setdefault(k, []).append(v)
        record["actions"].append(target)
        obs, _, terminated, _, info = env.step(target)
        if info["is_success"] and success_at is None:
            success_at = len(record["actions"])
        if success_at is not None and len(record["actions"]) >= success_at + hold_steps:
            break
    if success_at is None:
        return None
    return {k: np.stack(v) for k, v in record.items()}


def interpolate(pos: np.ndarray, rot: np.ndarray, waypoints: list[Waypoint]):
    """Yield one absolute action per control step along the waypoints (the gripper command
    switches at the start of a waypoint; hold a pose for a few steps to let it act)."""
    for wp in waypoints:
        n = max(int(wp.steps), 1)
        delta = matrix_to_axis_angle(wp.rot @ rot.T)  # world-frame rotation from rot to wp.rot
        for i in range(1, n + 1):
            a = i / n
            p = pos + a * (wp.pos - pos)
            r = axis_angle_to_matrix(a * delta) @ rot
            yield np.concatenate([p, matrix_to_axis_angle(r), [wp.gripper]]).astype(np.float64)
        pos, rot = wp.pos.astype(np.float64), wp.rot
