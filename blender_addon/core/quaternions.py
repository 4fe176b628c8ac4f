"""Quaternion and skeleton maths in numpy, for the add-on (Blender ships numpy, not torch).

Quaternions are (..., 4) arrays, w first, as on the wire and in Blender's
``rotation_quaternion``. Rotation matrices act on column vectors.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    aw, ax, ay, az = np.moveaxis(np.asarray(a, dtype=np.float64), -1, 0)
    bw, bx, by, bz = np.moveaxis(np.asarray(b, dtype=np.float64), -1, 0)
    return np.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], axis=-1)


def conjugate(q: np.ndarray) -> np.ndarray:
    """The inverse of a unit quaternion."""
    return np.asarray(q, dtype=np.float64) * np.array([1.0, -1.0, -1.0, -1.0])


def normalize(q: np.ndarray) -> np.ndarray:
    q = np.asarray(q, dtype=np.float64)
    return q / np.maximum(np.linalg.norm(q, axis=-1, keepdims=True), 1e-12)


def to_matrix(q: np.ndarray) -> np.ndarray:
    """(..., 4) unit quaternions to (..., 3, 3) rotation matrices."""
    w, x, y, z = np.moveaxis(normalize(q), -1, 0)
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)], -1),
        np.stack([2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)], -1),
        np.stack([2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], -1),
    ], axis=-2)


def from_matrix(m: np.ndarray) -> np.ndarray:
    """(..., 3, 3) rotation matrices to (..., 4) unit quaternions with w >= 0.

    Picks, per matrix, the largest of the four candidate denominators (Shepperd's
    method), so it stays accurate near 180-degree rotations.
    """
    m = np.asarray(m, dtype=np.float64)
    shape = m.shape[:-2]
    m = m.reshape(-1, 3, 3)
    t = np.stack([m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2], m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], -1)
    pick = np.argmax(t, axis=-1)
    q = np.empty((m.shape[0], 4))
    for case in range(4):
        rows = np.nonzero(pick == case)[0]
        if rows.size == 0:
            continue
        r = m[rows]
        if case == 0:
            s = np.sqrt(1.0 + r[:, 0, 0] + r[:, 1, 1] + r[:, 2, 2]) * 2
            q[rows] = np.stack([0.25 * s, (r[:, 2, 1] - r[:, 1, 2]) / s, (r[:, 0, 2] - r[:, 2, 0]) / s,
                                (r[:, 1, 0] - r[:, 0, 1]) / s], -1)
        elif case == 1:
            s = np.sqrt(1.0 + r[:, 0, 0] - r[:, 1, 1] - r[:, 2, 2]) * 2
            q[rows] = np.stack([(r[:, 2, 1] - r[:, 1, 2]) / s, 0.25 * s, (r[:, 0, 1] + r[:, 1, 0]) / s,
                                (r[:, 0, 2] + r[:, 2, 0]) / s], -1)
        elif case == 2:
            s = np.sqrt(1.0 + r[:, 1, 1] - r[:, 0, 0] - r[:, 2, 2]) * 2
            q[rows] = np.stack([(r[:, 0, 2] - r[:, 2, 0]) / s, (r[:, 0, 1] + r[:, 1, 0]) / s, 0.25 * s,
                                (r[:, 1, 2] + r[:, 2, 1]) / s], -1)
        else:
            s = np.sqrt(1.0 + r[:, 2, 2] - r[:, 0, 0] - r[:, 1, 1]) * 2
            q[rows] = np.stack([(r[:, 1, 0] - r[:, 0, 1]) / s, (r[:, 0, 2] + r[:, 2, 0]) / s,
                                (r[:, 1, 2] + r[:, 2, 1]) / s, 0.25 * s], -1)
    q = normalize(q)
    q = np.where(q[:, :1] < 0, -q, q)
    return q.reshape(*shape, 4)


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The smallest rotation (..., 4) taking direction ``a`` onto direction ``b`` (the swing).

    For opposite directions any perpendicular axis will do; we pick one stably.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    a = a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)
    b = b / np.maximum(np.linalg.norm(b, axis=-1, keepdims=True), 1e-12)
    w = 1.0 + np.sum(a * b, axis=-1, keepdims=True)
    xyz = np.cross(a, b)
    opposite = w[..., 0] < 1e-9
    if np.any(opposite):
        helper = np.where(np.abs(a[..., :1]) < 0.9, np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]))
        axis = np.cross(a, helper)
        xyz = np.where(opposite[..., None], axis, xyz)
        w = np.where(opposite[..., None], 0.0, w)
    return normalize(np.concatenate([w, xyz], axis=-1))


def sign_continuous(q: np.ndarray, previous: np.ndarray | None = None) -> np.ndarray:
    """Flip quaternions (T, ..., 4) so each frame lies in the hemisphere of the one before.

    ``q`` and ``-q`` are the same rotation, but F-curves interpolate the four numbers,
    so a sign flip between keys would spin the bone the long way round. ``previous``
    (..., 4) continues a sequence across streamed chunks.
    """
    out = np.array(q, dtype=np.float64, copy=True)
    if out.shape[0] == 0:
        return out
    # Flip frame t when its dot with frame t-1 (as given) is negative, and carry each
    # flip forward: a cumulative product of signs, so the whole thing is vectorised.
    step = np.where(np.sum(out[1:] * out[:-1], axis=-1) < 0, -1.0, 1.0)
    first = np.ones(out.shape[1:-1])
    if previous is not None:
        first = np.where(np.sum(out[0] * np.asarray(previous, dtype=np.float64), axis=-1) < 0, -1.0, 1.0)
    signs = np.cumprod(np.concatenate([first[None], step]), axis=0)
    return out * signs[..., None]


def slerp(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Spherical interpolation from ``a`` to ``b`` at fractions ``u`` (broadcast over leading axes)."""
    a, b = normalize(a), normalize(b)
    u = np.asarray(u, dtype=np.float64)
    dot = np.sum(a * b, axis=-1, keepdims=True)
    b = np.where(dot < 0, -b, b)
    dot = np.abs(dot)
    theta = np.arccos(np.clip(dot, -1.0, 1.0))
    sin = np.sin(theta)
    small = sin < 1e-6
    safe = np.where(small, 1.0, sin)
    wa = np.where(small, 1.0 - u[..., None], np.sin((1.0 - u[..., None]) * theta) / safe)
    wb = np.where(small, u[..., None], np.sin(u[..., None] * theta) / safe)
    return normalize(wa * a + wb * b)


def global_rotations(local: np.ndarray, parents: Sequence[int]) -> np.ndarray:
    """World rotation matrices (T, J, 3, 3) from local quaternions (T, J, 4).

    Parents must come before children (true of SMPL's order and of any order we build).
    """
    local_m = to_matrix(local)
    out = np.empty_like(local_m)
    for j, p in enumerate(parents):
        out[:, j] = local_m[:, j] if p < 0 else out[:, p] @ local_m[:, j]
    return out


def forward_kinematics(local: np.ndarray, root: np.ndarray, offsets: np.ndarray,
                       parents: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Joint world positions (T, J, 3) and rotations (T, J, 3, 3).

    ``offsets`` (J, 3) are rest offsets to the parent; ``root`` (T, 3) is the root
    joint's world position. All rest orientations are the world axes (the wire's rule).
    """
    rot = global_rotations(local, parents)
    pos = np.empty(rot.shape[:2] + (3,))
    offsets = np.asarray(offsets, dtype=np.float64)
    for j, p in enumerate(parents):
        pos[:, j] = np.asarray(root, dtype=np.float64) if p < 0 else pos[:, p] + rot[:, p] @ offsets[j]
    return pos, rot

