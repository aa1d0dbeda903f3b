"""The scripted Push-T demonstrator's model of the block: its outline in the block's own frame,
the contacts an agent can push it from, the pose error it minimises, and a push simulator.

Everything here is in the block's local frame (pymunk's y-up convention, the frame of
``geometry.T_BAR`` / ``T_STEM``) unless a name says world, with lengths in px and angles in rad.
:class:`PushModel` predicts a push on a private pymunk space built by
:func:`~dpbench.envs.pusht.physics.build_space` and driven by
:func:`~dpbench.envs.pusht.physics.pd_step`: the env's physics, not a copy of it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from .geometry import AGENT_RADIUS, GOAL_POSE, T_BAR, T_STEM, to_world
from .physics import build_space, pd_step

# The T's outline (the union of T_BAR and T_STEM), counter-clockwise in pymunk's (y-up) convention;
# the outward normal of edge a->b is (dy, -dx) / |ab|. Both rectangles are axis-aligned locally.
OUTLINE = np.array(
    [(-60, 0), (60, 0), (60, 30), (15, 30), (15, 120), (-15, 120), (-15, 30), (-60, 30)], dtype=np.float64
)
RECTS = np.array([(*np.min(part, axis=0), *np.max(part, axis=0)) for part in (T_BAR, T_STEM)])  # x0 y0 x1 y1
COG = np.array([0.0, 45.0])  # the block's centre of gravity in its own frame (see physics.build_space)
HULL = np.array([(-60, 0), (60, 0), (60, 30), (15, 120), (-15, 120), (-60, 30)], dtype=np.float64)
GOAL_COG = to_world(COG, GOAL_POSE)

R = AGENT_RADIUS
ANGLE_SCALE = 45.0  # px per rad: 1 px of cog error costs about as much coverage as 1/45 rad


def dist_to_t(p: np.ndarray) -> np.ndarray:
    """Distance (...,) in px from local points p (..., 2) to the T (0 inside it)."""
    out = None
    for xmin, ymin, xmax, ymax in RECTS:
        dx = np.maximum(np.maximum(xmin - p[..., 0], p[..., 0] - xmax), 0.0)
        dy = np.maximum(np.maximum(ymin - p[..., 1], p[..., 1] - ymax), 0.0)
        d = np.hypot(dx, dy)
        out = d if out is None else np.minimum(out, d)
    return out


def closest_on_t(p: np.ndarray) -> np.ndarray:
    """The point (2,) of the T closest to one local point p (2,)."""
    best, best_d = None, math.inf
    for xmin, ymin, xmax, ymax in RECTS:
        c = np.array([min(max(p[0], xmin), xmax), min(max(p[1], ymin), ymax)])
        d = float(np.hypot(*(p - c)))
        if d < best_d:
            best, best_d = c, d
    return best


def make_contacts(spacing: float = 10.0, corner_samples: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Agent contact positions q (N, 2) touching the T and their push directions n (N, 2), local frame.

    Contacts lie every ``spacing`` px along each edge of the outline (the disc's centre one radius
    out, pushing along the inward normal), plus ``corner_samples`` normals fanned around each convex
    corner; contacts the disc cannot reach along their normal (the T's inner corners) are dropped.
    """
    qs, ns = [], []
    m = len(OUTLINE)
    for i in range(m):
        a, b = OUTLINE[i], OUTLINE[(i + 1) % m]
        e = b - a
        length = float(np.hypot(*e))
        out = np.array([e[1], -e[0]]) / length
        k = max(round(length / spacing), 1)
        for t in (np.arange(k) + 0.5) / k:
            qs.append(a + t * e + R * out)
            ns.append(-out)
        # Convex corner at b: fan of normals between this edge's and the next edge's.
        e2 = OUTLINE[(i + 2) % m] - b
        out2 = np.array([e2[1], -e2[0]]) / float(np.hypot(*e2))
        if e[0] * e2[1] - e[1] * e2[0] > 0:  # left turn = convex corner of a CCW outline
            a0, a1 = math.atan2(out[1], out[0]), math.atan2(out2[1], out2[0])
            da = (a1 - a0 + math.pi) % (2 * math.pi) - math.pi
            for j in range(1, corner_samples + 1):
                ang = a0 + da * j / (corner_samples + 1)
                d = np.array([math.cos(ang), math.sin(ang)])
                qs.append(b + R * d)
                ns.append(-d)
    q, n = np.array(qs), np.array(ns)
    # Keep contacts the disc can reach along the normal: from 7 px out down to 1 px off the edge it
    # must stay clear of the rest of the T (this drops the two inner corners of the T).
    t = np.linspace(1.0, 7.0, 13)[None, :, None]
    path = q[:, None, :] - t * n[:, None, :]
    keep = np.all(dist_to_t(path) >= R + 0.9, axis=1)
    return q[keep], n[keep]


def hull_radius_table(margin: float, n_angles: int = 360) -> np.ndarray:
    """Radius r(phi) (n_angles,) in px from the cog to the T's convex hull inflated by ``margin`` px,
    for phi = 2 pi k / n_angles (bisection along each ray)."""
    phis = np.arange(n_angles) * 2 * math.pi / n_angles
    u = np.stack([np.cos(phis), np.sin(phis)], axis=1)
    lo, hi = np.zeros(n_angles), np.full(n_angles, 400.0)
    edges = [(HULL[i], HULL[(i + 1) % len(HULL)]) for i in range(len(HULL))]

    def dist_hull(p: np.ndarray) -> np.ndarray:
        inside = np.ones(len(p), dtype=bool)
        d = np.full(len(p), np.inf)
        for a, b in edges:
            e = b - a
            t = np.clip(((p - a) @ e) / (e @ e), 0.0, 1.0)
            d = np.minimum(d, np.hypot(*(p - (a + t[:, None] * e)).T))
            inside &= (e[0] * (p[:, 1] - a[1]) - e[1] * (p[:, 0] - a[0])) >= 0
        return np.where(inside, 0.0, d)

    for _ in range(40):  # bisection along each ray
        mid = (lo + hi) / 2
        far = dist_hull(COG + mid[:, None] * u) > margin
        hi, lo = np.where(far, mid, hi), np.where(far, lo, mid)
    return (lo + hi) / 2


CONTACT_Q, CONTACT_N = make_contacts()  # (53, 2) each


def wrap_angle(a: float) -> float:
    """``a`` (rad) wrapped into [-pi, pi)."""
    return (a + math.pi) % (2 * math.pi) - math.pi


def rotation(angle: float) -> np.ndarray:
    """The 2-D rotation matrix (2, 2) of ``angle`` rad (local -> world for a body at that angle)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def pose_error(pose: Iterable[float]) -> float:
    """E = sqrt(|cog - goal cog|^2 + (45 px * angle error)^2), in px, for a block pose (x, y, angle)."""
    x, y, th = (float(v) for v in pose)
    cog = to_world(COG, (x, y, th))
    da = wrap_angle(th - GOAL_POSE[2])
    return math.hypot(math.hypot(cog[0] - GOAL_COG[0], cog[1] - GOAL_COG[1]), ANGLE_SCALE * da)


class PushModel:
    """A private pymunk world with the env's physics, used to predict pushes."""

    def __init__(self) -> None:
        self.space, self.agent, self.block = build_space()

    def push(
        self,
        pose: np.ndarray,
        start: np.ndarray,
        n_local: np.ndarray,
        alpha: float,
        follow: bool,
        speed: float,
        n_steps: int,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Simulate a push from ``start`` (world px, agent at rest) whose target moves ``speed`` px per step.

        The target moves along the contact normal ``n_local`` (2,) turned by ``alpha`` rad, taken in
        the block's frame at the start (``follow`` False: a straight push) or at every step (``follow``
        True: the push turns with the block); ``pose`` (3,) is the block's (x, y, angle) at rest.
        Returns the block poses (n_steps, 3), agent positions (n_steps, 2) and targets (n_steps, 2)
        after each control step.
        """
        block, agent = self.block, self.agent
        block.angle = float(pose[2])  # angle before position: the exact placement (PushTEnv._set_state)
        block.position = (float(pose[0]), float(pose[1]))
        block.velocity, block.angular_velocity = (0.0, 0.0), 0.0
        agent.position = (float(start[0]), float(start[1]))
        agent.velocity = (0.0, 0.0)
        poses, agents, targets = np.empty((n_steps, 3)), np.empty((n_steps, 2)), np.empty((n_steps, 2))
        direction = rotation(pose[2] + alpha) @ n_local
        tx, ty = float(start[0]), float(start[1])
        for k in range(n_steps):
            if follow:
                direction = rotation(block.angle + alpha) @ n_local
            tx, ty = tx + direction[0] * speed, ty + direction[1] * speed
            pd_step(self.space, agent, tx, ty)
            bx, by = block.position
            poses[k] = (bx, by, block.angle)
            agents[k] = agent.position
            targets[k] = (tx, ty)
        return poses, agents, targets
