"""Training recipe of the EDGE-style diffusion model: noise a window, predict x0, EDGE's losses.

Classifier-free guidance is learned by dropping the music for ``cond_drop_prob`` of
the batch (Tseng et al., CVPR 2023).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backend.models.diffusion import GaussianDiffusion
from backend.models.edge import EdgeConfig, EdgeDenoiser
from backend.motion.layout import LAYOUTS
from backend.training.losses import LossWeights, edge_losses
from backend.training.recipes import Batch


class EdgeRecipe:
    name = "edge"

    def __init__(self, cfg: EdgeConfig, weights: LossWeights) -> None:
        self.cfg = cfg
        self.layout = LAYOUTS[cfg.layout]
        self.cfg.motion_channels = self.layout.num_channels
        self.window_frames = cfg.window_frames
        self.weights = weights
        self.diffusion = GaussianDiffusion(cfg.diffusion_steps)

    def build(self, styles: tuple[str, ...]) -> nn.Module:
        return EdgeDenoiser(self.cfg)

    def config(self) -> dict[str, Any]:
        return self.cfg.to_dict()

    def losses(self, net: nn.Module, batch: Batch, gen: torch.Generator) -> dict[str, Tensor]:
        x0 = batch.motion
        t, x_t = self.diffusion.training_sample(x0, gen)
        drop = (torch.rand(x0.shape[0], generator=gen) < self.cfg.cond_drop_prob).to(x0.device)
        return edge_losses(net(x_t, t, batch.music, drop), x0, self.layout, batch.denormalize, self.weights)


def card_about(cfg: dict[str, Any]) -> str:
    """The model card's "What it is" (benchmarks/dance_check.py)."""
    return (f"An EDGE-style diffusion transformer (`backend/models/edge.py`): width {cfg['d_model']}, "
            f"{cfg['num_layers']} decoder layers, {cfg['num_heads']} heads, {cfg['music_layers']} music-encoder "
            f"layers, {cfg['window_frames']}-frame windows at {cfg['fps']} fps, motion layout `{cfg['layout']}` "
            f"({cfg['motion_channels']} channels), cosine schedule with {cfg['diffusion_steps']} steps, "
            "sampled with DDIM. Long songs are generated window by window, each held to the last "
            "(`backend/models/edge_generator.py`). It is small on purpose: it must run on two CPU cores "
            "faster than real time (see docs/benchmarks.md).")


CARD_LIMITS: tuple[str, ...] = (
    "It dances the vocabulary of the procedural data (grooves, steps, arm moves, turns), not the "
    "range of real dancers; train on AIST++ or FineDance (`choreo train`) for that.",
    "Hands and fingers are not animated (the SMPL hand joints follow the wrists).",
    "It has seen only the music of its training set: synthesised styles and four rock songs.",
    "Seams fall on the stillest frame of each window's last second and are joined in position "
    "and speed; in the frames after a seam the network's own motion can still speed up as fast "
    "as the dance does elsewhere, which reads as a quick move rather than a pop.",
    "Its style is staccato: like its training data, it nearly stops on every beat.",
)


def make(config: dict[str, Any]) -> EdgeRecipe:
    weights = LossWeights(**config.pop("loss_weights", {}))
    return EdgeRecipe(EdgeConfig.from_dict({**EdgeConfig().to_dict(), **config}), weights)
