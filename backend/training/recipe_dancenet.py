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


# ---------------------------------------------------------------- model card


def card_about(config: dict) -> str:
    """The model card's "What it is" paragraph, with the sizes of the checkpoint's config."""
    cfg = DanceNetConfig.from_dict(config)
    styles = [s for s in cfg.styles if s != "unknown"]
    return (
        f"A DanceNet-style autoregressive model (Zhuang et al., ACM TOMM 2022; `backend/models/dancenet.py`): "
        f"a WaveNet stack of {len(cfg.dilations)} dilated causal convolutions (kernel {cfg.kernel_size}, "
        f"dilations {', '.join(map(str, cfg.dilations))}; receptive field {cfg.receptive_field} frames, "
        f"{cfg.receptive_field / cfg.fps:.1f} s) with gated tanh-sigmoid activations, residual width "
        f"{cfg.residual_channels} and skip width {cfg.skip_channels}, reading the previous frame of the "
        f"`{cfg.layout}` layout ({cfg.motion_channels} channels, plus the root's horizontal step; dropout "
        f"{cfg.motion_dropout} on the embedded frames in training, so that it listens to the music) plus "
        f"control signals of width {cfg.control_channels}: a style embedding over "
        f"{len(styles)} styles (plus \"unknown\" = any), a rhythm projection (onset envelope, onset peaks, "
        f"beats, and the beat phase from the beats so far) and a melody projection (chroma, MFCC). "
        f"It outputs a mixture of {cfg.mixtures} diagonal Gaussians over the next frame (foot contacts "
        f"included; means are offsets from the previous frame, except "
        f"{'the pelvis height and tilt' if cfg.outright == 'balance' else 'the pose'}, predicted outright), trained by mixture negative log-likelihood with teacher forcing on "
        f"{cfg.window_frames}-frame windows, input noise {cfg.input_noise} (normalised units) against "
        f"exposure bias, style dropout {cfg.style_drop_prob}, a joint-position term on the expected "
        f"frame (weight {cfg.kinematic_loss_weight}) and a foot-contact sliding term (weight "
        f"{cfg.contact_loss_weight}). It samples frame by frame from a standing pose, the convolutions "
        f"running incrementally on a cache of each layer's past inputs, and streams a chunk every "
        f"{_chunk_frames()} frames; `temperature` scales the mixture's spread, and each drawn frame is "
        f"corrected before the network reads it back (`drift_leak`: a small pull towards the average "
        f"pose and the middle of the floor; `ground_feet`: the pelvis moved so that predicted contacts "
        f"touch the floor). Edits: continuation "
        f"(the kept frames before the span prime the receptive field) and range (the same, then a "
        f"position-and-velocity blend into the kept frames after it)."
    )


def _chunk_frames() -> int:
    from backend.models.dancenet_generator import CHUNK_FRAMES
    return CHUNK_FRAMES


CARD_LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the range "
    "of real dancers; train on AIST++ or FineDance (`choreo train --model dancenet`) for that.",
    "Left alone it drifts: over 30 s the raw samples (`drift_leak` 0, `ground_feet` off) bow the spine "
    "forward, glide metres across the floor and float or sink the feet by centimetres. The defaults "
    "correct each drawn frame (a 5% leak towards the average pose and the middle of the floor, and the "
    "pelvis moved so that predicted contacts touch the floor); the price is poses smaller than the "
    "training dances' (joints spread about half as far from the pelvis).",
    "Longer training made it worse at keeping time: the same recipe at 3000 steps followed its own past "
    "more and the beat less (beat alignment barely above the half-beat-off baseline), so the bundled "
    "checkpoint stops at 1200 steps, chosen on songs other than the tests' example song.",
    "It reads the music up to the frame it makes, never ahead; where the next beat falls comes from the "
    "beats so far (the beat phase), so a change of tempo takes it a beat or two to follow.",
    "Style conditioning only knows the style labels of its training set; the procedural styles are "
    "synthesised, so \"latin\" means the procedural data's idea of latin.",
    "Editing is limited to continuation and range (whole frames): it cannot keep some joints while "
    "regenerating others, nor hit keyframes inside a span.",
    "Different songs give nearly the same dance: it follows the beat of each song, but its moves hardly "
    "depend on the rest of the music (style distance between songs no larger than between seeds).",
    "Its motion is jerkier than `edge`'s: the \"seam jump\" column is measured at chunk boundaries, which "
    "for this model are not seams (every frame is made the same way), so it shows the ordinary "
    "frame-to-frame changes of its speed: up to about 3x the median.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
)
