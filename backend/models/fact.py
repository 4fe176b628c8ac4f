"""FACT: a full-attention cross-modal transformer that continues a dance from music.

Follows Li, Yang, Ross & Kanazawa, "AI Choreographer: Music Conditioned 3D Dance
Generation with AIST++" (ICCV 2021):

* a **motion transformer** encodes a 2 s seed of motion;
* an **audio transformer** encodes 4 s of music starting where the seed starts, so
  the network hears the 2 s the seed was danced to and the 2 s still to come;
* a **cross-modal transformer** runs over the two encoded sequences concatenated;
  its outputs at the first N positions are the next N frames of motion.

Every attention is full (no causal mask): the seed is the past, the music is heard
as a whole, and the N frames are predicted at once. Generating a whole song is a
loop (``backend.models.fact_generator``): keep some of the predicted frames, slide
the seed and the music forward, predict again.

What is ours: the network is small (width 128, 2 layers each by default, where the
paper uses 800 and 2/2/12) so it runs faster than real time on two CPU cores, and
three details explained where they happen: frames are predicted as changes from the
seed's last frame (``Fact``), the music of each predicted frame is also added to the
token that predicts it (``Fact.forward``), and the MFCCs are scaled to unit order
(``scale_music``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.conventions import FPS
from backend.models.checkpoint import StoredConfig
from backend.music.features import MFCC

MFCC_SCALE = 100.0
"""librosa's MFCCs are on a decibel scale (the first one around -170 +- 160 on our
training songs, the others tens); divided by this they are of unit order like the
other features (onset envelope, chroma, one-hots), so no feature swamps the rest."""


@dataclass
class FactConfig(StoredConfig):
    motion_channels: int = 151
    music_channels: int = 35
    d_model: int = 128
    num_heads: int = 4
    ff_mult: int = 4
    motion_layers: int = 2  # motion transformer
    music_layers: int = 2  # audio transformer
    num_layers: int = 2  # cross-modal transformer (``choreo train --layers``)
    dropout: float = 0.0
    seed_frames: int = 60  # 2 s of motion the network continues
    music_frames: int = 120  # 4 s of music from the seed's first frame (FACT's windows)
    predict_frames: int = 20  # N: frames predicted per call
    layout: str = "foot_contacts"
    fps: int = FPS

    @property
    def window_frames(self) -> int:
        """Frames of a training sample: the seed and its N next frames, and the music window."""
        return max(self.seed_frames + self.predict_frames, self.music_frames)


def scale_music(music: Tensor) -> Tensor:
    """(..., 35) music features with the MFCC block brought to unit order (``MFCC_SCALE``)."""
    scale = torch.ones(music.shape[-1], dtype=music.dtype, device=music.device)
    scale[MFCC] = 1.0 / MFCC_SCALE
    return music * scale


class Block(nn.Module):
    """Pre-norm transformer block with full (bidirectional) self-attention."""

    def __init__(self, d_model: int, num_heads: int, ff_mult: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, ff_mult * d_model), nn.GELU(),
                                nn.Linear(ff_mult * d_model, d_model))
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, t, 3, self.num_heads, d // self.num_heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # no mask: every position sees every other
        x = x + self.dropout(self.proj(y.transpose(1, 2).reshape(b, t, d)))
        return x + self.dropout(self.ff(self.norm2(x)))


def sinusoid_table(length: int, dim: int) -> Tensor:
    """(length, dim) sine/cosine position codes (Vaswani et al. 2017): the learned embeddings' start.

    FACT learns its position embeddings from small random values. Started from these
    instead, every position is told apart from the first step, which matters here:
    the outputs at positions 0..N-1 must each become a different future frame. In a
    300-step comparison on an earlier variant of this network, this (with the recipe's
    velocity weight) took the error of the 10th predicted frame from 0.66 to 0.32
    (normalised L2).
    """
    position = torch.arange(length, dtype=torch.float32)[:, None]
    angle = position / 10000 ** (torch.arange(0, dim, 2, dtype=torch.float32) / dim)
    table = torch.zeros(length, dim)
    table[:, 0::2], table[:, 1::2] = angle.sin(), angle.cos()
    return table


class Encoder(nn.Module):
    """Linear embedding + learned position embedding + transformer blocks (FACT's per-modality stack)."""

    def __init__(self, in_channels: int, length: int, layers: int, cfg: FactConfig) -> None:
        super().__init__()
        self.embed = nn.Linear(in_channels, cfg.d_model)
        self.position = nn.Parameter(sinusoid_table(length, cfg.d_model))
        self.blocks = nn.ModuleList(Block(cfg.d_model, cfg.num_heads, cfg.ff_mult, cfg.dropout)
                                    for _ in range(layers))

    def forward(self, x: Tensor) -> Tensor:
        h = self.embed(x) + self.position
        for block in self.blocks:
            h = block(h)
        return h


class Fact(nn.Module):
    """Seed motion (B, S, C) + music (B, M, 35) -> the next N frames (B, N, C).

    Motion is in the layout's normalised channels (root position absolute, as in the
    data: the generator moves an edited motion to where dances start, see
    ``backend.models.fact_generator``); music is the raw 35 features.

    The output head predicts each frame as a change from the seed's last frame (FACT
    predicts the frames themselves). At our size and training time the direct form
    did not learn to carry the seed's pose over: after 500 steps its first predicted
    frame was further from the truth (L2 0.37, normalised) than simply holding the last
    pose (0.04), every call jumped to a blurred average pose, and the dance froze
    within seconds. Predicting the change starts from holding the pose and learns
    the motion on top of it.
    """

    config_type = FactConfig  # what a checkpoint's stored config rebuilds it from

    def __init__(self, cfg: FactConfig) -> None:
        super().__init__()
        if cfg.seed_frames + cfg.predict_frames > cfg.music_frames:
            raise ValueError("the music window must reach past the predicted frames")
        self.cfg = cfg
        self.motion = Encoder(cfg.motion_channels, cfg.seed_frames, cfg.motion_layers, cfg)
        self.music = Encoder(cfg.music_channels, cfg.music_frames, cfg.music_layers, cfg)
        # one learned position per token of the concatenation: also tells the modalities apart
        self.cross_position = nn.Parameter(sinusoid_table(cfg.seed_frames + cfg.music_frames, cfg.d_model))
        self.cross = nn.ModuleList(Block(cfg.d_model, cfg.num_heads, cfg.ff_mult, cfg.dropout)
                                   for _ in range(cfg.num_layers))
        self.out_norm = nn.LayerNorm(cfg.d_model)
        self.out = nn.Linear(cfg.d_model, cfg.motion_channels)
        nn.init.zeros_(self.out.weight)  # starts by holding the seed's last pose
        nn.init.zeros_(self.out.bias)

    def forward(self, seed: Tensor, music: Tensor) -> Tensor:
        s, n = self.cfg.seed_frames, self.cfg.predict_frames
        audio = self.music(scale_music(music))
        h = torch.cat([self.motion(seed), audio], dim=1) + self.cross_position
        # a direct path for timing: the token that predicts frame s + k also carries that frame's music
        h = torch.cat([h[:, :n] + audio[:, s:s + n], h[:, n:]], dim=1)
        for block in self.cross:
            h = block(h)
        # FACT: the first N outputs are the next N frames; ours: as changes from the seed's last frame
        return seed[:, -1:] + self.out(self.out_norm(h[:, :self.cfg.predict_frames]))
