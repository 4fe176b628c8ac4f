"""The motion feature layout the diffusion models read and write: which channel is what.

This module is the only place that knows the channel order. A frame is a flat
vector::

    [ root position (3) | 24 local joint rotations, 6D each (144) | contacts (C) ]

* root position: the pelvis's world position, metres, Z-up (see
  ``backend.conventions``); a rest pose stands on the floor at z = 0;
* rotations: joint ``j`` occupies ``ROTATIONS.start + 6*j`` .. ``+6``, in the 6D form
  of ``backend.motion.rotations`` (first two matrix columns), relative to the parent;
* contacts: one label in [0, 1] per contact joint, for the layout's joint set:
  ``FOOT_LAYOUT`` (EDGE, 4 joints, 151 channels) or ``BODY_LAYOUT`` (POPDG, 9 joints,
  156 channels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from backend.motion import rotations as rot
from backend.motion.skeleton import (
    BODY_CONTACT_JOINTS, FOOT_CONTACT_JOINTS, JOINT_NAMES, NUM_JOINTS,
)

ROOT = slice(0, 3)
ROTATIONS = slice(3, 3 + 6 * NUM_JOINTS)


def joint_rotation_slice(joint: int) -> slice:
    """Channels of one joint's 6D rotation."""
    start = ROTATIONS.start + 6 * joint
    return slice(start, start + 6)


@dataclass(frozen=True)
class MotionLayout:
    """A channel layout, identified by its contact joint set."""

    name: str
    contact_joints: tuple[int, ...]

    @property
    def contacts(self) -> slice:
        return slice(ROTATIONS.stop, ROTATIONS.stop + len(self.contact_joints))

    @property
    def num_channels(self) -> int:
        return self.contacts.stop

    @property
    def contact_names(self) -> tuple[str, ...]:
        return tuple(JOINT_NAMES[j] for j in self.contact_joints)

    def pack(self, root_position: Tensor, rot6d: Tensor, contacts: Tensor) -> Tensor:
        """(..., 3), (..., 24, 6), (..., C) -> (..., channels)."""
        return torch.cat([root_position, rot6d.flatten(-2), contacts], dim=-1)

    def unpack(self, motion: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """(..., channels) -> root position (..., 3), rot6d (..., 24, 6), contacts (..., C)."""
        if motion.shape[-1] != self.num_channels:
            raise ValueError(f"{self.name} layout has {self.num_channels} channels, got {motion.shape[-1]}")
        rot6d = motion[..., ROTATIONS].unflatten(-1, (NUM_JOINTS, 6))
        return motion[..., ROOT], rot6d, motion[..., self.contacts]

    def channel_mask(self, joints: np.ndarray | Tensor, root: np.ndarray | Tensor,
                     contacts: np.ndarray | Tensor) -> Tensor:
        """(T, channels) bool from per-frame flags: joints (T, 24), root (T,), contacts (T,).

        How an edit's keep-mask (joints and root) becomes a mask over this layout's channels.
        """
        joints = torch.as_tensor(np.asarray(joints), dtype=torch.bool)
        frames = joints.shape[0]
        root = torch.as_tensor(np.asarray(root), dtype=torch.bool)[:, None]
        contacts = torch.as_tensor(np.asarray(contacts), dtype=torch.bool)[:, None]
        return torch.cat([root.expand(frames, ROOT.stop - ROOT.start), joints.repeat_interleave(6, dim=1),
                          contacts.expand(frames, len(self.contact_joints))], dim=1)

    def from_quaternions(
        self, quaternions: np.ndarray | Tensor, root_position: np.ndarray | Tensor,
        contacts: np.ndarray | Tensor,
    ) -> Tensor:
        """Pack (T, 24, 4) w-first quaternions, (T, 3) root and (T, C) contacts as float32."""
        q = torch.as_tensor(np.asarray(quaternions), dtype=torch.float32)
        return self.pack(
            torch.as_tensor(np.asarray(root_position), dtype=torch.float32),
            rot.quaternion_to_rot6d(q),
            torch.as_tensor(np.asarray(contacts), dtype=torch.float32),
        )

    def to_quaternions(self, motion: Tensor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unpack to the wire/npz form: quaternions (T,24,4), root (T,3), contacts clipped to [0,1]."""
        root, rot6d, contacts = self.unpack(motion.detach().float().cpu())
        quats = rot.rot6d_to_quaternion(rot6d)
        return (quats.numpy().astype(np.float32), root.numpy().astype(np.float32),
                contacts.clamp(0.0, 1.0).numpy().astype(np.float32))


FOOT_LAYOUT = MotionLayout("foot_contacts", FOOT_CONTACT_JOINTS)
BODY_LAYOUT = MotionLayout("body_contacts", BODY_CONTACT_JOINTS)
LAYOUTS: dict[str, MotionLayout] = {l.name: l for l in (FOOT_LAYOUT, BODY_LAYOUT)}
