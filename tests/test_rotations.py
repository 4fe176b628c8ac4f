"""Rotation conversions: round trips on random rotations, in numpy and torch, plus the
conventions other modules rely on (w-first quaternions, 6D = first two columns,
intrinsic Euler order as named)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion import rotations as rot
from backend.motion.rotations import np_

ORDERS = ("XYZ", "XZY", "YXZ", "YZX", "ZXY", "ZYX")


def random_quaternions(n: int, seed: int = 0) -> np.ndarray:
    """Uniform random rotations as w-first unit quaternions with w >= 0 (float64)."""
    q = np.random.default_rng(seed).normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def random_matrices(n: int, seed: int = 0) -> np.ndarray:
    return np_.quaternion_to_matrix(random_quaternions(n, seed))


def same_rotation_quat(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Distance between quaternions up to the q / -q ambiguity."""
    return np.minimum(np.linalg.norm(a - b, axis=-1), np.linalg.norm(a + b, axis=-1))


def test_matrices_are_rotations():
    m = random_matrices(500)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-12)
    assert np.allclose(np.linalg.det(m), 1.0, atol=1e-12)


def test_quaternion_matrix_round_trip_numpy():
    q = random_quaternions(1000)
    back = np_.matrix_to_quaternion(np_.quaternion_to_matrix(q))
    assert np.abs(back - q).max() < 1e-10  # both have w >= 0, so the signs agree
    assert np.all(back[:, 0] >= 0)


def test_axis_angle_round_trips_numpy():
    rng = np.random.default_rng(1)
    axis = rng.normal(size=(1000, 3))
    axis /= np.linalg.norm(axis, axis=-1, keepdims=True)
    angle = rng.uniform(0.0, np.pi - 1e-3, size=(1000, 1))  # unique below 180 degrees
    aa = axis * angle
    assert np.abs(np_.matrix_to_axis_angle(np_.axis_angle_to_matrix(aa)) - aa).max() < 1e-8
    assert np.abs(np_.quaternion_to_axis_angle(np_.axis_angle_to_quaternion(aa)) - aa).max() < 1e-8
    assert np.abs(np_.rot6d_to_axis_angle(np_.axis_angle_to_rot6d(aa)) - aa).max() < 1e-8


def test_small_and_half_turn_angles():
    tiny = np.array([[1e-9, -2e-9, 3e-9], [1e-5, 0.0, 0.0], [0.0, 0.0, 0.0]])
    m = np_.axis_angle_to_matrix(tiny)
    assert np.all(np.isfinite(m))
    assert np.abs(np_.matrix_to_axis_angle(m) - tiny).max() < 1e-12
    half = np.array([[np.pi, 0.0, 0.0], [0.0, np.pi / np.sqrt(2), np.pi / np.sqrt(2)]])
    m = np_.axis_angle_to_matrix(half)
    back = np_.axis_angle_to_matrix(np_.matrix_to_axis_angle(m))
    assert np.abs(back - m).max() < 1e-8


def test_rot6d_round_trip_and_definition():
    m = random_matrices(500, seed=2)
    six = np_.matrix_to_rot6d(m)
    assert np.allclose(six[:, :3], m[:, :, 0]) and np.allclose(six[:, 3:], m[:, :, 1])
    assert np.abs(np_.rot6d_to_matrix(six) - m).max() < 1e-12
    q = np_.matrix_to_quaternion(m)
    assert same_rotation_quat(np_.rot6d_to_quaternion(np_.quaternion_to_rot6d(q)), q).max() < 1e-10


def test_rot6d_of_any_six_numbers_is_a_rotation():
    raw = np.random.default_rng(3).normal(size=(200, 6))
    m = np_.rot6d_to_matrix(raw)
    assert np.allclose(m @ np.swapaxes(m, -1, -2), np.eye(3), atol=1e-10)
    assert np.allclose(np.linalg.det(m), 1.0, atol=1e-10)


@pytest.mark.parametrize("order", ORDERS)
def test_euler_round_trip_and_order(order):
    m = random_matrices(500, seed=4)
    angles = np_.matrix_to_euler(m, order)
    assert np.abs(np_.euler_to_matrix(angles, order) - m).max() < 1e-9
    # Intrinsic, in the order named: R = R_order[0](a0) @ R_order[1](a1) @ R_order[2](a2).
    a = np.array([0.3, -0.7, 1.1])
    expected = np.eye(3)
    for axis_name, value in zip(order, a):
        aa = np.zeros(3)
        aa["XYZ".index(axis_name)] = value
        expected = expected @ np_.axis_angle_to_matrix(aa)
    assert np.allclose(np_.euler_to_matrix(a, order), expected, atol=1e-12)


def test_known_rotation_and_quaternion_order():
    quarter_z = np.array([0.0, 0.0, np.pi / 2])
    q = np_.axis_angle_to_quaternion(quarter_z)
    assert np.allclose(q, [np.cos(np.pi / 4), 0.0, 0.0, np.sin(np.pi / 4)])  # w first
    assert np.allclose(np_.axis_angle_to_matrix(quarter_z) @ [1.0, 0.0, 0.0], [0.0, 1.0, 0.0])


def test_quaternion_multiply_matches_matrix_product():
    a, b = random_quaternions(300, seed=5), random_quaternions(300, seed=6)
    product = np_.quaternion_to_matrix(np_.quaternion_multiply(a, b))
    assert np.abs(product - np_.quaternion_to_matrix(a) @ np_.quaternion_to_matrix(b)).max() < 1e-12


def test_sign_continuity_removes_hemisphere_jumps():
    q = random_quaternions(1, seed=7)[0]
    seq = np.stack([q, -q, q, -q])
    fixed = np_.quaternion_sign_continuity(seq)
    assert np.all((fixed[1:] * fixed[:-1]).sum(-1) > 0)
    assert same_rotation_quat(fixed, seq).max() < 1e-12


@pytest.mark.parametrize("dtype, tol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
def test_torch_round_trips(dtype, tol):
    q = torch.as_tensor(random_quaternions(1000, seed=8), dtype=dtype)
    m = rot.quaternion_to_matrix(q)
    assert m.dtype == dtype
    assert (rot.matrix_to_quaternion(m) - q).abs().max() < tol
    assert (rot.rot6d_to_matrix(rot.matrix_to_rot6d(m)) - m).abs().max() < tol
    aa = rot.quaternion_to_axis_angle(q)
    assert (rot.axis_angle_to_matrix(aa) - m).abs().max() < tol * 10
    for order in ORDERS:
        assert (rot.euler_to_matrix(rot.matrix_to_euler(m, order), order) - m).abs().max() < tol * 10


def test_numpy_and_torch_agree_and_keep_dtype():
    q64 = random_quaternions(50, seed=9)
    q32 = q64.astype(np.float32)
    assert np_.quaternion_to_matrix(q32).dtype == np.float32
    assert np_.quaternion_to_matrix(q64).dtype == np.float64
    torch_m = rot.quaternion_to_matrix(torch.from_numpy(q64)).numpy()
    assert np.array_equal(np_.quaternion_to_matrix(q64), torch_m)


def test_batched_leading_shapes():
    q = random_quaternions(24 * 6, seed=10).reshape(2, 3, 24, 4)
    m = np_.quaternion_to_matrix(q)
    assert m.shape == (2, 3, 24, 3, 3)
    assert np.allclose(m[1, 2, 5], np_.quaternion_to_matrix(q[1, 2, 5]))
    assert np_.matrix_to_rot6d(m).shape == (2, 3, 24, 6)


def test_gradients_flow_through_6d():
    six = torch.randn(8, 6, dtype=torch.float64, requires_grad=True)
    rot.rot6d_to_matrix(six).sum().backward()
    assert six.grad is not None and torch.all(torch.isfinite(six.grad))


def test_numpy_front_takes_views_with_negative_strides():
    q = random_quaternions(6, seed=11)
    assert np.array_equal(np_.quaternion_to_matrix(q[::-1]), np_.quaternion_to_matrix(q)[::-1])
