"""Training recipe of POPDG: noise a window, predict x0 and the variance, hybrid loss.

L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal 2021, lambda = 0.001): L_simple is
EDGE's x0 losses with POPDG's body-contact term (``losses.popdg_losses``), L_vlb the
variational bound's term at the sampled t, which (stop-gradient on the mean) trains
only the predicted variance. Classifier-free guidance is learned by dropping the music
for ``cond_drop_prob`` of the batch, as EDGE does (``diffusion.GaussianDiffusion.training_step``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from backend.models.diffusion import LearnedVarianceDiffusion
from backend.models.popdg import PopdgConfig, PopdgDenoiser
from backend.motion.layout import LAYOUTS
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
        t, x_t, (x0_pred, v) = self.diffusion.training_step(net, x0, batch.music, self.cfg.cond_drop_prob, gen)
        losses = popdg_losses(x0_pred, x0, self.layout, batch.denormalize, self.weights)
        losses["vlb"] = self.diffusion.vlb_terms(x0, x_t, t, x0_pred, v).mean()
        losses["total"] = losses["total"] + self.diffusion.hybrid_vlb_weight(self.cfg.vlb_lambda) * losses["vlb"]
        return losses


def make(config: dict[str, Any]) -> PopdgRecipe:
    weights = BodyContactWeights(**config.pop("loss_weights", {}))
    return PopdgRecipe(PopdgConfig.from_dict({**PopdgConfig().to_dict(), **config}), weights)
