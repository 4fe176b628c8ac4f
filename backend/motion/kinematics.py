"""Batched forward kinematics of the SMPL skeleton, in torch and numpy.

One implementation (torch); ``forward_kinematics_np`` is its numpy front. Root
position is the pelvis's world position (metres, Z-up), so no model-specific
offset is ever added: a rest pose at root (0, 0, PELVIS_REST_HEIGHT) stands on the
floor.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from backend.motion.skeleton import OFFSETS, PARENTS


def forward_kinematics(
    local_rotations: Tensor, root_position: Tensor, offsets: Tensor | np.ndarray | None = None
) -> tuple[Tensor, Tensor]:
    """Global joint positions and rotations.

    local_rotations: (..., J, 3, 3) rotation of each joint relative to its parent
    root_position: (..., 3) pelvis world position
    offsets: (J, 3) rest offsets to the parent; SMPL's by default
    returns: positions (..., J, 3), global rotations (..., J, 3, 3)
    """
    if offsets is None:
        offsets = OFFSETS
    offsets_t = torch.as_tensor(offsets, dtype=local_rotations.dtype, device=local_rotations.device)
    num_joints = local_rotations.shape[-3]
    parents = PARENTS if num_joints == len(PARENTS) else None
    if parents is None:
        raise ValueError(f"expected {len(PARENTS)} joints, got {num_joints}")
    global_rot: list[Tensor] = []
    positions: list[Tensor] = []
    for joint, parent in enumerate(parents):
        if parent < 0:
            global_rot.append(local_rotations[..., joint, :, :])
            positions.append(root_position)
        else:
            parent_rot = global_rot[parent]
            global_rot.append(parent_rot @ local_rotations[..., joint, :, :])
            positions.append(positions[parent] + (parent_rot @ offsets_t[joint].unsqueeze(-1)).squeeze(-1))
    return torch.stack(positions, dim=-2), torch.stack(global_rot, dim=-3)


def forward_kinematics_np(
    local_rotations: np.ndarray, root_position: np.ndarray, offsets: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Numpy front for :func:`forward_kinematics` (same shapes, same dtype out)."""
    positions, rotations = forward_kinematics(
        torch.from_numpy(np.ascontiguousarray(local_rotations)),
        torch.from_numpy(np.ascontiguousarray(root_position)),
        offsets,
    )
    return positions.numpy(), rotations.numpy()
