"""DanceNet: an autoregressive WaveNet over motion frames, with a Gaussian-mixture output.

Follows Zhuang et al., "Music2Dance: DanceNet for Music-driven Dance Generation"
(ACM TOMM 2022), whose generator is a WaveNet (van den Oord et al. 2016) turned
from audio samples to motion frames:

* a stack of dilated causal temporal convolutions, each with a gated activation
  ``tanh(W_f * x + V_f c) * sigmoid(W_g * x + V_g c)`` and residual and skip
  connections; the dilations double, so the receptive field covers a few seconds
  (``DanceNetConfig.receptive_field``) at a cost linear in the number of layers;
* control signals ``c`` per frame, each with its own small projection, summed:
  musical style (one embedding per style label), rhythm (onset envelope, onset
  peaks, beats) and melody (chroma and MFCC). They enter the input and every
  layer's gate (WaveNet's local conditioning);
* the output is a mixture of ``mixtures`` diagonal Gaussians over the next frame
  (Bishop 1994, mixture density networks), trained by negative log-likelihood: a
  dance is many-valued given its past and its music, and MSE would average the
  choices into a frozen, blurred pose. The contact channels of the layout are part
  of what the mixture models, so the model predicts its own foot contacts.

Choices of ours, each against a way an autoregressive model goes wrong:

* Each component's mean is the previous frame plus a predicted offset: motion
  changes little per frame, so the network learns the change, not the pose (and,
  with noise injected into its input during training, learns to pull a drifting
  input back). The pelvis height and tilt are the exception (``outright_channels``):
  they are predicted outright, because integrated they drift until the body floats
  or falls over (``outright="pose"`` predicts the whole pose outright).
* The network reads the root's horizontal *step* as well as its position: the step
  is the velocity it carries on, the position lets it steer back to the middle of
  the floor where the training dances stay.
* Dropout on the embedded input frames (``motion_dropout``, training only), as
  Tacotron 2's decoder pre-net (Shen et al. 2018) does for the same reason: the
  past motion alone predicts the next frame so well that a model trained on it
  cleanly learns to keep time by its own past and ignores the music; with part of
  the past hidden it has to listen.
* The rhythm signal adds the beat phase (``beat_phase``), where the frame sits
  between the beats so far, so the model knows when the next beat falls.
* The music features are standardised with fixed constants measured on our
  training data, so the projections start from inputs of order one.

The network is causal: its output at position t sees motion inputs and control
signals at positions <= t only. ``DanceNetStream`` runs it one frame at a time,
keeping each layer's last inputs (as many as its dilated kernel reaches back), so a
frame costs one small matrix product per layer however long the dance is.
Read top to bottom: config, control signals, the gated layer, the mixture, the net,
the stream.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.conventions import FPS, UNKNOWN_STYLE
from backend.models.checkpoint import StoredConfig
from backend.motion.layout import ROOT, joint_rotation_slice
from backend.motion.skeleton import JOINT_INDEX
from backend.music.features import BEAT_ONEHOT, CHROMA, ENVELOPE, MFCC, NUM_FEATURES, PEAK_ONEHOT

MIN_LOG_STD = -6.0
"""Floor of a component's log standard deviation (normalised units, sigma >= 0.0025):
channels that never change (contacts held for a second) would otherwise drive the
likelihood to infinity."""
MAX_LOG_STD = 2.0

HORIZONTAL = slice(ROOT.start, ROOT.start + 2)
"""The root's x and y channels (Z-up, docs/motion.md): where on the floor the dancer is."""
HEIGHT = ROOT.start + 2
"""The root's z channel: the pelvis height."""
_PELVIS = joint_rotation_slice(JOINT_INDEX["pelvis"])
BALANCE = (HEIGHT, _PELVIS.start + 2, _PELVIS.start + 5)
"""The pelvis height and the up (z) components of the pelvis's two stored rotation columns
(the 6D form of ``backend.motion.rotations``), i.e. how far the body tilts from upright:
what keeps a dancer standing. Integrated offsets let them drift until the body floats or
lies down, and nothing in a frame's own past pulls them back."""


def outright_channels(cfg: "DanceNetConfig") -> list[int]:
    """Channels whose mean is predicted outright, not as an offset from the previous frame:
    ``cfg.outright`` "balance" (``BALANCE``) or "pose" (everything but the root's x, y,
    which only a step from where the dancer is can say)."""
    if cfg.outright == "balance":
        return list(BALANCE)
    if cfg.outright == "pose":
        return [c for c in range(cfg.motion_channels) if not HORIZONTAL.start <= c < HORIZONTAL.stop]
    raise ValueError(f"outright must be 'balance' or 'pose', got {cfg.outright!r}")
_HORIZONTAL_CHANNELS = range(HORIZONTAL.start, HORIZONTAL.stop)
ROOT_VELOCITY_SCALE = 10.0
"""The network reads the root's horizontal step per frame, times this (normalised units,
about 0.05 per frame in our data, so order one after it)."""


@dataclass
class DanceNetConfig(StoredConfig):
    motion_channels: int = 151
    music_channels: int = NUM_FEATURES
    residual_channels: int = 64  # width of the dilated stack
    skip_channels: int = 96  # width of the skip sum and the output head
    control_channels: int = 64  # width of the summed control signals
    kernel_size: int = 2
    dilations: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 1, 2, 4, 8, 16])
    mixtures: int = 4  # Gaussian components over the next frame
    styles: list[str] = field(default_factory=lambda: [UNKNOWN_STYLE])  # index 0 = any style
    style_drop_prob: float = 0.3  # training: style replaced by "unknown" this often
    outright: str = "balance"  # channels predicted outright, not as offsets (outright_channels)
    input_noise: float = 0.05  # training: std of noise added to input frames (normalised units)
    motion_dropout: float = 0.3  # training: dropout on the embedded input frames (see DanceNet)
    contact_loss_weight: float = 0.5  # foot sliding where contact is predicted (cm^2)
    kinematic_loss_weight: float = 0.2  # joint positions of the expected next frame (cm^2)
    layout: str = "foot_contacts"
    fps: int = FPS
    window_frames: int = 120  # training window (4 s at 30 fps)

    @property
    def receptive_field(self) -> int:
        """Positions of the stack the output at t depends on (t and those before it); one
        motion frame more, since the input at a position holds the root's step into it."""
        return 1 + (self.kernel_size - 1) * sum(self.dilations)


# ---------------------------------------------------------------- control signals

# Per-feature mean and standard deviation of the 35 music features over the
# procedural training set (/work/data/proc_v3, docs/procedural_data.md), rounded.
# Fixed rather than fitted per run, so that a checkpoint needs no music statistics.
_ENVELOPE_STATS = (1.7, 3.3)
_MFCC_MEAN = (-169.0, 55.0, 21.5, 25.3, 6.0, 5.5, -3.4, 0.5, -4.7, -0.2,
              -4.2, -0.3, -4.7, 0.2, -3.3, 1.7, -2.6, 0.2, -4.3, -0.2)
_MFCC_STD = (163.0, 51.0, 36.0, 21.4, 19.3, 17.2, 16.0, 15.1, 13.0, 11.9,
             11.0, 11.1, 11.5, 10.6, 10.6, 10.8, 10.7, 10.3, 10.2, 10.2)
_CHROMA_STATS = (0.22, 0.18)


def music_standardisation() -> tuple[Tensor, Tensor]:
    """(35,) mean and std that bring every music feature to order one (onsets and beats
    are 0/1 already and stay as they are)."""
    mean, std = torch.zeros(NUM_FEATURES), torch.ones(NUM_FEATURES)
    mean[ENVELOPE], std[ENVELOPE] = _ENVELOPE_STATS
    mean[MFCC], std[MFCC] = torch.tensor(_MFCC_MEAN), torch.tensor(_MFCC_STD)
    mean[CHROMA], std[CHROMA] = _CHROMA_STATS
    return mean, std


def beat_phase(beats: Tensor) -> Tensor:
    """(B, T) beat flags -> (B, T, 4) where each frame sits between beats, from past beats only.

    The phase runs from 0 on a beat towards 1 at the next one, the period being the
    last interval between beats: sin and cos of it (zero until two beats have been
    heard), a flag saying it is known, and the period in seconds. A next-frame model
    reads the beat flag of the frame it makes, but a move that ends on a beat starts
    half a beat before it; the phase tells it where the next beat will fall, without
    looking ahead (steady tempo assumed, corrected on every beat).
    """
    frames = torch.arange(beats.shape[1], device=beats.device).expand_as(beats)
    last = torch.where(beats > 0.5, frames, -1).cummax(dim=1).values  # last beat at or before t
    before = torch.gather(last, 1, (last - 1).clamp(min=0))  # the beat before that one
    known = (last >= 1) & (before >= 0)
    period = torch.where(known, last - before, 1).float()
    angle = 2 * math.pi * (frames - last).float() / period
    flag = known.float()
    return torch.stack([torch.sin(angle) * flag, torch.cos(angle) * flag, flag, period * flag / FPS], dim=-1)


def _small_mlp(inputs: int, width: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(inputs, width), nn.SiLU(), nn.Linear(width, width))


class ControlSignals(nn.Module):
    """Style, rhythm and melody -> one (B, T, control_channels) conditioning sequence.

    Each signal has its own projection, as in DanceNet, so the network can weigh
    them separately; they are summed. Style is one vector per dance, broadcast over
    frames; index 0 ("unknown") is what sampling uses for "any style". Rhythm is the
    onset envelope, onset peaks and beats plus the beat phase (``beat_phase``).
    """

    RHYTHM = (ENVELOPE, PEAK_ONEHOT, BEAT_ONEHOT)
    MELODY = (CHROMA, MFCC)
    PHASE_FEATURES = 4

    def __init__(self, cfg: DanceNetConfig) -> None:
        super().__init__()
        mean, std = music_standardisation()
        self.register_buffer("music_mean", mean, persistent=False)
        self.register_buffer("music_std", std, persistent=False)
        width = cfg.control_channels
        self.style = nn.Embedding(len(cfg.styles), width)
        self.rhythm = _small_mlp(sum(s.stop - s.start for s in self.RHYTHM) + self.PHASE_FEATURES, width)
        self.melody = _small_mlp(sum(s.stop - s.start for s in self.MELODY), width)

    def forward(self, music: Tensor, style: Tensor) -> Tensor:
        """music (B, T, 35) raw features, style (B,) long -> (B, T, control_channels)."""
        x = (music - self.music_mean) / self.music_std
        phase = beat_phase(music[..., BEAT_ONEHOT.start])
        rhythm = self.rhythm(torch.cat([x[..., s] for s in self.RHYTHM] + [phase], dim=-1))
        melody = self.melody(torch.cat([x[..., s] for s in self.MELODY], dim=-1))
        return rhythm + melody + self.style(style)[:, None, :]


# ---------------------------------------------------------------- the gated layer


class GatedLayer(nn.Module):
    """One WaveNet layer: dilated causal conv, gate conditioned on the controls, residual + skip.

    The dilated convolution is written as what it is, one matrix product over the
    input stacked with its copies ``dilation``, ``2 * dilation``, ... frames earlier:
    on a CPU that is several times faster than a dilated ``Conv1d``, and the same code
    serves a whole window in training and one frame at a time in a stream.
    """

    def __init__(self, cfg: DanceNetConfig, dilation: int) -> None:
        super().__init__()
        r = cfg.residual_channels
        self.dilation, self.kernel_size = dilation, cfg.kernel_size
        self.history = (cfg.kernel_size - 1) * dilation  # past inputs the kernel reaches
        self.conv = nn.Linear(cfg.kernel_size * r, 2 * r)  # taps oldest first
        self.control = nn.Linear(cfg.control_channels, 2 * r, bias=False)
        self.out = nn.Linear(r, r + cfg.skip_channels)

    def forward(self, x: Tensor, control: Tensor, past: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """x (B, T, R) this layer's inputs, control (B, T, K), past (B, history, R) the
        inputs before x (None: zeros, causal padding) -> (residual output, skip)."""
        t, r = x.shape[1], x.shape[2]
        if past is None:
            past = x.new_zeros(x.shape[0], self.history, r)
        padded = torch.cat([past, x], dim=1)
        taps = torch.cat([padded[:, j * self.dilation:j * self.dilation + t] for j in range(self.kernel_size)],
                         dim=-1)
        filt, gate = (self.conv(taps) + self.control(control)).chunk(2, dim=-1)
        h = self.out(torch.tanh(filt) * torch.sigmoid(gate))
        return (x + h[..., :r]) * math.sqrt(0.5), h[..., r:]


# ---------------------------------------------------------------- the mixture


@dataclass
class Mixture:
    """A mixture of diagonal Gaussians over the next frame, at every position.

    logits: (..., K) unnormalised log mixture weights
    mean: (..., K, C) component means (normalised motion channels)
    log_std: (..., K, C) component log standard deviations
    """

    logits: Tensor
    mean: Tensor
    log_std: Tensor

    def expected(self) -> Tensor:
        """(..., C) the mixture's mean: what a loss on positions differentiates."""
        return (self.logits.softmax(-1).unsqueeze(-1) * self.mean).sum(-2)

    def nll(self, target: Tensor) -> Tensor:
        """(...,) negative log-likelihood of ``target`` (..., C) under the mixture."""
        z = (target.unsqueeze(-2) - self.mean) * torch.exp(-self.log_std)
        log_normal = -0.5 * z * z - self.log_std - 0.5 * math.log(2 * math.pi)  # per channel
        return -torch.logsumexp(self.logits.log_softmax(-1) + log_normal.sum(-1), dim=-1)

    def sample(self, temperature: float, generator: torch.Generator | None = None) -> Tensor:
        """(..., C) one draw: a component by its weight, then its Gaussian with every standard
        deviation times ``temperature``. Temperature 0: the most likely component's mean."""
        if temperature <= 0:
            pick = self.logits.argmax(-1)
        else:
            probs = self.logits.softmax(-1).reshape(-1, self.logits.shape[-1])
            pick = torch.multinomial(probs, 1, generator=generator).reshape(self.logits.shape[:-1])
        index = pick[..., None, None].expand(*pick.shape, 1, self.mean.shape[-1])
        mean = self.mean.gather(-2, index).squeeze(-2)
        if temperature <= 0:
            return mean
        std = self.log_std.gather(-2, index).squeeze(-2).exp()
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + temperature * std * noise


class MixtureHead(nn.Module):
    """Skip sum -> mixture parameters; means are offsets from the previous frame."""

    def __init__(self, cfg: DanceNetConfig) -> None:
        super().__init__()
        k, c, s = cfg.mixtures, cfg.motion_channels, cfg.skip_channels
        self.k, self.c = k, c
        self.outright = outright_channels(cfg)
        self.hidden = nn.Linear(s, s)
        self.params = nn.Linear(s, k + 2 * k * c)
        with torch.no_grad():  # start near "the next frame is this one"; small, not zero,
            self.params.weight.mul_(0.1)  # so that the components can tell themselves apart
            self.params.bias.zero_()
            self.params.bias[k + k * c:] = -2.0  # sigma 0.14: about one frame of movement

    def forward(self, skip: Tensor, previous: Tensor) -> Mixture:
        """skip (B, T, S), previous (B, T, C) the input frames -> mixture over frames t + 1."""
        out = self.params(F.relu(self.hidden(F.relu(skip))))  # (B, T, K + 2KC)
        k, c = self.k, self.c
        offset = out[..., k:k + k * c].unflatten(-1, (k, c))
        log_std = out[..., k + k * c:].unflatten(-1, (k, c)).clamp(MIN_LOG_STD, MAX_LOG_STD)
        base = previous.clone()
        base[..., self.outright] = 0.0
        return Mixture(logits=out[..., :k], mean=base.unsqueeze(-2) + offset, log_std=log_std)


# ---------------------------------------------------------------- the network


class DanceNet(nn.Module):
    """Previous frames + control signals -> a mixture over each next frame, causally."""

    config_type = DanceNetConfig  # what a checkpoint's stored config rebuilds it from

    def __init__(self, cfg: DanceNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.controls = ControlSignals(cfg)
        self.motion_in = nn.Linear(cfg.motion_channels + len(_HORIZONTAL_CHANNELS), cfg.residual_channels)
        self.motion_dropout = nn.Dropout(cfg.motion_dropout)
        self.control_in = nn.Linear(cfg.control_channels, cfg.residual_channels, bias=False)
        self.layers = nn.ModuleList(GatedLayer(cfg, d) for d in cfg.dilations)
        self.head = MixtureHead(cfg)

    def control_signals(self, music: Tensor, style: Tensor) -> Tensor:
        """(B, T, 35), (B,) -> (B, T, K): computed once per dance when streaming."""
        return self.controls(music, style)

    def forward(self, previous: Tensor, music: Tensor, style: Tensor) -> Mixture:
        """previous (B, T, C) normalised frames 0..T-1 before each target, music (B, T, 35)
        of the target frames, style (B,) -> the mixture over each target frame."""
        return self.run(previous, self.control_signals(music, style), None)[0]

    @staticmethod
    def motion_features(previous: Tensor, before: Tensor | None) -> Tensor:
        """What the stack reads of each frame: the frame with its root x, y replaced by the
        step from the frame before (``before`` (B, C) precedes ``previous[:, 0]``; None: no
        step), then the root x, y themselves, so that it can steer back to the middle."""
        xy = previous[..., HORIZONTAL]
        first = xy[:, :1] if before is None else before[:, None, HORIZONTAL]
        x = previous.clone()
        x[..., HORIZONTAL] = ROOT_VELOCITY_SCALE * (xy - torch.cat([first, xy[:, :-1]], dim=1))
        return torch.cat([x, xy], dim=-1)

    def run(self, previous: Tensor, control: Tensor, pasts: list[Tensor] | None,
            before: Tensor | None = None) -> tuple[Mixture, list[Tensor]]:
        """The stack over new positions, after ``pasts`` (each layer's earlier inputs, or
        None for a fresh start) and the frame ``before``. Returns the mixture and every
        layer's inputs (earlier ones included), which is what a stream keeps."""
        x = self.motion_dropout(self.motion_in(self.motion_features(previous, before))) + self.control_in(control)
        skips, inputs = 0.0, []
        for i, layer in enumerate(self.layers):
            past = None if pasts is None else pasts[i]
            inputs.append(x if past is None else torch.cat([past, x], dim=1))
            x, skip = layer(x, control, past)
            skips = skips + skip
        return self.head(skips, previous), inputs


# ---------------------------------------------------------------- the stream


class DanceNetStream:
    """Runs a ``DanceNet`` a few frames at a time, remembering what its kernels reach back to.

    ``feed`` takes any number of new positions (a run of known frames to prime the
    receptive field, or one frame while sampling) and returns the mixture over the
    frame after each. Every layer keeps its last ``history`` inputs, zeros before the
    first feed: exactly the causal padding of training, so a stream gives the same
    numbers as one ``forward`` over the whole sequence.
    """

    def __init__(self, net: DanceNet, batch: int = 1) -> None:
        self.net = net
        ref = next(net.parameters())
        self.pasts = [torch.zeros(batch, layer.history, net.cfg.residual_channels,
                                  device=ref.device, dtype=ref.dtype) for layer in net.layers]
        self.last: Tensor | None = None  # the last frame fed: the root step of the next starts there

    def feed(self, previous: Tensor, control: Tensor) -> Mixture:
        """previous (B, n, C) the next input frames, control (B, n, K) their targets' controls."""
        mixture, inputs = self.net.run(previous, control, self.pasts, self.last)
        self.last = previous[:, -1]
        self.pasts = [x[:, x.shape[1] - layer.history:] for x, layer in zip(inputs, self.net.layers, strict=True)]
        return mixture
