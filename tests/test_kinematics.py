"""Forward kinematics of the SMPL skeleton and the axis conventions it encodes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.conventions import Y_UP_TO_Z_UP
from backend.motion.kinematics import forward_kinematics, forward_kinematics_np
from backend.motion.rotations import np_
from backend.motion.skeleton import (
    JOINT_INDEX, NUM_JOINTS, OFFSETS, OFFSETS_Y_UP, PARENTS, PELVIS_REST_HEIGHT,
    SOLE_BELOW_FOOT_JOINT, rest_joint_positions,
)
from tests.test_rotations import random_quaternions


def rest_pose(frames: int = 1, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    rotations = np.tile(np.eye(3, dtype=dtype), (frames, NUM_JOINTS, 1, 1))
    root = np.tile(np.array([0.0, 0.0, PELVIS_REST_HEIGHT], dtype=dtype), (frames, 1))
    return rotations, root


def random_pose(frames: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    q = random_quaternions(frames * NUM_JOINTS, seed).reshape(frames, NUM_JOINTS, 4)
    root = np.random.default_rng(seed).normal(size=(frames, 3))
    return np_.quaternion_to_matrix(q), root


def test_axis_conversion_matrix():
    c = Y_UP_TO_Z_UP
    assert np.allclose(c @ [0, 1, 0], [0, 0, 1])  # up stays up
    assert np.allclose(c @ [0, 0, 1], [0, -1, 0])  # a Y-up body's forward becomes -Y
    assert np.allclose(c @ c.T, np.eye(3)) and np.isclose(np.linalg.det(c), 1.0)
    assert np.allclose(OFFSETS, OFFSETS_Y_UP @ c.T)


def test_rest_pose_stands_on_floor_upright_facing_minus_y():
    positions, _ = forward_kinematics_np(*rest_pose())
    p = positions[0]
    assert p[:, 2].min() == pytest.approx(SOLE_BELOW_FOOT_JOINT, abs=1e-12)  # soles at z = 0
    assert p[JOINT_INDEX["head"], 2] > p[JOINT_INDEX["pelvis"], 2] > p[JOINT_INDEX["left_ankle"], 2]
    assert p[JOINT_INDEX["left_hip"], 0] > 0 > p[JOINT_INDEX["right_hip"], 0]  # left is +X
    for side in ("left", "right"):  # toes point forward, i.e. towards -Y
        assert p[JOINT_INDEX[f"{side}_foot"], 1] < p[JOINT_INDEX[f"{side}_ankle"], 1] - 0.05
    assert np.allclose(p - p[0], rest_joint_positions())


def test_bone_lengths_preserved_under_random_rotations():
    rotations, root = random_pose(64, seed=1)
    positions, _ = forward_kinematics_np(rotations, root)
    for joint, parent in enumerate(PARENTS):
        if parent < 0:
            assert np.allclose(positions[:, joint], root)
            continue
        lengths = np.linalg.norm(positions[:, joint] - positions[:, parent], axis=-1)
        assert np.allclose(lengths, np.linalg.norm(OFFSETS[joint]), atol=1e-12)


def test_global_rotations_compose_parents():
    rotations, root = random_pose(8, seed=2)
    _, global_rot = forward_kinematics_np(rotations, root)
    for joint, parent in enumerate(PARENTS):
        expected = rotations[:, joint] if parent < 0 else global_rot[:, parent] @ rotations[:, joint]
        assert np.allclose(global_rot[:, joint], expected, atol=1e-12)


def test_numpy_equals_torch_and_float32_close():
    rotations, root = random_pose(16, seed=3)
    p_np, r_np = forward_kinematics_np(rotations, root)
    p_t, r_t = forward_kinematics(torch.from_numpy(rotations), torch.from_numpy(root))
    assert np.array_equal(p_np, p_t.numpy()) and np.array_equal(r_np, r_t.numpy())
    p32, _ = forward_kinematics_np(rotations.astype(np.float32), root.astype(np.float32))
    assert p32.dtype == np.float32
    assert np.abs(p32 - p_np).max() < 1e-5


def test_batching_matches_per_item():
    rotations, root = random_pose(6, seed=4)
    batched, _ = forward_kinematics_np(rotations.reshape(2, 3, NUM_JOINTS, 3, 3), root.reshape(2, 3, 3))
    single, _ = forward_kinematics_np(rotations[4:5], root[4:5])
    assert batched.shape == (2, 3, NUM_JOINTS, 3)
    assert np.allclose(batched[1, 1], single[0], atol=1e-12)


def test_known_pose_elbow_bend():
    """Bending the left elbow 90 degrees about -Z swings the forearm from +X to -Y (forward)."""
    rotations, root = rest_pose()
    rotations[0, JOINT_INDEX["left_elbow"]] = np_.axis_angle_to_matrix(np.array([0, 0, -np.pi / 2]))
    positions, _ = forward_kinematics_np(rotations, root)
    forearm = positions[0, JOINT_INDEX["left_wrist"]] - positions[0, JOINT_INDEX["left_elbow"]]
    rest = OFFSETS[JOINT_INDEX["left_wrist"]]
    assert np.allclose(forearm, [rest[1], -rest[0], rest[2]], atol=1e-12)


def test_wrong_joint_count_is_refused():
    with pytest.raises(ValueError, match="24 joints"):
        forward_kinematics(torch.eye(3).repeat(1, 22, 1, 1), torch.zeros(1, 3))


def test_gradients_reach_rotations():
    rotations, root = random_pose(2, seed=5)
    r = torch.from_numpy(rotations).requires_grad_(True)
    positions, _ = forward_kinematics(r, torch.from_numpy(root))
    positions[..., 2].sum().backward()
    assert r.grad is not None and torch.all(torch.isfinite(r.grad))
