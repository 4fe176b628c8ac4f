"""What ``choreo train`` needs from a model: one small interface, whatever the family.

The training loop (``backend/training/train.py``) owns everything models share:
loading and caching the dataset, the normaliser, random windows, the optimiser, the
EMA copy, logging, checkpoints and multi-process training. A model brings a
*recipe*: which motion layout and window length its data needs, how to build the
network, and how to compute its losses on a batch. A model's recipe is the module
its registry entry names (``backend.models.registry``, ``ModelEntry.recipe``):
``backend/training/recipe_<name>.py``, with a ``make(config)`` function.

A recipe's ``config()`` is stored in the checkpoint as plain values and must be
enough, with the weights, for the model's generator to rebuild the network.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable, Protocol

from torch import Tensor, nn

from backend.models.registry import MODELS, trained_models
from backend.motion.layout import MotionLayout


@dataclass
class Batch:
    """One training batch of random windows, frame-aligned.

    motion: (B, W, C) normalised channels of the recipe's layout
    music: (B, W, 35) music features (docs/music_features.md)
    style: (B,) long, each clip's index into the style vocabulary given to ``build``
        (0 = ``conventions.UNKNOWN_STYLE``)
    denormalize: normalised channels -> metres and 6D rotations (for FK-based losses)
    """

    motion: Tensor
    music: Tensor
    style: Tensor
    denormalize: Callable[[Tensor], Tensor]


class Recipe(Protocol):
    name: str
    layout: MotionLayout
    window_frames: int  # frames per training sample

    def build(self, styles: tuple[str, ...]) -> nn.Module:
        """The network, for a dataset whose style vocabulary is ``styles`` (styles[0] is
        ``conventions.UNKNOWN_STYLE``); a model without style conditioning ignores it."""
        ...

    def config(self) -> dict[str, Any]:
        """Plain values for the checkpoint: enough to rebuild the network (after ``build``)."""
        ...

    def losses(self, net: nn.Module, batch: Batch, gen: Any) -> dict[str, Tensor]:
        """Every loss term and their weighted sum under "total". ``net`` may be wrapped
        in DistributedDataParallel: call it, do not reach into it; ``gen`` is the loop's
        ``torch.Generator`` (CPU) for any randomness (timesteps, noise)."""
        ...


class UnknownRecipeError(KeyError):
    code = "unknown_model"


def make_recipe(model: str, config: dict[str, Any]) -> Recipe:
    """The recipe of ``model`` with ``config`` overriding its defaults."""
    entry = MODELS.get(model)
    if entry is None or entry.recipe is None:
        raise UnknownRecipeError(f"no training recipe for model {model!r}; known: {', '.join(trained_models())}")
    return importlib.import_module(entry.recipe).make(dict(config))
