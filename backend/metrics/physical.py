"""Physical plausibility of a dance: foot and body contact, skating, jitter, freezing.

All inputs are joint positions (T, 24, 3) in metres, Z-up, SMPL joint order, at ``fps``
(30 by default). The contact scores follow their reference code exactly at 30 fps:

* ``pfc`` -- EDGE's Physical Foot Contact (Tseng et al., CVPR 2023), ``Stanford-TML/EDGE``
  ``eval/eval_pfc.py`` ``calc_physical_score``. Lower is better.
* ``pbc`` -- POPDG's Physical Body Contact (Luo et al., CVPR 2024), ``Luke-Luo1/POPDG``
  ``eval/eval_pbc.py``.

Both references compute at 30 fps and use per-frame displacements (metres per frame)
for the contact joints. At other frame rates we use the displacement per 1/30 s (speed
/ 30), which equals theirs at 30 fps and keeps the numbers comparable elsewhere.

The other measures are ours: ``foot_skating_ratio`` (floor-level foot joints sliding
faster than our contact speed), ``jitter`` (mean jerk), ``freeze_report`` (windows
with almost no motion energy).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.motion.contacts import CONTACT_SPEED_M_PER_S
from backend.motion.skeleton import (
    FOOT_CONTACT_JOINTS, JOINT_INDEX, NUM_JOINTS, SOLE_BELOW_FOOT_JOINT, rest_joint_positions,
)

REFERENCE_FPS: float = 30.0
"""The rate EDGE and POPDG compute at (their DT = 1/30)."""

CONTACT_SCORE_SCALE: float = 10_000.0
"""EDGE and POPDG print ``np.mean(scores) * 10000``; a clip's score carries the same
factor, so the mean of our per-clip values over a set is their reported number."""

ACCEL_FLOOR_M_S2: float = 1e-6
"""Below this peak acceleration a track counts as not accelerating at all. Dividing by
the clip maximum would otherwise blow float rounding (a constant velocity's second
difference is ~1e-13, not 0) up to a full-size acceleration; real motion is many orders
above it, so the reference results are unchanged."""

_J = JOINT_INDEX
_LEFT_FOOT = (_J["left_ankle"], _J["left_foot"])
_RIGHT_FOOT = (_J["right_ankle"], _J["right_foot"])

PBC_TERMS: tuple[tuple[tuple[int, ...], int, float], ...] = (
    ((_J["left_wrist"], _J["left_hand"]), _J["left_collar"], 0.01),
    ((_J["right_wrist"], _J["right_hand"]), _J["right_collar"], 0.01),
    ((_J["head"],), _J["neck"], 0.1),
)
"""POPDG's upper-body terms: (moving joints, min over them), accelerating joint, weight."""

SKATING_JOINTS: tuple[int, ...] = FOOT_CONTACT_JOINTS
"""Ankles and toe bases, EDGE's four contact joints: a heel on the floor slides too."""

SKATING_HEIGHT_M: float = 0.05
"""A foot joint within 5 cm of its standing height counts as on the floor (the 5 cm of
Guided Motion Diffusion's foot-skating ratio, Karunratanakul et al., ICCV 2023)."""

SKATING_SPEED_M_S: float = CONTACT_SPEED_M_PER_S
"""Faster than our contact speed (0.3 m/s, 1 cm/frame at 30 fps, EDGE/POPDG): a joint on
the floor our contact labels would not call planted is sliding."""


def rest_clearance() -> np.ndarray:
    """(24,) height of each joint above the floor when the rest pose stands on it."""
    z = rest_joint_positions()[:, 2]
    return z - z.min() + SOLE_BELOW_FOOT_JOINT


def _check(positions: np.ndarray, fps: float, min_frames: int, smpl: bool = True) -> np.ndarray:
    """Positions as float64 (T, J, 3); ValueError with the reason otherwise."""
    fps = float(fps)
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"fps must be a positive number, got {fps}")
    p = np.asarray(positions, dtype=np.float64)
    joints = f"{NUM_JOINTS}" if smpl else "J"
    if p.ndim != 3 or p.shape[-1] != 3 or (smpl and p.shape[1] != NUM_JOINTS) or p.shape[1] == 0:
        raise ValueError(f"positions must be (T, {joints}, 3), got shape {p.shape}")
    if len(p) < min_frames:
        raise ValueError(f"need at least {min_frames} frames, got {len(p)}")
    if not np.isfinite(p).all():
        raise ValueError("positions contain NaN or infinite values")
    return p


def _normalised_accel(track: np.ndarray, fps: float, clamp_up: bool = False) -> np.ndarray:
    """(T-2,) acceleration magnitude of a (T, 3) track over its clip maximum.

    clamp_up: drop downward (negative Z) acceleration first, as EDGE does for the root:
    falling is what gravity does, not something the feet must push for. A track whose
    peak is under ``ACCEL_FLOOR_M_S2`` gives all zeros (EDGE would divide by zero, or
    by rounding noise).
    """
    acc = np.diff(track, n=2, axis=0) * fps**2
    if clamp_up:
        acc[:, 2] = np.maximum(acc[:, 2], 0.0)
    mag = np.linalg.norm(acc, axis=-1)
    peak = mag.max(initial=0.0)
    return mag / peak if peak > ACCEL_FLOOR_M_S2 else np.zeros_like(mag)


def _steps(p: np.ndarray, joints: tuple[int, ...], fps: float, horizontal: bool) -> np.ndarray:
    """(T-2, len(joints)) displacement from frame t+1 to t+2, metres per 1/30 s.

    Aligned with the acceleration at frame t+1 (from frames t..t+2), as EDGE aligns them.
    """
    dims = slice(0, 2) if horizontal else slice(0, 3)
    step = np.diff(p[:, list(joints), dims], axis=0)[1:]
    return np.linalg.norm(step, axis=-1) * (fps / REFERENCE_FPS)


def _foot_term(p: np.ndarray, fps: float) -> np.ndarray:
    """(T-2,) EDGE's per-frame foot loss: min left step * min right step * root accel."""
    root = _normalised_accel(p[:, _J["pelvis"]], fps, clamp_up=True)
    left = _steps(p, _LEFT_FOOT, fps, horizontal=True).min(axis=1)
    right = _steps(p, _RIGHT_FOOT, fps, horizontal=True).min(axis=1)
    return left * right * root


def pfc(positions: np.ndarray, fps: float = 30.0) -> float:
    """EDGE's Physical Foot Contact score of one clip (x 10,000; lower is better).

    A root that accelerates needs a foot on the floor to push from; a foot that pushes
    is (nearly) still. Per frame: the pelvis acceleration (upward part clamped to >= 0,
    so free fall costs nothing) over its clip maximum, times, for each foot, the smaller
    horizontal step of its ankle and toe base; the clip's score is the mean over frames
    times 10,000. A body that does not move scores exactly 0.
    """
    p = _check(positions, fps, min_frames=3)
    return float(_foot_term(p, float(fps)).mean() * CONTACT_SCORE_SCALE)


def pbc(positions: np.ndarray, fps: float = 30.0) -> float:
    """POPDG's Physical Body Contact score of one clip (x 10,000), as their code has it.

    POPDG extends EDGE's idea to the upper body: per frame, for each term of
    ``PBC_TERMS``, weight * (smaller 3D step of the moving joints) * (acceleration of the
    accelerating joint over its clip maximum): left wrist/hand with the left collar (0.01),
    right wrist/hand with the right collar (0.01), head with the neck (0.1). Their code
    then *subtracts* EDGE's foot term and takes the mean x 10,000, so the score can be
    negative, and a motion that moves only the root and feet scores exactly -PFC. Their
    root normalisation divides by zero for a still body (NaN); ours gives 0 there.
    """
    p = _check(positions, fps, min_frames=3)
    fps = float(fps)
    upper = np.zeros(len(p) - 2)
    for movers, accelerating, weight in PBC_TERMS:
        step = _steps(p, movers, fps, horizontal=False).min(axis=1)
        upper += weight * step * _normalised_accel(p[:, accelerating], fps)
    return float((upper - _foot_term(p, fps)).mean() * CONTACT_SCORE_SCALE)


def foot_skating_ratio(
    positions: np.ndarray, fps: float = 30.0,
    height_threshold_m: float = SKATING_HEIGHT_M, speed_threshold_m_s: float = SKATING_SPEED_M_S,
) -> float:
    """Share of frame steps (t -> t+1) in which some foot joint slides on the floor.

    Foot joints: ankles and toe bases. A joint is on the floor when its height above
    z = 0, minus its height in the rest pose standing on the floor, is below
    ``height_threshold_m`` in both frames (so a flat foot reads ~0 at ankle and toe); it
    slides when its horizontal speed over the step exceeds ``speed_threshold_m_s``.
    0 for planted feet, 1 when some foot slides along the floor throughout.
    """
    p = _check(positions, fps, min_frames=2)
    feet = p[:, list(SKATING_JOINTS)]
    height = feet[..., 2] - rest_clearance()[list(SKATING_JOINTS)]
    low = height < height_threshold_m
    on_floor = low[1:] & low[:-1]
    speed = np.linalg.norm(np.diff(feet[..., :2], axis=0), axis=-1) * float(fps)
    sliding = on_floor & (speed > speed_threshold_m_s)
    return float(sliding.any(axis=1).mean())


def jitter(positions: np.ndarray, fps: float = 30.0) -> float:
    """Mean jerk magnitude, m/s^3: |third finite difference| * fps^3 over joints and frames.

    Smooth human motion has modest jerk; frame-to-frame noise in generated motion
    multiplies it, so this separates shaky from smooth clips of similar speed.
    """
    p = _check(positions, fps, min_frames=4, smpl=False)
    return float(np.linalg.norm(np.diff(p, n=3, axis=0), axis=-1).mean() * float(fps) ** 3)


@dataclass(frozen=True, eq=False)
class FreezeReport:
    """How much of a clip stands still, by windows of motion energy.

    window_energy_ratio: per window, mean squared joint speed over the clip's mean;
    frozen_windows: windows below the threshold; frozen_fraction: their share;
    min_ratio: the lowest window's ratio.
    """

    window_energy_ratio: np.ndarray
    frozen_windows: int
    frozen_fraction: float
    min_ratio: float


def freeze_report(
    positions: np.ndarray, fps: float = 30.0, window_seconds: float = 1.0, threshold: float = 0.1,
) -> FreezeReport:
    """Motion energy per window relative to the whole clip; windows below ``threshold`` are frozen.

    Energy of a frame step: squared joint speed (m/s)^2, mean over joints. The steps are
    cut into ``max(1, (T-1) // w)`` consecutive windows of about w = window_seconds * fps
    steps each (the remainder spread over them). A model that "freezes" (a common failure
    of generated dance) shows windows with a small fraction of the clip's energy. A clip
    that never moves has no energy to compare with: all its windows count as frozen.
    """
    if not window_seconds > 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds}")
    p = _check(positions, fps, min_frames=2, smpl=False)
    energy = (np.linalg.norm(np.diff(p, axis=0), axis=-1) * float(fps)) ** 2
    energy = energy.mean(axis=1)  # (T-1,)
    window = max(1, round(window_seconds * float(fps)))
    parts = np.array_split(energy, max(1, len(energy) // window))
    means = np.array([part.mean() for part in parts])
    overall = energy.mean()
    ratio = means / overall if overall > 0 else np.zeros_like(means)
    frozen = int((ratio < threshold).sum())
    return FreezeReport(window_energy_ratio=ratio, frozen_windows=frozen,
                        frozen_fraction=frozen / len(ratio), min_ratio=float(ratio.min()))


def frozen_fraction(positions: np.ndarray, fps: float = 30.0) -> float:
    """Share of 1 s windows with under a tenth of the clip's mean motion energy."""
    return freeze_report(positions, fps).frozen_fraction
