"""Task planners for the scripted robomimic demonstrators: each plans a list of :class:`Waypoint` s
from the env's state after reset (Lift from the observation; Can and Square from the object, bin
and peg poses in the simulator, ``env.robosuite_env``).

``ph`` planners follow one consistent strategy at fixed speeds; ``mh`` planners draw, per episode,
a strategy (a grasp that differs by a symmetry of the object, a via-point on one side or the
other), speeds and small grasp offsets from the generator they are given. Positions are in metres
in the world frame, yaws in radians about world z.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .env import RobomimicEnv
from .rotation import quat_to_matrix
from .waypoints import CLOSED, OPEN, Waypoint

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

    def __init__(self, variant: str, rng: np.random.Generator) -> None:
        self.variant, self.rng = variant, rng

    @property
    def mh(self) -> bool:
        """Whether this planner is the multi-human variant (randomised strategies and speeds)."""
        return self.variant == "mh"

    def speed(self) -> float:
        """Duration multiplier: 1 for ph, random 0.7-1.5 per episode for mh."""
        return 1.0 if not self.mh else float(self.rng.uniform(0.7, 1.5))

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        """A single-arm task's waypoints, in order, from the env just after ``reset`` and its observation."""
        raise NotImplementedError

    def plan_arms(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[list]:
        """One step list per arm (what the executor runs): by default ``plan``'s, for robot0. A step is a
        Waypoint or a callable ``env -> list[Waypoint]`` planned when the arm reaches it
        (``dpbench.envs.robomimic.demonstrator.Step``); two-arm planners override this."""
        return [self.plan(env, obs)]


class LiftPlanner(Planner):
    """Grasp the cube from above with the fingers square to its faces, then lift it 20 cm.

    mh: the cube's 90-degree symmetry gives two grasp yaws that are equally good; each
    episode picks one at random (their average, 45 degrees off, cannot grasp the cube)."""

    MH_TURN_RATE = 0.07  # mh: at most this many radians per control step toward the grasp yaw

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        cube = obs["object"][:3].astype(np.float64)
        # The cube's faces repeat every 90 degrees: of the grasp yaws, take the one nearest the
        # gripper's current yaw, so the wrist turns by 45 degrees at most (a yaw a quarter turn
        # off swung the wrist toward its limit and failed some seeds).
        current = yaw_of(env.control_rotation(0))
        yaw = current + wrap_to(object_yaw(obs["object"][3:7]) - current, np.pi / 2)
        if self.mh and self.rng.random() < 0.5:
            # the other face pair, a quarter turn the shorter way round (the gripper's 180-degree
            # symmetry makes +90 and -90 the same grasp)
            yaw = yaw + (np.pi / 2 if wrap_to(yaw - current, 2 * np.pi) <= 0 else -np.pi / 2)
        s = self.speed()
        offset = np.zeros(3) if not self.mh else np.r_[self.rng.uniform(-0.008, 0.008, 2), 0.0]
        grasp = cube + offset + np.array([0.0, 0.0, -0.005])
        rot = top_down(yaw)
        approach_steps = int(25 * s)
        if self.mh:  # a fast episode must not turn the wrist fast: the arm lags and misses
            turn = wrap_to(yaw - yaw_of(env.control_rotation(0)), 2 * np.pi)
            approach_steps = max(approach_steps, int(np.ceil(abs(turn) / self.MH_TURN_RATE)))
        return [
            Waypoint(grasp + [0, 0, 0.10], rot, OPEN, approach_steps),
            Waypoint(grasp, rot, OPEN, int(15 * s), until="arrived"),
            Waypoint(grasp, rot, CLOSED, 2, until="fingers_still"),
            Waypoint(grasp + [0, 0, 0.20], rot, CLOSED, int(20 * s)),
        ]


class CanPlanner(Planner):
    """Grasp the can from above at its middle, lift it over the bin walls, carry it to the near
    corner of its target bin quadrant and drop it there from just above the walls.

    mh: the carry passes a via-point to the left or to the right of the straight line (10 cm
    off it, chosen at random per episode); a policy that averages the two goes straight
    through the middle, which neither mode shows. Also random speeds and grasp offsets."""

    CARRY_Z = 1.03  # grip-site height while carrying: the can's bottom clears the 0.9 m walls
    DROP_Z = 0.975  # grip-site height at release: the can's bottom 3 cm above the walls
    VIA_OFFSET = 0.10  # mh: the via-point's distance to the side of the straight carry
    STEP = 0.013  # metres per control step for the long moves (ph)

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        suite = env.robosuite_env
        can, _ = body_pose(env, suite.obj_body_id[suite.obj_to_use])
        # Drop point: the target quadrant's corner nearest the robot, 2.5 cm in from the
        # dividers (the far part of the quadrant is at the edge of the arm's reach).
        drop_xy = np.array([suite.bin2_pos[0] + 0.065, suite.bin2_pos[1] + 0.075])
        s = self.speed()

        def steps(start: np.ndarray, end: np.ndarray, minimum: int = 6) -> int:
            return int(travel_steps(start, end, self.STEP, minimum) * s)

        offset = np.zeros(3)
        if self.mh:
            offset = np.r_[self.rng.uniform(-0.006, 0.006, 2), self.rng.uniform(-0.01, 0.01)]
        rot = top_down(np.pi / 2)  # fingers close along world y, the arm's home yaw
        home = obs["robot0_eef_pos"].astype(np.float64)
        grasp = can + offset + [0.0, 0.0, 0.005]
        above_can = grasp + [0.0, 0.0, 0.10]
        lifted = np.r_[grasp[:2], self.CARRY_Z]
        above_drop = np.r_[drop_xy, self.CARRY_Z]
        drop = np.r_[drop_xy, self.DROP_Z]

        carry: list[Waypoint] = []
        start = lifted
        if self.mh:
            side = 1.0 if self.rng.random() < 0.5 else -1.0
            heading = (above_drop - lifted)[:2] / np.linalg.norm((above_drop - lifted)[:2])
            normal = np.array([-heading[1], heading[0]])  # to the left of the carry
            via_xy = (lifted[:2] + above_drop[:2]) / 2 + side * self.VIA_OFFSET * normal
            via = np.r_[via_xy, self.CARRY_Z + 0.02]
            carry.append(Waypoint(via, rot, CLOSED, steps(start, via)))
            start = via
        carry.append(Waypoint(above_drop, rot, CLOSED, steps(start, above_drop)))
        return [
            Waypoint(above_can, rot, OPEN, steps(home, above_can, 15)),
            Waypoint(grasp, rot, OPEN, int(15 * s), until="arrived"),
            Waypoint(grasp, rot, CLOSED, 2, until="fingers_still"),
            Waypoint(lifted, rot, CLOSED, steps(grasp, lifted, 10)),
            *carry,
            Waypoint(drop, rot, CLOSED, int(8 * s), until="arrived"),  # then let go: the can drops into the bin
            Waypoint(drop, rot, OPEN, 2, until="fingers_still"),
            Waypoint(drop + [0.0, 0.0, 0.06], rot, OPEN, 10),
        ]


class SquarePlanner(Planner):
    """Grasp the square nut's handle from above (fingers across it), lift it over the peg,
    turn it so its hole lines up with the square peg and the handle points back toward the
    robot (the peg's far side is at the edge of the arm's reach), lower it onto the peg.

    The gripper's own 180-degree symmetry gives two grasp yaws for a handle; the planner takes
    the one that keeps the wrist furthest from its joint limits over the whole motion.

    mh: the nut's 90-degree symmetry gives several placed yaws that fit the peg; each episode
    puts the handle either toward the robot or to the right (-y) of the peg, at random. The
    two differ by 90 degrees of nut yaw and 8.5 cm of gripper position, so their average
    holds the hole 45 degrees off the peg and misses it. Also random speeds and grasp offsets."""

    HANDLE_GRASP = 0.0615  # grasp point on the handle, along the nut's x axis from its centre
    HALF_THICKNESS = 0.01  # the nut's half height
    CARRY_CLEARANCE = 0.03  # nut bottom above the peg's top while carrying
    STEP = 0.012  # metres per control step for the long moves (ph)

    def plan(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[Waypoint]:
        suite = env.robosuite_env
        nut_pos, nut_rot = body_pose(env, suite.obj_body_id[suite.obj_to_use])
        peg_pos, _ = body_pose(env, suite.peg1_body_id)
        peg_top = peg_pos[2] + 0.1  # the peg is a box of half height 0.1
        # At reset the nut is dropped from a few cm up; it lands flat, without turning.
        nut_z = suite.table_offset[2] + self.HALF_THICKNESS
        nut_yaw = yaw_of(nut_rot)
        s = self.speed()

        placed_yaw = np.pi  # handle toward the robot
        if self.mh and self.rng.random() < 0.5:
            placed_yaw = -np.pi / 2  # handle to the right of the peg
        turn = wrap_to(placed_yaw - nut_yaw, 2 * np.pi)

        handle = np.array([self.HANDLE_GRASP, 0.0])
        grip_height = 0.004  # grip site above the nut's centre
        if self.mh:
            handle = handle + [self.rng.uniform(-0.004, 0.004), self.rng.uniform(-0.003, 0.003)]
            grip_height += self.rng.uniform(-0.002, 0.002)
        grasp_xy = nut_pos[:2] + yaw_matrix(nut_yaw)[:2, :2] @ handle
        place_xy = peg_pos[:2] + yaw_matrix(placed_yaw)[:2, :2] @ handle

        # Fingers close across the handle (the grip frame's x along the nut's y): grasp yaws
        # pi apart are the same grasp; keep the one whose wrist stays furthest from its limits.
        base_xy = np.asarray(suite.robots[0].base_pos[:2], np.float64)

        def worst_wrist(yaw: float) -> float:  # over the grasp and the placing
            at_grasp = wrist_angle(yaw, grasp_xy, base_xy)
            at_peg = wrist_angle(yaw + turn, place_xy, base_xy)
            return max(abs(at_grasp), abs(at_peg))

        grasp_yaw = min((nut_yaw + np.pi / 2 + k * np.pi for k in range(-2, 4)), key=worst_wrist)
        grasp_rot, place_rot = top_down(grasp_yaw), top_down(grasp_yaw + turn)
        mid_rot = top_down(grasp_yaw + turn / 2)
        first_turn = wrap_to(grasp_yaw - yaw_of(env.control_rotation(0)), 2 * np.pi)

        def steps(start: np.ndarray, end: np.ndarray, minimum: int, turned: float = 0.0) -> int:
            return int(travel_steps(start, end, self.STEP, minimum, turned) * s)

        home = obs["robot0_eef_pos"].astype(np.float64)
        grasp = np.r_[grasp_xy, nut_z + grip_height]
        above_nut = grasp + [0.0, 0.0, 0.08]
        carry_z = peg_top + self.HALF_THICKNESS + self.CARRY_CLEARANCE + grip_height
        lifted = np.r_[grasp_xy, carry_z]
        midway = np.r_[(grasp_xy + place_xy) / 2, carry_z + 0.02]
        above_peg = np.r_[place_xy, carry_z]
        # end the carry with a slow 4 cm stretch so the arm arrives without overshooting
        approach = (above_peg - midway) / max(float(np.linalg.norm(above_peg - midway)), 1e-9)
        near_peg = above_peg - 0.04 * approach
        on_peg = np.r_[place_xy, suite.table_offset[2] + 0.035 + grip_height]  # nut centre 3.5 cm up
        return [
            Waypoint(above_nut, grasp_rot, OPEN, steps(home, above_nut, 20, first_turn)),
            Waypoint(grasp + [0.0, 0.0, 0.02], grasp_rot, OPEN, int(10 * s)),
            Waypoint(grasp, grasp_rot, OPEN, int(8 * s), until="arrived"),  # the last 2 cm slowly
            Waypoint(grasp, grasp_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(lifted, grasp_rot, CLOSED, steps(grasp, lifted, 10)),
            # turn the nut on the way, half at a time so the interpolation turns the short way
            Waypoint(midway, mid_rot, CLOSED, steps(lifted, midway, 12, turn / 2)),
            Waypoint(near_peg, place_rot, CLOSED, steps(midway, near_peg, 10, turn / 2)),
            Waypoint(above_peg, place_rot, CLOSED, int(10 * s), until="arrived"),  # over the peg, still
            Waypoint(on_peg, place_rot, CLOSED, int(20 * s), until="arrived"),
            Waypoint(on_peg, place_rot, OPEN, 2, until="fingers_still"),
            Waypoint(on_peg + [0.0, 0.0, 0.05], place_rot, OPEN, 10),
        ]


class TransportPlanner(Planner):
    """Two arms (robosuite's TwoArmTransport, robomimic's "transport"): robot0 lifts the lid off the
    start bin and sets it on its table, picks the hammer by its handle and holds it out over the gap
    between the tables; robot1 meanwhile moves the trash cube from the target bin into the trash bin,
    then takes the hammer from robot0 (both grasp the handle from above, 2 x ``HANDOVER_OFFSET``
    apart), and places it in the target bin turned 45 degrees (the bin is only 28 cm across).

    The handover and the placing are planned when the arm gets there, from the hammer's pose then
    (a grasp shifts it by millimetres). Cross-arm order comes from waypoint labels: robot1 reaches
    for the hammer once robot0 holds it still at the handover (``H0``), robot0 lets go once
    robot1's fingers have closed (``H1``), and robot1 carries it away once robot0's are open
    (``H2``): each a function of the state a policy observes.

    mh: the trash cube's 90-degree symmetry gives two grasp yaws (their average misses it), the
    lid is set on the table beside the start bin or dropped into the gap between the tables, and
    random speeds and grasp offsets per arm."""

    STEP = 0.012  # metres per control step for the long moves (ph)
    # each hand's grasp point from the handle's centre (half length 0.1) at the handover: closer, the
    # two wrists (link6) collide
    HANDOVER_OFFSET = 0.085
    HANDOVER_Z = 1.05  # grip-site height at the handover
    LID_CARRY_Z = 1.07  # the lid's plate clears the start bin's walls (top 0.951)
    CARRY_Z = 1.0  # trash and hammer carry height over the bins' walls

    def speed(self) -> float:
        """Duration multiplier: 1 for ph; mh draws 0.7-1.2 per arm (robot0's sequence takes ~500 of
        the 700 steps at 1, so the other tasks' 1.5 would run out of time)."""
        return 1.0 if not self.mh else float(self.rng.uniform(0.7, 1.2))

    def plan_arms(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list[list]:
        return [self._robot0(env, obs), self._robot1(env, obs)]

    def _steps(self, s: float) -> Callable[..., int]:
        def steps(start: np.ndarray, end: np.ndarray, minimum: int = 6, turned: float = 0.0) -> int:
            return int(travel_steps(start, end, self.STEP, minimum, turned) * s)

        return steps

    @staticmethod
    def _handle_axis(env: RobomimicEnv) -> tuple[np.ndarray, np.ndarray]:
        """The hammer's handle centre (3,) and handle axis (3,), the unit vector pointing to +y (a held
        hammer droops about the grasp: the axis is not horizontal then)."""
        suite = env.robosuite_env
        p, rot = body_pose(env, suite.transport.payload_body_id)
        u = rot[:, 2] / max(float(np.linalg.norm(rot[:, 2])), 1e-9)
        return p, (u if u[1] >= 0 else -u)

    def _robot0(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list:
        suite = env.robosuite_env
        s, home = self.speed(), obs["robot0_eef_pos"].astype(np.float64)
        steps = self._steps(s)
        current = yaw_of(env.control_rotation(0))
        # lid: the handle is long along world y; fingers across it (along x), the yaw nearest the arm's
        handle = np.asarray(suite.transport.lid_handle_pos, np.float64)
        lid_yaw = current + wrap_to(0.0 - current, np.pi)
        lid_rot = top_down(lid_yaw)
        lid_grasp = handle + [0.0, 0.0, 0.005]
        side = -1.0 if not self.mh or self.rng.random() < 0.5 else 1.0
        lid_down_xy = np.array([handle[0] - 0.38, handle[1]]) if side < 0 else np.array([handle[0], handle[1] + 0.25])
        lid_up = np.r_[lid_grasp[:2], self.LID_CARRY_Z]
        lid_over = np.r_[lid_down_xy, self.LID_CARRY_Z]
        lid_down = np.r_[lid_down_xy, 0.85]
        # hammer: grasp the handle on its tail side (away from the head), fingers across it, and
        # present it with the head toward robot1, whose grasp then sits near the hammer's centre of
        # mass (held by the tail end, a hammer twists out of the fingers on the carry)
        p, rot = body_pose(env, suite.transport.payload_body_id)
        head = rot[:, 2] / max(float(np.linalg.norm(rot[:, 2])), 1e-9)  # the handle axis, toward the head
        hs = self.HANDOVER_OFFSET + (self.rng.uniform(-0.004, 0.004) if self.mh else 0.0)
        g0 = p - hs * head
        head_yaw = float(np.arctan2(head[1], head[0]))
        turn = wrap_to(np.pi / 2 - head_yaw, 2 * np.pi)  # the head toward +y at the handover
        hand0 = np.array([0.0, -hs, self.HANDOVER_Z])
        base_xy = np.asarray(suite.robots[0].base_pos[:2], np.float64)

        def worst_wrist(yaw: float) -> float:  # over the grasp and the handover
            return max(abs(wrist_angle(yaw, g0[:2], base_xy)), abs(wrist_angle(yaw + turn, hand0[:2], base_xy)))

        grasp_yaw = min((head_yaw + np.pi / 2 + k * np.pi for k in range(-2, 4)), key=worst_wrist)
        grasp_rot, hand_rot = top_down(grasp_yaw), top_down(grasp_yaw + turn)
        g0_grasp = np.r_[g0[:2], p[2] + 0.003]
        g0_above = np.r_[g0[:2], self.CARRY_Z]
        g0_up = np.r_[g0[:2], self.HANDOVER_Z]
        midway = np.r_[(g0_up[:2] + hand0[:2]) / 2, self.HANDOVER_Z + 0.03]
        # the turn in two halves, so the interpolation turns the way planned
        first_turn = wrap_to(grasp_yaw - lid_yaw, 2 * np.pi)
        return [
            Waypoint(lid_grasp + [0.0, 0.0, 0.08], lid_rot, OPEN, steps(home, lid_grasp, 20)),
            Waypoint(lid_grasp, lid_rot, OPEN, int(12 * s), until="arrived"),
            Waypoint(lid_grasp, lid_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(lid_up, lid_rot, CLOSED, steps(lid_grasp, lid_up, 10)),
            Waypoint(lid_over, lid_rot, CLOSED, steps(lid_up, lid_over)),
            Waypoint(lid_down, lid_rot, CLOSED, steps(lid_over, lid_down, 10), until="arrived"),
            Waypoint(lid_down, lid_rot, OPEN, 2, until="fingers_still"),
            Waypoint(lid_down + [0.0, 0.0, 0.08], lid_rot, OPEN, 10),
            Waypoint(g0_above, grasp_rot, OPEN, steps(lid_down, g0_above, 15, first_turn)),
            Waypoint(g0_grasp + [0.0, 0.0, 0.03], grasp_rot, OPEN, steps(g0_above, g0_grasp, 10)),
            Waypoint(g0_grasp, grasp_rot, OPEN, int(10 * s), until="arrived"),  # the last 3 cm slowly
            Waypoint(g0_grasp, grasp_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(g0_up, grasp_rot, CLOSED, steps(g0_grasp, g0_up, 10)),
            Waypoint(midway, top_down(grasp_yaw + turn / 2), CLOSED, steps(g0_up, midway, 10, turn / 2)),
            Waypoint(hand0, hand_rot, CLOSED, steps(midway, hand0, 10, turn / 2), until="arrived", label="H0"),
            Waypoint(hand0, hand_rot, OPEN, 2, until="fingers_still", after="H1", label="H2"),
            Waypoint(hand0 + [0.0, -0.12, 0.05], hand_rot, OPEN, 15),
        ]

    def _robot1(self, env: RobomimicEnv, obs: dict[str, np.ndarray]) -> list:
        suite = env.robosuite_env
        s, home = self.speed(), obs["robot1_eef_pos"].astype(np.float64)
        steps = self._steps(s)
        current = yaw_of(env.control_rotation(1))
        trash, trash_rot = body_pose(env, suite.transport.trash_body_id)
        yaw = current + wrap_to(yaw_of(trash_rot) - current, np.pi / 2)
        if self.mh and self.rng.random() < 0.5:  # the cube's other face pair
            yaw = yaw + (np.pi / 2 if wrap_to(yaw - current, 2 * np.pi) <= 0 else -np.pi / 2)
        t_rot = top_down(yaw)
        offset = np.r_[self.rng.uniform(-0.004, 0.004, 2), 0.0] if self.mh else np.zeros(3)
        t_grasp = trash + offset + [0.0, 0.0, -0.003]
        t_up = np.r_[t_grasp[:2], self.CARRY_Z]
        bin_xy = np.asarray(suite.transport.trash_bin_pos, np.float64)[:2]
        over_bin = np.r_[bin_xy, self.CARRY_Z]
        ready_yaw = current + wrap_to(0.0 - current, np.pi)
        ready = np.array([0.0, 0.25, self.HANDOVER_Z + 0.08])
        target_bin = np.asarray(suite.transport.target_bin_pos, np.float64)
        hs = self.HANDOVER_OFFSET

        def receive(env: RobomimicEnv) -> list[Waypoint]:
            p, u = self._handle_axis(env)
            g1 = p + hs * u
            handle_yaw = float(np.arctan2(u[1], u[0]))
            g_yaw = ready_yaw + wrap_to(handle_yaw + np.pi / 2 - ready_yaw, np.pi)
            rot = top_down(g_yaw)
            return [
                Waypoint(g1 + [0.0, 0.0, 0.06], rot, OPEN, steps(ready, g1, 12)),
                Waypoint(g1, rot, OPEN, int(10 * s), until="arrived"),
                Waypoint(g1, rot, CLOSED, 2, until="fingers_still", label="H1"),
                Waypoint(g1, rot, CLOSED, 1, after="H2"),
                lambda env: place(env, g1, g_yaw),
            ]

        def place(env: RobomimicEnv, g1: np.ndarray, g_yaw: float) -> list[Waypoint]:
            p, _ = self._handle_axis(env)
            turn = np.pi / 4
            o = yaw_matrix(turn)[:2, :2] @ (p - g1)[:2]  # the hammer centre from the grip, once turned
            place_xy = target_bin[:2] - o
            rot = top_down(g_yaw + turn)
            up = g1 + [0.0, 0.0, 0.03]
            over = np.r_[place_xy, self.CARRY_Z + 0.02]
            down = np.r_[place_xy, 0.826]
            return [
                Waypoint(up, top_down(g_yaw), CLOSED, 6),
                Waypoint(over, rot, CLOSED, steps(up, over, 15, turn)),
                Waypoint(down, rot, CLOSED, steps(over, down, 15), until="arrived"),
                Waypoint(down, rot, OPEN, 2, until="fingers_still"),
                Waypoint(down + [0.0, 0.0, 0.08], rot, OPEN, 10),
            ]

        return [
            # straight down into the bin from above its walls (top 0.951), not diagonally over them
            Waypoint(np.r_[t_grasp[:2], self.CARRY_Z], t_rot, OPEN, steps(home, t_up, 20, yaw - current)),
            Waypoint(t_grasp + [0.0, 0.0, 0.03], t_rot, OPEN, steps(t_up, t_grasp, 10)),
            Waypoint(t_grasp, t_rot, OPEN, int(10 * s), until="arrived"),
            Waypoint(t_grasp, t_rot, CLOSED, 2, until="fingers_still"),
            Waypoint(t_up, t_rot, CLOSED, steps(t_grasp, t_up, 10)),
            Waypoint(over_bin, t_rot, CLOSED, steps(t_up, over_bin), until="arrived"),
            Waypoint(over_bin, t_rot, OPEN, 2, until="fingers_still"),
            Waypoint(over_bin + [0.0, 0.0, 0.05], t_rot, OPEN, 8),
            Waypoint(ready, top_down(ready_yaw), OPEN, steps(over_bin, ready, 15, ready_yaw - yaw)),
            Waypoint(ready, top_down(ready_yaw), OPEN, 1, after="H0"),
            receive,
        ]


PLANNERS: dict[str, Callable[[str, np.random.Generator], Planner]] = {
    "lift": LiftPlanner,
    "can": CanPlanner,
    "square": SquarePlanner,
    "transport": TransportPlanner,
}
