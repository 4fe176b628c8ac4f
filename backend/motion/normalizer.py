"""Per-channel standardisation of motion features, stored inside model checkpoints.

Diffusion models want inputs of roughly unit scale and zero mean. Root positions
(metres, tens of centimetres of spread) and 6D rotations (bounded in [-1, 1] but
with very different spreads per joint) are standardised with the training data's
per-channel mean and standard deviation.

Two choices, and why:

* **Contact channels are not fitted.** They are 0/1 labels; they get the fixed map
  ``(c - 0.5) / 0.5``, i.e. {0, 1} -> {-1, 1}. Fitting them would give a rarely
  touching joint (a hand) a tiny std and blow its labels up to large values, and the
  scale would change from one dataset to the next for no physical reason.
* **Near-constant channels keep a floor on their std** (``min_std``). A joint that
  never moves in the data (hands of a skeleton without fingers) would otherwise be
  divided by ~0, and any model error on it would be hugely amplified or become NaN.

The state is two plain float32 tensors, so a checkpoint holding it loads with
``torch.load(weights_only=True)``.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import torch
from torch import Tensor

from backend.motion.layout import MotionLayout
from backend.errors import InputError

CONTACT_MEAN: float = 0.5
CONTACT_STD: float = 0.5
DEFAULT_MIN_STD: float = 1e-2


class NormalizerError(InputError):
    """A normaliser that cannot be built or does not fit the data; ``code`` is stable."""


class Normalizer:
    """``normalize(x) = (x - mean) / std`` per channel, over the last dimension."""

    def __init__(self, mean: Tensor, std: Tensor) -> None:
        mean = torch.as_tensor(mean, dtype=torch.float32).detach().clone()
        std = torch.as_tensor(std, dtype=torch.float32).detach().clone()
        if mean.ndim != 1 or mean.shape != std.shape:
            raise NormalizerError(
                "bad_shape", f"mean and std must be 1-D of equal length, got {tuple(mean.shape)} "
                f"and {tuple(std.shape)}")
        if not bool(torch.all(torch.isfinite(mean))) or not bool(torch.all(std > 0)):
            raise NormalizerError("bad_values", "mean must be finite and std strictly positive")
        self.mean = mean
        self.std = std

    @property
    def num_channels(self) -> int:
        return int(self.mean.shape[0])

    @classmethod
    def fit(
        cls, data: Tensor | np.ndarray | Iterable[Tensor | np.ndarray], layout: MotionLayout,
        min_std: float = DEFAULT_MIN_STD,
    ) -> "Normalizer":
        """Statistics of ``data``: one array (..., C) or an iterable of them (clips).

        Accumulates in float64 so that many long clips do not lose precision.
        """
        chunks = [data] if isinstance(data, (Tensor, np.ndarray)) else list(data)
        channels = layout.num_channels
        count = 0
        total = torch.zeros(channels, dtype=torch.float64)
        total_sq = torch.zeros(channels, dtype=torch.float64)
        for chunk in chunks:
            x = torch.as_tensor(np.asarray(chunk) if isinstance(chunk, np.ndarray) else chunk)
            if x.shape[-1] != channels:
                raise NormalizerError(
                    "channel_mismatch",
                    f"{layout.name} layout has {channels} channels, data has {x.shape[-1]}")
            x = x.detach().to("cpu", torch.float64).reshape(-1, channels)
            count += x.shape[0]
            total += x.sum(0)
            total_sq += (x * x).sum(0)
        if count == 0:
            raise NormalizerError("no_data", "cannot fit a normaliser on zero frames")
        mean = total / count
        std = (total_sq / count - mean * mean).clamp_min(0.0).sqrt().clamp_min(min_std)
        mean[layout.contacts] = CONTACT_MEAN
        std[layout.contacts] = CONTACT_STD
        return cls(mean.float(), std.float())

    def normalize(self, x: Tensor) -> Tensor:
        mean, std = self._on(x)
        return (x - mean) / std

    def denormalize(self, x: Tensor) -> Tensor:
        mean, std = self._on(x)
        return x * std + mean

    def _on(self, x: Tensor) -> tuple[Tensor, Tensor]:
        if x.shape[-1] != self.num_channels:
            raise NormalizerError(
                "channel_mismatch", f"normaliser has {self.num_channels} channels, got {x.shape[-1]}")
        return self.mean.to(x.device, x.dtype), self.std.to(x.device, x.dtype)

    def state_dict(self) -> dict[str, Tensor]:
        """Plain tensors only, so checkpoints stay loadable with ``weights_only=True``."""
        return {"mean": self.mean.clone(), "std": self.std.clone()}

    @classmethod
    def from_state_dict(cls, state: dict[str, Tensor]) -> "Normalizer":
        missing = {"mean", "std"} - set(state)
        if missing:
            raise NormalizerError("bad_state", f"normaliser state lacks {sorted(missing)}")
        return cls(state["mean"], state["std"])
