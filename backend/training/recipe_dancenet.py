"""Training recipe of DanceNet: teacher forcing, mixture likelihood, a foot-contact term.

Every window is one teacher-forced pass: the network reads frames 0..W-2 and is
scored on how likely it finds frames 1..W-1 under its Gaussian mixture (the loss
DanceNet trains with instead of MSE; Zhuang et al., ACM TOMM 2022). Two things
prepare it for sampling, where it reads its own output:

* Gaussian noise (``input_noise``, normalised units) is added to the frames it
  reads, never to the frames it is scored on, so it learns to continue from a
  slightly wrong past instead of compounding the error (exposure bias);
* the style is dropped to "unknown" for ``style_drop_prob`` of the windows, so the
  same weights also dance "any style".

Two terms on the mixture's expected next frame, after forward kinematics, both in
centimetres squared so that their size is comparable with the likelihood's:

* kinematic (``kinematic_loss_weight``): its joint positions against the true next
  frame's, as EDGE's FK loss; the likelihood treats channels as independent, this
  term ties the pelvis height to the leg rotations that put the feet on the floor;
* contact consistency (``contact_loss_weight``, 0 turns it off): EDGE's foot-contact
  loss (``backend/training/losses.py``) adapted to a next-frame model: where the
  expected frame says a foot is in contact, that foot should not have moved since
  the (clean) previous frame.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backend.models.dancenet import DanceNet, DanceNetConfig, Mixture
from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import LAYOUTS, MotionLayout
from backend.motion.rotations import rot6d_to_matrix
from backend.training.recipes import Batch

CONTACT_THRESHOLD = 0.5
"""A predicted contact channel above this (in [0, 1]) counts as a foot on the floor."""


class DanceNetRecipe:
    name = "dancenet"

    def __init__(self, cfg: DanceNetConfig) -> None:
        self.cfg = cfg
        self.layout: MotionLayout = LAYOUTS[cfg.layout]
        self.cfg.motion_channels = self.layout.num_channels
        self.window_frames = cfg.window_frames

    def build(self, styles: tuple[str, ...]) -> nn.Module:
        self.cfg.styles = list(styles)
        return DanceNet(self.cfg)

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def losses(self, net: nn.Module, batch: Batch, gen: torch.Generator) -> dict[str, Tensor]:
        motion, device = batch.motion, batch.motion.device
        previous, target = motion[:, :-1], motion[:, 1:]
        noise = self.cfg.input_noise * torch.randn(previous.shape, generator=gen).to(device)
        keep_style = (torch.rand(batch.style.shape, generator=gen) >= self.cfg.style_drop_prob).to(device)
        style = torch.where(keep_style, batch.style, torch.zeros_like(batch.style))
        mixture: Mixture = net(previous + noise, batch.music[:, 1:], style)

        losses = {"nll": mixture.nll(target).mean() / target.shape[-1]}  # per channel
        expected = batch.denormalize(mixture.expected())
        predicted = _joint_positions(expected, self.layout)
        with torch.no_grad():
            true = _joint_positions(batch.denormalize(motion), self.layout)
        losses["kinematic"] = torch.mean((100.0 * (predicted - true[:, 1:])) ** 2)
        losses["contact"] = contact_consistency(predicted, expected[..., self.layout.contacts], true[:, :-1],
                                                self.layout)
        losses["total"] = (losses["nll"] + self.cfg.kinematic_loss_weight * losses["kinematic"]
                           + self.cfg.contact_loss_weight * losses["contact"])
        return losses


def contact_consistency(predicted: Tensor, contacts: Tensor, previous: Tensor, layout: MotionLayout) -> Tensor:
    """Mean squared slide (cm per frame) of the contact joints the prediction puts on the floor.

    predicted: (B, T, 24, 3) joint positions of the expected next frames, metres;
    contacts: (B, T, C) their contact channels (in [0, 1] where confident); previous:
    (B, T, 24, 3) the true positions one frame earlier. The contact mask is the
    prediction's own, taken as fixed (as EDGE does).
    """
    joints = list(layout.contact_joints)
    slide = 100.0 * (predicted[..., joints, :] - previous[..., joints, :])
    on_floor = (contacts > CONTACT_THRESHOLD).detach()
    return torch.mean((slide * on_floor.unsqueeze(-1)) ** 2)


def _joint_positions(motion: Tensor, layout: MotionLayout) -> Tensor:
    root, rot6d, _ = layout.unpack(motion)
    positions, _ = forward_kinematics(rot6d_to_matrix(rot6d), root)
    return positions


def make(config: dict[str, Any]) -> DanceNetRecipe:
    config.pop("loss_weights", None)  # DanceNet's weights are config values
    return DanceNetRecipe(DanceNetConfig.from_dict({**DanceNetConfig().to_dict(), **config}))
