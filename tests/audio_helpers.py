"""Synthetic audio for tests: tones, click tracks with known beat times, encoded files.

Synthesis keeps the tests independent of any data download and gives exact ground
truth (a click track's beats are where we put them).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import soundfile as sf

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""The repository root's sibling ``shared/data`` (real songs); may be absent."""


def sine(freq: float, seconds: float, sample_rate: int, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(round(seconds * sample_rate))) / sample_rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def click_track(bpm: float, seconds: float, sample_rate: int,
                first_click: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """Sharp clicks every beat over a quiet chord; returns (samples, click times in seconds).

    Each click is a 2 kHz burst decaying over ~10 ms: a clear, broadband-ish onset,
    the kind of event onset strength and the beat tracker are built to find.
    """
    n = int(round(seconds * sample_rate))
    t = np.arange(n) / sample_rate
    y = 0.05 * (np.sin(2 * np.pi * 220.0 * t) + np.sin(2 * np.pi * 277.2 * t))
    click_times = np.arange(first_click, seconds - 0.05, 60.0 / bpm)
    length = int(0.04 * sample_rate)
    tc = np.arange(length) / sample_rate
    click = 0.8 * np.sin(2 * np.pi * 2000.0 * tc) * np.exp(-tc / 0.01)
    for start in np.round(click_times * sample_rate).astype(int):
        end = min(n, start + length)
        y[start:end] += click[: end - start]
    return y.astype(np.float32), click_times


def encode(samples: np.ndarray, sample_rate: int, format: str, subtype: str | None = None) -> bytes:
    """The bytes of an audio file holding ``samples`` ((N,) or (N, channels))."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, format=format, subtype=subtype)
    return buffer.getvalue()


def dominant_frequency(samples: np.ndarray, sample_rate: int) -> float:
    """Frequency (Hz) of the strongest FFT bin of a Hann-windowed signal."""
    spectrum = np.abs(np.fft.rfft(samples * np.hanning(len(samples))))
    return float(np.argmax(spectrum) * sample_rate / len(samples))


_MP3_BITRATES_KBPS = {  # Layer III bitrate tables (ISO/IEC 11172-3 and 13818-3)
    "1": (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    "2": (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MP3_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def drop_first_mp3_frame(data: bytes) -> bytes:
    """An MP3 file without its first frame, which for libsndfile's encoder is the
    Xing/LAME frame that records the true length. Without it, decoders must guess the
    length from the bitrate, as they do for many MP3s found in the wild."""
    if len(data) < 4 or data[0] != 0xFF or data[1] & 0xE0 != 0xE0:
        raise ValueError("data does not start with an MP3 frame header")
    version = (data[1] >> 3) & 0b11  # 3: MPEG-1, 2: MPEG-2, 0: MPEG-2.5
    if (data[1] >> 1) & 0b11 != 0b01:
        raise ValueError("not a Layer III frame")
    bitrate = 1000 * _MP3_BITRATES_KBPS["1" if version == 3 else "2"][data[2] >> 4]
    rate = _MP3_RATES[version][(data[2] >> 2) & 0b11]
    padding = (data[2] >> 1) & 1
    length = (144 if version == 3 else 72) * bitrate // rate + padding
    return data[length:]
