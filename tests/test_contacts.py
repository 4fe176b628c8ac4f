"""Contact labels on constructed motion, and floor placement."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion.contacts import (
    contact_labels, contact_labels_torch, floor_offset, grounded_clip,
)
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_
from backend.motion.skeleton import (
    BODY_CONTACT_JOINTS, FOOT_CONTACT_JOINTS, JOINT_NAMES, NUM_JOINTS, PELVIS_REST_HEIGHT,
    SOLE_BELOW_FOOT_JOINT,
)


def walking_joint(speeds_m_per_s: list[float], fps: float) -> np.ndarray:
    """(T, 1, 3) positions of one joint moving along X at the given per-frame speeds."""
    steps = np.array(speeds_m_per_s) / fps
    x = np.concatenate([[0.0], np.cumsum(steps)])
    return np.stack([x, np.zeros_like(x), np.zeros_like(x)], -1)[:, None, :]


def test_still_then_moving():
    # 5 still steps, then 5 steps at 0.6 m/s (2 cm per frame at 30 fps).
    positions = walking_joint([0.0] * 5 + [0.6] * 5, fps=30)
    labels = contact_labels(positions, (0,), fps=30)
    assert labels.dtype == np.float32 and labels.shape == (11, 1)
    assert labels[:5, 0].tolist() == [1.0] * 5
    assert labels[5:, 0].tolist() == [0.0] * 6  # last frame copies the one before


def test_last_frame_copies_previous():
    positions = walking_joint([0.6] * 4 + [0.0], fps=30)
    assert contact_labels(positions, (0,))[-2:, 0].tolist() == [1.0, 1.0]
    positions = walking_joint([0.0] * 4 + [0.6], fps=30)
    assert contact_labels(positions, (0,))[-2:, 0].tolist() == [0.0, 0.0]


@pytest.mark.parametrize("fps", [30, 60, 120])
def test_threshold_is_a_speed(fps):
    """0.2 m/s is contact and 0.4 m/s is not, whatever the frame rate (0.3 m/s threshold)."""
    slow = contact_labels(walking_joint([0.2] * 10, fps), (0,), fps=fps)
    fast = contact_labels(walking_joint([0.4] * 10, fps), (0,), fps=fps)
    assert slow.min() == 1.0 and fast.max() == 0.0


def test_only_the_chosen_joints_in_their_order():
    t = 6
    positions = np.zeros((t, NUM_JOINTS, 3))
    positions[:, 10, 0] = np.arange(t) * 0.05  # left_foot slides
    labels = contact_labels(positions, FOOT_CONTACT_JOINTS)  # (7, 10, 8, 11)
    assert labels.shape == (t, 4)
    assert labels[:, 1].max() == 0.0 and labels[:, [0, 2, 3]].min() == 1.0


def test_single_frame_and_bad_input():
    assert contact_labels(np.zeros((1, 3, 3)), (0, 2)).tolist() == [[1.0, 1.0]]
    with pytest.raises(ValueError):
        contact_labels(np.zeros((5, 3)), (0,))
    with pytest.raises(ValueError):
        contact_labels(np.zeros((5, 2, 3)), (0,), fps=0)


def test_torch_version_batches_and_matches_numpy():
    rng = np.random.default_rng(0)
    positions = np.cumsum(rng.normal(scale=0.01, size=(3, 20, NUM_JOINTS, 3)), axis=1)
    batched = contact_labels_torch(torch.from_numpy(positions), BODY_CONTACT_JOINTS, fps=30)
    assert batched.shape == (3, 20, len(BODY_CONTACT_JOINTS))
    for b in range(3):
        assert np.array_equal(batched[b].numpy(), contact_labels(positions[b], BODY_CONTACT_JOINTS))
    assert 0 < batched.mean() < 1  # the random walk gives both labels


def test_floor_offset_and_grounded_rest_pose():
    frames = 12
    quats = np.tile([1.0, 0.0, 0.0, 0.0], (frames, NUM_JOINTS, 1))
    root = np.tile([0.3, -0.2, 5.0], (frames, 1))  # floating 4 m too high
    positions, _ = forward_kinematics_np(np_.quaternion_to_matrix(quats), root)
    assert floor_offset(positions) == pytest.approx(5.0 - PELVIS_REST_HEIGHT)
    clip = grounded_clip(quats, root, fps=30)
    assert np.allclose(clip.root_translation[:, 2], PELVIS_REST_HEIGHT, atol=1e-6)
    assert np.allclose(clip.root_translation[:, :2], [0.3, -0.2])
    assert clip.contact_names == tuple(JOINT_NAMES[j] for j in BODY_CONTACT_JOINTS)
    assert clip.contacts.min() == 1.0  # nothing moves
    kept = grounded_clip(quats, root, fps=30, place_on_floor=False)
    assert np.allclose(kept.root_translation[:, 2], 5.0)


def test_floor_ignores_a_few_glitch_frames():
    frames = 200
    positions = np.zeros((frames, 2, 3))
    positions[:, :, 2] = 0.5
    positions[3, 0, 2] = -3.0  # one frame of a capture glitch
    assert floor_offset(positions) == pytest.approx(0.5 - SOLE_BELOW_FOOT_JOINT)
