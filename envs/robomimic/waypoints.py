"""Waypoints and their execution primitives, shared by the robomimic task planners and the executor.

A :class:`Waypoint` is a world-frame target pose and gripper command; :func:`segment` turns the
move from the previous pose into one absolute OSC_POSE action per control step (linear in
position, geodesic in rotation), and :func:`triggered` says when a waypoint's state condition
holds. Positions are in metres, rotations are (3, 3) matrices, actions are
``[x, y, z, axis-angle (3), gripper]`` (7,), all in the world frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .rotation import axis_angle_to_matrix, matrix_to_axis_angle

OPEN, CLOSED = -1.0, 1.0  # gripper commands

ARRIVED_TOL = 0.004  # m: the grip site is this close to the waypoint ...
STILL_TOL = 0.001  # m per control step: ... and moves less than this (2 cm/s at 20 Hz)
FINGERS_STILL_TOL = 2e-4  # rad or m per step: the finger joints have stopped moving
MAX_WAIT = 40  # control steps a state trigger may hold the target before the episode gives up on it


@dataclass(frozen=True)
class Waypoint:
    """A target pose and gripper command, reached in ``steps`` interpolated control steps; then, with
    ``until``, held until a state condition holds (at most ``MAX_WAIT`` more steps):

    * ``"arrived"``: the grip site is within ``ARRIVED_TOL`` of ``pos`` and still (``STILL_TOL``);
    * ``"fingers_still"``: the finger joints have stopped moving (a grasp closed on the object, or
      a release fully open).

    Triggers make every grasp and release a function of the state a policy observes (the arm at
    the grasp pose and still; the fingers closed and still), not of a timer: a memoryless policy
    cannot tell "wait 4 more steps, then close" from "close now"."""

    pos: np.ndarray  # world-frame target position (3,)
    rot: np.ndarray  # world-frame target orientation (3, 3)
    gripper: float  # -1 open, +1 closed
    steps: int  # control steps to reach it from the previous waypoint (20 Hz)
    until: str = ""  # "" | "arrived" | "fingers_still"
    # Two-arm tasks: ``label`` names this waypoint's completion (reached, and its trigger fired or
    # MAX_WAIT steps passed: an episode whose trigger never fires then fails and is not kept); a
    # waypoint with ``after`` holds the arm's previous target until the other arm completes that label.
    label: str = ""
    after: str = ""
    # The next segment starts from where the grip site is when this waypoint completes, not from
    # ``pos``: after a release, the arm moves on from where it settled while the fingers opened.
    from_hand: bool = False


# A planned step: a waypoint, or a callable ``env -> list[Step]`` (``env`` a RobomimicEnv) expanded when the
# arm reaches it, from the state then; it may return further callables (a servo's next correction), or
# nothing (a servo that has converged).
Step = Waypoint | Callable[[Any], list["Step"]]


def triggered(wp: Waypoint, history: list[dict[str, np.ndarray]], arm: int = 0) -> bool:
    """Whether ``wp``'s state trigger holds for arm ``arm`` after the latest step (always, without one).

    ``history`` is the observations so far, the latest last; a trigger needs two of them.

    Raises:
        ValueError: an unknown ``wp.until``.
    """
    if not wp.until:
        return True
    if len(history) < 2:
        return False
    now, before = history[-1], history[-2]
    if wp.until == "arrived":
        eef = now[f"robot{arm}_eef_pos"].astype(np.float64)
        moved = float(np.linalg.norm(eef - before[f"robot{arm}_eef_pos"]))
        return float(np.linalg.norm(eef - wp.pos)) < ARRIVED_TOL and moved < STILL_TOL
    if wp.until == "fingers_still":
        key = f"robot{arm}_gripper_qpos"
        moved = np.abs(now[key] - before[key]).max()
        return bool(moved < FINGERS_STILL_TOL)
    raise ValueError(f"unknown waypoint trigger {wp.until!r}")


def segment(pos: np.ndarray, rot: np.ndarray, wp: Waypoint) -> list[np.ndarray]:
    """One absolute action (7,) per control step from (pos (3,), rot (3, 3)) to the waypoint: ``wp.steps``
    of them (at least one), linear in position, geodesic in rotation; the gripper command switches
    at the segment's start. Each is ``[x, y, z, axis-angle (3), gripper]`` (float64)."""
    n = max(int(wp.steps), 1)
    delta = matrix_to_axis_angle(wp.rot @ rot.T)  # world-frame rotation from rot to wp.rot
    out = []
    for i in range(1, n + 1):
        a = i / n
        p = pos + a * (wp.pos - pos)
        r = axis_angle_to_matrix(a * delta) @ rot
        out.append(np.concatenate([p, matrix_to_axis_angle(r), [wp.gripper]]).astype(np.float64))
    return out
