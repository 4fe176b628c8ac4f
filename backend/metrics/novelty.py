"""Does a generated dance copy its training data? Nearest-neighbour distance to the training set.

A network trained on 19 minutes of capture could learn to replay it. Issue 14 asks that no
stretch longer than 4 s reproduce a training clip. Per frame we take a short window of the
body's shape, placement removed, and find the nearest such window anywhere in the training
set. A stretch that copies training data stays near zero for its whole length; a new dance
comes close to some training pose now and then, but never for seconds on end.

* Window descriptor (``descriptors``): joint positions relative to the pelvis' floor point,
  turned so the hips face the same way, at t - 0.25 s, t and t + 0.25 s (ends clamped): the
  pose and where it is going, not where on the floor or which way it faces.
* Distance (``nearest_distances``): root-mean-square joint distance between two windows, in
  metres, to the nearest training window (training frames taken every ``stride`` frames).
* ``longest_copy_seconds``: the longest run of frames whose nearest distance stays under a
  threshold. The threshold and how it was chosen are stated where it is used
  (``benchmarks/held_out_check.py``).
"""

from __future__ import annotations

import numpy as np

WINDOW_OFFSETS_S = (-0.25, 0.0, 0.25)
LEFT_HIP, RIGHT_HIP = 1, 2  # SMPL joint indices (protocol/skeleton.py JOINT_NAMES)


def descriptors(positions: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """(T, 24 * 3 * 3) float32 heading- and placement-free windows of a (T, 24, 3) dance."""
    positions = np.asarray(positions, dtype=np.float64)
    frames = len(positions)
    hips = positions[:, LEFT_HIP, :2] - positions[:, RIGHT_HIP, :2]
    angle = np.arctan2(hips[:, 1], hips[:, 0])  # turn every frame so the hips point along +X
    cos, sin = np.cos(-angle), np.sin(-angle)
    parts = []
    for offset in WINDOW_OFFSETS_S:
        index = np.clip(np.arange(frames) + int(round(offset * fps)), 0, frames - 1)
        # the offset frame in the turned, placed body of frame t: motion relative to the dancer
        moved = positions[index] - positions[:, :1] * np.array([1.0, 1.0, 0.0])
        mx, my = moved[..., 0].copy(), moved[..., 1].copy()
        moved[..., 0] = cos[:, None] * mx - sin[:, None] * my
        moved[..., 1] = sin[:, None] * mx + cos[:, None] * my
        parts.append(moved.reshape(frames, -1))
    return np.concatenate(parts, axis=1).astype(np.float32)


def training_descriptors(dances: list[np.ndarray], fps: float = 30.0, stride: int = 2) -> np.ndarray:
    """Every ``stride``-th window of every training dance, stacked."""
    return np.concatenate([descriptors(p, fps)[::stride] for p in dances])


def nearest_distances(query: np.ndarray, training: np.ndarray, chunk: int = 256) -> np.ndarray:
    """(T,) RMS joint distance (metres) of each query window to its nearest training window."""
    values_per_window = query.shape[1] // 3
    train_sq = np.einsum("ij,ij->i", training, training)
    out = np.empty(len(query))
    for first in range(0, len(query), chunk):
        q = query[first:first + chunk]
        sq = np.einsum("ij,ij->i", q, q)[:, None] + train_sq[None, :] - 2.0 * (q @ training.T)
        out[first:first + chunk] = np.sqrt(np.maximum(sq.min(axis=1), 0.0) / values_per_window)
    return out


def longest_copy_seconds(distances: np.ndarray, threshold: float, fps: float = 30.0) -> float:
    """The longest run of consecutive frames closer than ``threshold`` to the training set."""
    longest = run = 0
    for close in np.asarray(distances) < threshold:
        run = run + 1 if close else 0
        longest = max(longest, run)
    return longest / fps
