"""The EDGE-style denoiser: a transformer that turns noisy motion + music into clean motion.

Follows the architecture of EDGE (Tseng, Castellon & Liu, "EDGE: Editable Dance
Generation From Music", CVPR 2023):

* music features go through a small transformer encoder;
* each decoder block has self-attention over frames, cross-attention from motion
  frames to music frames, and a feed-forward layer, each followed by FiLM
  modulation from the diffusion time and the pooled music;
* the network predicts the clean motion x0;
* classifier-free guidance: during training the music is replaced by a learned
  null embedding with probability ``cond_drop_prob``.

Positions enter through rotary embeddings (Su et al., RoFormer, 2021), computed
from frame indices on the fly, so the window length is a sampling setting and
not part of any parameter's shape. Cross-attention uses the same frame indices for
motion queries and music keys, so attention is biased by relative time.

One addition of ours for small models trained briefly: the encoded music of frame t
is also added to the motion token of frame t (``music_in_input``), a direct path
for beat timing. Read top to bottom: config, building blocks, the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.conventions import FPS
from backend.models.checkpoint import StoredConfig


@dataclass
class EdgeConfig(StoredConfig):
    motion_channels: int = 151
    music_channels: int = 35
    d_model: int = 256
    num_layers: int = 4
    num_heads: int = 4
    ff_mult: int = 2
    music_layers: int = 2
    dropout: float = 0.1
    cond_drop_prob: float = 0.25
    music_in_input: bool = True
    layout: str = "foot_contacts"
    fps: int = FPS
    window_frames: int = 150  # training and sampling window (5 s at 30 fps)
    diffusion_steps: int = 1000


def rotary_angles(positions: Tensor, head_dim: int) -> tuple[Tensor, Tensor]:
    """cos and sin tables (T, head_dim) for rotary embedding at integer positions."""
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=positions.device).float() / head_dim))
    angles = positions.float()[:, None] * inv_freq[None, :]
    angles = torch.cat([angles, angles], dim=-1)
    return angles.cos(), angles.sin()


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate (B, H, T, D) by the tables (T, D): pairs (i, i + D/2) rotate together."""
    half = x.shape[-1] // 2
    rotated = torch.cat([-x[..., half:], x[..., :half]], dim=-1)
    return x * cos + rotated * sin


class Attention(nn.Module):
    """Multi-head attention with rotary positions on queries and keys."""

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)
        # Dropout on the output, not inside scaled_dot_product_attention: on CPU its
        # attention-dropout path is ~100x slower than the fused kernel.
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, context: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        b, t, d = x.shape
        h = self.num_heads
        q = self.q(x).view(b, t, h, d // h).transpose(1, 2)
        k, v = self.kv(context).view(b, context.shape[1], 2, h, d // h).permute(2, 0, 3, 1, 4)
        cos, sin = rope
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v)
        return self.dropout(self.out(y.transpose(1, 2).reshape(b, t, d)))


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, mult: int, dropout: float) -> None:
        super().__init__(nn.Linear(d_model, mult * d_model), nn.GELU(), nn.Dropout(dropout),
                         nn.Linear(mult * d_model, d_model))


class FiLM(nn.Module):
    """Feature-wise scale and shift from a conditioning vector (starts as identity)."""

    def __init__(self, d_model: int) -> None:
        super().__init__()
        self.proj = nn.Linear(d_model, 2 * d_model)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.proj(cond).unsqueeze(1).chunk(2, dim=-1)
        return x * (1 + scale) + shift


class EncoderBlock(nn.Module):
    def __init__(self, cfg: EdgeConfig) -> None:
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.attn = Attention(cfg.d_model, cfg.num_heads, cfg.dropout)
        self.ff = FeedForward(cfg.d_model, cfg.ff_mult, cfg.dropout)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        h = self.norm1(x)
        x = x + self.attn(h, h, rope)
        return x + self.ff(self.norm2(x))


class DecoderBlock(nn.Module):
    """Self-attention, cross-attention to music, feed-forward; each FiLM-modulated."""

    def __init__(self, cfg: EdgeConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm_self, self.norm_cross, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.self_attn = Attention(d, cfg.num_heads, cfg.dropout)
        self.cross_attn = Attention(d, cfg.num_heads, cfg.dropout)
        self.ff = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.film_self, self.film_cross, self.film_ff = FiLM(d), FiLM(d), FiLM(d)

    def forward(self, x: Tensor, music: Tensor, cond: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        h = self.norm_self(x)
        x = x + self.film_self(self.self_attn(h, h, rope), cond)
        x = x + self.film_cross(self.cross_attn(self.norm_cross(x), music, rope), cond)
        return x + self.film_ff(self.ff(self.norm_ff(x)), cond)


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding of diffusion timesteps (Vaswani et al. 2017 frequencies)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device).float() / half)
    args = t.float()[:, None] * freqs[None, :]
    return torch.cat([args.cos(), args.sin()], dim=-1)


class EdgeDenoiser(nn.Module):
    """Noisy motion x_t + diffusion time + music -> the clean motion x0 (``diffusion.MusicDenoiser``)."""

    config_type = EdgeConfig  # what a checkpoint's stored config rebuilds it from

    def __init__(self, cfg: EdgeConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.motion_in = nn.Linear(cfg.motion_channels, d)
        self.music_in = nn.Linear(cfg.music_channels, d)
        self.music_encoder = nn.ModuleList(EncoderBlock(cfg) for _ in range(cfg.music_layers))
        self.music_norm = nn.LayerNorm(d)
        self.null_music = nn.Parameter(torch.randn(d) * 0.02)  # CFG's "no music", any length
        self.time_mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.SiLU(), nn.Linear(4 * d, d))
        self.pool_mlp = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.num_layers))
        self.out_norm = nn.LayerNorm(d)
        self.motion_out = nn.Linear(d, cfg.motion_channels)

    def encode_music(self, music: Tensor, drop: Tensor | None) -> Tensor:
        """(B, T, music_channels) -> (B, T, d); rows where ``drop`` is True become null music."""
        rope = rotary_angles(torch.arange(music.shape[1], device=music.device), self.cfg.d_model // self.cfg.num_heads)
        h = self.music_in(music)
        for block in self.music_encoder:
            h = block(h, rope)
        h = self.music_norm(h)
        if drop is not None:
            h = torch.where(drop[:, None, None], self.null_music.expand_as(h), h)
        return h

    def forward(self, x_t: Tensor, t: Tensor, music: Tensor, drop: Tensor | None = None,
                music_tokens: Tensor | None = None) -> Tensor:
        """Predict x0 (B, T, motion_channels) from x_t, timesteps (B,) and music (B, T, D).

        ``music_tokens`` skips the music encoder when the caller already has them
        (sampling encodes the music once, not at every step).
        """
        if music_tokens is None:
            music_tokens = self.encode_music(music, drop)
        cond = self.time_mlp(timestep_embedding(t, self.cfg.d_model)) + self.pool_mlp(music_tokens.mean(dim=1))
        rope = rotary_angles(torch.arange(x_t.shape[1], device=x_t.device), self.cfg.d_model // self.cfg.num_heads)
        h = self.motion_in(x_t)
        if self.cfg.music_in_input:
            h = h + music_tokens
        for block in self.blocks:
            h = block(h, music_tokens, cond, rope)
        return self.motion_out(self.out_norm(h))
