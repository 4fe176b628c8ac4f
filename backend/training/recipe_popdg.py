"""Training recipe of POPDG: noise a window, predict x0 and the variance, hybrid loss.

L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, lambda = 0.001): L_simple is
EDGE's x0 losses with POPDG's body-contact term (``losses.popdg_losses``), L_vlb the
variational bound's term at the sampled t, which (stop-gradient on the mean) trains
only the predicted variance. Classifier-free guidance is learned by dropping the music
for ``cond_drop_prob`` of the batch, as EDGE does.

``card_about`` and ``CARD_LIMITS`` feed the model card (``benchmarks/dance_check.py``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backend.models.diffusion import LearnedVarianceDiffusion
from backend.models.popdg import SPACE_AUGMENTED_JOINTS, PopdgConfig, PopdgDenoiser
from backend.motion.layout import LAYOUTS
from backend.motion.skeleton import JOINT_NAMES
from backend.training.losses import BodyContactWeights, popdg_losses
from backend.training.recipes import Batch


class PopdgRecipe:
    name = "popdg"

    def __init__(self, cfg: PopdgConfig, weights: BodyContactWeights) -> None:
        self.cfg = cfg
        self.layout = LAYOUTS[cfg.layout]
        self.cfg.motion_channels = self.layout.num_channels
        self.window_frames = cfg.window_frames
        self.weights = weights
        self.diffusion = LearnedVarianceDiffusion(cfg.diffusion_steps)

    def build(self, styles: tuple[str, ...]) -> nn.Module:
        return PopdgDenoiser(self.cfg)  # POPDG is not style-conditioned

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def losses(self, net: nn.Module, batch: Batch, gen: torch.Generator) -> dict[str, Tensor]:
        x0 = batch.motion
        t, x_t = self.diffusion.training_sample(x0, gen)
        drop = (torch.rand(x0.shape[0], generator=gen) < self.cfg.cond_drop_prob).to(x0.device)
        x0_pred, v = net(x_t, t, batch.music, drop)
        losses = popdg_losses(x0_pred, x0, self.layout, batch.denormalize, self.weights)
        losses["vlb"] = self.diffusion.vlb_terms(x0, x_t, t, x0_pred, v).mean()
        losses["total"] = losses["total"] + self.diffusion.hybrid_vlb_weight(self.cfg.vlb_lambda) * losses["vlb"]
        return losses


def make(config: dict[str, Any]) -> PopdgRecipe:
    weights = BodyContactWeights(**config.pop("loss_weights", {}))
    return PopdgRecipe(PopdgConfig.from_dict({**PopdgConfig().to_dict(), **config}), weights)


def card_about(config: dict[str, Any]) -> str:
    """The model card's "What it is" paragraph, sizes from the checkpoint's config."""
    cfg = PopdgConfig.from_dict(config)
    layout = LAYOUTS[cfg.layout]
    trunk = ", ".join(JOINT_NAMES[j] for j in SPACE_AUGMENTED_JOINTS)

    def count(n: int, noun: str) -> str:
        return f"{n} {noun}{'' if n == 1 else 's'}"

    return (
        f"A POPDG-style diffusion transformer (Luo et al., CVPR 2024; `backend/models/popdg.py`): "
        f"width {cfg.d_model}, {count(cfg.num_layers, 'decoder block')}, {count(cfg.num_heads, 'head')}, "
        f"{count(cfg.music_layers, 'music-encoder block')} with temporal and feature attention. Every decoder "
        f"block has DS-Attention across the 24 joints of each frame ({cfg.joint_dim}-wide joint tokens, "
        f"{count(cfg.joint_heads, 'head')}; Space Augmentation {'on' if cfg.space_augmentation else 'off'}: the "
        f"root's attention passes from parent to child along the trunk: {trunk}), then temporal "
        f"attention, cross-attention to the music and a feed-forward layer, each FiLM-modulated by an "
        f"Alignment Module (1D convolution, kernel {cfg.align_kernel}, plus the diffusion time). Improved "
        f"DDPM: it predicts x0 and a learned variance, trained with L_simple + {cfg.vlb_lambda} L_vlb on a "
        f"cosine schedule of {cfg.diffusion_steps} steps; sampled with DDIM (the variance trains with the "
        f"bound, DDIM does not use it). Motion layout `{cfg.layout}` ({layout.num_channels} channels: "
        f"{len(layout.contact_joints)} body contacts). It streams {cfg.window_frames}-frame windows at "
        f"{cfg.fps} fps, each held to the last by inpainting, and edits (continuation, range, joints, "
        f"keyframes) by inpainting at every DDIM step, with EDGE's generator (`backend/models/popdg_generator.py`)."
    )


CARD_LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the range "
    "of real dancers, let alone PopDanceSet's pop dances; train on AIST++ or FineDance (`choreo train`) for that.",
    "It is far smaller and far more briefly trained than the paper's model (10,000 steps of batch 16, "
    "about 42 minutes on a 2-core CPU), so that it runs faster than real time on two CPU cores.",
    "Its timing is loosest on slow music: on the 95 BPM ballad it meets fewer beats than on the "
    "faster songs (see the table above).",
    "The learned variance shapes training only: DDIM sampling, which streaming and editing use, "
    "does not read it.",
    "The head, wrist and hand contact labels come from joint speed (still = in contact), as in the "
    "POPDG code, not from real contact with the floor or the body.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
)
