"""Rotation conversions: axis-angle, quaternion (w, x, y, z), 6D and matrices.

Every function takes batched inputs with any leading shape and works on torch
tensors. Numpy callers use the same maths through ``backend.motion.rotations.np_``
(``np_.axis_angle_to_matrix(...)`` and so on), which converts at the edges, so
there is exactly one implementation of each formula.

Conventions:

* quaternions are ``(w, x, y, z)``, unit length, and returned with ``w >= 0``;
* rotation matrices act on column vectors (``v' = R @ v``);
* the 6D representation is the first two columns of the matrix, concatenated
  ``(R[:, 0], R[:, 1])`` (Zhou et al., "On the Continuity of Rotation
  Representations in Neural Networks", CVPR 2019);
* Euler angles are intrinsic, in the order named, as BVH files use them: order
  ``"ZYX"`` means ``R = Rz(a0) @ Ry(a1) @ Rx(a2)``.
"""

from __future__ import annotations

import types
from typing import Callable

import numpy as np
import torch
from torch import Tensor

_EPS = 1e-8


def _skew(v: Tensor) -> Tensor:
    x, y, z = v.unbind(-1)
    zero = torch.zeros_like(x)
    return torch.stack(
        [zero, -z, y, z, zero, -x, -y, x, zero], dim=-1
    ).reshape(v.shape[:-1] + (3, 3))


def axis_angle_to_matrix(axis_angle: Tensor) -> Tensor:
    """Rodrigues' formula, with a Taylor expansion near zero angle."""
    angle = torch.linalg.norm(axis_angle, dim=-1, keepdim=True)[..., None]  # (...,1,1)
    small = angle < 1e-4
    safe = torch.where(small, torch.ones_like(angle), angle)
    k = _skew(axis_angle)
    a = torch.where(small, 1.0 - angle**2 / 6.0, torch.sin(safe) / safe)
    b = torch.where(small, 0.5 - angle**2 / 24.0, (1.0 - torch.cos(safe)) / safe**2)
    eye = torch.eye(3, dtype=axis_angle.dtype, device=axis_angle.device)
    return eye + a * k + b * (k @ k)


def quaternion_to_matrix(quaternion: Tensor) -> Tensor:
    q = quaternion / torch.linalg.norm(quaternion, dim=-1, keepdim=True).clamp_min(_EPS)
    w, x, y, z = q.unbind(-1)
    m = torch.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], dim=-1)
    return m.reshape(q.shape[:-1] + (3, 3))


def matrix_to_quaternion(matrix: Tensor) -> Tensor:
    """Shepperd's method: take the largest of the four candidates for stability."""
    m = matrix
    m00, m11, m22 = m[..., 0, 0], m[..., 1, 1], m[..., 2, 2]
    # 4*q_i^2 for i in (w, x, y, z)
    squares = torch.stack([
        1 + m00 + m11 + m22, 1 + m00 - m11 - m22, 1 - m00 + m11 - m22, 1 - m00 - m11 + m22,
    ], dim=-1).clamp_min(0.0)
    roots = torch.sqrt(squares).clamp_min(_EPS)  # 2*|q_i|
    # Each row: the quaternion computed from the pivot component i (times 2*|q_i|).
    candidates = torch.stack([
        torch.stack([squares[..., 0], m[..., 2, 1] - m[..., 1, 2], m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] - m[..., 0, 1]], -1),
        torch.stack([m[..., 2, 1] - m[..., 1, 2], squares[..., 1], m[..., 1, 0] + m[..., 0, 1], m[..., 0, 2] + m[..., 2, 0]], -1),
        torch.stack([m[..., 0, 2] - m[..., 2, 0], m[..., 1, 0] + m[..., 0, 1], squares[..., 2], m[..., 2, 1] + m[..., 1, 2]], -1),
        torch.stack([m[..., 1, 0] - m[..., 0, 1], m[..., 2, 0] + m[..., 0, 2], m[..., 2, 1] + m[..., 1, 2], squares[..., 3]], -1),
    ], dim=-2) / (2.0 * roots[..., :, None])
    best = squares.argmax(dim=-1)
    q = torch.gather(candidates, -2, best[..., None, None].expand(best.shape + (1, 4))).squeeze(-2)
    q = q / torch.linalg.norm(q, dim=-1, keepdim=True).clamp_min(_EPS)
    return torch.where(q[..., :1] < 0, -q, q)


def axis_angle_to_quaternion(axis_angle: Tensor) -> Tensor:
    angle = torch.linalg.norm(axis_angle, dim=-1, keepdim=True)
    half = 0.5 * angle
    small = angle < 1e-4
    safe = torch.where(small, torch.ones_like(angle), angle)
    scale = torch.where(small, 0.5 - angle**2 / 48.0, torch.sin(half) / safe)
    q = torch.cat([torch.cos(half), axis_angle * scale], dim=-1)
    return torch.where(q[..., :1] < 0, -q, q)


def quaternion_to_axis_angle(quaternion: Tensor) -> Tensor:
    q = quaternion / torch.linalg.norm(quaternion, dim=-1, keepdim=True).clamp_min(_EPS)
    q = torch.where(q[..., :1] < 0, -q, q)
    sin_half = torch.linalg.norm(q[..., 1:], dim=-1, keepdim=True)
    angle = 2.0 * torch.atan2(sin_half, q[..., :1])
    small = sin_half < 1e-6
    safe = torch.where(small, torch.ones_like(sin_half), sin_half)
    scale = torch.where(small, 2.0 / q[..., :1].clamp_min(_EPS), angle / safe)
    return q[..., 1:] * scale


def matrix_to_axis_angle(matrix: Tensor) -> Tensor:
    """Via the quaternion, which stays well conditioned near 180 degrees."""
    return quaternion_to_axis_angle(matrix_to_quaternion(matrix))


def matrix_to_rot6d(matrix: Tensor) -> Tensor:
    return torch.cat([matrix[..., :, 0], matrix[..., :, 1]], dim=-1)


def rot6d_to_matrix(rot6d: Tensor) -> Tensor:
    """Gram-Schmidt on the two stored columns; any 6 numbers give a valid rotation."""
    a1, a2 = rot6d[..., :3], rot6d[..., 3:6]
    b1 = a1 / torch.linalg.norm(a1, dim=-1, keepdim=True).clamp_min(_EPS)
    a2 = a2 - (b1 * a2).sum(-1, keepdim=True) * b1
    b2 = a2 / torch.linalg.norm(a2, dim=-1, keepdim=True).clamp_min(_EPS)
    b3 = torch.linalg.cross(b1, b2, dim=-1)
    return torch.stack([b1, b2, b3], dim=-1)


def quaternion_to_rot6d(quaternion: Tensor) -> Tensor:
    return matrix_to_rot6d(quaternion_to_matrix(quaternion))


def rot6d_to_quaternion(rot6d: Tensor) -> Tensor:
    return matrix_to_quaternion(rot6d_to_matrix(rot6d))


def axis_angle_to_rot6d(axis_angle: Tensor) -> Tensor:
    return matrix_to_rot6d(axis_angle_to_matrix(axis_angle))


def rot6d_to_axis_angle(rot6d: Tensor) -> Tensor:
    return matrix_to_axis_angle(rot6d_to_matrix(rot6d))


def quaternion_multiply(a: Tensor, b: Tensor) -> Tensor:
    """Hamilton product ``a * b`` (apply ``b`` first, then ``a``)."""
    aw, ax, ay, az = a.unbind(-1)
    bw, bx, by, bz = b.unbind(-1)
    return torch.stack([
        aw * bw - ax * bx - ay * by - az * bz,
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
    ], dim=-1)


def _basic_rotation(axis: str, angle: Tensor) -> Tensor:
    c, s = torch.cos(angle), torch.sin(angle)
    one, zero = torch.ones_like(angle), torch.zeros_like(angle)
    rows = {
        "X": [one, zero, zero, zero, c, -s, zero, s, c],
        "Y": [c, zero, s, zero, one, zero, -s, zero, c],
        "Z": [c, -s, zero, s, c, zero, zero, zero, one],
    }[axis]
    return torch.stack(rows, dim=-1).reshape(angle.shape + (3, 3))


def euler_to_matrix(angles: Tensor, order: str) -> Tensor:
    """Intrinsic Euler angles in radians, ``angles[..., i]`` about axis ``order[i]``."""
    result = _basic_rotation(order[0], angles[..., 0])
    for i in (1, 2):
        result = result @ _basic_rotation(order[i], angles[..., i])
    return result


def matrix_to_euler(matrix: Tensor, order: str) -> Tensor:
    """Inverse of ``euler_to_matrix`` for proper Tait-Bryan orders (all axes differ)."""
    axis = {"X": 0, "Y": 1, "Z": 2}
    i, j, k = (axis[c] for c in order)
    # Sign of the permutation (i, j, k): +1 for cyclic (XYZ, YZX, ZXY), else -1.
    sign = 1.0 if (j - i) % 3 == 1 else -1.0
    m = matrix
    # For R = R_i(a) R_j(b) R_k(c): R[i, k] = sign * sin(b).
    b = torch.asin((sign * m[..., i, k]).clamp(-1.0, 1.0))
    a = torch.atan2(-sign * m[..., j, k], m[..., k, k])
    c = torch.atan2(-sign * m[..., i, j], m[..., i, i])
    return torch.stack([a, b, c], dim=-1)


def quaternion_sign_continuity(quaternions: Tensor, dim: int = 0) -> Tensor:
    """Flip signs along ``dim`` (time) so consecutive quaternions lie in one hemisphere.

    q and -q are the same rotation; interpolating keys that jump between them makes a
    limb spin the long way round, so keyframes and exporters want this.
    """
    q = quaternions.movedim(dim, 0).clone()
    for t in range(1, q.shape[0]):
        flip = (q[t] * q[t - 1]).sum(-1, keepdim=True) < 0
        q[t] = torch.where(flip, -q[t], q[t])
    return q.movedim(0, dim)


def _numpy_version(fn: Callable[..., Tensor]) -> Callable[..., np.ndarray]:
    def wrapped(*args, **kwargs):
        converted = [torch.from_numpy(np.ascontiguousarray(a)) if isinstance(a, (np.ndarray, list, tuple)) else a for a in args]
        return fn(*converted, **kwargs).numpy()
    wrapped.__name__ = fn.__name__
    wrapped.__doc__ = f"Numpy front for :func:`{fn.__module__}.{fn.__name__}`."
    return wrapped


_PUBLIC = [
    axis_angle_to_matrix, quaternion_to_matrix, matrix_to_quaternion,
    axis_angle_to_quaternion, quaternion_to_axis_angle, matrix_to_axis_angle,
    matrix_to_rot6d, rot6d_to_matrix, quaternion_to_rot6d, rot6d_to_quaternion,
    axis_angle_to_rot6d, rot6d_to_axis_angle, quaternion_multiply,
    euler_to_matrix, matrix_to_euler, quaternion_sign_continuity,
]

np_ = types.SimpleNamespace(**{f.__name__: _numpy_version(f) for f in _PUBLIC})
"""The same conversions on numpy arrays (float32 in, float32 out; float64 likewise)."""
