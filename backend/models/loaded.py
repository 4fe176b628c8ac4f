"""What every bundled generator shares once its network is loaded.

The four generators differ in how they make motion, not in how they hold a network:
each keeps the network in eval mode on its device, its config and motion layout, the
normaliser it was trained with, and answers the same questions (which options were
asked for, which contacts a motion sent without them has). That part lives here, once.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from backend.models.base import OptionSpec
from backend.motion.contacts import contact_labels_torch
from backend.motion.kinematics import forward_kinematics
from backend.motion.layout import LAYOUTS, MotionLayout
from backend.motion.normalizer import Normalizer
from backend.motion.rotations import quaternion_to_matrix


class LoadedGenerator:
    """A network with a ``cfg`` (holding ``layout`` and ``fps``), ready to sample.

    Subclasses set ``family`` and ``options`` and implement ``describe``, ``generate``
    and ``edit`` (``backend.models.base.Generator``).
    """

    family: str
    options: tuple[OptionSpec, ...]

    def __init__(self, model: nn.Module, normalizer: Normalizer, name: str,
                 device: str | torch.device = "cpu", info: dict[str, Any] | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.layout: MotionLayout = LAYOUTS[model.cfg.layout]
        self.normalizer = normalizer
        self.name = name
        self.fps: int = model.cfg.fps
        self.contact_names = self.layout.contact_names
        self.info = info or {}

    def _options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Every option's value: the one asked for, else the default."""
        return {o.name: given.get(o.name, o.default) for o in self.options}

    def _contact_labels(self, rotations: np.ndarray, root: np.ndarray) -> np.ndarray:
        """Contact labels of a motion sent without them, by the same rule as the training data."""
        positions, _ = forward_kinematics(
            quaternion_to_matrix(torch.as_tensor(np.asarray(rotations), dtype=torch.float32)),
            torch.as_tensor(np.asarray(root), dtype=torch.float32))
        return contact_labels_torch(positions, self.layout.contact_joints, self.fps).numpy()
