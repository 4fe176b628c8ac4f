"""The motion channel layout: sizes, slices, and pack/unpack round trips."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from backend.motion import layout as L
from backend.motion.rotations import np_
from backend.motion.skeleton import BODY_CONTACT_JOINTS, FOOT_CONTACT_JOINTS, JOINT_NAMES, NUM_JOINTS
from tests.test_rotations import random_quaternions, same_rotation_quat


def test_channel_counts_and_names():
    assert L.FOOT_LAYOUT.num_channels == 151 and L.BODY_LAYOUT.num_channels == 156
    assert L.FOOT_LAYOUT.contact_names == tuple(JOINT_NAMES[j] for j in FOOT_CONTACT_JOINTS)
    assert L.BODY_LAYOUT.contact_names == tuple(JOINT_NAMES[j] for j in BODY_CONTACT_JOINTS)
    assert set(L.LAYOUTS) == {"foot_contacts", "body_contacts"}


@pytest.mark.parametrize("layout", [L.FOOT_LAYOUT, L.BODY_LAYOUT], ids=lambda l: l.name)
def test_slices_tile_the_frame(layout):
    covered = np.zeros(layout.num_channels, dtype=int)
    covered[L.ROOT] += 1
    for joint in range(NUM_JOINTS):
        covered[L.joint_rotation_slice(joint)] += 1
    covered[layout.contacts] += 1
    assert np.all(covered == 1)
    assert L.joint_rotation_slice(NUM_JOINTS - 1).stop == L.ROTATIONS.stop


@pytest.mark.parametrize("layout", [L.FOOT_LAYOUT, L.BODY_LAYOUT], ids=lambda l: l.name)
def test_pack_unpack_round_trip(layout):
    g = torch.Generator().manual_seed(0)
    root = torch.randn(2, 5, 3, generator=g)
    rot6d = torch.randn(2, 5, NUM_JOINTS, 6, generator=g)
    contacts = torch.rand(2, 5, len(layout.contact_joints), generator=g)
    packed = layout.pack(root, rot6d, contacts)
    assert packed.shape == (2, 5, layout.num_channels)
    r, s, c = layout.unpack(packed)
    assert torch.equal(r, root) and torch.equal(s, rot6d) and torch.equal(c, contacts)
    # Joint j's 6D sits where joint_rotation_slice says.
    assert torch.equal(packed[..., L.joint_rotation_slice(7)], rot6d[..., 7, :])


def test_quaternion_round_trip_and_contact_clipping():
    layout = L.FOOT_LAYOUT
    q = random_quaternions(10 * NUM_JOINTS, seed=1).reshape(10, NUM_JOINTS, 4)
    root = np.random.default_rng(1).normal(size=(10, 3))
    contacts = np.linspace(-0.5, 1.5, 40).reshape(10, 4)
    motion = layout.from_quaternions(q, root, contacts)
    assert motion.dtype == torch.float32 and motion.shape == (10, 151)
    q2, root2, c2 = layout.to_quaternions(motion)
    assert same_rotation_quat(q2, q).max() < 1e-5
    assert np.abs(root2 - root).max() < 1e-6
    assert np.allclose(c2, np.clip(contacts, 0, 1), atol=1e-6)
    # The stored 6D is the first two columns of the rotation matrix.
    m = np_.quaternion_to_matrix(q.astype(np.float32))
    assert np.allclose(motion[:, L.joint_rotation_slice(0)].numpy(),
                       np.concatenate([m[:, 0, :, 0], m[:, 0, :, 1]], -1), atol=1e-6)


def test_unpack_refuses_wrong_width():
    with pytest.raises(ValueError, match="151"):
        L.FOOT_LAYOUT.unpack(torch.zeros(3, 156))
