"""Push-T geometry: the T block's shapes, its keypoints and the goal-coverage computation.

Coordinates follow pymunk: a body's world point is ``position + R(angle) @ local``. The T is the
union of two rectangles with disjoint interiors, so coverage needs no general polygon library:
the intersection of two T's is the sum of four convex-convex intersections.
"""

from __future__ import annotations

import math

import numpy as np

WORKSPACE = 512
SCALE = 30.0
LENGTH = 4.0
AGENT_RADIUS = 15.0
GOAL_POSE = (256.0, 256.0, math.pi / 4)
SUCCESS_COVERAGE = 0.95

# The two rectangles of the T in the block's local frame (pymunk vertex order of the original env).
T_BAR = (
    (-LENGTH * SCALE / 2, SCALE),
    (LENGTH * SCALE / 2, SCALE),
    (LENGTH * SCALE / 2, 0.0),
    (-LENGTH * SCALE / 2, 0.0),
)
T_STEM = (
    (-SCALE / 2, SCALE),
    (-SCALE / 2, LENGTH * SCALE),
    (SCALE / 2, LENGTH * SCALE),
    (SCALE / 2, SCALE),
)
T_PARTS = (T_BAR, T_STEM)
T_AREA = (LENGTH * SCALE) * SCALE + SCALE * (LENGTH - 1) * SCALE  # 6300 px^2

# The 9 block keypoints of the human dataset's `keypoint` array, in the block's local frame.
# Recovered from the dataset itself (local = R(-angle) (keypoint - position)); they agree across
# all 25,650 recorded steps to within float32 rounding (max std 0.03 px).
BLOCK_KEYPOINTS = np.array(
    [
        [9.269787, 90.040974],
        [-60.983472, -1.186730],
        [60.912755, -1.393363],
        [-0.270504, 25.543625],
        [-14.064927, 122.815854],
        [39.002738, 32.857404],
        [-39.966414, 32.729655],
        [-16.824344, 62.863179],
        [23.541461, -1.700288],
    ],
    dtype=np.float64,
)


def to_world(points: np.ndarray, pose: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """Map local points (..., 2) to world coordinates for a body pose (x, y, angle)."""
    x, y, angle = float(pose[0]), float(pose[1]), float(pose[2])
    c, s = math.cos(angle), math.sin(angle)
    pts = np.asarray(points, dtype=np.float64)
    wx = x + c * pts[..., 0] - s * pts[..., 1]
    wy = y + s * pts[..., 0] + c * pts[..., 1]
    return np.stack([wx, wy], axis=-1)


def block_keypoints(pose: tuple[float, float, float] | np.ndarray) -> np.ndarray:
    """The 9 world keypoints (9, 2) of a block at `pose`, as in the dataset's `keypoint` array."""
    return to_world(BLOCK_KEYPOINTS, pose)


def t_polygons(pose: tuple[float, float, float] | np.ndarray) -> list[list[tuple[float, float]]]:
    """The T's two rectangles as world-coordinate vertex lists."""
    return [[tuple(p) for p in to_world(np.array(part), pose)] for part in T_PARTS]


def _clip(subject: list[tuple[float, float]], clipper: list[tuple[float, float]]) -> list:
    """Sutherland-Hodgman: the part of convex `subject` inside convex `clipper`."""
    # Orientation of the clipper decides which side of each edge is "inside".
    area2 = sum(
        clipper[i][0] * clipper[(i + 1) % len(clipper)][1] - clipper[(i + 1) % len(clipper)][0] * clipper[i][1]
        for i in range(len(clipper))
    )
    sign = 1.0 if area2 > 0 else -1.0
    output = subject
    for i in range(len(clipper)):
        if not output:
            break
        ax, ay = clipper[i]
        bx, by = clipper[(i + 1) % len(clipper)]
        ex, ey = bx - ax, by - ay

        def side(p: tuple[float, float], ax: float = ax, ay: float = ay, ex: float = ex, ey: float = ey) -> float:
            return sign * (ex * (p[1] - ay) - ey * (p[0] - ax))

        points, output = output, []
        for j in range(len(points)):
            cur, prev = points[j], points[j - 1]
            s_cur, s_prev = side(cur), side(prev)
            if s_cur >= 0:
                if s_prev < 0:
                    t = s_prev / (s_prev - s_cur)
                    output.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
                output.append(cur)
            elif s_prev >= 0:
                t = s_prev / (s_prev - s_cur)
                output.append((prev[0] + t * (cur[0] - prev[0]), prev[1] + t * (cur[1] - prev[1])))
    return output


def _area(poly: list[tuple[float, float]]) -> float:
    n = len(poly)
    if n < 3:
        return 0.0
    return abs(sum(poly[i][0] * poly[(i + 1) % n][1] - poly[(i + 1) % n][0] * poly[i][1] for i in range(n))) / 2


def coverage(block_pose: tuple[float, float, float] | np.ndarray, goal_pose=GOAL_POSE) -> float:
    """Fraction of the goal T's area covered by the block (intersection area / goal area)."""
    block, goal = t_polygons(block_pose), t_polygons(goal_pose)
    inter = sum(_area(_clip(b, g)) for b in block for g in goal)
    return inter / T_AREA
