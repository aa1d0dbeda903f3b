"""A small numpy rasterizer for Push-T frames (no pygame or OpenCV needed).

It draws the scene in the original env's style: white floor, light-gray walls, the light-green
goal T, the slate-gray block (lighter fill, darker outline) and the blue agent disc. Each pixel
is supersampled and area-averaged, so frames at any size are smooth and deterministic.
"""

from __future__ import annotations

from functools import lru_cache

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


@lru_cache(maxsize=8)
def _background(size: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The static part of a frame (floor, walls, goal T): supersampled float and final uint8."""
    n = size * k
    coords = (np.arange(n, dtype=np.float32) + 0.5) * (WORKSPACE / n)
    px, py = np.meshgrid(coords, coords)
    img = np.empty((n, n, 3), dtype=np.float32)
    img[:] = WHITE
    wall = (px < 7) | (px > 504) | (py < 7) | (py > 504)
    wall &= (px > 3) & (px < 508) & (py > 3) & (py < 508)
    img[wall] = WALL
    for part in T_PARTS:
        img[_polygon_mask(px, py, to_world(np.array(part), GOAL_POSE))] = GOAL
    img.flags.writeable = False
    final = _downsample(img, k)
    final.flags.writeable = False
    return img, final


def _downsample(img: np.ndarray, k: int) -> np.ndarray:
    h, w = img.shape[0] // k, img.shape[1] // k
    return np.clip(np.rint(img.reshape(h, k, w, k, 3).mean(axis=(1, 3))), 0, 255).astype(np.uint8)


def render_frame(
    agent_pos: np.ndarray,
    block_pose: np.ndarray,
    size: int = 96,
    supersample: int = 3,
    action: np.ndarray | None = None,
    full_grid: bool = False,
) -> np.ndarray:
    """Render the scene as a uint8 (size, size, 3) image; image row = workspace y.

    Each moving shape is rasterized only inside its bounding box (in whole output pixels) over a
    cached background; ``full_grid=True`` tests every pixel instead (same frame, slower; tests).
    """
    k = supersample
    cell = WORKSPACE / (size * k)
    background, final_background = _background(size, k)
    sup = background.copy()
    touched: list[tuple[slice, slice]] = []

    def window(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The supersampled patch covering the output pixels of box [lo, hi], and its coordinates."""
        if full_grid:
            (c0, r0), (c1, r1) = (0, 0), (size, size)
        else:
            (c0, r0) = np.clip(np.floor(lo / (cell * k)).astype(int) - 1, 0, size)
            (c1, r1) = np.clip(np.ceil(hi / (cell * k)).astype(int) + 1, 0, size)
        rows, cols = slice(r0 * k, max(r0, r1) * k), slice(c0 * k, max(c0, c1) * k)
        touched.append((rows, cols))
        px, py = np.meshgrid(
            (np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5) * cell,
            (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5) * cell,
        )
        return sup[rows, cols], px, py

    block_parts = [to_world(np.array(part), block_pose) for part in T_PARTS]
    verts = np.concatenate(block_parts)
    patch, px, py = window(verts.min(0), verts.max(0))
    outer = _polygon_mask(px, py, block_parts[0]) | _polygon_mask(px, py, block_parts[1])
    # The fill is the T shrunk by the outline width; the band over the bar/stem joint keeps the
    # outline off the T's inside.
    inner = _polygon_mask(px, py, block_parts[0], OUTLINE_PX) | _polygon_mask(px, py, block_parts[1], OUTLINE_PX)
    inner |= _polygon_mask(px, py, to_world(_JOINT_BAND, block_pose))
    patch[outer] = BLOCK
    patch[inner] = _light(BLOCK)

    centre = np.asarray(agent_pos, dtype=np.float64)[:2]
    patch, px, py = window(centre - AGENT_RADIUS, centre + AGENT_RADIUS)
    d2 = (px - float(centre[0])) ** 2 + (py - float(centre[1])) ** 2
    patch[d2 <= AGENT_RADIUS**2] = AGENT
    patch[d2 <= (AGENT_RADIUS - 4) ** 2] = _light(AGENT)

    if action is not None:
        ax, ay = float(action[0]), float(action[1])
        patch, px, py = window(np.array([ax - 8, ay - 8]), np.array([ax + 8, ay + 8]))
        cross = ((np.abs(px - ax) < 1.5) & (np.abs(py - ay) < 8)) | ((np.abs(py - ay) < 1.5) & (np.abs(px - ax) < 8))
        patch[cross] = ACTION

    frame = final_background.copy()
    for rows, cols in touched:  # after all painting, so overlapping shapes compose in order
        if rows.stop > rows.start and cols.stop > cols.start:
            frame[rows.start // k : rows.stop // k, cols.start // k : cols.stop // k] = _downsample(sup[rows, cols], k)
    return frame
