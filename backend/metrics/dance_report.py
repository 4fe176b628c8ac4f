"""Does a generator dance? Four checks, measured the same way by tests and the model card.

For one song and seed, ``measure_dance`` generates and reports:

* keeps moving: mean joint speed over the last 10 s relative to the first 10 s;
* moves in time: beat alignment (``backend.metrics.basic``) against the song's beats,
  and against the same beats moved half a beat later (a motion that ignores the beat
  scores about the same on both);
* feet on the floor: median and 5th/95th percentiles of the sole height;
* seams: the largest joint-speed jump at a window seam over the median speed.

``style_vector`` summarises a dance (speed and height statistics per body part), so
that different songs can be compared with different seeds of the same song.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from backend.metrics.basic import beat_alignment, joint_positions, joint_speed, seam_jump_ratio, sole_height
from backend.models.base import Generator, GenerationRequest
from backend.motion.clip import MotionClip
from backend.music.features import MusicAnalysis

BODY_PARTS = {"legs": [4, 5, 7, 8, 10, 11], "spine_head": [3, 6, 9, 12, 15],
              "arms": [16, 17, 18, 19, 20, 21, 22, 23], "pelvis": [0]}


@dataclass
class DanceMeasures:
    seconds: float
    speed_first_10s: float  # m/frame, mean over joints
    speed_last_10s: float
    beat_alignment: float
    beat_alignment_half_beat_off: float
    sole_height_median_m: float
    sole_height_p05_m: float
    sole_height_p95_m: float
    max_seam_jump: float  # x median frame-to-frame joint speed
    seams: int

    def to_dict(self) -> dict:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def generate_clip(generator: Generator, features: np.ndarray, seed: int,
                  options: dict | None = None) -> tuple[MotionClip, list[int]]:
    """Run a generator in process; returns the clip and the first frame of every chunk after the first."""
    chunks = list(generator.generate(GenerationRequest(features, seed=seed, options=options or {}),
                                     lambda: False, lambda stage, fraction: None))
    clip = MotionClip(
        rotations=np.concatenate([c.rotations for c in chunks]),
        root_translation=np.concatenate([c.root_translation for c in chunks]),
        fps=generator.fps, contacts=np.concatenate([c.contacts for c in chunks]),
        contact_names=tuple(generator.contact_names))
    return clip, [c.start for c in chunks[1:]]


def measure_dance(clip: MotionClip, music: MusicAnalysis, seams: list[int]) -> DanceMeasures:
    positions = joint_positions(clip)
    speed = joint_speed(positions)
    ten = int(10 * clip.fps)
    beat_frames = np.round(np.asarray(music.beat_times) * clip.fps)
    period = float(np.median(np.diff(music.beat_times))) if len(music.beat_times) > 1 else 0.5
    shifted = np.round((np.asarray(music.beat_times) + period / 2) * clip.fps)
    inside = lambda f: f[f < clip.num_frames - 1]  # noqa: E731
    soles = sole_height(positions)
    return DanceMeasures(
        seconds=clip.seconds,
        speed_first_10s=float(speed[:ten].mean()),
        speed_last_10s=float(speed[-ten:].mean()),
        beat_alignment=beat_alignment(positions, inside(beat_frames)),
        beat_alignment_half_beat_off=beat_alignment(positions, inside(shifted)),
        sole_height_median_m=float(np.median(soles)),
        sole_height_p05_m=float(np.percentile(soles, 5)),
        sole_height_p95_m=float(np.percentile(soles, 95)),
        max_seam_jump=seam_jump_ratio(positions, seams),
        seams=len(seams),
    )


def style_vector(clip: MotionClip) -> np.ndarray:
    """Per body part: mean and spread of joint speed, mean height; plus travel of the root."""
    positions = joint_positions(clip)
    step = np.linalg.norm(np.diff(positions, axis=0), axis=-1)  # (T-1, 24)
    parts = []
    for joints in BODY_PARTS.values():
        s = step[:, joints].mean(axis=1)
        parts += [s.mean(), s.std(), positions[:, joints, 2].mean(), positions[:, joints, 2].std()]
    travel = np.linalg.norm(np.diff(clip.root_translation[:, :2], axis=0), axis=-1).mean()
    return np.array(parts + [travel], dtype=np.float64)


def style_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Relative difference of two style vectors (scale-free, 0 = identical)."""
    return float(np.linalg.norm(a - b) / (0.5 * (np.linalg.norm(a) + np.linalg.norm(b)) + 1e-12))
