"""The dance pulse: which beats the body moves to, and each frame's phase in pulses.

Every move is a function of this phase, so its accents fall on beats; the phase is
warped to nearly stop on every music beat (BEAT_HOLD), and fast music is danced in
half time (HALF_TIME_BELOW_SECONDS)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


HALF_TIME_BELOW_SECONDS: float = 0.42
"""Beats closer than this (faster than ~143 BPM) are danced in half time."""

BEAT_HOLD: float = 0.9
"""How much the dance pulse slows on every music beat (0: steady, 1: a full stop).

The pulse phase is warped per music beat, phase' = 1 - BEAT_HOLD cos(2 pi u) with u the
position within the beat, so every move, whatever its shape, is slowest on the beat and
quickest between beats: whole-body joint speed has its minima on the beats (also on
the in-between beats of half time), as beat-alignment measures it."""


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
class Timeline:
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
              num_frames: int, fps: float) -> "Timeline":
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
