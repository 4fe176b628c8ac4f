"""The POPDG denoiser: an EDGE-style transformer that also attends across the joints of each frame.

Follows POPDG (Luo, Ren, Hu, Huang & Yao, "POPDG: Popular 3D Dance Generation with
PopDanceSet", CVPR 2024), which builds on EDGE (``backend/models/edge.py``):

* **iDDPM.** Besides the clean motion x0 (EDGE's mean parametrisation) the network
  predicts, per channel, where the reverse variance sits between beta~_t and beta_t
  (Nichol & Dhariwal 2021); the maths is ``diffusion.LearnedVarianceDiffusion``.
* **Two attentions in every block.** DS-Attention (spatial) lets the 24 joints of
  one frame attend to each other; the temporal attention then runs across frames.
* **Space Augmentation.** Inside DS-Attention the root's attention with each trunk
  joint is averaged with its parent's, from the root outwards along the kinematic
  chain, so what the root attends to flows down the spine to head and shoulders.
* **Alignment Module.** Each sublayer's output is FiLM-modulated by an MLP of the
  diffusion-time embedding plus a 1D convolution over that output (and the time
  embedding itself carries a 1D convolution over the music).
* **Symmetric music encoder.** Each music block attends across frames (temporal) and
  across feature channels (feature attention), mirroring the two motion attentions.

Two choices of ours, for a model that must run on two CPU cores and window lengths
other than the trained one: the joints' tokens in DS-Attention are narrow (``joint_dim``
per joint, like the reference's 6 per joint and head), and the feature attention
normalises over time (XCiT's cross-covariance attention), so no weight depends on the
number of frames (the reference embeds 150 frames there). As in our EDGE model,
positions are rotary and the encoded music of frame t is added to motion token t.
Read top to bottom: config, spatial attention, music encoder, alignment, the denoiser.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.conventions import FPS
from backend.models.checkpoint import StoredConfig
from backend.models.edge import Attention, FeedForward, rotary_angles, timestep_embedding
from backend.motion.skeleton import NUM_JOINTS, PARENTS


@dataclass
class PopdgConfig(StoredConfig):
    motion_channels: int = 156
    music_channels: int = 35
    d_model: int = 128
    num_layers: int = 2
    num_heads: int = 4
    joint_dim: int = 8  # width of one joint's token in DS-Attention
    joint_heads: int = 1
    ff_mult: int = 2
    music_layers: int = 1
    align_kernel: int = 5  # the Alignment Module's 1D convolution, frames
    dropout: float = 0.1
    cond_drop_prob: float = 0.25
    music_in_input: bool = True
    space_augmentation: bool = True
    vlb_lambda: float = 0.001  # L_hybrid = L_simple + lambda L_vlb (Nichol & Dhariwal)
    layout: str = "body_contacts"
    fps: int = FPS
    window_frames: int = 150  # training and sampling window (5 s at 30 fps)
    diffusion_steps: int = 1000


# ---------------------------------------------------------------- DS-Attention

SPACE_AUGMENTED_JOINTS: tuple[int, ...] = (6, 9, 12, 13, 14, 15, 16, 17)
"""Joints whose attention with the root is passed down from their parent: the trunk from
spine2 through spine3, neck and collars to head and shoulders. The set and the rule
(average with the parent's already-updated weight, root row and root column) are those
of the POPDG reference code (``DS_Attention.apply_custom_weighting``); the root's own
children (hips, spine1) keep their weights."""


def _depth(joint: int, parents: tuple[int, ...]) -> int:
    return 0 if parents[joint] < 0 else 1 + _depth(parents[joint], parents)


def space_augmentation_matrix(parents: tuple[int, ...] = PARENTS,
                              joints: tuple[int, ...] = SPACE_AUGMENTED_JOINTS) -> Tensor:
    """M (J, J) with a' = a @ M doing, parents before children, a'[j] = (a[j] + a'[parent(j)]) / 2.

    The updates are linear and run in a fixed order, so they compose into one matrix:
    the augmentation costs one small matmul for the root's row and one for its column.
    """
    matrix = torch.eye(len(parents), dtype=torch.float64)
    for j in sorted(joints, key=lambda j: _depth(j, parents)):
        matrix[:, j] = 0.5 * (matrix[:, j] + matrix[:, parents[j]])
    return matrix.float()


def space_augment(attn: Tensor, matrix: Tensor, root: int = 0) -> Tensor:
    """Pass the root's attention weights (its row and its column) from parent to child.

    attn: (..., J, J) attention probabilities, query joint by key joint. The root's row
    (what the root attends to) and column (how much each joint attends to the root) are
    mapped by ``matrix``; every other entry is left alone. Rows then need not sum to 1,
    as in the reference.
    """
    row, col = attn[..., root, :], attn[..., :, root]
    d_row, d_col = row @ matrix - row, col @ matrix - col  # both 0 at the root itself
    e = torch.zeros(attn.shape[-1], dtype=attn.dtype, device=attn.device)
    e[root] = 1.0
    return attn + e[:, None] * d_row.unsqueeze(-2) + d_col.unsqueeze(-1) * e[None, :]


def joint_attention(q: Tensor, k: Tensor, v: Tensor, augment: Tensor | None) -> Tensor:
    """Softmax attention over the joint axis with Space Augmentation: q, k, v (..., J, D) -> (..., J, D).

    Equal to ``space_augment(attn, augment) @ v``, but the augmentation touches only the
    root's row and column, so its effect on the output is added as two rank-one terms
    instead of building and multiplying a second (..., J, J) matrix. Not fused
    (``scaled_dot_product_attention``), because the probabilities themselves are needed.
    """
    attn = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    out = attn @ v
    if augment is None:
        return out
    row, col = attn[..., 0, :], attn[..., :, 0]
    d_row, d_col = row @ augment - row, col @ augment - col  # (..., J), 0 at the root
    e = torch.zeros(attn.shape[-1], 1, dtype=out.dtype, device=out.device)
    e[0] = 1.0
    return out + e * (d_row.unsqueeze(-2) @ v) + d_col.unsqueeze(-1) * v[..., :1, :]


class JointAttention(nn.Module):
    """DS-Attention: within each frame, the 24 joints' tokens attend to one another.

    A frame's token (d_model) is projected to 24 narrow joint tokens (the projection is
    joint-specific, so a token knows its joint); their attention mixes information across
    the body, then they are projected back. Frames never mix here.
    """

    def __init__(self, d_model: int, joint_dim: int, heads: int, dropout: float, augment: bool) -> None:
        super().__init__()
        if joint_dim % heads:
            raise ValueError(f"joint_dim {joint_dim} must divide into {heads} heads")
        self.joint_dim, self.heads = joint_dim, heads
        self.qkv = nn.Linear(d_model, 3 * NUM_JOINTS * joint_dim)
        self.out = nn.Linear(NUM_JOINTS * joint_dim, d_model)
        self.dropout = nn.Dropout(dropout)
        self.register_buffer("augment", space_augmentation_matrix() if augment else None, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        b, t, _ = x.shape
        h, dh = self.heads, self.joint_dim // self.heads
        q, k, v = self.qkv(x).view(b, t, 3, NUM_JOINTS, h, dh).permute(2, 0, 1, 4, 3, 5)  # (B, T, H, J, dh)
        y = joint_attention(q, k, v, self.augment)
        return self.dropout(self.out(y.transpose(-3, -2).reshape(b, t, NUM_JOINTS * self.joint_dim)))


# ---------------------------------------------------------------- music encoder


class FeatureAttention(nn.Module):
    """Attention across feature channels: each channel, seen as its curve over time, attends
    to the others (cross-covariance attention, El-Nouby et al., "XCiT", NeurIPS 2021).

    Queries and keys are L2-normalised over time, with a learned temperature per head, so
    the scores are cosines whatever the window length.
    """

    def __init__(self, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.temperature = nn.Parameter(torch.ones(num_heads, 1, 1))
        self.out = nn.Linear(d_model, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.num_heads
        q, k, v = self.qkv(x).view(b, t, 3, h, d // h).permute(2, 0, 3, 4, 1)  # (B, H, d/h, T)
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = torch.softmax(q @ k.transpose(-2, -1) * self.temperature, dim=-1)  # channel by channel
        y = (attn @ v).permute(0, 3, 1, 2).reshape(b, t, d)
        return self.dropout(self.out(y))


class MusicBlock(nn.Module):
    """Feature attention, temporal attention, feed-forward: the music side's two attentions."""

    def __init__(self, cfg: PopdgConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm_feature, self.norm_time, self.norm_ff = nn.LayerNorm(d), nn.LayerNorm(d), nn.LayerNorm(d)
        self.feature_attn = FeatureAttention(d, cfg.num_heads, cfg.dropout)
        self.time_attn = Attention(d, cfg.num_heads, cfg.dropout)
        self.ff = FeedForward(d, cfg.ff_mult, cfg.dropout)

    def forward(self, x: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.feature_attn(self.norm_feature(x))
        h = self.norm_time(x)
        x = x + self.time_attn(h, h, rope)
        return x + self.ff(self.norm_ff(x))


# ---------------------------------------------------------------- alignment


def conv1d_time_mean(x: Tensor, conv: nn.Conv1d) -> Tensor:
    """``conv`` over the frames of x (B, T, C), averaged over time -> (B, C_out).

    The convolution is linear and only its time average is used, so it is computed from
    K shifted sums of the (zero-padded) input instead of at every frame: exactly the same
    numbers, K * C_in * C_out work per sample instead of T times that.
    """
    k, pad = conv.kernel_size[0], conv.padding[0]
    padded = F.pad(x, (0, 0, pad, pad))
    frames_out = padded.shape[1] - k + 1
    sums = torch.stack([padded[:, i:i + frames_out].sum(dim=1) for i in range(k)], dim=1)  # (B, K, C_in)
    mean = torch.einsum("oik,bki->bo", conv.weight, sums) / frames_out
    return mean + conv.bias if conv.bias is not None else mean


class Alignment(nn.Module):
    """POPDG's Alignment Module: FiLM of a sublayer's output ``x`` from the condition
    (diffusion time + music) plus a 1D convolution over ``x`` itself, through an MLP.
    Starts as the identity."""

    def __init__(self, d_model: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(d_model, d_model, kernel, padding=kernel // 2)
        self.mlp = nn.Sequential(nn.Mish(), nn.Linear(d_model, 2 * d_model))
        nn.init.zeros_(self.mlp[1].weight)
        nn.init.zeros_(self.mlp[1].bias)

    def forward(self, x: Tensor, cond: Tensor) -> Tensor:
        scale, shift = self.mlp(cond + conv1d_time_mean(x, self.conv)).unsqueeze(1).chunk(2, dim=-1)
        return x * (1 + scale) + shift


class DecoderBlock(nn.Module):
    """DS-Attention, temporal attention, cross-attention to music, feed-forward."""

    def __init__(self, cfg: PopdgConfig) -> None:
        super().__init__()
        d = cfg.d_model
        self.norm_joint, self.norm_time, self.norm_cross, self.norm_ff = (nn.LayerNorm(d) for _ in range(4))
        self.joint_attn = JointAttention(d, cfg.joint_dim, cfg.joint_heads, cfg.dropout, cfg.space_augmentation)
        self.time_attn = Attention(d, cfg.num_heads, cfg.dropout)
        self.cross_attn = Attention(d, cfg.num_heads, cfg.dropout)
        self.ff = FeedForward(d, cfg.ff_mult, cfg.dropout)
        self.align_time, self.align_cross, self.align_ff = (Alignment(d, cfg.align_kernel) for _ in range(3))

    def forward(self, x: Tensor, music: Tensor, cond: Tensor, rope: tuple[Tensor, Tensor]) -> Tensor:
        x = x + self.joint_attn(self.norm_joint(x))
        h = self.norm_time(x)
        x = x + self.align_time(self.time_attn(h, h, rope), cond)
        x = x + self.align_cross(self.cross_attn(self.norm_cross(x), music, rope), cond)
        return x + self.align_ff(self.ff(self.norm_ff(x)), cond)


# ---------------------------------------------------------------- the denoiser


class PopdgDenoiser(nn.Module):
    """Noisy motion x_t + diffusion time + music -> x0 and the variance (``diffusion.MusicDenoiser``)."""

    config_type = PopdgConfig  # what a checkpoint's stored config rebuilds it from

    def __init__(self, cfg: PopdgConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.motion_in = nn.Linear(cfg.motion_channels, d)
        self.music_in = nn.Linear(cfg.music_channels, d)
        self.music_encoder = nn.ModuleList(MusicBlock(cfg) for _ in range(cfg.music_layers))
        self.music_norm = nn.LayerNorm(d)
        self.null_music = nn.Parameter(torch.randn(d) * 0.02)  # CFG's "no music", any length
        self.time_mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.Mish(), nn.Linear(4 * d, d))
        self.music_conv = nn.Conv1d(d, d, cfg.align_kernel, padding=cfg.align_kernel // 2)
        self.music_mlp = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.blocks = nn.ModuleList(DecoderBlock(cfg) for _ in range(cfg.num_layers))
        self.out_norm = nn.LayerNorm(d)
        self.motion_out = nn.Linear(d, cfg.motion_channels)
        self.variance_out = nn.Linear(d, cfg.motion_channels)
        nn.init.zeros_(self.variance_out.weight)  # v = 0.5 at the start: halfway in log space
        nn.init.zeros_(self.variance_out.bias)

    def _rope(self, frames: int, device: torch.device) -> tuple[Tensor, Tensor]:
        return rotary_angles(torch.arange(frames, device=device), self.cfg.d_model // self.cfg.num_heads)

    def encode_music(self, music: Tensor, drop: Tensor | None) -> Tensor:
        """(B, T, music_channels) -> (B, T, d); rows where ``drop`` is True become null music."""
        rope = self._rope(music.shape[1], music.device)
        h = self.music_in(music)
        for block in self.music_encoder:
            h = block(h, rope)
        h = self.music_norm(h)
        if drop is not None:
            h = torch.where(drop[:, None, None], self.null_music.expand_as(h), h)
        return h

    def forward(self, x_t: Tensor, t: Tensor, music: Tensor, drop: Tensor | None = None,
                music_tokens: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(x0, v) from x_t (B, T, C), timesteps (B,) and music (B, T, D).

        x0: the predicted clean motion; v (B, T, C) in [0, 1]: where each channel's reverse
        variance sits between beta~_t (0) and beta_t (1), in log space (a sigmoid keeps it
        inside; Nichol & Dhariwal leave it unbounded, the POPDG code clamps it).
        ``music_tokens`` skips the music encoder (sampling encodes the music once).
        """
        if music_tokens is None:
            music_tokens = self.encode_music(music, drop)
        cond = (self.time_mlp(timestep_embedding(t, self.cfg.d_model))
                + self.music_mlp(conv1d_time_mean(music_tokens, self.music_conv)))
        rope = self._rope(x_t.shape[1], x_t.device)
        h = self.motion_in(x_t)
        if self.cfg.music_in_input:
            h = h + music_tokens
        for block in self.blocks:
            h = block(h, music_tokens, cond, rope)
        h = self.out_norm(h)
        return self.motion_out(h), torch.sigmoid(self.variance_out(h))
