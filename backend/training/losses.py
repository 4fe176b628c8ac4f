"""EDGE's training losses on a predicted clean motion.

Four terms (Tseng et al., CVPR 2023, sec. 3.2 and their released weights):

* reconstruction: MSE between predicted and true x0 in normalised space;
* velocity: MSE between their frame-to-frame differences;
* forward kinematics: MSE between joint positions (metres) after FK;
* foot contact: the predicted feet should not move in frames where the model
  itself predicts contact; this is what keeps feet planted instead of skating.

Default weights 0.636, 2.964, 0.646, 10.942 are the ones the EDGE authors used.

POPDG (Luo et al., CVPR 2024) widens the contact term to the whole body: its 9
contact joints (ankles, feet, head, wrists, hands) should not move in frames where
the model predicts them in contact (``body_contact_loss``, ``popdg_losses``).
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


@dataclass
class BodyContactWeights:
    """POPDG's terms: EDGE's first three, and the body-contact term in place of the feet's.

    The defaults are EDGE's weights (the contact weight carried over to the body term),
    with which the bundled ``edge`` model trained well on our data; the POPDG code's own (0.636, 0.2964, 0.646,
    1000.942) go with its L1 loss and AIST++/PopDanceSet.
    """

    reconstruction: float = 0.636
    velocity: float = 2.964
    kinematics: float = 0.646
    body_contact: float = 10.942


def body_contact_loss(positions: Tensor, contacts: Tensor, joints: tuple[int, ...],
                      threshold: float = 0.95) -> Tensor:
    """Mean squared frame-to-frame motion of contact joints the model says are in contact.

    positions: (B, T, 24, 3) metres; contacts: (B, T, C) predicted labels (physical, 0..1)
    for ``joints`` (C of them). A label above ``threshold`` at frame t pins that joint
    between t and t+1; the label is the model's own, so it learns to say "contact" only
    where it can keep the joint still.
    """
    velocity = positions[:, 1:, list(joints)] - positions[:, :-1, list(joints)]
    in_contact = contacts[:, :-1] > threshold
    return torch.mean((velocity * in_contact.unsqueeze(-1)) ** 2)


def popdg_losses(
    pred: Tensor, target: Tensor, layout: MotionLayout, denormalize, weights: BodyContactWeights,
) -> dict[str, Tensor]:
    """POPDG's simple-loss terms and their weighted sum ("total") for (B, T, C) normalised
    motions of a layout with body contacts (``LAYOUTS["body_contacts"]``)."""
    losses: dict[str, Tensor] = {}
    losses["reconstruction"] = torch.mean((pred - target) ** 2)
    losses["velocity"] = torch.mean(((pred[:, 1:] - pred[:, :-1]) - (target[:, 1:] - target[:, :-1])) ** 2)
    pred_phys = denormalize(pred)
    pred_pos = _joint_positions(pred_phys, layout)
    with torch.no_grad():
        target_pos = _joint_positions(denormalize(target), layout)
    losses["kinematics"] = torch.mean((pred_pos - target_pos) ** 2)
    losses["body_contact"] = body_contact_loss(pred_pos, pred_phys[..., layout.contacts], layout.contact_joints)
    losses["total"] = (
        weights.reconstruction * losses["reconstruction"]
        + weights.velocity * losses["velocity"]
        + weights.kinematics * losses["kinematics"]
        + weights.body_contact * losses["body_contact"]
    )
    return losses


def _joint_positions(motion: Tensor, layout: MotionLayout) -> Tensor:
    root, rot6d, _ = layout.unpack(motion)
    positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
    return positions
