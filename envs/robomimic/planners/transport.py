"""The two-arm Transport planner: robot0 hands the hammer over, robot1 clears the trash and receives it."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..env import RobomimicEnv
from ..waypoints import CLOSED, OPEN, Waypoint
from .base import Planner, body_pose, top_down, travel_steps, wrap_to, wrist_angle, yaw_matrix, yaw_of


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
