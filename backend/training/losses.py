"""EDGE's training losses on a predicted clean motion.

Four terms (Tseng et al., CVPR 2023, sec. 3.2 and their released weights):

* reconstruction: MSE between predicted and true x0 in normalised space;
* velocity: MSE between their frame-to-frame differences;
* forward kinematics: MSE between joint positions (metres) after FK;
* foot contact: the predicted feet should not move in frames where the model
  itself predicts contact; this is what keeps feet planted instead of skating.

Default weights 0.636, 2.964, 0.646, 10.942 are the ones the EDGE authors used.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import MotionLayout
from backend.motion.rotations import rot6d_to_matrix


@dataclass
class LossWeights:
    reconstruction: float = 0.636
    velocity: float = 2.964
    kinematics: float = 0.646
    foot_contact: float = 10.942


def edge_losses(
    pred: Tensor, target: Tensor, layout: MotionLayout, denormalize, weights: LossWeights,
) -> dict[str, Tensor]:
    """All loss terms and their weighted sum ("total") for (B, T, C) normalised motions.

    ``denormalize`` maps normalised channels back to metres and 6D rotations, where
    FK and contact velocities make physical sense.
    """
    losses: dict[str, Tensor] = {}
    losses["reconstruction"] = torch.mean((pred - target) ** 2)
    losses["velocity"] = torch.mean(((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2)

    pred_phys, target_phys = denormalize(pred), denormalize(target)
    pred_pos = _joint_positions(pred_phys, layout)
    with torch.no_grad():
        target_pos = _joint_positions(target_phys, layout)
    losses["kinematics"] = torch.mean((pred_pos - target_pos) ** 2)

    contact_joints = list(layout.contact_joints)
    foot_velocity = pred_pos[:, 1:, contact_joints] - pred_pos[:, :-1, contact_joints]
    predicted_contact = pred_phys[:, :-1, layout.contacts] > 0.95
    losses["foot_contact"] = torch.mean((foot_velocity * predicted_contact.unsqueeze(-1)) ** 2)

    losses["total"] = (
        weights.reconstruction * losses["reconstruction"]
        + weights.velocity * losses["velocity"]
        + weights.kinematics * losses["kinematics"]
        + weights.foot_contact * losses["foot_contact"]
    )
    return losses


def _joint_positions(motion: Tensor, layout: MotionLayout) -> Tensor:
    root, rot6d, _ = layout.unpack(motion)
    positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
    return positions
