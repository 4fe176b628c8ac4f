"""Simple, well-defined measures of a dance clip, used by tests and the model card.

All inputs are our convention: 30 fps (or the clip's fps), Z-up, metres.

* joint speed: mean over joints of the frame-to-frame displacement (m/frame);
* beat alignment: the default form of ``backend.metrics.beats`` (averaged over music
  beats, Bailando-style), taking beat frames instead of times;
* sole height: the lowest joint's height minus the sole clearance of the skeleton,
  so a foot flat on the floor reads 0.
"""

from __future__ import annotations

import numpy as np

from backend.metrics.beats import beat_align_music
from backend.motion.clip import MotionClip
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_ as rot
from backend.motion.skeleton import SOLE_BELOW_FOOT_JOINT


def joint_positions(clip: MotionClip) -> np.ndarray:
    """(T, 24, 3) world positions of a clip."""
    mats = rot.quaternion_to_matrix(clip.rotations.astype(np.float64))
    positions, _ = forward_kinematics_np(mats, clip.root_translation.astype(np.float64))
    return positions


def joint_speed(positions: np.ndarray) -> np.ndarray:
    """(T-1,) mean over joints of each frame-to-frame displacement (metres per frame)."""
    return np.linalg.norm(np.diff(positions, axis=0), axis=-1).mean(axis=-1)


def beat_alignment(positions: np.ndarray, music_beat_frames: np.ndarray, fps: float = 30.0) -> float:
    """The default beat alignment (docs/metrics.md) of a clip against music beats given in frames."""
    return beat_align_music(positions, np.asarray(music_beat_frames, dtype=np.float64) / fps, fps)


def sole_height(positions: np.ndarray) -> np.ndarray:
    """(T,) height of the lowest joint above the floor, minus the sole clearance."""
    return positions[..., 2].min(axis=-1) - SOLE_BELOW_FOOT_JOINT


def seam_jump_ratio(positions: np.ndarray, seam_frames: list[int]) -> float:
    """Largest joint speed at the seams, over the clip's median frame-to-frame joint speed."""
    speed = joint_speed(positions)
    median = float(np.median(speed))
    at = [speed[f - 1] for f in seam_frames if 0 < f <= len(speed)]
    return max(at) / median if at and median > 0 else 0.0


def border_jump_ratio(positions: np.ndarray, regenerated: np.ndarray,
                      joints: list[int] | tuple[int, ...] | None = None) -> float:
    """How abruptly joint speed changes at an edit's borders, over the clip's median speed.

    positions: (T, J, 3); regenerated: (T,) bool, the frames an edit made. At each border
    (a frame whose status differs from the one before), the change of mean joint speed
    from one step to the next is taken at the four frames around it; the largest such
    change of the kept motion itself, at the two frames next to the border inside the
    kept part, is subtracted, because a dance may already be accelerating there (a beat
    hit) and carrying that on is not a jump. A pop or a snap at the border shows as a
    change of several medians. ``joints`` restricts speeds and median to a joint group.
    docs/editing.md states the bound (3).
    """
    p = positions if joints is None else positions[:, list(joints)]
    speed = joint_speed(p)  # speed[k]: frame k -> k+1
    total = len(speed) + 1
    change = np.zeros(total)
    change[1:-1] = np.abs(np.diff(speed))  # change[f]: speed out of f minus speed into f
    median = float(np.median(speed))
    regen = np.asarray(regenerated, dtype=bool)
    worst = 0.0
    for b in np.flatnonzero(regen[1:] != regen[:-1]) + 1:
        near = change[max(1, b - 2):min(total - 1, b + 2)]
        kept_side = range(b - 3, b - 1) if not regen[b - 1] else range(b + 1, b + 3)
        inside = [change[f] for f in kept_side
                  if 1 <= f < total - 1 and not regen[f - 1:f + 2].any()]
        worst = max(worst, float(near.max(initial=0.0)) - max(inside, default=0.0))
    return worst / median if median > 0 else 0.0
