"""The entry points: a procedural dance clip (and the plan it danced) for beats and music."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d

from backend.conventions import FPS
from backend.motion.clip import MotionClip
from backend.motion.contacts import contact_labels
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_ as rot
from backend.motion.skeleton import FOOT_CONTACT_JOINTS, JOINT_NAMES
from backend.training.procedural.body_pose import pose_body
from backend.training.procedural.errors import ProceduralError
from backend.training.procedural.music_descriptor import MusicDescriptor
from backend.training.procedural.plan import BodyStyle, Phrase, phrase_weights, plan_phrases
from backend.training.procedural.timeline import Timeline


CONTACT_JOINTS: tuple[int, ...] = FOOT_CONTACT_JOINTS
"""Contacts stored in procedural clips: EDGE's four foot joints (the FOOT_LAYOUT set)."""


def _validated(beat_times: np.ndarray, seconds: float, fps: float) -> np.ndarray:
    if not (np.isfinite(fps) and 1 <= fps <= 240):
        raise ProceduralError("bad_fps", f"fps must be between 1 and 240, got {fps!r}")
    if not (np.isfinite(seconds) and 1.0 <= seconds <= 3600.0):
        raise ProceduralError("bad_duration", f"seconds must be between 1 and 3600, got {seconds!r}")
    beats = np.asarray(beat_times, dtype=np.float64)
    if beats.ndim != 1 or len(beats) < 2 or not np.isfinite(beats).all():
        raise ProceduralError("bad_beats", "beat_times must be a 1-D array of at least two finite times")
    if np.any(np.diff(beats) <= 0):
        raise ProceduralError("bad_beats", "beat_times must be strictly increasing")
    period = float(np.median(np.diff(beats)))
    if not 0.25 <= period <= 1.6:
        raise ProceduralError("bad_beats", f"median beat interval {period:.3f} s is outside 0.25..1.6 s (37..240 BPM)")
    return beats


@dataclass
class DancePlan:
    """What was chosen for a clip: for inspection, tests and the dataset manifest."""

    phrases: list[Phrase]
    style: BodyStyle
    half_time: bool
    bpm: float


def procedural_dance(beat_times: np.ndarray, seconds: float, music_descriptor: MusicDescriptor | dict,
                     rng: np.random.Generator, fps: float = FPS) -> MotionClip:
    """A dance clip to the given beats and music, on the SMPL skeleton (see module doc)."""
    return procedural_dance_with_plan(beat_times, seconds, music_descriptor, rng, fps)[0]


def procedural_dance_with_plan(beat_times: np.ndarray, seconds: float, music_descriptor: MusicDescriptor | dict,
                               rng: np.random.Generator, fps: float = FPS) -> tuple[MotionClip, DancePlan]:
    """As ``procedural_dance``, with the plan. The dance follows the descriptor's
    ``heard_beats`` (the beats the model is shown) when it has at least four usable ones,
    else ``beat_times``."""
    beats = _validated(beat_times, seconds, fps)
    n = int(np.floor(seconds * fps + 1e-6))
    if isinstance(music_descriptor, dict):
        music_descriptor = MusicDescriptor.from_dict(music_descriptor, n, fps)
    if not isinstance(music_descriptor, MusicDescriptor):
        raise ProceduralError("bad_descriptor", "music_descriptor must be a MusicDescriptor or a dict")
    downbeat_index = music_descriptor.downbeat_index
    heard = np.asarray(music_descriptor.heard_beats, dtype=np.float64)
    if len(heard) >= 4:
        try:
            beats, downbeat_index = _validated(heard, seconds, fps), music_descriptor.heard_downbeat_index
        except ProceduralError:
            pass  # a tempo the dance cannot use: keep the given beats
    if not 2 <= music_descriptor.beats_per_bar <= 8:
        raise ProceduralError("bad_descriptor", f"beats_per_bar must be 2..8, got {music_descriptor.beats_per_bar}")
    curves = music_descriptor.curves_at(n, fps)
    tl = Timeline.build(beats, music_descriptor.beats_per_bar, downbeat_index, n, fps)
    style = BodyStyle.sample(rng)
    phrases = plan_phrases(tl, curves, style, rng)
    weights = phrase_weights(tl, phrases)

    # Continuous, music-driven intensities (about half a second of smoothing).
    energy = gaussian_filter1d(curves["energy"], 0.25 * fps, mode="nearest")
    amp = style.amp * (0.4 + 0.8 * energy)
    height = style.arm_height + 0.2 * (gaussian_filter1d(curves["brightness"], 0.25 * fps, mode="nearest") - 0.5) \
        + 0.1 * (energy - 0.5)
    sharp = style.sharpness * (1.0 + 1.5 * gaussian_filter1d(curves["onset_density"], 0.25 * fps, mode="nearest"))

    rotations, root = pose_body(tl, phrases, weights, style, energy, amp, height, sharp, fps)
    quats = rot.quaternion_sign_continuity(rot.matrix_to_quaternion(rotations))
    positions, _ = forward_kinematics_np(rotations, root)
    clip = MotionClip(
        rotations=quats, root_translation=root, fps=float(fps),
        contacts=contact_labels(positions, CONTACT_JOINTS, fps),
        contact_names=tuple(JOINT_NAMES[j] for j in CONTACT_JOINTS))
    return clip, DancePlan(phrases, style, tl.pulse_seconds > 1.5 * 60.0 / tl.bpm, tl.bpm)
