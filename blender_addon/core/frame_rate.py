"""Frame rates: every conversion between the dance's rate and the scene's, in one place.

A dance comes at its model's rate (``motion_chunk.fps``, 30 for the bundled models); the
scene plays at ``render.fps / render.fps_base`` (24, 25, 29.97 ...). The add-on either
sets the scene to the dance's rate (fit "SCENE") or resamples the dance to the scene's
(fit "RESAMPLE"), and a regeneration maps the animator's scene frames back to the
dance's. All of that arithmetic lives here, pure numpy (no bpy), so the writer, the
regenerator, the retargeter and the contact curves cannot disagree by a frame.

The rule everywhere: frame ``i`` at rate ``r`` sits at ``i / r`` seconds from the
dance's frame 0, and a dance resampled to another rate keeps its first frame and its
duration (its last frame is the last whole target frame within it). ``1e-6`` absorbs
float error at whole frames, so 30 fps frames that fall exactly on 29.97 fps frames
count as on them.
"""

from __future__ import annotations

import numpy as np

from .quaternions import slerp

EPSILON = 1e-6
"""Frames: how close to a whole frame a float position counts as on it."""


def scene_rate(fps: int, fps_base: float) -> float:
    """Frames per second as Blender plays them: ``render.fps / render.fps_base``
    (29.97 is fps 30, base 1.001), and as the FBX exporter writes them."""
    if fps <= 0 or fps_base <= 0:
        raise ValueError(f"invalid frame rate: fps={fps}, fps_base={fps_base}")
    return fps / fps_base


def blender_rate(rate: float) -> tuple[int, float]:
    """``(render.fps, render.fps_base)`` for a rate: whole rates exactly, NTSC-style ones
    as n/1.001, any other as its ceiling over a base."""
    if abs(rate - round(rate)) < EPSILON:
        return int(round(rate)), 1.0
    ntsc = rate * 1.001
    if abs(ntsc - round(ntsc)) < 1e-3:
        return int(round(ntsc)), 1.001
    return int(np.ceil(rate)), float(np.ceil(rate) / rate)


def same_rate(a: float, b: float) -> bool:
    """Whether two rates are one (no resampling between them)."""
    return abs(a - b) < EPSILON


def frames_spanning(frames: int, source: float, target: float) -> int:
    """How many frames at ``target`` fps lie within ``frames`` frames at ``source`` fps
    (both counted from a shared frame 0, which both include)."""
    return int(np.floor((frames - 1) / source * target + EPSILON)) + 1


def positions(count: int, source: float, target: float) -> np.ndarray:
    """Where ``count`` frames at ``target`` fps fall among frames at ``source`` fps
    (fractional source frame numbers)."""
    return np.arange(count) * (source / target)


def nearest_frame(frame: float, source: float, target: float) -> int:
    """The ``target``-rate frame nearest to ``source``-rate ``frame`` (both from frame 0)."""
    return int(round(frame * (target / source)))


def target_span(first: int, stop: int, source: float, target: float) -> tuple[int, int]:
    """The ``target``-rate frames ``[lo, hi)`` whose times lie within source frames
    ``[first, stop - 1]``: what an edit of those frames changes at the other rate."""
    ratio = target / source
    return int(np.ceil(first * ratio - EPSILON)), int(np.floor((stop - 1) * ratio + EPSILON)) + 1


def resample_motion(rotations: np.ndarray, root: np.ndarray, source: float, target: float,
                    ) -> tuple[np.ndarray, np.ndarray]:
    """Motion at ``source`` fps resampled to ``target`` fps (slerp rotations, lerp root).

    The first frame stays the first frame; the result covers the same duration, so a
    30 s dance is 30 s long at 24, 25 or 29.97 fps. Both rates may be fractional.
    """
    frames = rotations.shape[0]
    count = frames_spanning(frames, source, target)
    at = positions(count, source, target)
    lo = np.clip(np.floor(at).astype(int), 0, frames - 1)
    hi = np.clip(lo + 1, 0, frames - 1)
    u = at - lo
    rot = slerp(rotations[lo], rotations[hi], np.broadcast_to(u[:, None], (count, rotations.shape[1])))
    return rot, root[lo] * (1 - u[:, None]) + root[hi] * u[:, None]


def resample_labels(labels: np.ndarray, source: float, target: float, frames: int | None = None,
                    ) -> np.ndarray:
    """Contact labels (T, C) at another rate: each new frame takes the nearest source
    frame's (a label is a yes/no, not something to blend). ``frames`` defaults to
    ``frames_spanning``."""
    labels = np.asarray(labels, dtype=np.float32)
    if labels.shape[0] == 0:
        return labels
    if frames is None:
        frames = frames_spanning(labels.shape[0], source, target)
    src = np.clip(np.round(positions(frames, source, target)).astype(int), 0, labels.shape[0] - 1)
    return labels[src]


class StreamResampler:
    """Turns ``source``-rate frames, as they stream in, into ``target``-rate frames not yet given.

    A target frame between the last two source frames so far may still move when the
    next source frame arrives, so it is held back until then (or until ``final``).
    """

    def __init__(self, source: float, target: float) -> None:
        self.source, self.target = source, target
        self.rotations: list[np.ndarray] = []
        self.root: list[np.ndarray] = []
        self.written = 0

    def add(self, rotations: np.ndarray, root: np.ndarray, final: bool) -> tuple[int, np.ndarray, np.ndarray]:
        """(first new target frame, rotations, root) that the frames so far determine."""
        self.rotations.append(rotations)
        self.root.append(root)
        rot = np.concatenate(self.rotations)
        rt = np.concatenate(self.root)
        out_rot, out_root = resample_motion(rot, rt, self.source, self.target)
        ready = out_rot.shape[0]
        if not final:  # only frames whose both neighbours have arrived
            ready = min(ready, frames_spanning(rot.shape[0] - 1, self.source, self.target))
        start = self.written
        self.written = max(self.written, ready)
        return start, out_rot[start:ready], out_root[start:ready]
