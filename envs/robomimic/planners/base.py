"""The planners' base class and the geometry they share: yaws, top-down grasp rotations, simulator
body poses and move durations. Positions are in metres in the world frame, yaws in radians about
world z.
"""

from __future__ import annotations

import numpy as np

from ..env import RobomimicEnv
from ..rotation import quat_to_matrix
from ..waypoints import Step

# Top-down grasp: the gripper's z axis points down (180 degrees about world x).
DOWN = np.diag([1.0, -1.0, -1.0])


def yaw_matrix(yaw: float) -> np.ndarray:
    """The rotation (3, 3) by ``yaw`` rad about world z."""
    c, s = np.cos(yaw), np.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def top_down(yaw: float) -> np.ndarray:
    """A downward-pointing gripper rotated by ``yaw`` about world z."""
    return yaw_matrix(yaw) @ DOWN


def object_yaw(quat_xyzw: np.ndarray) -> float:
    """Heading of an object's x axis in the world xy-plane."""
    m = quat_to_matrix(np.asarray(quat_xyzw, np.float64))
    return float(np.arctan2(m[1, 0], m[0, 0]))


def yaw_of(rot: np.ndarray) -> float:
    """Heading of a rotation's x axis in the world xy-plane (a top-down gripper's yaw)."""
    return float(np.arctan2(rot[1, 0], rot[0, 0]))


def wrap_to(angle: float, period: float) -> float:
    """``angle`` modulo ``period``, in [-period/2, period/2)."""
    return float((angle + period / 2) % period - period / 2)


def body_pose(env: RobomimicEnv, body_id: int) -> tuple[np.ndarray, np.ndarray]:
    """World position (3,) and orientation (3, 3) of a simulator body, copied."""
    data = env.robosuite_env.sim.data
    pos = np.array(data.body_xpos[body_id], np.float64)
    return pos, np.array(data.body_xmat[body_id], np.float64).reshape(3, 3)


def travel_steps(
    start: np.ndarray,
    end: np.ndarray,
    step_length: float,
    minimum: int = 6,
    turn: float = 0.0,
    turn_rate: float = 0.05,
) -> int:
    """Control steps to move from ``start`` to ``end`` at about ``step_length`` metres per step
    while turning by ``turn`` radians at most ``turn_rate`` per step (a fast yaw makes the arm
    lag and swing its wrist joints instead of the last one)."""
    distance = float(np.linalg.norm(np.asarray(end) - np.asarray(start)))
    return max(minimum, int(np.ceil(distance / step_length)), int(np.ceil(abs(turn) / turn_rate)))


def wrist_angle(yaw: float, xy: np.ndarray, base_xy: np.ndarray) -> float:
    """Rough Panda wrist (joint 7) angle for a top-down grasp at ``yaw`` over the point ``xy``.

    Joint 7 is pi/4 at the home pose (yaw pi/2, arm straight ahead along +x) and turns
    against the gripper's yaw and with the base joint's heading; its limits are +-2.9 rad."""
    base_heading = float(np.arctan2(xy[1] - base_xy[1], xy[0] - base_xy[0]))
    return np.pi / 4 + base_heading - (yaw - np.pi / 2)


class Planner:
    """Base of a task planner: ``plan`` returns the waypoints from the env's state after reset.

    Args:
        variant: ``"ph"`` (one strategy, fixed speeds) or ``"mh"`` (randomised per episode).
        rng: the planner's only source of randomness (used by ``mh`` only).
    """

    VARIANTS: tuple[str, ...] = ("ph", "mh")  # the demonstration variants this task has

    def __init__(self, variant: str, rng: np.random.Generator) -> None:
        if variant not in self.VARIANTS:
            raise ValueError(f"{type(self).__name__} plans {' / '.join(self.VARIANTS)} demonstrations, not {variant!r}")
        self.variant, self.rng = variant, rng

    @property
    def mh(self) -> bool:
        """Whether this planner is the multi-human variant (randomised strategies and speeds)."""
        return self.variant == "mh"

    def speed(self) -> float:
        """Duration multiplier: 1 for ph, random 0.7-1.5 per episode for mh."""
        return 1.0 if not self.mh else float(self.rng.uniform(0.7, 1.5))

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Step]:
        """A single-arm task's steps, in order, from the env just after ``reset`` and its observation."""
        raise NotImplementedError

    def plan_arms(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[list[Step]]:
        """One step list per arm (what the executor runs): by default ``plan``'s, for robot0. A step is a
        Waypoint or a callable ``env -> list[Step]`` planned when the arm reaches it
        (``dpbench.envs.robomimic.waypoints.Step``); two-arm planners override this."""
        return [self.plan(env, obs)]
