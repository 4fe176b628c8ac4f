"""POPDG behind the ``Generator`` interface: EDGE's streaming and editing, POPDG's network.

Nothing about streaming or editing is POPDG-specific: ``EdgeGenerator`` samples a
song window by window with DDIM, holds each window to the frames already made by
inpainting, and edits by inpainting the kept joints, root and frames at every step.
All it needs from a network is ``guided_denoiser(features, guidance)`` returning an
x0-predicting closure, which ``PopdgDenoiser`` offers (its variance head is for
training; DDIM does not read it). So this class only says how to load the network,
and inherits the options (steps, guidance, eta, overlap, context, resample) and all
four editing abilities.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from backend.models.checkpoint import load_for_sampling
from backend.models.edge_generator import EdgeGenerator
from backend.models.popdg import PopdgConfig, PopdgDenoiser
from backend.motion.normalizer import Normalizer


class PopdgGenerator(EdgeGenerator):
    """A loaded POPDG model; contacts are its 9 body contacts (``LAYOUTS["body_contacts"]``)."""

    def __init__(self, model: PopdgDenoiser, normalizer: Normalizer, name: str = "popdg",
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        super().__init__(model, normalizer, name=name, device=device, info=info)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu",
                        name: str = "popdg") -> "PopdgGenerator":
        model, normalizer, info = load_for_sampling(path, PopdgConfig, PopdgDenoiser)
        return cls(model, normalizer, name=name, device=device, info=info)
