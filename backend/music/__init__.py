"""Music in, per-frame features out: decoding uploads, the 35 literature features, a cache.

``audio`` turns a wav/flac/ogg/mp3 file into mono samples, ``features`` computes the
features, tempo and beats on the motion frame grid, and ``cache`` keeps analyses of
recent uploads by content hash. See docs/music_features.md for the exact recipe.
"""

from backend.music.audio import AudioError, decode_audio
from backend.music.cache import MusicCache, content_hash
from backend.music.features import (
    BEAT_ONEHOT,
    CHROMA,
    ENVELOPE,
    FEATURE_FPS,
    FEATURE_SAMPLE_RATE,
    HOP_LENGTH,
    MFCC,
    NUM_FEATURES,
    PEAK_ONEHOT,
    MusicAnalysis,
    analyse_music,
    num_frames,
    warm_up,
)

__all__ = [
    "AudioError", "decode_audio", "MusicCache", "content_hash", "BEAT_ONEHOT", "CHROMA",
    "ENVELOPE", "FEATURE_FPS", "FEATURE_SAMPLE_RATE", "HOP_LENGTH", "MFCC", "NUM_FEATURES",
    "PEAK_ONEHOT", "MusicAnalysis", "analyse_music", "num_frames", "warm_up",
]
