"""Procedural dance on the SMPL skeleton: timed by the beat, styled by the music.

Why this exists: no dance capture can be downloaded here, yet the bundled model has
to learn to keep moving through a song, move in time, keep its feet on the floor and
dance differently to different music. So we make training motion that has exactly
those properties, from a small vocabulary of moves:

* timing comes from the beat. Every frame gets a continuous *pulse phase*
  (interpolated between beat times), and every move is a function of that phase, so
  accents (the pelvis dip, a clap, the top of an arm pump, a foot landing) fall on
  beats. The phase nearly stops on every music beat and hurries between (BEAT_HOLD),
  and no move rests between beats, so whole-body speed minima sit on the beats the
  model is shown (``heard_beats``). Fast music (beats under 0.42 s apart) is danced
  in half time, as people do, still holding on every beat;
* style comes from the music, in ways the 35 music features can see: loudness
  (RMS, which MFCC 0 and the onset envelope carry) sets amplitude and picks
  energetic moves, brightness (spectral centroid, the MFCC slope) raises the arms,
  onset density (the onset peaks) picks busy moves, tempo picks stepping or
  grooving. Moves are chosen per phrase (two bars), a change in the music between
  phrases forces a change of move, and moves cross-fade over one beat;
* each clip also draws a body style (amplitude, posture, stance, asymmetry,
  personal move preferences), so one song can be danced many ways.

The lower body is planned as foot placements: a stepping foot lifts between beats
and lands on a beat, a planted foot never moves, soles sit on z = 0. Legs then
reach those placements by analytic two-bone IK from the hips, and the pelvis is
kept low enough that they always can. Arms are authored as wrist targets in the
chest frame and solved by the same IK, with elbows bending one way only.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
from scipy.ndimage import gaussian_filter1d

from backend.errors import InputError
from backend.conventions import FPS
from backend.motion.clip import MotionClip
from backend.motion.contacts import contact_labels
from backend.motion.kinematics import forward_kinematics_np
from backend.motion.rotations import np_ as rot
from backend.motion.skeleton import (
    FOOT_CONTACT_JOINTS, JOINT_INDEX, JOINT_NAMES, NUM_JOINTS, OFFSETS, PELVIS_REST_HEIGHT,
    SOLE_BELOW_FOOT_JOINT,
)


class ProceduralError(InputError):
    """Input the dance synthesiser cannot use; ``code`` is stable, the message is for people.

    code is ``"bad_beats"``, ``"bad_duration"``, ``"bad_fps"`` or ``"bad_descriptor"``.
    """


CONTACT_JOINTS: tuple[int, ...] = FOOT_CONTACT_JOINTS
"""Contacts stored in procedural clips: EDGE's four foot joints (the FOOT_LAYOUT set)."""

HALF_TIME_BELOW_SECONDS: float = 0.42
"""Beats closer than this (faster than ~143 BPM) are danced in half time."""

BEAT_HOLD: float = 0.9
"""How much the dance pulse slows on every music beat (0: steady, 1: a full stop).

The pulse phase is warped per music beat, phase' = 1 - BEAT_HOLD cos(2 pi u) with u the
position within the beat, so every move, whatever its shape, is slowest on the beat and
quickest between beats: whole-body joint speed has its minima on the beats (also on
the in-between beats of half time), as beat-alignment measures it."""

# ====================================================================== music


@dataclass
class MusicDescriptor:
    """What the dance follows in a piece of music, per motion frame.

    energy: (T,) loudness in [0, 1] (RMS, -40 dBFS -> 0, -6 dBFS -> 1)
    brightness: (T,) in [0, 1] (spectral centroid, 700 Hz -> 0, 7 kHz -> 1, log scale)
    onset_density: (T,) in [0, 1] (detected onsets per second / 8)
    beat_times: seconds of the beats, where known; beats_per_bar and downbeat_index
        (index into beat_times of one downbeat) place the bars.
    heard_beats: the beats ``backend.music.features.analyse_music`` finds in the audio as a
        dataset stores it (16-bit wav, decoded as training decodes it): the beats the
        model is shown. ``describe_music`` measures them; the dance follows them when there
        are enough (see ``procedural_dance_with_plan``). heard_downbeat_index: one of
        them, the nearest to the downbeat.
    """

    energy: np.ndarray
    brightness: np.ndarray
    onset_density: np.ndarray
    fps: float = float(FPS)
    beat_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    beats_per_bar: int = 4
    downbeat_index: int = 0
    heard_beats: np.ndarray = field(default_factory=lambda: np.zeros(0))
    heard_downbeat_index: int = 0

    CURVES = ("energy", "brightness", "onset_density")

    @classmethod
    def from_dict(cls, values: dict, num_frames: int, fps: float = FPS) -> "MusicDescriptor":
        """Scalars (constant over the clip) or per-frame arrays, keys as the fields; missing curves are 0.5."""
        known = set(cls.CURVES) | {"beat_times", "beats_per_bar", "downbeat_index"}
        unknown = set(values) - known
        if unknown:
            raise ProceduralError("bad_descriptor",
                                  f"unknown descriptor keys {sorted(unknown)}; known: {sorted(known)}")
        curves = {}
        for name in cls.CURVES:
            value = np.asarray(values.get(name, 0.5), dtype=np.float64)
            curves[name] = np.full(num_frames, float(value)) if value.ndim == 0 else value
        return cls(fps=float(fps), beat_times=np.asarray(values.get("beat_times", np.zeros(0)), dtype=np.float64),
                   beats_per_bar=int(values.get("beats_per_bar", 4)),
                   downbeat_index=int(values.get("downbeat_index", 0)), **curves)

    def excerpt(self, start: float, seconds: float) -> "MusicDescriptor":
        """The part from ``start`` for ``seconds``, with times shifted to start at 0."""
        a = int(round(start * self.fps))
        b = a + int(np.floor(seconds * self.fps + 1e-6))
        beats = self.beat_times - start
        keep = (beats >= -1e-6) & (beats < seconds)
        first = int(np.argmax(keep)) if keep.any() else 0
        heard = self.heard_beats - start
        heard_keep = (heard >= -1e-6) & (heard < seconds)
        heard_first = int(np.argmax(heard_keep)) if heard_keep.any() else 0
        return MusicDescriptor(
            energy=self.energy[a:b], brightness=self.brightness[a:b], onset_density=self.onset_density[a:b],
            fps=self.fps, beat_times=beats[keep], beats_per_bar=self.beats_per_bar,
            downbeat_index=(self.downbeat_index - first) % self.beats_per_bar,
            heard_beats=heard[heard_keep],
            heard_downbeat_index=(self.heard_downbeat_index - heard_first) % self.beats_per_bar)

    def curves_at(self, num_frames: int, fps: float) -> dict[str, np.ndarray]:
        """The three curves resampled to ``num_frames`` frames at ``fps`` (edges held), clipped to [0, 1]."""
        out = {}
        for name in self.CURVES:
            values = np.asarray(getattr(self, name), dtype=np.float64).reshape(-1)
            if len(values) == 0 or not np.isfinite(values).all():
                raise ProceduralError("bad_descriptor", f"descriptor {name} must be finite and non-empty")
            src_t = np.arange(len(values)) / self.fps
            out[name] = np.clip(np.interp(np.arange(num_frames) / fps, src_t, values), 0.0, 1.0)
        return out


def describe_music(samples: np.ndarray, sample_rate: int, beat_times: np.ndarray | None = None,
                   beats_per_bar: int = 4, downbeat_index: int | None = None, fps: float = FPS) -> MusicDescriptor:
    """Measure energy, brightness and onset density of mono audio with librosa.

    The beats the model will be shown are always measured (``heard_beats``): the audio is
    written as a dataset stores it (16-bit wav at ``sample_rate``), decoded as training
    decodes it, and run through ``backend.music.features.analyse_music``, the very tracker
    behind the BEAT_ONEHOT feature. beat_times None: those are the beats. Synthesised
    songs pass their true beats, which place the bars and stand in where the tracker
    finds too few beats; the dance follows the heard ones (the tracker may hear a
    latin song's beat on the off-beat, or a 170 BPM song at 85).
    downbeat_index None: guessed as the beat phase (mod beats_per_bar) with the
    strongest low-frequency (kick) onsets.
    """
    import librosa

    y = np.asarray(samples, dtype=np.float32).reshape(-1)
    if len(y) < sample_rate * 0.5:
        raise ProceduralError("bad_descriptor", f"need at least 0.5 s of audio, got {len(y) / sample_rate:.2f} s")
    hop = 512
    frame_t = librosa.frames_to_time(np.arange(1 + len(y) // hop), sr=sample_rate, hop_length=hop)
    n = int(np.floor(len(y) / sample_rate * fps + 1e-6))
    t = np.arange(n) / fps
    smooth = max(1.0, 0.4 * sample_rate / hop)  # ~0.4 s of analysis frames

    power = librosa.feature.rms(y=y, frame_length=2048, hop_length=hop)[0] ** 2
    power_s = gaussian_filter1d(power, smooth)
    db = 10.0 * np.log10(power_s + 1e-10)
    energy = np.clip((db + 40.0) / 34.0, 0.0, 1.0)

    centroid = librosa.feature.spectral_centroid(y=y, sr=sample_rate, n_fft=2048, hop_length=hop)[0]
    weighted = gaussian_filter1d(centroid * power, smooth) / (power_s + 1e-12)
    brightness = np.clip(np.log10(np.maximum(weighted, 1.0) / 700.0), 0.0, 1.0)

    envelope = librosa.onset.onset_strength(y=y, sr=sample_rate, hop_length=hop)
    onsets = librosa.onset.onset_detect(onset_envelope=envelope, sr=sample_rate, hop_length=hop, units="time")
    counts = np.searchsorted(onsets, t + 1.0) - np.searchsorted(onsets, t - 1.0)
    density = np.clip(gaussian_filter1d(counts / 2.0, 0.3 * fps) / 8.0, 0.0, 1.0)

    heard = _heard_beats(y, sample_rate)
    beat_times = heard if beat_times is None else np.asarray(beat_times, dtype=np.float64)
    if downbeat_index is None:
        spectrum = np.abs(librosa.stft(y, n_fft=2048, hop_length=hop))
        bass = librosa.amplitude_to_db(spectrum[librosa.fft_frequencies(sr=sample_rate, n_fft=2048) < 160.0])
        low = np.concatenate([[0.0], np.maximum(np.diff(bass, axis=1), 0.0).mean(axis=0)])
        at_beats = np.interp(beat_times, frame_t[: len(low)], low) if len(beat_times) else np.zeros(0)
        scores = [at_beats[k::beats_per_bar].mean() if len(at_beats[k::beats_per_bar]) else 0.0
                  for k in range(beats_per_bar)]
        downbeat_index = int(np.argmax(scores))
    heard_down = 0
    if len(heard) and len(beat_times):
        down_time = beat_times[min(max(int(downbeat_index), 0), len(beat_times) - 1)]
        heard_down = int(np.argmin(np.abs(heard - down_time)))
    return MusicDescriptor(
        energy=np.interp(t, frame_t[: len(energy)], energy),
        brightness=np.interp(t, frame_t[: len(brightness)], brightness),
        onset_density=density, fps=float(fps), beat_times=beat_times,
        beats_per_bar=int(beats_per_bar), downbeat_index=int(downbeat_index),
        heard_beats=heard, heard_downbeat_index=heard_down)


def _heard_beats(y: np.ndarray, sample_rate: int) -> np.ndarray:
    """Beat times analyse_music finds in ``y`` once stored as a 16-bit wav and decoded back."""
    import io

    import soundfile as sf

    from backend.music.audio import decode_audio
    from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

    buffer = io.BytesIO()
    sf.write(buffer, y, int(sample_rate), format="WAV", subtype="PCM_16")
    decoded = decode_audio(buffer.getvalue(), FEATURE_SAMPLE_RATE)
    return np.array(analyse_music(decoded).beat_times, dtype=np.float64)


# ====================================================================== timeline


def _regular_beats(beat_times: np.ndarray) -> np.ndarray:
    """Drop beats that crowd their neighbours and fill gaps (a beat tracker's dropouts)."""
    beats = np.asarray(beat_times, dtype=np.float64)
    period = float(np.median(np.diff(beats)))
    kept = [beats[0]]
    for b in beats[1:]:
        if b - kept[-1] >= 0.4 * period:
            kept.append(b)
    filled = [kept[0]]
    for b in kept[1:]:
        gap = b - filled[-1]
        missing = int(round(gap / period)) - 1
        if missing > 0 and gap > 1.5 * period:
            filled += list(filled[-1] + gap * np.arange(1, missing + 1) / (missing + 1))
        filled.append(b)
    return np.array(filled)


@dataclass
class _Timeline:
    """The dance pulse: which beats the body moves to, and each frame's phase in pulses."""

    pulse_times: np.ndarray  # extended past both ends of the clip
    phase: np.ndarray  # (T,) continuous pulse index of each frame
    downbeat: int  # a pulse index that starts a bar
    pulses_per_bar: int
    phrase_pulses: int
    pulse_seconds: float
    bpm: float  # of the music's beats, not the pulses

    @classmethod
    def build(cls, beat_times: np.ndarray, beats_per_bar: int, downbeat_index: int,
              num_frames: int, fps: float) -> "_Timeline":
        raw = np.asarray(beat_times, dtype=np.float64)
        beats = _regular_beats(raw)
        period = float(np.median(np.diff(beats)))
        down_time = raw[min(max(downbeat_index, 0), len(raw) - 1)]
        down = int(np.argmin(np.abs(beats - down_time)))
        stride = 1
        if period < HALF_TIME_BELOW_SECONDS:
            stride = 2 if beats_per_bar % 2 == 0 else beats_per_bar
        pulses = beats[down % stride::stride]
        down_pulse = (down - down % stride) // stride
        ppb = max(1, beats_per_bar // stride)
        pulse_period = float(np.median(np.diff(pulses))) if len(pulses) > 1 else period * stride
        seconds = num_frames / fps
        before = int(np.ceil((pulses[0] + 2 * pulse_period) / pulse_period))
        after = int(np.ceil((seconds - pulses[-1] + 2 * pulse_period) / pulse_period))
        ext = np.concatenate([pulses[0] - pulse_period * np.arange(before, 0, -1), pulses,
                              pulses[-1] + pulse_period * np.arange(1, after + 1)])
        phase = np.interp(np.arange(num_frames) / fps, ext, np.arange(len(ext), dtype=np.float64))
        # Hold on every music beat (pulses are `stride` beats): see BEAT_HOLD.
        beat = phase * stride
        whole = np.floor(beat)
        phase = (whole + (beat - whole) - BEAT_HOLD * np.sin(2 * np.pi * (beat - whole)) / (2 * np.pi)) / stride
        bars_per_phrase = 2 ** int(np.ceil(np.log2(np.ceil(6 / ppb))))
        return cls(pulse_times=ext, phase=phase, downbeat=down_pulse + before, pulses_per_bar=ppb,
                   phrase_pulses=ppb * bars_per_phrase, pulse_seconds=pulse_period, bpm=60.0 / period)

    def time_of(self, pulse: np.ndarray | float) -> np.ndarray:
        return np.interp(pulse, np.arange(len(self.pulse_times)), self.pulse_times)

    @property
    def bar_phase(self) -> np.ndarray:
        """Position within the bar, [0, 1), 0 on downbeats."""
        return ((self.phase - self.downbeat) / self.pulses_per_bar) % 1.0


# ====================================================================== style and plan


@dataclass
class BodyStyle:
    """Per-clip body parameters: the same song danced by different people."""

    amp: float
    knee_bend: float  # metres the pelvis sits below its rest height
    bounce: float  # metres of pelvis dip on the beat at full energy
    stance: float  # half the distance between the ankles
    lean: float  # forward lean of the chest, radians
    arm_spread: float
    arm_height: float
    asymmetry: float  # left/right amplitude ratio
    sharpness: float
    nod: float
    turnout: float
    step_height: float
    lead: int  # foot that starts patterns, 0 left, 1 right
    preference: dict[str, float]

    @classmethod
    def sample(cls, rng: np.random.Generator) -> "BodyStyle":
        return cls(
            amp=rng.uniform(0.8, 1.2), knee_bend=rng.uniform(0.03, 0.075), bounce=rng.uniform(0.025, 0.05),
            stance=rng.uniform(0.1, 0.15), lean=rng.uniform(-0.02, 0.12), arm_spread=rng.uniform(0.0, 0.08),
            arm_height=rng.normal(0.0, 0.04), asymmetry=rng.uniform(0.85, 1.15), sharpness=rng.uniform(0.8, 1.5),
            nod=rng.uniform(0.04, 0.14), turnout=rng.uniform(0.05, 0.25), step_height=rng.uniform(0.06, 0.1),
            lead=int(rng.integers(2)),
            preference={m: rng.normal(0.0, 0.35) for m in (*LOWER_MOVES, *UPPER_MOVES)},
        )


# Affinity of each move to the music: weights on (1, energy, brightness, onset density,
# tempo), each feature standardised by MUSIC_CENTRE and MUSIC_SCALE (typical values of
# the synthesised and real songs). A phrase's move is drawn from softmax(score / T).
MUSIC_CENTRE = np.array([0.0, 0.7, 0.5, 0.4, 0.5])
MUSIC_SCALE = np.array([1.0, 0.15, 0.2, 0.2, 0.25])
LOWER_MOVES: dict[str, tuple[float, float, float, float, float]] = {
    "groove": (0.5, -0.6, 0.0, -0.3, 0.0),
    "sway": (-0.3, -1.3, -0.3, -0.5, -0.8),
    "step_touch": (0.5, 0.0, 0.0, 0.0, 0.0),
    "march": (0.0, 0.8, 0.0, 0.3, 0.3),
    "grapevine": (0.0, 0.3, 0.0, 0.5, -0.2),
    "rock_step": (0.2, 0.0, 0.5, 0.0, -0.3),
    "kick_step": (-0.5, 1.2, 0.3, 0.4, 0.3),
    "toe_tap": (0.0, 0.2, 0.6, 0.3, 0.0),
    "jump": (-1.0, 1.5, 0.0, 0.5, 0.3),
    "turn": (-0.2, -0.2, 0.5, -0.5, -0.5),
    "walk": (-0.3, 0.2, -0.4, 0.0, -0.5),
}
UPPER_MOVES: dict[str, tuple[float, float, float, float, float]] = {
    "relaxed": (0.0, -1.2, -0.5, -0.6, 0.0),
    "swing": (0.5, -0.3, -0.3, 0.0, 0.0),
    "pump": (-0.3, 1.2, 0.0, 0.3, 0.3),
    "clap": (0.0, 0.2, 0.3, 0.8, 0.0),
    "hit_up": (-0.5, 1.0, 0.8, 0.0, 0.0),
    "wave": (0.0, -0.3, 0.6, -0.7, -0.8),
    "shimmy": (-0.2, 0.3, 0.3, 1.0, 0.3),
    "point": (0.0, 0.4, 0.5, 0.0, 0.0),
    "roll": (-0.2, 0.2, 0.5, 0.4, 0.0),
    "punch": (-0.2, 0.8, -0.8, 0.3, 0.0),
    "twist": (0.0, 0.2, -0.5, 0.6, 0.0),
}
CHOICE_TEMPERATURE: float = 0.5


@dataclass
class Phrase:
    start: int  # pulse index of its first (down)beat
    length: int  # pulses
    lower: str
    upper: str
    music: tuple[float, float, float]  # mean energy, brightness, onset density
    variant: int  # a move's alternative form (e.g. alternating vs. both arms)


def _choose(table: dict, features: np.ndarray, style: BodyStyle, rng: np.random.Generator,
            exclude: str | None, allowed: Callable[[str], bool]) -> str:
    names = [m for m in table if m != exclude and allowed(m)]
    scores = np.array([np.dot(table[m], features) + style.preference[m] for m in names])
    p = np.exp((scores - scores.max()) / CHOICE_TEMPERATURE)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def _plan_phrases(tl: _Timeline, curves: dict[str, np.ndarray], style: BodyStyle,
                  rng: np.random.Generator) -> list[Phrase]:
    """Two-bar phrases over the clip, each with a lower- and an upper-body move."""
    first = tl.downbeat + int(np.floor((tl.phase[0] - tl.downbeat) / tl.phrase_pulses)) * tl.phrase_pulses
    tempo = np.clip((tl.bpm - 60.0) / 120.0, 0.0, 1.0)
    phrases: list[Phrase] = []
    start = first
    while start <= tl.phase[-1]:
        inside = (tl.phase >= start) & (tl.phase < start + tl.phrase_pulses)
        if not inside.any():
            inside = np.abs(tl.phase - start) == np.abs(tl.phase - start).min()
        music = tuple(float(curves[k][inside].mean()) for k in MusicDescriptor.CURVES)
        features = (np.array([1.0, *music, tempo]) - MUSIC_CENTRE) / MUSIC_SCALE
        prev = phrases[-1] if phrases else None
        changed = prev is None or abs(music[0] - prev.music[0]) > 0.12 or abs(music[2] - prev.music[2]) > 0.15
        if prev is not None and not changed and prev.lower != "jump" and rng.random() < 0.4:
            lower, upper = prev.lower, prev.upper
        else:
            turned_recently = any(p.lower == "turn" for p in phrases[-2:])
            jumped = prev is not None and prev.lower == "jump"  # one phrase of jumping at a time
            lower = _choose(LOWER_MOVES, features, style, rng, prev.lower if (prev and changed) else None,
                            lambda m: not (m == "jump" and (jumped or tl.pulse_seconds < 0.34 or music[0] < 0.6))
                            and not (m == "turn" and turned_recently))
            upper = _choose(UPPER_MOVES, features, style, rng, prev.upper if (prev and changed) else None,
                            lambda m: True)
        phrases.append(Phrase(start, tl.phrase_pulses, lower, upper, music, int(rng.integers(2))))
        start += tl.phrase_pulses
    return phrases


def _phrase_weights(tl: _Timeline, phrases: list[Phrase]) -> np.ndarray:
    """(P, T) cross-fade weights that sum to 1: each boundary blends over one pulse."""
    def ramp(x: np.ndarray) -> np.ndarray:
        x = np.clip(x, 0.0, 1.0)
        return x * x * (3 - 2 * x)
    w = np.zeros((len(phrases), len(tl.phase)))
    for k, p in enumerate(phrases):
        up = ramp(tl.phase - (p.start - 0.5)) if k > 0 else 1.0
        down = 1.0 - ramp(tl.phase - (p.start + p.length - 0.5)) if k < len(phrases) - 1 else 1.0
        w[k] = up * down
    return w


# ====================================================================== beat shapes


PULSE_TURN: float = 0.12
"""Softness of the turn-around half-way between beats in ``pulse`` (0: an instant rebound)."""


def pulse(x: np.ndarray, sharp: np.ndarray | float = 1.0) -> np.ndarray:
    """1 on every integer (beat), 0 half-way between: a triangle wave, crisper on the beat
    when sharp > 1 (up to 2), its turn-around half-way rounded by PULSE_TURN. It never
    rests half-way, so an every-beat accent (a dip, a nod) adds no off-beat stop; on the
    beat the warped pulse phase (BEAT_HOLD) does the slowing."""
    x = np.asarray(x, dtype=np.float64)
    tri = 2.0 * np.abs(np.mod(x, 2.0) - 1.0) - 1.0  # +1 on even beats, -1 on odd ones
    v = (np.sqrt(tri**2 + PULSE_TURN**2) - PULSE_TURN) / (np.sqrt(1.0 + PULSE_TURN**2) - PULSE_TURN)
    return 1.0 - np.maximum(1.0 - v, 0.0) ** (1.0 / np.clip(sharp, 1.0, 2.0))


def snap(x: np.ndarray, sharp: np.ndarray | float = 1.0) -> np.ndarray:
    """+1 on even beats, -1 on odd ones, still at each, quicker in between when sharp > 1."""
    c = np.cos(np.pi * x)
    steep = np.clip(2.0 * (np.asarray(sharp, dtype=np.float64) - 1.0), 1e-6, 2.5)
    return np.tanh(steep * c) / np.tanh(steep)  # finite speed half-way, however sharp


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


# ====================================================================== lower body


SIDE = np.array([1.0, -1.0])  # left foot on +X (the character's left when facing -Y), right on -X
FOOT_JOINTS = {"hip": (1, 2), "knee": (4, 5), "ankle": (7, 8), "toe": (10, 11)}
ANKLE_HEIGHT = np.array([SOLE_BELOW_FOOT_JOINT - OFFSETS[10][2], SOLE_BELOW_FOOT_JOINT - OFFSETS[11][2]])
"""Height of each ankle joint when its foot is flat on the floor (toe base SOLE above z = 0)."""
PELVIS_AHEAD_OF_ANKLES = float((OFFSETS[1] + OFFSETS[4] + OFFSETS[7])[1])
"""How far (m, along +Y) the ankles sit behind the pelvis in the rest pose."""


@dataclass
class _StepSpec:
    """A move's step, in the phrase frame: x to the character's left, y backwards."""

    foot: int
    at: int  # pulse within the phrase on which it lands
    target: tuple[float, float]
    kind: str = "step"  # "step" (weight moves onto it), "touch", "weight" (no movement), "jump"
    height: float = 1.0  # times the body style's step height
    swing: float = 0.75  # pulses in the air
    mid: tuple[float, float] = (0.0, 0.0)  # extra excursion at mid-swing (kicks)


@dataclass
class _Step:
    foot: int
    lift: float  # pulse phase
    land: float
    target: np.ndarray  # world xy of the ankle
    yaw: float
    kind: str
    height: float
    mid: np.ndarray


@dataclass
class _LowerMove:
    steps: list[_StepSpec]
    home: float  # stance half-width as a multiple of the style's
    bounce: float  # scale of the pelvis dip on the beat
    sway: float  # lateral weight sway in place, 0..1
    twist: float  # hip yaw sway, radians at full amplitude
    turn: float = 0.0  # radians of whole-body turn over the phrase


def _lower_move(name: str, n: int, a: float, style: BodyStyle, variant: int) -> _LowerMove:
    """The steps of one lower-body move over an n-pulse phrase, with amplitude a."""
    w = style.stance
    lead = style.lead if variant == 0 else 1 - style.lead
    other = 1 - lead
    s = SIDE
    steps: list[_StepSpec] = []
    if name == "groove":
        return _LowerMove([], 1.0, 1.0, 0.15, 0.05)
    if name == "sway":
        return _LowerMove([], 1.35, 0.5, 0.8, 0.12)
    if name == "step_touch":
        out = 0.04 + 0.05 * a + w  # how far out the stepping foot goes
        for i in range(n):
            k = i % 4
            foot, side = (lead, s[lead]) if k in (0, 3) else (other, s[other])
            if k in (0, 2):  # step out to this foot's side
                steps.append(_StepSpec(foot, i, (side * out, 0.0)))
            else:  # close the other foot next to it, without weight
                steps.append(_StepSpec(foot, i, (-side * (out - 0.16), 0.0), "touch", 0.6))
        return _LowerMove(steps, 1.0, 0.7, 0.0, 0.06)
    if name == "march":
        for i in range(n):
            foot = lead if i % 2 == 0 else other
            fwd = -0.05 * a if (i // 2) % 2 == 0 else 0.0
            steps.append(_StepSpec(foot, i, (s[foot] * w, fwd), "step", 1.2))
        return _LowerMove(steps, 1.0, 0.6, 0.0, 0.08)
    if name == "grapevine":
        d = 0.12 + 0.08 * a
        center = 0.0
        for half in range(0, n, 4):
            direction = -1.0 if (half // 4) % 2 == 0 else 1.0  # right first, then back left
            lead_foot = 1 if direction < 0 else 0
            trail = 1 - lead_foot
            c = center
            seq = [(lead_foot, (c + direction * (d + w), 0.0), "step"),
                   (trail, (c + direction * (d + 0.6 * w), 0.12), "step"),
                   (lead_foot, (c + direction * (2 * d + w), 0.0), "step"),
                   (trail, (c + direction * (2 * d - w + 0.04), 0.0), "touch")]
            for j, (foot, target, kind) in enumerate(seq):
                if half + j < n:
                    steps.append(_StepSpec(foot, half + j, target, kind))
            center = c + direction * 2 * d
        return _LowerMove(steps, 1.0, 0.5, 0.0, 0.08)
    if name == "rock_step":
        reach = 0.14 + 0.1 * a
        for i in range(n):
            foot = lead if (i // 4) % 2 == 0 else other
            k = i % 4
            if k == 0:
                steps.append(_StepSpec(foot, i, (s[foot] * w, -reach)))
            elif k == 1:
                steps.append(_StepSpec(1 - foot, i, (0.0, 0.0), "weight"))
            elif k == 2:
                steps.append(_StepSpec(foot, i, (s[foot] * w, 0.6 * reach)))
            else:
                steps.append(_StepSpec(foot, i, (s[foot] * w, 0.0), "touch", 0.7))
        return _LowerMove(steps, 1.0, 0.6, 0.0, 0.1)
    if name == "kick_step":
        for i in range(n):
            foot = lead if i % 2 == 0 else other
            steps.append(_StepSpec(foot, i, (s[foot] * w, 0.0), "step", 1.6 + a, 0.7,
                                   mid=(0.03 * s[foot], -(0.18 + 0.12 * a))))
        return _LowerMove(steps, 1.0, 0.5, 0.0, 0.06)
    if name == "toe_tap":
        for i in range(n):
            foot = lead if (i // 2) % 2 == 0 else other
            if i % 2 == 0:
                steps.append(_StepSpec(foot, i, (s[foot] * (w + 0.06), -(0.16 + 0.08 * a)), "touch", 0.7))
            else:
                steps.append(_StepSpec(foot, i, (s[foot] * w, 0.0), "step", 0.7))
        return _LowerMove(steps, 1.0, 0.8, 0.0, 0.05)
    if name == "jump":
        for i in range(n):
            wide = 1.7 if i % 2 == 0 else 0.75
            for foot in (0, 1):
                steps.append(_StepSpec(foot, i, (s[foot] * w * wide, 0.0), "jump", 0.5 + 0.4 * a, 0.6))
        return _LowerMove(steps, 1.0, 0.3, 0.0, 0.0)
    if name == "turn":
        for i in range(n):
            foot = lead if i % 2 == 0 else other
            steps.append(_StepSpec(foot, i, (s[foot] * w * 0.9, 0.0), "step", 0.8))
        return _LowerMove(steps, 0.9, 0.4, 0.0, 0.0, turn=2 * np.pi * (1 if variant == 0 else -1))
    if name == "walk":
        stride = 0.12 + 0.1 * a
        pattern = [(lead, -stride, "step"), (other, -2 * stride, "step"), (lead, -2 * stride, "step"),
                   (other, 0.0, "weight"), (lead, -stride, "step"), (other, 0.0, "step"),
                   (lead, 0.0, "step"), (other, 0.0, "weight")]
        for i in range(n):
            foot, y, kind = pattern[i % 8]
            steps.append(_StepSpec(foot, i, (s[foot] * w, y), kind))
        return _LowerMove(steps, 1.0, 0.5, 0.0, 0.08)
    raise ValueError(f"unknown lower-body move {name!r}")


def _rot_z(angle: np.ndarray) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    z, o = np.zeros_like(c), np.ones_like(c)
    return np.stack([c, -s, z, s, c, z, z, z, o], -1).reshape(np.shape(angle) + (3, 3))


def _rot2(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s], [s, c]])


class _FootPlanner:
    """Turns phrases of step specs into world-space steps that never overlap badly."""

    def __init__(self, style: BodyStyle, max_swing: float = 1.0):
        self.style = style
        self.max_swing = max_swing  # pulses a foot may be in the air (under 1/2 in half time: still on every beat)
        self.pos = np.array([[style.stance, 0.0], [-style.stance, 0.0]])  # ankle xy after the last phrase
        self.steps: list[_Step] = []
        self.facing_keys: list[tuple[float, float]] = [(-1e9, 0.0)]

    def facing(self, pulse_phase: np.ndarray | float) -> np.ndarray:
        """Body facing (yaw, radians) at a pulse phase: smooth ramps between keys."""
        keys = self.facing_keys
        x = np.asarray(pulse_phase, dtype=np.float64)
        out = np.full(x.shape, keys[0][1])
        for (t0, y0), (t1, y1) in zip(keys[:-1], keys[1:]):
            if t1 > t0:
                out = np.where(x >= t0, y0 + (y1 - y0) * _smoothstep((x - t0) / (t1 - t0)), out)
        return out

    def _busy(self, foot: int, lift: float, land: float, jump: bool) -> bool:
        for st in self.steps:
            if st.kind == "weight":
                continue
            gap = 0.12
            if st.foot == foot and st.lift - gap < land and lift < st.land + gap:
                return True
            if st.foot != foot and st.lift < land and lift < st.land and not (jump and st.kind == "jump"):
                return True
        return False

    def add_phrase(self, phrase: Phrase, move: _LowerMove) -> None:
        st = self.style
        facing0 = float(self.facing(float(phrase.start)))
        if move.turn:
            end = phrase.start + phrase.length - 1.0
            self.facing_keys += [(float(phrase.start), facing0), (end, facing0 + move.turn)]
        center = 0.7 * self.pos.mean(axis=0)  # drift back towards the origin

        def world(local: tuple[float, float], at: float) -> tuple[np.ndarray, float]:
            yaw = float(self.facing(at))
            return center + _rot2(yaw) @ np.asarray(local), yaw

        for spec in move.steps:
            land = float(phrase.start + spec.at)
            lift = land - min(spec.swing, self.max_swing)
            target, yaw = world(spec.target, land)
            if spec.kind == "weight":
                self.steps.append(_Step(spec.foot, land, land, target, yaw, "weight", 0.0, np.zeros(2)))
                continue
            if self._busy(spec.foot, lift, land, spec.kind == "jump"):
                continue
            height = st.step_height * spec.height
            if spec.kind == "jump":
                height = 0.05 * spec.height + 0.02
            mid = _rot2(yaw) @ np.asarray(spec.mid)
            self.steps.append(_Step(spec.foot, lift, land, target, yaw + SIDE[spec.foot] * st.turnout,
                                    spec.kind, max(height, 0.06), mid))

        # Feet the move does not place early: settle them into the move's stance.
        for foot in (0, 1):
            own = [s.at for s in move.steps if s.foot == foot and s.kind != "weight"]
            if own and min(own) < 2:
                continue
            home, yaw = world((SIDE[foot] * st.stance * move.home, 0.0), phrase.start)
            current = self._position_before(foot, phrase.start)
            if np.linalg.norm(current - home) < 0.03:
                continue
            for at in range(0, min(own) if own else 4):
                land = float(phrase.start + at)
                swing = min(0.75, self.max_swing)
                if not self._busy(foot, land - swing, land, False):
                    self.steps.append(_Step(foot, land - swing, land, home, yaw + SIDE[foot] * st.turnout,
                                            "step", st.step_height * 0.8, np.zeros(2)))
                    break
        for foot in (0, 1):
            self.pos[foot] = self._position_before(foot, phrase.start + phrase.length + 1.0)

    def _position_before(self, foot: int, at: float) -> np.ndarray:
        landed = [s for s in self.steps if s.foot == foot and s.land <= at and s.kind != "weight"]
        if not landed:
            return np.array([SIDE[foot] * self.style.stance, 0.0])
        return max(landed, key=lambda s: s.land).target.copy()

    def trajectories(self, phase: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """Per frame: ankle xy (T,2,2), lift (T,2), foot yaw (T,2), toe pitch (T,2)."""
        n = len(phase)
        xy = np.zeros((n, 2, 2))
        lift = np.zeros((n, 2))
        yaw = np.zeros((n, 2))
        for foot in (0, 1):
            pos = np.array([SIDE[foot] * self.style.stance, 0.0])
            ang = SIDE[foot] * self.style.turnout
            xy[:, foot] = pos
            yaw[:, foot] = ang
            for st in sorted((s for s in self.steps if s.foot == foot and s.kind != "weight"), key=lambda s: s.land):
                s = (phase - st.lift) / (st.land - st.lift)
                during = (s >= 0) & (s < 1)
                after = s >= 1
                travel = np.clip((s[during] - 0.15) / 0.57, 0.0, 1.0)  # only while well off the floor
                g = _smoothstep(travel)
                bump = np.sin(np.pi * travel)
                xy[during, foot] = pos + g[:, None] * (st.target - pos) + bump[:, None] * st.mid
                yaw[during, foot] = ang + g * (st.yaw - ang)
                rise = np.sin(np.pi * s[during])
                lift[during, foot] = st.height * np.where(s[during] < 0.5, rise, rise**2)  # quick up, soft landing
                xy[after, foot] = st.target
                yaw[after, foot] = st.yaw
                pos, ang = st.target, st.yaw
        pitch = np.minimum(0.3, 1.2 * lift)  # toes point down a little in the air
        return xy, lift, yaw, pitch

    def weight_left(self, phase: np.ndarray) -> np.ndarray:
        """Share of the body weight on the left foot, per frame.

        Keyed values joined by smoothsteps, keyed on beats only (a key between beats
        would be a rest between beats): the weight sits over the foot that last took it,
        which is the stance foot when the other lifts, and arrives on a stepping foot
        exactly as it lands, so the pelvis is still on the beat and travels between beats.
        """
        on = {0: 0.75, 1: 0.25}  # weight over one foot (the other is free to lift)
        settled = {0: 0.68, 1: 0.32}
        keys: list[tuple[float, float]] = []
        for st in self.steps:
            other = 1 - st.foot
            if st.kind == "weight":
                keys.append((st.land, settled[st.foot]))
            elif st.kind == "jump":
                keys.append((st.land, 0.5))
            else:
                keys.append((st.land, on[st.foot] if st.kind == "step" else on[other]))
        merged: dict[float, list[float]] = {}
        for t, v in keys:  # two keys on one beat (a foot lands as the other touches): meet half-way
            merged.setdefault(t, []).append(v)
        keys = sorted((t, float(np.mean(v))) for t, v in merged.items())
        keyed: list[tuple[float, float]] = [(-1e9, 0.5)]
        for t, v in keys + [(1e9, 0.5)]:
            if t - keyed[-1][0] > 2.5:  # a long still: back to both feet, until shortly before the next step
                keyed += [(keyed[-1][0] + 2.0, 0.5), (t - 1.0, 0.5)]
            keyed.append((t, v))
        times = np.array([t for t, _ in keyed])
        values = np.array([v for _, v in keyed])
        i = np.clip(np.searchsorted(times, phase, side="right") - 1, 0, len(times) - 2)
        span = np.maximum(times[i + 1] - times[i], 1e-6)
        return values[i] + (values[i + 1] - values[i]) * _smoothstep((phase - times[i]) / span)


# ====================================================================== upper body


@dataclass
class _UpperPose:
    """Arm targets (out, forward, up from the shoulder, metres), elbow poles, torso angles."""

    wrist: np.ndarray  # (T, 2, 3) left, right
    pole: np.ndarray  # (T, 2, 3)
    spine: np.ndarray  # (T, 3) chest rotation vector (x: lean fwd, y: bend left, z: twist left)
    collar: np.ndarray  # (T, 2, 2) shrug up, forward
    head: np.ndarray  # (T, 3) nod down, tilt left, turn left

    @classmethod
    def zeros(cls, n: int) -> "_UpperPose":
        return cls(np.zeros((n, 2, 3)), np.zeros((n, 2, 3)), np.zeros((n, 3)), np.zeros((n, 2, 2)), np.zeros((n, 3)))

    def add(self, other: "_UpperPose", weight: np.ndarray) -> None:
        w = weight[:, None]
        self.wrist += other.wrist * w[:, :, None]
        self.pole += other.pole * w[:, :, None]
        self.spine += other.spine * w
        self.collar += other.collar * w[:, :, None]
        self.head += other.head * w


def _lerp(a: np.ndarray, b: np.ndarray, u: np.ndarray) -> np.ndarray:
    return a + (np.asarray(b) - np.asarray(a)) * u[:, None]


def _upper_move(name: str, ph: np.ndarray, bar: np.ndarray, a: np.ndarray, h: np.ndarray,
                sharp: np.ndarray, style: BodyStyle, variant: int) -> _UpperPose:
    """One upper-body move evaluated at pulse phases ``ph`` (all arrays (T,))."""
    n = len(ph)
    pose = _UpperPose.zeros(n)
    spread = style.arm_spread
    down = np.array([0.04 + spread, 0.1, -0.44])
    pole_down = np.array([0.15, -0.8, -1.0])
    pose.pole[:] = pole_down
    ones = np.ones(n)
    left, right = 0, 1

    if name == "relaxed":
        sway = snap(ph, sharp)
        for side, sign in ((left, 1), (right, -1)):
            pose.wrist[:, side] = down + np.stack([0 * ones, 0.08 * a * sign * sway, 0.04 * a * pulse(ph)], -1)
        pose.spine[:, 2] = 0.07 * a * sway
        pose.head[:, 1] = 0.05 * a * sway
    elif name == "swing":
        sway = snap(ph, sharp)
        for side, sign in ((left, 1), (right, -1)):
            fwd = 0.08 + 0.2 * a * sign * sway
            pose.wrist[:, side] = np.stack([0.07 + spread + 0 * ones, fwd, -0.42 + 0.3 * np.maximum(fwd, 0)], -1)
        pose.spine[:, 2] = -0.08 * a * sway
    elif name == "pump":
        chamber = np.array([0.16, 0.26, -0.12])
        top = np.array([0.1 + spread, 0.14, 0.34])
        up = (1.0 + snap(ph, 2 * sharp)) / 2.0  # up on one beat, chambered on the next
        u = [up, up] if variant == 0 else [up, 1.0 - up]
        for side in (left, right):
            reach = np.minimum(a, 1.2) * u[side]
            pose.wrist[:, side] = _lerp(chamber, top, reach)
            pose.wrist[:, side, 2] += h * reach
        pose.pole[:] = [0.9, -0.2, -1.0]
        pose.spine[:, 0] = -0.06 * a * (u[0] + u[1]) / 2
        pose.collar[:, :, 0] = 0.12 * np.stack(u, -1)  # shoulders go up with the fists
    elif name == "clap":
        u = (1.0 - snap(ph, 1.5 * sharp)) / 2.0  # a clap on every other beat, apart on the others
        lift = 0.32 if variant == 1 else 0.0
        apart = np.array([0.15 + spread, 0.26, -0.1 + lift])
        together = np.array([-0.165, 0.32, -0.02 + lift])
        for side in (left, right):
            pose.wrist[:, side] = _lerp(apart, together, u)
            pose.wrist[:, side, 2] += 0.5 * h
        pose.pole[:] = [1.0, -0.3, -1.0]
        pose.spine[:, 0] = 0.05 * a * u
    elif name == "hit_up":
        u = pulse(bar, 2.0)
        top = np.array([0.26 + spread, 0.04, 0.36])
        low = np.array([0.1 + spread, 0.16, -0.36])
        for side in (left, right):
            pose.wrist[:, side] = _lerp(low, top, np.minimum(1.0, (0.6 + 0.4 * a) * u))
            pose.wrist[:, side, 2] += h * u + 0.05 * a * pulse(ph, sharp)
        pose.pole[:] = _lerp(pole_down, [1.0, 0.0, -0.4], u)[:, None]
        pose.spine[:, 0] = -0.1 * a * u
        pose.head[:, 0] = -0.1 * u
        pose.collar[:, :, 0] = 0.15 * u[:, None]
    elif name == "wave":
        shift = 0.18 * a * snap(ph, sharp)
        for side, sign in ((left, 1), (right, -1)):
            pose.wrist[:, side] = np.stack([0.12 + spread + sign * shift, 0.06 * ones, 0.34 + h], -1)
        pose.pole[:] = [1.0, 0.0, -0.3]
        pose.spine[:, 1] = 0.12 * a * snap(ph, sharp)
        pose.head[:, 1] = 0.08 * a * snap(ph, sharp)
    elif name == "shimmy":
        shake = snap(ph, 2 * sharp)  # a shoulder forward on every beat, the other on the next
        for side, sign in ((left, 1), (right, -1)):
            pose.wrist[:, side] = np.stack([0.16 * ones, 0.26 + 0.03 * sign * shake, -0.1 + 0.5 * h], -1)
            pose.collar[:, side, 1] = 0.14 * a * sign * shake
        pose.pole[:] = [1.0, -0.4, -1.0]
        pose.spine[:, 2] = 0.07 * a * shake
        pose.spine[:, 0] = 0.05
    elif name == "point":
        p = (1.0 + snap(ph, sharp)) / 2.0
        if variant == 1:
            p = 1.0 - p
        aim = np.array([0.32, 0.2, 0.3])
        hip = np.array([0.12 + spread, 0.04, -0.32])
        pose.wrist[:, left] = _lerp(hip, aim, p)
        pose.wrist[:, right] = _lerp(hip, aim, 1.0 - p)
        pose.wrist[:, :, 2] += h[:, None] * np.stack([p, 1 - p], -1)
        pose.pole[:] = [1.0, -0.2, -0.8]
        pose.spine[:, 1] = 0.08 * a * (2 * p - 1)
        pose.head[:, 2] = 0.2 * a * (2 * p - 1)
    elif name == "roll":
        theta = 2 * np.pi * ph - np.sin(2 * np.pi * ph)  # circling, with a stop on every beat
        for side, offset in ((left, 0.0), (right, np.pi)):
            pose.wrist[:, side] = np.stack([-0.02 + 0.07 * np.cos(theta + offset), 0.32 + 0.05 * np.sin(theta + offset),
                                            -0.1 + 0.5 * h + 0.07 * np.sin(theta + offset)], -1)
        pose.pole[:] = [1.0, -0.2, -1.0]
        pose.spine[:, 0] = 0.04 * a * pulse(ph)
    elif name == "punch":
        out = (1.0 + snap(ph, 3 * sharp)) / 2.0  # each fist out on its beat, back on the next
        u = [out, 1.0 - out]
        chamber = np.array([0.13, 0.08, -0.16])
        extended = np.array([-0.06, 0.46, 0.02])
        for side in (left, right):
            pose.wrist[:, side] = _lerp(chamber, extended, np.minimum(1.0, (0.7 + 0.3 * a) * u[side]))
            pose.wrist[:, side, 2] += 0.5 * h
        pose.pole[:] = [1.0, -0.6, -0.6]
        pose.spine[:, 2] = 0.2 * a * (u[1] - u[0])
    elif name == "twist":
        turn = snap(ph, sharp)
        for side in (left, right):
            pose.wrist[:, side] = np.stack([0.16 * ones, 0.22 * ones, -0.2 + 0.5 * h], -1)
        pose.pole[:] = [1.0, -0.5, -1.0]
        pose.spine[:, 2] = 0.3 * a * turn
        pose.head[:, 2] = -0.2 * a * turn
    else:
        raise ValueError(f"unknown upper-body move {name!r}")
    return pose


# ====================================================================== IK


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)


def _frame(direction: np.ndarray, hinge: np.ndarray) -> np.ndarray:
    """Rotation matrix with columns (bone direction, hinge axis, their cross product)."""
    return np.stack([direction, hinge, np.cross(direction, hinge)], axis=-1)


@dataclass(frozen=True)
class _Limb:
    """A two-bone chain and its rest frames. The hinge axis is set so that bending
    moves the lower bone towards ``bend`` (backwards for knees, forwards for elbows)."""

    upper: np.ndarray  # rest offset of the middle joint (knee/elbow) from the root joint
    lower: np.ndarray  # rest offset of the end joint (ankle/wrist) from the middle joint
    bend: np.ndarray
    max_stretch: float

    def rest_frame(self, bone: np.ndarray) -> np.ndarray:
        a = _unit(bone)
        return _frame(a, _unit(np.cross(a, self.bend)))

    def solve(self, root: np.ndarray, target: np.ndarray, pole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Global rotations (T,3,3) of the root joint and of the middle joint."""
        l1, l2 = float(np.linalg.norm(self.upper)), float(np.linalg.norm(self.lower))
        d = target - root
        dist = np.linalg.norm(d, axis=-1, keepdims=True)
        direction = d / np.maximum(dist, 1e-9)
        dist = np.clip(dist, abs(l1 - l2) + 0.05, self.max_stretch * (l1 + l2))
        cos_a = np.clip((l1**2 + dist**2 - l2**2) / (2 * l1 * dist), -1.0, 1.0)
        sin_a = np.sqrt(1.0 - cos_a**2)
        perp = pole - np.sum(pole * direction, -1, keepdims=True) * direction
        fallback = np.cross(direction, np.array([0.0, 0.0, 1.0]))
        small = np.linalg.norm(perp, axis=-1, keepdims=True) < 1e-4
        perp = _unit(np.where(small, fallback + 1e-6, perp))
        middle = root + l1 * (cos_a * direction + sin_a * perp)
        end = root + dist * direction
        hinge = _unit(np.cross(perp, direction))
        g1 = _frame(_unit(middle - root), hinge) @ self.rest_frame(self.upper).T
        g2 = _frame(_unit(end - middle), hinge) @ self.rest_frame(self.lower).T
        return g1, g2


_BACK = np.array([0.0, 1.0, 0.0])
LEGS = (_Limb(OFFSETS[4], OFFSETS[7], _BACK, 0.997), _Limb(OFFSETS[5], OFFSETS[8], _BACK, 0.997))
ARMS = (_Limb(OFFSETS[18], OFFSETS[20], -_BACK, 0.97), _Limb(OFFSETS[19], OFFSETS[21], -_BACK, 0.97))


def _max_pelvis_height(pelvis_xy: np.ndarray, pelvis_rot: np.ndarray, ankles: np.ndarray) -> np.ndarray:
    """Highest pelvis z (T,) from which both legs still reach their ankle targets."""
    limit = np.full(len(pelvis_xy), np.inf)
    for foot, hip in enumerate(FOOT_JOINTS["hip"]):
        leg = LEGS[foot]
        reach = 0.995 * leg.max_stretch * (np.linalg.norm(leg.upper) + np.linalg.norm(leg.lower))
        hip_offset = pelvis_rot @ OFFSETS[hip]
        dxy = np.linalg.norm(pelvis_xy + hip_offset[:, :2] - ankles[:, foot, :2], axis=-1)
        vertical = np.sqrt(np.maximum(reach**2 - dxy**2, 0.0))
        limit = np.minimum(limit, ankles[:, foot, 2] + vertical - hip_offset[:, 2])
    return limit


# ====================================================================== the dance


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
    tl = _Timeline.build(beats, music_descriptor.beats_per_bar, downbeat_index, n, fps)
    style = BodyStyle.sample(rng)
    phrases = _plan_phrases(tl, curves, style, rng)
    weights = _phrase_weights(tl, phrases)

    # Continuous, music-driven intensities (about half a second of smoothing).
    energy = gaussian_filter1d(curves["energy"], 0.25 * fps, mode="nearest")
    amp = style.amp * (0.4 + 0.8 * energy)
    height = style.arm_height + 0.2 * (gaussian_filter1d(curves["brightness"], 0.25 * fps, mode="nearest") - 0.5) \
        + 0.1 * (energy - 0.5)
    sharp = style.sharpness * (1.0 + 1.5 * gaussian_filter1d(curves["onset_density"], 0.25 * fps, mode="nearest"))

    rotations, root = _pose_body(tl, phrases, weights, style, energy, amp, height, sharp, fps)
    quats = rot.quaternion_sign_continuity(rot.matrix_to_quaternion(rotations))
    positions, _ = forward_kinematics_np(rotations, root)
    clip = MotionClip(
        rotations=quats, root_translation=root, fps=float(fps),
        contacts=contact_labels(positions, CONTACT_JOINTS, fps),
        contact_names=tuple(JOINT_NAMES[j] for j in CONTACT_JOINTS))
    return clip, DancePlan(phrases, style, tl.pulse_seconds > 1.5 * 60.0 / tl.bpm, tl.bpm)


def _pose_body(tl: _Timeline, phrases: list[Phrase], weights: np.ndarray, style: BodyStyle,
               energy: np.ndarray, amp: np.ndarray, height: np.ndarray, sharp: np.ndarray,
               fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Local rotation matrices (T, 24, 3, 3) and pelvis positions (T, 3).

    Order matters: feet are planned first, the pelvis follows the feet (and stays low
    enough for them), the torso and head follow the pelvis, then IK fits the legs
    between pelvis and feet and the arms between shoulders and wrist targets.
    """
    n = len(tl.phase)
    half_time = tl.pulse_seconds > 1.5 * 60.0 / tl.bpm
    planner = _FootPlanner(style, max_swing=0.45 if half_time else 1.0)
    moves = []
    for p in phrases:
        a = float(np.interp(tl.time_of(p.start + p.length / 2) * fps, np.arange(n), amp))
        moves.append(_lower_move(p.lower, p.length, a, style, p.variant))
        planner.add_phrase(p, moves[-1])
    ankle_xy, lift, foot_yaw, toe_pitch = planner.trajectories(tl.phase)
    ankles = np.concatenate([ankle_xy, (ANKLE_HEIGHT + lift)[..., None]], axis=-1)  # (T, 2, 3)

    local = np.tile(np.eye(3), (n, NUM_JOINTS, 1, 1))
    root, hips = _pelvis_motion(tl, planner, moves, weights, style, energy, amp, ankles, lift, fps)
    local[:, 0] = hips.rotation
    upper = _blend_upper_moves(tl, phrases, weights, style, amp, height, sharp)
    _pose_torso(local, upper, hips, style, amp, sharp, tl.phase)
    positions, globals_ = forward_kinematics_np(local, root)
    _solve_legs(local, positions, hips.rotation, ankles, foot_yaw, toe_pitch)
    _solve_arms(local, positions, globals_, upper, style)
    return local, root


@dataclass
class _Hips:
    """The pelvis motion and what the torso needs to know about it."""

    rotation: np.ndarray  # (T, 3, 3) global
    facing: np.ndarray  # (T,) body facing yaw
    yaw: np.ndarray  # (T,) pelvis yaw (facing plus hip twist)
    roll: np.ndarray  # (T,) side tilt from the weight shift
    pitch: np.ndarray  # (T,) forward tilt
    dip: np.ndarray  # (T,) the beat pulse of the bounce, 1 on beats


def _pelvis_motion(tl: _Timeline, planner: _FootPlanner, moves: list[_LowerMove], weights: np.ndarray,
                   style: BodyStyle, energy: np.ndarray, amp: np.ndarray, ankles: np.ndarray, lift: np.ndarray,
                   fps: float) -> tuple[np.ndarray, _Hips]:
    """Pelvis position (T, 3) over the weighted foot, dipping on the beat, and its rotation."""
    ph = tl.phase
    bounce_scale = sum(w * m.bounce for w, m in zip(weights, moves))
    sway = sum(w * m.sway for w, m in zip(weights, moves))
    twist = sum(w * m.twist for w, m in zip(weights, moves))
    dip = pulse(ph, 1.2)
    standing = 1 - (lift > 0).any(axis=1)
    w_left = planner.weight_left(ph) + 0.25 * sway * np.minimum(amp, 1.2) * snap(ph, 1.0) * standing
    w_left = gaussian_filter1d(np.clip(w_left, 0.1, 0.9), 0.02 * fps, mode="nearest")
    facing = planner.facing(ph)
    yaw = facing + 0.6 * twist * amp * snap(ph, 1.0)
    roll = -0.35 * (w_left - 0.5) * np.minimum(amp, 1.3)  # the weighted hip rises
    pitch = 0.04 + 0.05 * dip * amp
    rotation = _rot_z(yaw) @ rot.axis_angle_to_matrix(np.stack([pitch, roll, np.zeros_like(roll)], -1))

    support = ankles[:, 1, :2] + w_left[:, None] * (ankles[:, 0, :2] - ankles[:, 1, :2])
    ahead = np.stack([np.sin(facing), -np.cos(facing)], -1) * PELVIS_AHEAD_OF_ANKLES
    xy = gaussian_filter1d(support + ahead, 0.025 * fps, axis=0, mode="nearest")  # light: keeps the holds on beats
    airborne = lift.min(axis=1)  # both feet up: a jump carries the pelvis up too
    z = (PELVIS_REST_HEIGHT - style.knee_bend - style.bounce * (0.4 + 0.8 * energy) * bounce_scale * dip
         + 0.9 * airborne)
    # Never higher than the legs can reach; the lowering is widened and smoothed so it does not jerk.
    excess = np.maximum(z - (_max_pelvis_height(xy, rotation, ankles) - 0.004), 0.0)
    width = max(1, int(round(0.1 * fps)))
    widened = np.lib.stride_tricks.sliding_window_view(np.pad(excess, width, mode="edge"), 2 * width + 1).max(-1)
    excess = np.maximum(gaussian_filter1d(widened, width / 2.0, mode="nearest"), excess)
    root = np.concatenate([xy, (z - excess)[:, None]], axis=-1)
    return root, _Hips(rotation, facing, yaw, roll, pitch, dip)


def _blend_upper_moves(tl: _Timeline, phrases: list[Phrase], weights: np.ndarray, style: BodyStyle,
                       amp: np.ndarray, height: np.ndarray, sharp: np.ndarray) -> _UpperPose:
    """Each phrase's upper-body move where its cross-fade weight is non-zero, summed."""
    n = len(tl.phase)
    upper = _UpperPose.zeros(n)
    bar = tl.bar_phase
    for w, p in zip(weights, phrases):
        active = w > 0
        if not active.any():
            continue
        part = _upper_move(p.upper, tl.phase[active], bar[active], amp[active], height[active], sharp[active],
                           style, p.variant)
        full = _UpperPose.zeros(n)
        for name in ("wrist", "pole", "spine", "collar", "head"):
            getattr(full, name)[active] = getattr(part, name)
        upper.add(full, w)
    return upper


def _pose_torso(local: np.ndarray, upper: _UpperPose, hips: _Hips, style: BodyStyle, amp: np.ndarray,
                sharp: np.ndarray, ph: np.ndarray) -> None:
    """Spine, neck, head and collars: the move, plus posture, a nod on the beat, and
    undoing most of the hip roll and twist so the chest stays upright and facing."""
    chest = upper.spine.copy()
    chest[:, 0] += style.lean + 0.04 * amp * hips.dip - (hips.pitch - 0.04)
    chest[:, 1] -= 0.8 * hips.roll
    chest[:, 2] -= 0.6 * (hips.yaw - hips.facing)
    for joint, share in (("spine1", 0.3), ("spine2", 0.35), ("spine3", 0.35)):
        local[:, JOINT_INDEX[joint]] = rot.axis_angle_to_matrix(share * chest)
    head = upper.head.copy()
    head[:, 0] += style.nod * amp * pulse(ph, sharp) - 0.6 * style.lean
    head[:, 1] -= 0.3 * chest[:, 1]
    for joint, share in (("neck", 0.4), ("head", 0.6)):
        local[:, JOINT_INDEX[joint]] = rot.axis_angle_to_matrix(share * head)
    for side, joint in enumerate((JOINT_INDEX["left_collar"], JOINT_INDEX["right_collar"])):
        shrug, forward = upper.collar[:, side, 0], upper.collar[:, side, 1]
        s = SIDE[side]
        local[:, joint] = rot.axis_angle_to_matrix(np.stack([np.zeros_like(shrug), -s * shrug, -s * forward], -1))


def _solve_legs(local: np.ndarray, positions: np.ndarray, pelvis_rot: np.ndarray, ankles: np.ndarray,
                foot_yaw: np.ndarray, toe_pitch: np.ndarray) -> None:
    """Hip, knee and ankle rotations that put each ankle on its target, foot flat (or toes down in the air)."""
    n = len(ankles)
    zeros = np.zeros(n)
    for foot in (0, 1):
        hip, knee, ankle = FOOT_JOINTS["hip"][foot], FOOT_JOINTS["knee"][foot], FOOT_JOINTS["ankle"][foot]
        yaw = foot_yaw[:, foot]
        toes = np.stack([np.sin(yaw), -np.cos(yaw), zeros], -1)
        outward = SIDE[foot] * np.stack([np.cos(yaw), np.sin(yaw), zeros], -1)
        pole = toes + 0.15 * outward  # knees point over the toes, a little outwards
        g_thigh, g_shank = LEGS[foot].solve(positions[:, hip], ankles[:, foot], pole)
        g_foot = _rot_z(yaw) @ rot.axis_angle_to_matrix(np.stack([toe_pitch[:, foot], zeros, zeros], -1))
        local[:, hip] = np.swapaxes(pelvis_rot, -1, -2) @ g_thigh
        local[:, knee] = np.swapaxes(g_thigh, -1, -2) @ g_shank
        local[:, ankle] = np.swapaxes(g_shank, -1, -2) @ g_foot


def _solve_arms(local: np.ndarray, positions: np.ndarray, globals_: np.ndarray, upper: _UpperPose,
                style: BodyStyle) -> None:
    """Shoulder and elbow rotations that put each wrist on its target, given in the chest frame."""
    g_chest = globals_[:, JOINT_INDEX["spine3"]]
    asym = (style.asymmetry, 1.0 / style.asymmetry)
    rest = np.array([0.07, 0.1, -0.44])
    for side, (collar, shoulder, elbow) in enumerate(((13, 16, 18), (14, 17, 19))):
        mirror = np.array([SIDE[side], -1.0, 1.0])  # (out, forward, up) -> chest x, y, z
        wrist = upper.wrist[:, side].copy()
        wrist[:, 1:] = rest[1:] + asym[side] * (wrist[:, 1:] - rest[1:])  # not sideways: claps still meet
        target = positions[:, shoulder] + np.einsum("tij,tj->ti", g_chest, wrist * mirror)
        pole = np.einsum("tij,tj->ti", g_chest, _unit(upper.pole[:, side]) * mirror)
        g_upper, g_fore = ARMS[side].solve(positions[:, shoulder], target, pole)
        local[:, shoulder] = np.swapaxes(globals_[:, collar], -1, -2) @ g_upper
        local[:, elbow] = np.swapaxes(g_upper, -1, -2) @ g_fore
