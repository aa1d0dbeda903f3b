"""A small numpy rasterizer for Push-T frames (no pygame or OpenCV needed).

It draws the scene in the original env's style: white floor, light-gray walls, the light-green
goal T, the slate-gray block (lighter fill, darker outline) and the blue agent disc. Each pixel
is supersampled and area-averaged, so frames at any size are smooth and deterministic.
"""

from __future__ import annotations

import numpy as np

from .geometry import AGENT_RADIUS, GOAL_POSE, T_PARTS, WORKSPACE, to_world

WHITE = (255, 255, 255)
WALL = (211, 211, 211)  # pygame "LightGray"
GOAL = (144, 238, 144)  # "LightGreen"
BLOCK = (119, 136, 153)  # "LightSlateGray"
AGENT = (65, 105, 225)  # "RoyalBlue"
ACTION = (255, 0, 0)
OUTLINE_PX = 2.0  # outline width in workspace pixels
_JOINT_BAND = np.array([(-13.0, 26.0), (-13.0, 34.0), (13.0, 34.0), (13.0, 26.0)])


def _light(color: tuple[int, int, int]) -> np.ndarray:
    return np.minimum(1.2 * np.array(color, dtype=np.float32), 255.0)


def _polygon_mask(px: np.ndarray, py: np.ndarray, verts: np.ndarray, inset: float = 0.0) -> np.ndarray:
    """Inside test for a convex polygon, optionally shrunk by `inset` px along every edge."""
    n = len(verts)
    area2 = np.sum(verts[:, 0] * np.roll(verts[:, 1], -1) - np.roll(verts[:, 0], -1) * verts[:, 1])
    sign = 1.0 if area2 > 0 else -1.0
    inside = np.ones(px.shape, dtype=bool)
    for i in range(n):
        a, b = verts[i], verts[(i + 1) % n]
        edge = b - a
        length = float(np.hypot(edge[0], edge[1]))
        dist = sign * (edge[0] * (py - a[1]) - edge[1] * (px - a[0])) / length
        inside &= dist >= inset
    return inside


def render_frame(
    agent_pos: np.ndarray,
    block_pose: np.ndarray,
    size: int = 96,
    supersample: int = 3,
    action: np.ndarray | None = None,
) -> np.ndarray:
    """Render the scene as a uint8 (size, size, 3) image; image row = workspace y."""
    k = supersample
    n = size * k
    coords = (np.arange(n, dtype=np.float32) + 0.5) * (WORKSPACE / n)
    px, py = np.meshgrid(coords, coords)  # px varies along columns, py along rows
    img = np.empty((n, n, 3), dtype=np.float32)
    img[:] = WHITE

    def paint(mask: np.ndarray, color) -> None:
        img[mask] = color

    wall = (px < 7) | (px > 504) | (py < 7) | (py > 504)
    wall &= (px > 3) & (px < 508) & (py > 3) & (py < 508)
    paint(wall, WALL)

    for part in T_PARTS:
        paint(_polygon_mask(px, py, to_world(np.array(part), GOAL_POSE)), GOAL)
    block_parts = [to_world(np.array(part), block_pose) for part in T_PARTS]
    outer = _polygon_mask(px, py, block_parts[0]) | _polygon_mask(px, py, block_parts[1])
    # The fill is the T shrunk by the outline width; the band over the bar/stem joint keeps the
    # outline off the T's inside.
    inner = _polygon_mask(px, py, block_parts[0], OUTLINE_PX) | _polygon_mask(px, py, block_parts[1], OUTLINE_PX)
    inner |= _polygon_mask(px, py, to_world(_JOINT_BAND, block_pose))
    paint(outer, BLOCK)
    paint(inner, _light(BLOCK))

    d2 = (px - float(agent_pos[0])) ** 2 + (py - float(agent_pos[1])) ** 2
    paint(d2 <= AGENT_RADIUS**2, AGENT)
    paint(d2 <= (AGENT_RADIUS - 4) ** 2, _light(AGENT))

    if action is not None:
        ax, ay = float(action[0]), float(action[1])
        cross = ((np.abs(px - ax) < 1.5) & (np.abs(py - ay) < 8)) | ((np.abs(py - ay) < 1.5) & (np.abs(px - ax) < 8))
        paint(cross, ACTION)

    img = img.reshape(size, k, size, k, 3).mean(axis=(1, 3))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
