"""Single-arm planners: Lift, Can and Square. Each plans its waypoints from the env's state after
reset (Lift from the observation; Can and Square from the object, bin and peg poses in the
simulator, ``env.robosuite_env``)."""

from __future__ import annotations

import numpy as np

from ..env import RobomimicEnv
from ..waypoints import CLOSED, OPEN, Waypoint
from .base import Planner, body_pose, object_yaw, top_down, travel_steps, wrap_to, wrist_angle, yaw_matrix, yaw_of


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
