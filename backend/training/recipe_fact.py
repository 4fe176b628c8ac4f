"""Training recipe of FACT: from a 2 s seed and 4 s of music, predict the next N frames.

Each training window (``FactConfig.window_frames``, 120 frames) is cut into a seed
(its first ``seed_frames``), the N frames after it (the target) and the music of the
whole window, which starts at the seed's first frame as in FACT (Li et al., ICCV 2021).
The loss is FACT's L2 on the predicted frames, plus (ours) an L2 on their frame-to-frame
velocities, counted from the seed's last frame, so that each prediction continues
the seed at its speed instead of jumping to it. The velocity term weighs 5x: the pose
L2 is dominated by the far frames (the 20th frame's error is ten times the first's),
whose best L2 guess is a blurred average pose, while generation keeps the near frames
(``step`` of 20) and lives on their speed. In a 300-step comparison on an earlier
variant of the network, weight 1 predicted under a fifth of the true frame-to-frame
speed; weight 5 with the sinusoidal start of the position embeddings
(``backend.models.fact``), 43%.

Freezing and drift, the family's known failures, are what the training counters.
Generation continues its own frames, never the data's, so small errors feed on
themselves: in our first runs the body rose, bent its legs and slowed to half its
speed within 15 s. So: seeds are taken from inside dances (random windows, never a
still start); each seed gets noise, per frame (jitter) and one offset per seed (drift),
each at a random level up to ``seed_noise`` and ``seed_offset`` (normalised units),
while the target stays the true dance, so the network learns to steer back rather
than carry an error on; for half the batch the seed's last ``rollout_frames`` are the
network's own prediction (auto-conditioning, ``_own_seeds``); and N > 1 frames are
predicted per call (FACT's own remedy).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch
from torch import Tensor, nn

from backend.models.fact import Fact, FactConfig
from backend.motion.layout import LAYOUTS
from backend.training.recipes import Batch


@dataclass
class FactTraining:
    """Training-only settings (saved in the checkpoint's config too, for ``--resume``)."""

    seed_noise: float = 0.1  # largest std of per-frame noise added to a seed (normalised units)
    seed_offset: float = 0.15  # largest std of one offset added to a whole seed (normalised units)
    velocity_weight: float = 5.0  # weight of the velocity L2 against FACT's pose L2
    rollout_frames: int = 10  # frames at the seed's end the network makes itself (auto-conditioning)
    rollout_prob: float = 0.5  # share of the batch whose seed ends with them


class FactRecipe:
    name = "fact"

    def __init__(self, cfg: FactConfig, training: FactTraining) -> None:
        self.cfg = cfg
        self.layout = LAYOUTS[cfg.layout]
        self.cfg.motion_channels = self.layout.num_channels
        self.window_frames = cfg.window_frames
        self.training = training
        r = training.rollout_frames
        if r > cfg.predict_frames or cfg.seed_frames + r + cfg.predict_frames > cfg.window_frames:
            raise ValueError(f"rollout_frames={r}: the network makes at most predict_frames per call, and "
                             "the moved seed and its target must fit in the training window")

    def build(self, styles: tuple[str, ...]) -> nn.Module:
        return Fact(self.cfg)  # FACT has no style input

    def config(self) -> dict[str, Any]:
        return {**self.cfg.to_dict(), **asdict(self.training)}

    def losses(self, net: nn.Module, batch: Batch, gen: torch.Generator) -> dict[str, Tensor]:
        s, n, m = self.cfg.seed_frames, self.cfg.predict_frames, self.cfg.music_frames
        motion, music = batch.motion, batch.music
        if self.training.rollout_frames > 0:
            motion, music = self._own_seeds(net, motion, music, gen)
        seed, target = motion[:, :s], motion[:, s:s + n]
        pred = net(seed + self._seed_noise(seed, gen), music[:, :m])

        last = seed[:, -1:]  # the clean seed: the prediction must continue the true motion
        pred_velocity = torch.diff(torch.cat([last, pred], dim=1), dim=1)
        target_velocity = torch.diff(torch.cat([last, target], dim=1), dim=1)
        losses = {"pose": torch.mean((pred - target) ** 2),
                  "velocity": torch.mean((pred_velocity - target_velocity) ** 2)}
        losses["total"] = losses["pose"] + self.training.velocity_weight * losses["velocity"]
        return losses

    def _seed_noise(self, seed: Tensor, gen: torch.Generator) -> Tensor:
        """Noise for a batch of seeds (B, S, C): per frame, and one offset per seed and channel.

        Each seed draws its own levels, uniform up to ``seed_noise`` and ``seed_offset``.
        The per-frame part stands for jitter in made motion; the offset for the slow
        drift an autoregressive model accumulates (a body a little higher, a pose a
        little off): the target stays the true dance, so the network learns to steer
        back instead of carrying the error on.
        """
        b = seed.shape[0]
        jitter = torch.randn(seed.shape, generator=gen) * torch.rand(b, 1, 1, generator=gen) * self.training.seed_noise
        offset = (torch.randn(b, 1, seed.shape[-1], generator=gen)
                  * torch.rand(b, 1, 1, generator=gen) * self.training.seed_offset)
        return (jitter + offset).to(seed.device)

    def _own_seeds(self, net: nn.Module, motion: Tensor, music: Tensor,
                   gen: torch.Generator) -> tuple[Tensor, Tensor]:
        """Windows whose seed ends with ``rollout_frames`` the network made (for ``rollout_prob`` of them).

        Generation continues its own frames, never the data's; this shows the network
        its own output in the seed and asks it to go on with the true dance from there
        (auto-conditioning, Zhou et al., "Auto-Conditioned Recurrent Networks", ICLR 2018).
        The windows move ``r`` frames later: seed [r, s + r), its last r frames the
        network's prediction from the seed [0, s); the music past the window's end
        (only heard as look-ahead) is mirrored, as at the end of a song.
        """
        s, n, m, r = (self.cfg.seed_frames, self.cfg.predict_frames, self.cfg.music_frames,
                      self.training.rollout_frames)
        with torch.no_grad():
            own = net(motion[:, :s], music[:, :m])[:, :r]
        later = torch.cat([motion[:, r:s], own, motion[:, s + r:s + r + n]], dim=1)
        later_music = torch.cat([music[:, r:m], music[:, m - 1 - r:m - 1].flip(1)], dim=1)
        use = (torch.rand(motion.shape[0], generator=gen) < self.training.rollout_prob).to(motion.device)
        return (torch.where(use[:, None, None], later, motion[:, :s + n]),
                torch.where(use[:, None, None], later_music, music[:, :m]))


def make(config: dict[str, Any]) -> FactRecipe:
    """The recipe with ``config`` over the defaults; unknown keys (another model's) are ignored."""
    training = {f.name for f in fields(FactTraining)}
    return FactRecipe(FactConfig.from_dict({**FactConfig().to_dict(), **config}),
                      FactTraining(**{k: v for k, v in config.items() if k in training}))
