"""Contact with the floor: per-frame contact labels, and where a clip's floor is.

Contact labels follow the music-to-dance literature (EDGE, POPDG): a contact joint
is "in contact" in a frame when it moves less than 1 cm to the next frame at
30 fps. That is a speed of 0.3 m/s, and the speed is what we keep fixed at other
frame rates, so the per-frame distance threshold scales as ``0.01 * 30 / fps``.
The last frame has no next frame; it copies the label of the frame before it
(a foot planted at the end of a clip stays planted). A one-frame clip has no
motion at all and is labelled in contact.

Importers also need to put a clip on the floor, since capture systems and SMPL
fits place the floor wherever they like. The rule (``floor_offset``) looks at the
lowest joint of every frame and takes a low percentile over the clip, robust to
single-frame glitches, then sets it ``SOLE_BELOW_FOOT_JOINT`` above z = 0. A body
standing in the rest pose has its toe bases lowest, so it ends up with its pelvis
at exactly ``PELVIS_REST_HEIGHT`` and its soles on the floor. All joints count,
not only the feet, so floor work (kneeling, lying, hand stands) is never pushed
through the floor.

``grounded_clip`` is the last step every importer shares: floor, then contacts.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from backend.motion import rotations as rot
from backend.motion.clip import MotionClip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.skeleton import BODY_CONTACT_JOINTS, JOINT_NAMES, SOLE_BELOW_FOOT_JOINT

CONTACT_SPEED_M_PER_S: float = 0.3
"""1 cm per frame at 30 fps (EDGE, POPDG), as a speed so that it holds at any fps."""

FLOOR_PERCENTILE: float = 2.0
"""Percentile (over frames) of the per-frame lowest joint height taken as the floor."""


def contact_labels_torch(
    positions: Tensor, joints: tuple[int, ...], fps: float = 30.0,
    threshold_m_per_frame_at_30fps: float = 0.01,
) -> Tensor:
    """Contact labels for joint positions in torch, for losses and batches.

    positions: (..., T, J, 3) world positions, metres
    joints: the contact joints, indices into J
    returns: (..., T, C) labels, 1.0 in contact and 0.0 not, in the positions' dtype
    """
    if positions.ndim < 3 or positions.shape[-1] != 3:
        raise ValueError(f"positions must be (..., T, J, 3), got {tuple(positions.shape)}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    threshold = threshold_m_per_frame_at_30fps * 30.0 / fps
    feet = positions[..., list(joints), :]
    if feet.shape[-3] < 2:
        return torch.ones(feet.shape[:-1], dtype=positions.dtype, device=positions.device)
    step = torch.linalg.norm(feet[..., 1:, :, :] - feet[..., :-1, :, :], dim=-1)  # (..., T-1, C)
    labels = (step < threshold).to(positions.dtype)
    return torch.cat([labels, labels[..., -1:, :]], dim=-2)


def contact_labels(
    positions: np.ndarray, joints: tuple[int, ...], fps: float = 30.0,
    threshold_m_per_frame_at_30fps: float = 0.01,
) -> np.ndarray:
    """Numpy front for :func:`contact_labels_torch`: (T, J, 3) metres -> (T, C) float32."""
    positions = np.asarray(positions)
    if positions.ndim != 3:
        raise ValueError(f"positions must be (T, J, 3), got {positions.shape}")
    labels = contact_labels_torch(
        torch.from_numpy(np.ascontiguousarray(positions, dtype=np.float64)), joints, fps,
        threshold_m_per_frame_at_30fps)
    return labels.numpy().astype(np.float32)


def floor_offset(positions: np.ndarray, percentile: float = FLOOR_PERCENTILE) -> float:
    """How far to move a clip down (metres) so that its lowest joints rest on the floor.

    positions: (T, J, 3) world joint positions, Z-up. Subtract the result from the
    root height.
    """
    lowest = np.asarray(positions)[..., 2].min(axis=-1)  # (T,)
    return float(np.percentile(lowest, percentile) - SOLE_BELOW_FOOT_JOINT)


def grounded_clip(
    quaternions: np.ndarray, root_position: np.ndarray, fps: float,
    contact_joints: tuple[int, ...] = BODY_CONTACT_JOINTS, place_on_floor: bool = True,
) -> MotionClip:
    """A MotionClip from SMPL local rotations and root, put on the floor, with contacts.

    quaternions: (T, 24, 4) w-first local rotations; root_position: (T, 3) pelvis, Z-up.
    """
    quaternions = np.asarray(quaternions, dtype=np.float64)
    root = np.array(root_position, dtype=np.float64)
    positions, _ = forward_kinematics_np(rot.np_.quaternion_to_matrix(quaternions), root)
    if place_on_floor:
        shift = floor_offset(positions)
        root[:, 2] -= shift
        positions[..., 2] -= shift
    return MotionClip(
        rotations=quaternions, root_translation=root, fps=float(fps),
        contacts=contact_labels(positions, contact_joints, fps),
        contact_names=tuple(JOINT_NAMES[j] for j in contact_joints),
    )
