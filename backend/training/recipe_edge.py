"""Training recipe of the EDGE-style diffusion model: noise a window, predict x0, EDGE's losses.

Classifier-free guidance is learned by dropping the music for ``cond_drop_prob`` of
the batch (Tseng et al., CVPR 2023; ``diffusion.GaussianDiffusion.training_step``).
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
        _, _, x0_pred = self.diffusion.training_step(net, batch.motion, batch.music, self.cfg.cond_drop_prob, gen)
        return edge_losses(x0_pred, batch.motion, self.layout, batch.denormalize, self.weights)


def make(config: dict[str, Any]) -> EdgeRecipe:
    weights = LossWeights(**config.pop("loss_weights", {}))
    return EdgeRecipe(EdgeConfig.from_dict({**EdgeConfig().to_dict(), **config}), weights)
