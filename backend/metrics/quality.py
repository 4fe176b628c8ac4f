"""Does it look like people dancing? Three measures that separate real dance from a twitch.

Issue 13 measured every bundled model against real CMU dance and found the models hold
one stance and twitch on the beats. The field's metrics (beat alignment, FID, PFC) did
not show it; these do, and they are cheap enough to run on every dance:

* ``pose_spread`` (m): how far the body's shape travels from its average shape. A dancer
  who reaches, kneels and turns spreads 0.17-0.24 m; a stance with wiggles spreads less
  than 0.1 m.
* ``jerk_per_unit_speed`` (1/s^2): mean jerk over mean speed. Jerk alone grows with
  speed; divided by speed it measures how shaky the motion is for how much it moves.
  Real dance: a few hundred; twitching: near a thousand and above.
* ``beat_alignment_margin``: beat alignment against the dance's own song minus against
  another song's beats. Any restless motion stops near *some* beats; only a dance that
  follows its music scores better on its own song than on a different one.

Inputs: positions (T, 24, 3) world joint positions, metres, Z-up, SMPL joint order
(pelvis = joint 0), at ``fps`` frames per second; beats as times in seconds.
Definitions and real CMU values: docs/metrics.md ("Does it look like dancing?").

``python -m backend.metrics.quality FILE.bvh|FILE.npz ...`` prints the measures of
motion files (BVH retargeted onto SMPL by our importer), to put real motion capture
beside generated dance.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from backend.metrics.basic import joint_speed
from backend.metrics.beats import beat_align_music
from backend.metrics.physical import jitter

PELVIS: int = 0


def _check(positions: np.ndarray, fps: float | None = None, min_frames: int = 2) -> np.ndarray:
    """Positions as float64 (T, J, 3) with at least ``min_frames`` frames; ValueError otherwise."""
    p = np.asarray(positions, dtype=np.float64)
    if p.ndim != 3 or p.shape[-1] != 3 or p.shape[1] == 0:
        raise ValueError(f"positions must be (T, J, 3), got shape {p.shape}")
    if len(p) < min_frames:
        raise ValueError(f"need at least {min_frames} frames, got {len(p)}")
    if not np.isfinite(p).all():
        raise ValueError("positions contain NaN or infinite values")
    if fps is not None and not (np.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a positive number, got {fps}")
    return p


def pose_spread(positions: np.ndarray) -> float:
    """Mean over joints of how much each joint moves about the pelvis, in metres.

    For each joint: its position relative to the pelvis, the standard deviation over
    time on each axis (population, ddof 0), the norm of those three; then the mean over
    all joints (the pelvis itself counts, with 0). Relative to the pelvis so that
    travelling across the floor does not count as a pose change, while kneeling, leaning,
    reaching and turning (a turn moves every joint about the pelvis) do.
    """
    p = _check(positions, min_frames=1)
    relative = p - p[:, PELVIS:PELVIS + 1]
    return float(np.linalg.norm(relative.std(axis=0), axis=-1).mean())


def mean_joint_speed_mps(positions: np.ndarray, fps: float = 30.0) -> float:
    """Mean over frame steps and joints of |p[t+1] - p[t]| * fps, in m/s.

    ``basic.joint_speed`` (metres per frame, per step) times fps, averaged: forward
    differences, as the jerk below uses, so the two are on the same footing.
    """
    p = _check(positions, fps, min_frames=2)
    return float(joint_speed(p).mean() * float(fps))


def jerk_per_unit_speed(positions: np.ndarray, fps: float = 30.0) -> float:
    """Mean jerk over mean speed, in 1/s^2 (0.0 for a body that does not move).

    Jerk: ``physical.jitter``, the mean over frames and joints of |third forward
    difference| * fps^3 (m/s^3). Speed: ``mean_joint_speed_mps`` (m/s). Jerk grows with
    how much a dance moves, so jitter alone cannot tell vigorous from shaky; per unit of
    speed it can. For a sinusoid of angular frequency w the ratio is w^2 (finite
    differences: (2 fps sin(w / 2 fps))^2), whatever its amplitude: a 1 Hz sway reads
    39, a 5 Hz twitch 900 at 30 fps; real CMU dance reads 200-470.
    """
    p = _check(positions, fps, min_frames=4)
    speed = mean_joint_speed_mps(p, fps)
    return float(jitter(p, fps) / speed) if speed > 0 else 0.0


def beat_alignment_margin(positions: np.ndarray, own_beat_times: np.ndarray,
                          other_beat_times: np.ndarray, fps: float = 30.0) -> float:
    """Beat alignment against the dance's own song minus against another song, in [-1, 1].

    Both terms are ``beats.beat_align_music`` (Bailando's form, averaged over music
    beats; docs/metrics.md): each music beat inside the dance scores
    exp(-d^2 / 2 sigma^2), d = frames to the nearest motion beat, with sigma = 3 frames
    at 30 fps = 0.1 s (scaled with fps, so 0.1 s at any rate), and motion beats are the
    local minima of the mean joint speed (central differences) after Gaussian smoothing
    with sigma = 2.5 frames at 30 fps (83 ms, Bailando's 5 frames at 60 fps). That is
    this definition's "music-averaged, sigma = 0.1 s, minima of the smoothed mean joint
    speed"; the motion beats are the same in both terms, only the music changes.

    ``other_beat_times`` are cut to the dance's length (beats after its last frame are
    dropped), so a longer other song cannot change the score. A restless motion stops
    near some beats of any song; a dance that follows its song scores above 0, one
    that ignores it about 0.
    """
    p = _check(positions, fps, min_frames=2)
    fps = float(fps)
    other = np.asarray(other_beat_times, dtype=np.float64)
    other = other[other <= (len(p) - 1) / fps]
    return beat_align_music(p, own_beat_times, fps) - beat_align_music(p, other, fps)


TOE_JOINTS: tuple[int, int] = (10, 11)
"""left_foot, right_foot: SMPL's toe-base joints."""
TOE_LOW_M: float = 0.05
TOE_SLIDE_M_S: float = 0.5
"""Issue 13's foot skating: a toe within 5 cm of the floor (above its standing height)
moving faster than 0.5 m/s. Stricter on height and looser on speed than
``physical.foot_skating_ratio`` (ankles too, 0.3 m/s), it asks what an animator sees: a
toe sweeping along the floor."""
FREEZE_WINDOW_S: float = 10.0


def toe_sliding_frames(positions: np.ndarray, fps: float = 30.0) -> np.ndarray:
    """(T,) True where a toe, low in this frame and the next, moves faster than ``TOE_SLIDE_M_S``
    over the floor to the next frame (the last frame copies the one before)."""
    from backend.metrics.physical import rest_clearance

    p = _check(positions, fps, min_frames=1)
    toes = list(TOE_JOINTS)
    height = p[:, toes, 2] - rest_clearance()[toes]
    low = (height[1:] < TOE_LOW_M) & (height[:-1] < TOE_LOW_M)
    speed = np.linalg.norm(np.diff(p[:, toes, :2], axis=0), axis=-1) * float(fps)
    sliding = (low & (speed > TOE_SLIDE_M_S)).any(axis=1)
    return np.append(sliding, sliding[-1:]) if len(sliding) else np.zeros(len(p), dtype=bool)


def toe_skating(positions: np.ndarray, fps: float = 30.0) -> float:
    """Share of frames in which a toe skates (``toe_sliding_frames``), in [0, 1]."""
    return float(toe_sliding_frames(positions, fps).mean())


def sole_heights(positions: np.ndarray) -> np.ndarray:
    """(T,) height of the lowest joint above the floor, minus the sole below the toe joints."""
    from backend.motion.skeleton import SOLE_BELOW_FOOT_JOINT

    return _check(positions, None, min_frames=1)[..., 2].min(axis=-1) - SOLE_BELOW_FOOT_JOINT


def penetration(positions: np.ndarray) -> float:
    """How deep (m) the body goes into the floor at its worst frame; 0 if never."""
    return float(max(0.0, -sole_heights(positions).min()))


def freeze_ratio(positions: np.ndarray, fps: float = 30.0) -> float | None:
    """Mean joint speed over the last 10 s over that of the first 10 s; None for dances
    shorter than 20 s. Below 0.7 the dance runs down (issue 13's "freezing")."""
    p = _check(positions, fps, min_frames=2)
    n = int(round(FREEZE_WINDOW_S * fps))
    if len(p) < 2 * n:
        return None
    speed = joint_speed(p)  # (T-1,) mean over joints, per frame
    first = float(speed[:n].mean())
    return float(speed[-n:].mean() / first) if first > 0 else None


def quality_report(positions: np.ndarray, fps: float = 30.0) -> dict[str, float | None]:
    """The measures that need no music: pose spread, mean joint speed, jerk per unit speed,
    and the feet and freezing checks (toe skating, median sole height, penetration,
    last-10-s over first-10-s speed)."""
    return {"pose_spread": pose_spread(positions),
            "mean_joint_speed": mean_joint_speed_mps(positions, fps),
            "jerk_per_speed": jerk_per_unit_speed(positions, fps),
            "toe_skating": toe_skating(positions, fps),
            "sole_median": float(np.median(sole_heights(positions))),
            "penetration": penetration(positions),
            "freeze_ratio": freeze_ratio(positions, fps)}


def _load_positions(path: Path) -> tuple[np.ndarray, float]:
    """World joint positions and fps of a BVH (retargeted onto SMPL at 30 fps) or npz clip."""
    from backend.metrics.basic import joint_positions
    from backend.motion.bvh import load_bvh_clip
    from backend.motion.clip import MotionClip

    clip = load_bvh_clip(path) if path.suffix.lower() == ".bvh" else MotionClip.load_npz(path)
    return joint_positions(clip), float(clip.fps)


def main(argv: list[str] | None = None) -> int:
    """Print the music-free measures of motion files, one row each (a markdown table)."""
    paths = [Path(a) for a in (sys.argv[1:] if argv is None else argv)]
    if not paths:
        print("usage: python -m backend.metrics.quality FILE.bvh|FILE.npz ...", file=sys.stderr)
        return 2
    print("| clip | seconds | pose spread (m) | mean joint speed (m/s) | jerk per unit speed |")
    print("|---|---|---|---|---|")
    for path in paths:
        positions, fps = _load_positions(path)
        r = quality_report(positions, fps)
        print(f"| {path.stem} | {len(positions) / fps:.1f} | {r['pose_spread']:.3f} | "
              f"{r['mean_joint_speed']:.3f} | {r['jerk_per_speed']:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
