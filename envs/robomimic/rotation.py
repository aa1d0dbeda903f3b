"""Rotation conversions for absolute end-effector actions (numpy, batched over leading axes).

robosuite's absolute OSC_POSE action is ``[x, y, z, ax, ay, az, gripper]`` with the orientation
as an axis-angle vector. Diffusion Policy (Chi et al. 2023, following Zhou et al. 2019) trains on
the continuous 6-D representation instead: the first two rows of the rotation matrix. These
helpers convert between the two; :func:`encode_abs_actions` / :func:`decode_abs_actions` do whole
(multi-arm) action vectors, 7 -> 10 numbers per arm and back.
"""

from __future__ import annotations

import numpy as np

ARM_ABS_DIM = 7  # pos 3 + axis-angle 3 + gripper 1 (robosuite's native absolute action)
ARM_ROT6D_DIM = 10  # pos 3 + rotation-6D + gripper 1 (what the policy predicts)


def axis_angle_to_matrix(aa: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: (..., 3) axis-angle -> (..., 3, 3) rotation matrices."""
    aa = np.asarray(aa, dtype=np.float64)
    angle = np.linalg.norm(aa, axis=-1, keepdims=True)
    axis = np.where(angle > 1e-12, aa / np.maximum(angle, 1e-12), np.array([1.0, 0.0, 0.0]))
    x, y, z = axis[..., 0], axis[..., 1], axis[..., 2]
    zero = np.zeros_like(x)
    k = np.stack([zero, -z, y, z, zero, -x, -y, x, zero], axis=-1).reshape(*aa.shape[:-1], 3, 3)
    s, c = np.sin(angle)[..., None], np.cos(angle)[..., None]
    return np.eye(3) + s * k + (1.0 - c) * (k @ k)


def matrix_to_axis_angle(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices -> (..., 3) axis-angle with angle in [0, pi]."""
    m = np.asarray(m, dtype=np.float64)
    return quat_to_axis_angle(matrix_to_quat(m))


def matrix_to_quat(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 4) unit quaternions (x, y, z, w), robosuite's order, w >= 0."""
    m = np.asarray(m, dtype=np.float64)
    t = np.trace(m, axis1=-2, axis2=-1)
    # Four candidate formulas; take, per matrix, the numerically best-conditioned one.
    cands = np.stack(
        [
            np.stack(
                [m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1], 1 + t], -1
            ),
            np.stack(
                [
                    1 + 2 * m[..., 0, 0] - t,
                    m[..., 0, 1] + m[..., 1, 0],
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 2, 1] - m[..., 1, 2],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 0, 1] + m[..., 1, 0],
                    1 + 2 * m[..., 1, 1] - t,
                    m[..., 1, 2] + m[..., 2, 1],
                    m[..., 0, 2] - m[..., 2, 0],
                ],
                -1,
            ),
            np.stack(
                [
                    m[..., 0, 2] + m[..., 2, 0],
                    m[..., 1, 2] + m[..., 2, 1],
                    1 + 2 * m[..., 2, 2] - t,
                    m[..., 1, 0] - m[..., 0, 1],
                ],
                -1,
            ),
        ],
        axis=-2,
    )
    diag = np.stack([t, m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]], -1)
    best = np.argmax(diag, axis=-1)
    q = np.take_along_axis(cands, best[..., None, None], axis=-2)[..., 0, :]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[..., 3:4] < 0, -q, q)


def quat_to_axis_angle(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w) -> (..., 3) axis-angle, angle in [0, pi]."""
    q = np.asarray(q, dtype=np.float64)
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    q = np.where(q[..., 3:4] < 0, -q, q)
    sin_half = np.linalg.norm(q[..., :3], axis=-1, keepdims=True)
    angle = 2.0 * np.arctan2(sin_half, q[..., 3:4])
    return np.where(sin_half > 1e-12, q[..., :3] / np.maximum(sin_half, 1e-12) * angle, 2.0 * q[..., :3])


def quat_to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) quaternions (x, y, z, w; normalized here) -> (..., 3, 3) rotation matrices, via axis-angle."""
    return axis_angle_to_matrix(quat_to_axis_angle(q))


def matrix_to_rot6d(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) -> (..., 6): the first two rows, flattened (pytorch3d's convention)."""
    m = np.asarray(m, dtype=np.float64)
    return m[..., :2, :].reshape(*m.shape[:-2], 6)


def rot6d_to_matrix(r: np.ndarray) -> np.ndarray:
    """(..., 6) -> (..., 3, 3) by Gram-Schmidt; any 6 numbers with independent halves map to a rotation."""
    r = np.asarray(r, dtype=np.float64)
    a1, a2 = r[..., :3], r[..., 3:]
    b1 = a1 / np.maximum(np.linalg.norm(a1, axis=-1, keepdims=True), 1e-12)
    a2 = a2 - np.sum(b1 * a2, axis=-1, keepdims=True) * b1
    b2 = a2 / np.maximum(np.linalg.norm(a2, axis=-1, keepdims=True), 1e-12)
    b3 = np.cross(b1, b2)
    return np.stack([b1, b2, b3], axis=-2)


def encode_abs_actions(actions: np.ndarray) -> np.ndarray:
    """(..., 7 * n_arms) robosuite absolute actions -> (..., 10 * n_arms) with rotation-6D."""
    actions = np.asarray(actions)
    arms = _split_arms(actions, ARM_ABS_DIM)
    out = [
        np.concatenate([a[..., :3], matrix_to_rot6d(axis_angle_to_matrix(a[..., 3:6])), a[..., 6:7]], -1) for a in arms
    ]
    return np.concatenate(out, -1).astype(actions.dtype if actions.dtype.kind == "f" else np.float64)


def decode_abs_actions(actions: np.ndarray) -> np.ndarray:
    """(..., 10 * n_arms) policy actions -> (..., 7 * n_arms) robosuite absolute actions."""
    actions = np.asarray(actions)
    arms = _split_arms(actions, ARM_ROT6D_DIM)
    out = [
        np.concatenate([a[..., :3], matrix_to_axis_angle(rot6d_to_matrix(a[..., 3:9])), a[..., 9:10]], -1) for a in arms
    ]
    return np.concatenate(out, -1)


def _split_arms(actions: np.ndarray, per_arm: int) -> list[np.ndarray]:
    if actions.shape[-1] % per_arm:
        raise ValueError(f"action size {actions.shape[-1]} is not a multiple of {per_arm} (one block per arm)")
    return [actions[..., i : i + per_arm] for i in range(0, actions.shape[-1], per_arm)]
