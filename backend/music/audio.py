"""Turning an uploaded audio file into mono samples at the rate the features need.

Everything the backend hears goes through ``decode_audio``: a song arrives as the
bytes of a wav, flac, ogg or mp3 file (or a path, from the CLI) and leaves as one
float32 channel at the requested rate. libsndfile (through soundfile) does the
decoding; its bundled build reads all four formats, so no ffmpeg is needed.

Uploads come from outside, so this is where bad input is turned into a clear
``AudioError``. The length limit is checked from the file's header before any
sample is decoded, so an hour-long file costs a header read, not a minute of
decoding; the read itself is bounded too, in case a header under-states its length.
"""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from backend.errors import InputError

MIN_SECONDS: float = 0.1
"""Shorter audio counts as empty: it is less than three motion frames long."""

_BLOCK_FRAMES = 1 << 18
"""Frames read (and mixed down) at a time, which bounds memory for many-channel files."""

_UNKNOWN_FRAMES = 1 << 62
"""libsndfile reports a frame count this large (SF_COUNT_MAX) when a header lacks one."""

_ESTIMATED_LENGTH_SLACK = {"MP3": 4.0}
"""Formats whose header length is only an estimate, and how far over the limit it must be
to reject the file unread. An MP3 without a Xing/LAME frame has its length guessed from
the first frame's bitrate; a quiet (low-bitrate) intro makes the guess several times too
long. Such files are judged by the bounded read instead."""


class AudioError(InputError):
    """Audio that cannot be used, with a stable ``code`` for clients and a message for people.

    code is one of ``"audio_undecodable"`` (not audio we can read), ``"audio_empty"``
    (no samples, or under ``MIN_SECONDS``) and ``"audio_too_long"`` (over the limit).
    """


def decode_audio(source: bytes | str | os.PathLike, sample_rate: int,
                 max_seconds: float | None = None) -> np.ndarray:
    """Decode a wav/flac/ogg/mp3 file (path or bytes) to mono float32 at ``sample_rate``.

    Channels are averaged (as ``librosa.to_mono`` does) before resampling, so the
    resampler only sees one channel; resampling uses soxr's high-quality mode, the
    librosa default. ``max_seconds`` (None: no limit) is compared with the file's
    own duration, before resampling.

    Raises AudioError (see its codes), FileNotFoundError for a path that does not
    exist, and ValueError for a non-positive ``sample_rate`` or ``max_seconds``.
    """
    if int(sample_rate) != sample_rate or sample_rate <= 0:
        raise ValueError(f"sample_rate must be a positive integer, got {sample_rate!r}")
    if max_seconds is not None and not max_seconds > 0:
        raise ValueError(f"max_seconds must be positive or None, got {max_seconds!r}")

    if isinstance(source, (bytes, bytearray, memoryview)):
        if len(source) == 0:
            raise AudioError("audio_empty", "the audio data is empty (0 bytes)")
        file: io.BytesIO | str = io.BytesIO(bytes(source))
        name = "the uploaded audio"
    else:
        path = Path(source)
        if not path.is_file():
            raise FileNotFoundError(f"no audio file at {path}")
        file = str(path)
        name = path.name

    try:
        with sf.SoundFile(file) as f:
            mono, file_rate = _read_mono(f, name, max_seconds)
    except (sf.SoundFileError, RuntimeError) as err:
        reason = getattr(err, "error_string", None) or str(err)  # libsndfile's words, no object ids
        raise AudioError(
            "audio_undecodable",
            f"{name} is not audio we can decode (wav, flac, ogg or mp3 expected): {reason}",
        ) from err

    if len(mono) < MIN_SECONDS * file_rate:
        raise AudioError(
            "audio_empty",
            f"{name} holds {len(mono) / file_rate:.3f} s of audio; at least {MIN_SECONDS} s is needed")
    if not np.isfinite(mono).all():
        raise AudioError("audio_undecodable", f"{name} contains NaN or infinite samples")
    if file_rate != sample_rate:
        mono = librosa.resample(mono, orig_sr=file_rate, target_sr=int(sample_rate), res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def _read_mono(f: sf.SoundFile, name: str, max_seconds: float | None) -> tuple[np.ndarray, int]:
    """Read an open file block by block, averaging channels, within the length limit.

    The header's frame count rejects a long file before any decoding; the running
    count during the read catches the files whose header under-states (or, for MP3,
    only estimates) their length, after decoding at most the limit.
    """
    rate = int(f.samplerate)
    header_frames = int(f.frames)
    if header_frames == 0:
        raise AudioError("audio_empty", f"{name} contains no samples")
    limit = None if max_seconds is None else math.floor(max_seconds * rate)
    slack = _ESTIMATED_LENGTH_SLACK.get(f.format, 1.0)
    if limit is not None and header_frames < _UNKNOWN_FRAMES and header_frames > limit * slack:
        raise AudioError(
            "audio_too_long",
            f"{name} is {header_frames / rate:.1f} s long; the limit is {max_seconds:g} s")

    blocks: list[np.ndarray] = []
    total = 0
    while True:
        block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
        if len(block) == 0:
            break
        blocks.append(block.mean(axis=1) if block.shape[1] > 1 else block[:, 0].copy())
        total += len(block)
        if limit is not None and total > limit:
            raise AudioError(
                "audio_too_long", f"{name} is longer than the limit of {max_seconds:g} s")
    mono = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.float32)
    return mono, rate
