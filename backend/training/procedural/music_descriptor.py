"""What a procedural dance follows in a piece of music: loudness, brightness, onset
density per motion frame, and the beats (the true ones and the ones the model hears)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.ndimage import gaussian_filter1d

from backend.conventions import FPS
from backend.training.procedural.errors import ProceduralError


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
