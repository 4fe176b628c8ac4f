"""Joining regenerated frames onto kept ones, with position and speed continuous.

Diffusion inpainting shows the model the kept frames at every sampling step, yet with
few sampling steps what it makes next to them still starts with a transient: the
first regenerated frame pops away from the last kept one and the next two or three
frames hurry to catch up (measured on the default model: 5-9x the clip's median joint
speed into the first frame, 2-4x into the next). ``join_runs`` removes it, per channel:

* each run of regenerated frames that is long enough starts (and, with kept frames
  after it, ends) with a bridge of ``BRIDGE_FRAMES`` frames: a cubic Hermite curve from
  the kept frame's position and velocity to the model's own position and velocity a
  bridge later. Position and velocity are continuous at both ends, the transient is
  gone, and past the bridge the model's motion is untouched;
* a short run between two kept frames is one Hermite curve from one to the other;
* a short run with kept frames on one side only (the end of a window) is moved so it
  starts where the kept motion was heading, the correction fading out with a cosine;
* channels are handled in groups that share a mask column, so a body-part edit joins
  the regenerated arms onto their own kept frames while the kept legs stay untouched.

The velocity at a kept frame comes from the kept frame beyond it; at a lone kept frame
(a keyframe between two regenerated runs) from the model's frames on both sides, so the
dance passes through the keyframe at the speed it was going.

All of this works in the model's normalised channel space (affine per channel), where a
velocity is the same as in metres. A 6D rotation moved a little is re-orthonormalised
when it becomes a matrix.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

BLEND_FRAMES = 10
"""Frames over which a one-sided correction fades out (a third of a second at 30 fps)."""

BRIDGE_FRAMES = 16
"""Frames a bridge replaces at a border (about half a second at 30 fps). The transient
measured on the default model lasts three to four frames; the bridge is longer so that
when the model's motion sits far from the kept pose the way there is unhurried. Tried
8, 12 and 16 with ``benchmarks/edit_check.py --bridges 8,12,16`` (3 songs x 2 dances x
3 seeds of every edit mode): the largest border jump
(``backend.metrics.basic.border_jump_ratio``) was 4.91, 3.08 and 3.07, and the keyframe
mode alone 4.91, 2.12 and 1.14 (docs/edit_check.md)."""


def cosine_fade(n: int, frames: int, device: torch.device | str = "cpu") -> Tensor:
    """(n,) weights: 1 at k = 0, falling with a cosine to 0 at k = ``frames`` and after."""
    k = torch.arange(n, device=device, dtype=torch.float32)
    return 0.5 * (1 + torch.cos(torch.pi * (k / max(frames, 1)).clamp(max=1.0)))


def hermite(p0: Tensor, v0: Tensor | float, p1: Tensor, v1: Tensor | float, intervals: int) -> Tensor:
    """(intervals - 1, C) frames strictly between p0 (with per-frame velocity v0) and p1
    (with v1), ``intervals`` frames apart, on the cubic Hermite curve joining them."""
    s = torch.arange(1, intervals, device=p0.device, dtype=p0.dtype)[:, None] / intervals
    h00, h10 = 2 * s**3 - 3 * s**2 + 1, s**3 - 2 * s**2 + s
    h01, h11 = -2 * s**3 + 3 * s**2, s**3 - s**2
    return h00 * p0 + h10 * intervals * v0 + h01 * p1 + h11 * intervals * v1


def runs(regenerated: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) of each run of True in a 1-D bool array."""
    padded = np.concatenate([[False], regenerated, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))


def join_runs(motion: Tensor, keep: Tensor, bridge: int = BRIDGE_FRAMES,
              fade: int = BLEND_FRAMES) -> Tensor:
    """Join each regenerated run onto its kept neighbours, continuous in position and speed.

    motion: (T, C) kept values where ``keep`` is True, the model's frames elsewhere;
    keep: (T, C) bool. Kept entries are returned unchanged. ``bridge`` 0 uses only the
    heading shift with a cosine fade (and only from the left on a run with kept frames on
    both sides): that is how a dance's window seams are joined, see ``edge_generator``.
    """
    total = motion.shape[0]
    out = motion.clone()
    patterns, group = torch.unique(keep.T.cpu(), dim=0, return_inverse=True)
    for index, pattern in enumerate(patterns):
        if bool(pattern.all()):
            continue
        channels = torch.nonzero(group == index).flatten().to(motion.device)
        m = motion[:, channels]
        for a, b in runs(~pattern.numpy()):
            left, right = a > 0, b < total
            if left or right:
                out[a:b, channels] = _join_run(m, pattern, a, b, left, right, bridge, fade)
    return out


def _join_run(m: Tensor, kept: Tensor, a: int, b: int, left: bool, right: bool, bridge: int,
              fade: int) -> Tensor:
    """The joined frames [a, b) of one run (see the module docstring for the cases)."""
    n = b - a
    run = m[a:b].clone()
    if bridge > 0 and left and right and n <= 2 * bridge + 1:
        return hermite(m[a - 1], _velocity(m, kept, a - 1, -1), m[b], _velocity(m, kept, b, 1), n + 1)
    if bridge == 0 or n <= bridge + 1:  # no bridge: shift it to where the kept motion heads
        if left:
            offset = m[a - 1] + _velocity(m, kept, a - 1, -1) - run[0]
            return run + offset * cosine_fade(n, fade, m.device)[:, None]
        offset = m[b] - _velocity(m, kept, b, 1) - run[-1]
        return run + offset * cosine_fade(n, fade, m.device).flip(0)[:, None]
    if left:  # bridge from kept frame a-1 to the model's frame a+bridge
        c = a + bridge
        run[:bridge] = hermite(m[a - 1], _velocity(m, kept, a - 1, -1), m[c], m[c + 1] - m[c], bridge + 1)
    if right:  # bridge from the model's frame b-1-bridge to kept frame b
        c = b - 1 - bridge
        run[n - bridge:] = hermite(m[c], m[c] - m[c - 1], m[b], _velocity(m, kept, b, 1), bridge + 1)
    return run


def _velocity(m: Tensor, kept: Tensor, frame: int, away: int) -> Tensor | float:
    """Per-frame velocity at a kept ``frame`` on a run's border (``away``: -1 if the
    run is after it, +1 if before): from the kept frame beyond when there is one, else
    (a lone keyframe) the model's own velocity through it."""
    beyond = frame + away
    if not 0 <= beyond < m.shape[0]:
        return 0.0
    if bool(kept[beyond]):
        return (m[frame] - m[beyond]) * -away
    if frame - 1 < 0 or frame + 1 >= m.shape[0]:
        return 0.0
    return 0.5 * (m[frame + 1] - m[frame - 1])
