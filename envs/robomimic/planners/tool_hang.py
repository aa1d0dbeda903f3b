"""The ToolHang planner: insert the hook frame into the stand's tube, then hang the wrench on the frame.

The frame lies flat at reset (its y axis points down). Phase 1 grasps its grip from above, lifts it,
turns it upright with the gripper horizontal and pointing +x (away from the robot), brings its tip
over the stand's tube and lowers it in 2 cm steps. The tube leaves 1.25 mm on either side of the
rod and the arm, holding this pose, lags its target by ~1 cm, so each target is corrected by the
tip's measured error (a servo on the frame's pose in the simulator, like a human watching the tip).

Phase 2 grasps the wrench's grip from above, turns the wrench flat with its handle along the frame's
arm and pointing outward, servos hole 1 over the hook post (6 mm of clearance) and lowers the ring
round the post onto the arm. It then rolls the wrench 60 degrees about the horizontal axis across
the arm while sliding the ring 1 cm inward: the ring goes round the corner where the post meets the
arm and ends around the arm. On release the wrench swings down and hangs on the arm.

Every pose after a grasp comes from the object's pose in the hand, measured when the step starts
(callable steps, :class:`dpbench.envs.robomimic.demonstrator.ArmCursor`). Positions are in metres in
the world frame; object-frame points are in the body frames of robosuite's ``HookFrame`` and
``RatchetingWrenchObject`` (robosuite 1.5.2, ``tool_hang.py``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..env import RobomimicEnv
from ..rotation import axis_angle_to_matrix, matrix_to_axis_angle
from ..waypoints import CLOSED, OPEN, Step, Waypoint
from .base import Planner, body_pose

EZ = np.array([0.0, 0.0, 1.0])
# Points in the frame's body frame: the rod runs along z at x = +0.044, the arm along x at the top.
FRAME_GRIP = np.array([0.04375, 0.0, 0.0525])  # centre of the grip on the rod
FRAME_TIP = np.array([0.04375, 0.0, -0.1345])  # the cone tip (robosuite's frame_tip_site)
FRAME_HOOK = np.array([-0.04375, 0.0, 0.096])  # centre of the hook post at the arm's free end
FRAME_ARM_Z = 0.08625  # the arm's centre line
ARM_HALF = 0.00375  # half the arm's (and the rod's) thickness
# The wrench's body frame: its grip is the origin, the handle runs along x, hole 1 at -x.
WRENCH_HOLE = np.array([-0.0935, 0.0, 0.0])
FRAME_GRIP_HALF, WRENCH_GRIP_HALF = 0.0127, 0.015  # half thickness of each grip (rests on the table)
TUBE_DEPTH = 0.15  # the stand's walls: 15 cm tall above its 1 cm base


def frame_of(x: np.ndarray, z: np.ndarray) -> np.ndarray:
    """The rotation (3, 3) whose x and z axes are ``x`` and ``z``, normalised here. The caller passes
    axes orthogonal to within an object's rest tilt (~1e-3 rad); they are not re-orthogonalised, so
    the collected (v4) demonstrations stay what they are."""
    x, z = x / np.linalg.norm(x), z / np.linalg.norm(z)
    return np.stack([x, np.cross(z, x), z], axis=1)


def half_turn(rot_from: np.ndarray, rot_to: np.ndarray) -> np.ndarray:
    """The rotation halfway along the geodesic from ``rot_from`` to ``rot_to``."""
    return axis_angle_to_matrix(0.5 * matrix_to_axis_angle(rot_to @ rot_from.T)) @ rot_from


class _Servo:
    """Puts a point of a grasped body at a goal: the gripper pose that does so given the body's pose in
    the hand now, plus an offset accumulated from the point's measured error (the arm's lag) along
    the ``corrected`` axes (1 corrects, 0 does not), at most ``max_offset`` metres per axis."""

    def __init__(self, body: int, point: np.ndarray, corrected: tuple[float, ...], max_offset: float = 0.02) -> None:
        self.body, self.point, self.max_offset = body, point, max_offset
        self.corrected = np.asarray(corrected, np.float64)
        self.offset, self.aim = np.zeros(3), None

    def where(self, env: RobomimicEnv) -> np.ndarray:
        pos, rot = body_pose(env, self.body)
        return pos + rot @ self.point

    def gripper_for(self, env: RobomimicEnv, goal: np.ndarray, body_rot: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The grip-site pose (3,), (3, 3) that puts the point at ``goal`` with the body at ``body_rot``."""
        pos, rot = body_pose(env, self.body)
        grip = env.control_position(0)
        grip_rot = env.control_rotation(0)
        in_hand_rot, in_hand_pos = grip_rot.T @ rot, grip_rot.T @ (pos - grip)
        target_rot = body_rot @ in_hand_rot.T
        return goal - body_rot @ self.point - target_rot @ in_hand_pos, target_rot

    def step(self, goal: np.ndarray, body_rot: Callable[[], np.ndarray], steps: int, until: str = "") -> Step:
        """A callable step toward ``goal``, correcting by the error left at the previous aim."""

        def plan(env: RobomimicEnv) -> list[Waypoint]:
            if self.aim is not None:
                lag = (self.aim - self.where(env)) * self.corrected
                self.offset = np.clip(self.offset + lag, -self.max_offset, self.max_offset)
            self.aim = goal
            pos, rot = self.gripper_for(env, goal, body_rot())
            return [Waypoint(pos + self.offset, rot, CLOSED, steps, until=until)]

        return plan

    def converge(
        self, goal: np.ndarray, body_rot: Callable[[], np.ndarray], steps: int, tol: float, tries: int
    ) -> Step:
        """Servo steps toward ``goal`` until the point is within ``tol`` of it in xy (at most ``tries``)."""
        done = 0

        def plan(env: RobomimicEnv) -> list:
            nonlocal done
            near = self.aim is not None and np.allclose(self.aim, goal)
            if (near and np.linalg.norm((goal - self.where(env))[:2]) < tol) or done >= tries:
                return []
            done += 1
            return [self.step(goal, body_rot, steps), plan]

        return plan


class ToolHangPlanner(Planner):
    """Insert the frame into the stand, then hang the wrench on it (module docstring). ph only:
    robomimic's ToolHang has proficient-human demonstrations only."""

    VARIANTS = ("ph",)

    INSERT_APPROACH = np.array([1.0, 0.0, 0.0])  # the gripper's axis while inserting: horizontal, +x
    TIP_ABOVE_TUBE = 0.02  # the tip's height over the tube when the descent starts
    TIP_ABOVE_BASE = 0.005  # ... and over the stand's base at its end
    DESCENT_STEP = 0.02  # metres per corrected segment of the descent
    CARRY_Z = 1.17  # grip-site height halfway through the wrench's carry: its ring clears the frame
    ROLL = np.radians(60.0)  # the wrench's roll about the axis across the arm, from flat
    # The ring centre's path through the roll, (roll, inward shift from the post, height from the arm's top);
    # the last height is the arm's centre line.
    ROLL_PATH = ((0.0, 0.0, 0.006), (np.radians(45.0), 0.002, -0.002), (np.radians(60.0), 0.010, -ARM_HALF))

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Step]:
        # One planner per episode (run_episode): what plan and _wrench measure is read by later steps.
        suite = env.robosuite_env
        self.frame, self.tool = suite.obj_body_id["frame"], suite.obj_body_id["tool"]
        pos, rot = body_pose(env, self.frame)
        grip = pos + rot @ FRAME_GRIP
        # The frame lies on its side, its y axis down: approach along it, fingers along its x axis
        # (the sign that keeps the wrist in range for the turn upright).
        fingers = rot[:, 0] if rot[1, 0] > 0 else -rot[:, 0]
        grasp_rot = frame_of(fingers, rot[:, 1])
        # at reset the frame is dropped from ~3 cm up; it comes to rest on its grip
        grasp = np.r_[grip[:2], suite.table_offset[2] + FRAME_GRIP_HALF + 0.002]
        return [
            Waypoint(grasp + [0.0, 0.0, 0.08], grasp_rot, OPEN, 25),
            Waypoint(grasp + [0.0, 0.0, 0.02], grasp_rot, OPEN, 10),
            Waypoint(grasp, grasp_rot, OPEN, 10, until="arrived"),
            Waypoint(grasp, grasp_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(grasp + [0.0, 0.0, 0.12], grasp_rot, CLOSED, 15),
            self._to_stand,
        ]

    # ------------------------------------------------------------------ phase 1: the frame
    def _upright(self) -> np.ndarray:
        """The frame's rotation once inserted: z up, y along the gripper's approach."""
        a = self.INSERT_APPROACH
        return np.stack([-np.cross(EZ, a), a, EZ], axis=1)

    @staticmethod
    def _tube_top(env: RobomimicEnv) -> np.ndarray:
        """The centre of the tube's opening (the mean of its four walls' centres, raised to their top)."""
        data, model = env.robosuite_env.sim.data, env.robosuite_env.sim.model
        centre = np.mean([data.geom_xpos[model.geom_name2id(f"stand_wall{i}")] for i in range(4)], axis=0)
        return centre + [0.0, 0.0, TUBE_DEPTH / 2]

    def _to_stand(self, env: RobomimicEnv) -> list[Step]:
        tube = self._tube_top(env)
        servo = _Servo(self.frame, FRAME_TIP, (1, 1, 0))
        above, above_rot = servo.gripper_for(env, tube + [0.0, 0.0, 2 * self.TIP_ABOVE_TUBE], self._upright())
        here = env.control_position(0)
        here_rot = env.control_rotation(0)
        return [
            Waypoint((here + above) / 2 + [0.0, 0.0, 0.05], half_turn(here_rot, above_rot), CLOSED, 20),
            Waypoint(above, above_rot, CLOSED, 20),
            Waypoint(above, above_rot, CLOSED, 10, until="arrived"),
            self._insert,
        ]

    def _insert(self, env: RobomimicEnv) -> list[Step]:
        tube = self._tube_top(env)
        # xy only: the descent's end is set by the base, not by the arm's sag
        servo = _Servo(self.frame, FRAME_TIP, (1, 1, 0))
        start = tube + [0.0, 0.0, self.TIP_ABOVE_TUBE]
        bottom = tube[2] - TUBE_DEPTH + self.TIP_ABOVE_BASE
        steps: list[Step] = [servo.step(start, self._upright, 6) for _ in range(3)]
        for z in np.arange(start[2] - self.DESCENT_STEP, bottom, -self.DESCENT_STEP):
            steps.append(servo.step(np.r_[tube[:2], z], self._upright, 5))
        steps.append(servo.step(np.r_[tube[:2], bottom], self._upright, 6, until="arrived"))
        return [*steps, self._release_frame]

    def _release_frame(self, env: RobomimicEnv) -> list[Step]:
        here = env.control_position(0)
        rot = env.control_rotation(0)
        back = here - 0.08 * self.INSERT_APPROACH  # straight back along the gripper's axis
        return [
            Waypoint(here, rot, OPEN, 2, until="fingers_still", from_hand=True),
            Waypoint(back, rot, OPEN, 15),
            self._wrench,
        ]

    # ------------------------------------------------------------------ phase 2: the wrench
    def _wrench(self, env: RobomimicEnv) -> list[Step]:
        suite = env.robosuite_env
        frame_pos, frame_rot = body_pose(env, self.frame)
        self.out = -frame_rot[:, 0] * [1.0, 1.0, 0.0]  # along the arm, from the rod to the hook
        self.out /= np.linalg.norm(self.out)
        self.across = np.cross(EZ, self.out)
        self.post = frame_pos + frame_rot @ FRAME_HOOK
        self.arm_top = (frame_pos + frame_rot @ [0.0, 0.0, FRAME_ARM_Z])[2] + ARM_HALF
        tool_pos, tool_rot = body_pose(env, self.tool)
        grasp_rot = frame_of(-tool_rot[:, 1], -EZ)  # from above, fingers across the handle
        grasp = np.r_[tool_pos[:2], suite.table_offset[2] + WRENCH_GRIP_HALF + 0.002]
        here = env.control_position(0)
        return [
            Waypoint(here + [0.0, 0.0, 0.08], env.control_rotation(0), OPEN, 10),
            # turn top-down high above the wrench, and settle there before going down to it
            Waypoint(grasp + [0.0, 0.0, 0.12], grasp_rot, OPEN, 30),
            Waypoint(grasp + [0.0, 0.0, 0.12], grasp_rot, OPEN, 5, until="arrived"),
            Waypoint(grasp + [0.0, 0.0, 0.02], grasp_rot, OPEN, 10),
            Waypoint(grasp, grasp_rot, OPEN, 10, until="arrived"),
            Waypoint(grasp, grasp_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(grasp + [0.0, 0.0, 0.15], grasp_rot, CLOSED, 12),
            self._hang,
        ]

    def _rolled(self, roll: float) -> Callable[[], np.ndarray]:
        """The wrench's rotation rolled by ``roll`` from flat with its handle along the arm, outward."""
        flat = np.stack([self.out, self.across, EZ], axis=1)
        return lambda: axis_angle_to_matrix(self.across * roll) @ flat

    def _hang(self, env: RobomimicEnv) -> list[Step]:
        servo = _Servo(self.tool, WRENCH_HOLE, (1, 1, 1))  # the ring's height matters: 6 mm of play
        over, over_rot = servo.gripper_for(env, self.post + [0.0, 0.0, 0.06], self._rolled(0.0)())
        here = env.control_position(0)
        midway = np.r_[((here + over) / 2)[:2], self.CARRY_Z]
        steps: list[Step] = [
            Waypoint(midway, half_turn(env.control_rotation(0), over_rot), CLOSED, 20),
            Waypoint(over, over_rot, CLOSED, 20),
            servo.converge(self.post + [0.0, 0.0, 0.04], self._rolled(0.0), 6, tol=0.0015, tries=5),
        ]
        for z in np.linspace(self.post[2] + 0.03, self.arm_top + self.ROLL_PATH[0][2], 4):
            steps.append(servo.step(np.r_[self.post[:2], z], self._rolled(0.0), 5))
        rolls, inward, height = (np.array(c) for c in zip(*self.ROLL_PATH))
        for roll in np.linspace(0.0, self.ROLL, 8)[1:]:
            ring = self.post - np.interp(roll, rolls, inward) * self.out
            ring[2] = self.arm_top + np.interp(roll, rolls, height)
            steps.append(servo.step(ring, self._rolled(roll), 5))
        steps.append(servo.step(ring, self._rolled(self.ROLL), 6))
        return [*steps, self._release_wrench]

    def _release_wrench(self, env: RobomimicEnv) -> list[Waypoint]:
        here = env.control_position(0)
        rot = env.control_rotation(0)
        back = here - 0.08 * rot[:, 2]  # back along the gripper's axis, clear of the swinging wrench
        return [
            Waypoint(here, rot, OPEN, 2, until="fingers_still", from_hand=True),
            Waypoint(back, rot, OPEN, 15),
            Waypoint(back, rot, OPEN, 20),
        ]
