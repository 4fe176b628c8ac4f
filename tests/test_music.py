"""The music package on real files: decoding, the 35 features, tempo and beats, the cache.

Audio is synthesised (exact ground truth) and encoded by libsndfile into real
wav/flac/ogg/mp3 files; tempo is also checked on four real songs against the tempo
of their rhythm-game charts.
"""

from __future__ import annotations

import hashlib
import io
import threading
from pathlib import Path

import librosa
import numpy as np
import pytest
import soundfile as sf

from backend.music import (
    BEAT_ONEHOT,
    CHROMA,
    ENVELOPE,
    FEATURE_SAMPLE_RATE,
    MFCC,
    NUM_FEATURES,
    PEAK_ONEHOT,
    AudioError,
    MusicCache,
    analyse_music,
    content_hash,
    decode_audio,
    num_frames,
    warm_up,
)
from tests.audio_helpers import (
    SHARED_DATA,
    click_track,
    dominant_frequency,
    drop_first_mp3_frame,
    encode,
    sine,
)

SR = FEATURE_SAMPLE_RATE
SONGS = SHARED_DATA / "music" / "sectoid"
SONG_NAMES = ["escape_from_chaosland", "feelings", "metal_madness", "war_of_freedom"]


# --- decoding -----------------------------------------------------------------------------

@pytest.mark.parametrize("format,subtype,lossless", [
    ("WAV", "PCM_16", True), ("FLAC", "PCM_16", True),
    ("OGG", "VORBIS", False), ("MP3", "MPEG_LAYER_III", False),
])
def test_decodes_each_format(format: str, subtype: str, lossless: bool) -> None:
    rate = 22050
    x = sine(440.0, 2.0, rate)
    y = decode_audio(encode(x, rate, format, subtype), rate)
    assert y.dtype == np.float32 and y.ndim == 1
    assert abs(len(y) - len(x)) <= rate // 100  # lossy codecs may pad by a few ms
    assert dominant_frequency(y, rate) == pytest.approx(440.0, abs=1.0)
    n = min(len(x), len(y))
    if lossless:
        np.testing.assert_allclose(y[:n], x[:n], atol=1e-4)
    else:
        assert np.corrcoef(x[:n], y[:n])[0, 1] > 0.99


@pytest.mark.parametrize("format,subtype", [("FLAC", "PCM_24"), ("OGG", "VORBIS")])
def test_bytes_and_path_decode_the_same(tmp_path: Path, format: str, subtype: str) -> None:
    data = encode(sine(330.0, 1.5, 44100), 44100, format, subtype)
    path = tmp_path / f"song.{format.lower()}"
    path.write_bytes(data)
    from_bytes = decode_audio(data, SR)
    assert np.array_equal(from_bytes, decode_audio(path, SR))
    assert np.array_equal(from_bytes, decode_audio(str(path), SR))


def test_channels_are_averaged() -> None:
    rate = 16000
    channels = np.stack([sine(440.0, 1.0, rate), sine(660.0, 1.0, rate, 0.3),
                         sine(110.0, 1.0, rate, 0.2)], axis=1)
    y = decode_audio(encode(channels, rate, "WAV", "FLOAT"), rate)
    np.testing.assert_allclose(y, channels.mean(axis=1), atol=1e-7)


@pytest.mark.parametrize("file_rate", [44100, 48000, 8000])
def test_resamples_to_the_requested_rate(file_rate: int) -> None:
    y = decode_audio(encode(sine(1000.0, 1.0, file_rate), file_rate, "WAV", "PCM_16"), SR)
    assert abs(len(y) - SR) <= 1
    assert dominant_frequency(y, SR) == pytest.approx(1000.0, abs=1.0)
    assert np.abs(y).max() == pytest.approx(0.5, abs=0.02)


def _code(excinfo: pytest.ExceptionInfo) -> str:
    assert isinstance(excinfo.value, ValueError) and excinfo.value.message
    return excinfo.value.code


def test_non_audio_is_undecodable(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for data in (b"this is not audio, just some text " * 50, rng.bytes(4096)):
        with pytest.raises(AudioError) as excinfo:
            decode_audio(data, SR)
        assert _code(excinfo) == "audio_undecodable"
    text = tmp_path / "notes.txt"
    text.write_text("not audio either\n" * 100)
    with pytest.raises(AudioError) as excinfo:
        decode_audio(text, SR)
    assert _code(excinfo) == "audio_undecodable"
    # A real header followed by garbage where the compressed stream should be.
    broken = encode(sine(440.0, 2.0, 22050), 22050, "OGG", "VORBIS")
    broken = broken[:200] + rng.bytes(len(broken) - 200)
    with pytest.raises(AudioError) as excinfo:
        decode_audio(broken, SR)
    assert _code(excinfo) == "audio_undecodable"


def test_non_finite_samples_are_undecodable() -> None:
    x = sine(440.0, 1.0, 8000)
    x[100] = np.nan
    with pytest.raises(AudioError) as excinfo:
        decode_audio(encode(x, 8000, "WAV", "FLOAT"), SR)
    assert _code(excinfo) == "audio_undecodable"


def test_empty_audio() -> None:
    cases = [b"", encode(np.zeros(0, np.float32), 22050, "WAV", "PCM_16"),
             encode(sine(440.0, 0.05, 22050), 22050, "WAV", "PCM_16")]
    for data in cases:
        with pytest.raises(AudioError) as excinfo:
            decode_audio(data, SR)
        assert _code(excinfo) == "audio_empty"


def test_digital_silence_is_fine_audio() -> None:
    y = decode_audio(encode(np.zeros(3 * 22050, np.float32), 22050, "WAV", "PCM_16"), SR)
    assert len(y) == 3 * SR and not y.any()
    analysis = analyse_music(y)
    assert analysis.features.shape == (90, NUM_FEATURES)
    assert np.isfinite(analysis.features).all()
    assert analysis.tempo_bpm == 0.0 and len(analysis.beat_times) == 0
    assert not analysis.features[:, PEAK_ONEHOT].any()
    assert not analysis.features[:, BEAT_ONEHOT].any()


def test_too_long_is_rejected_from_the_header(tmp_path: Path) -> None:
    # 700 s at 8 Hz: a 11 kB file whose header says it is over the 600 s limit.
    data = encode(np.zeros(700 * 8, np.int16), 8, "WAV", "PCM_16")
    assert len(data) < 12_000
    with pytest.raises(AudioError) as excinfo:
        decode_audio(data, SR, max_seconds=600.0)
    assert _code(excinfo) == "audio_too_long"
    path = tmp_path / "long.wav"
    path.write_bytes(data)
    with pytest.raises(AudioError) as excinfo:
        decode_audio(path, SR, max_seconds=600.0)
    assert _code(excinfo) == "audio_too_long"
    # Just under a limit passes; the limit is on the file's own duration.
    clip = encode(sine(440.0, 1.0, 22050), 22050, "OGG", "VORBIS")
    assert len(decode_audio(clip, SR, max_seconds=1.01)) == SR
    with pytest.raises(AudioError) as excinfo:
        decode_audio(clip, SR, max_seconds=0.99)
    assert _code(excinfo) == "audio_too_long"


def test_mp3_length_guesses_are_checked_while_reading() -> None:
    y, _ = click_track(120.0, 6.0, 22050)
    y[: 3 * 22050] = 0.0  # a quiet intro: low-bitrate first frames
    data = drop_first_mp3_frame(encode(y, 22050, "MP3"))
    assert sf.info(io.BytesIO(data)).duration > 10.0  # the header's guess is twice too long
    assert len(decode_audio(data, SR, max_seconds=8.0)) / SR == pytest.approx(6.0, abs=0.25)
    with pytest.raises(AudioError) as excinfo:
        decode_audio(data, SR, max_seconds=5.0)  # caught by the bounded read
    assert _code(excinfo) == "audio_too_long"


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        decode_audio(tmp_path / "missing.wav", SR)
    data = encode(sine(440.0, 1.0, 22050), 22050, "WAV", "PCM_16")
    with pytest.raises(ValueError):
        decode_audio(data, 0)
    with pytest.raises(ValueError):
        decode_audio(data, SR, max_seconds=0.0)


# --- features -------------------------------------------------------------------------------

def test_num_frames() -> None:
    assert num_frames(5.0) == 150
    assert num_frames(0.0) == 0
    assert num_frames(0.1 * 3) == 9  # 0.30000000000000004 s
    assert num_frames(2.9999999999) == 90  # float noise does not lose a frame
    assert num_frames(7 / 30 - 1e-3) == 6
    assert num_frames(1.0, fps=60) == 60
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError):
            num_frames(bad)


def test_feature_blocks_tile_the_vector() -> None:
    blocks = [ENVELOPE, MFCC, CHROMA, PEAK_ONEHOT, BEAT_ONEHOT]
    assert [b.stop - b.start for b in blocks] == [1, 20, 12, 1, 1]
    assert blocks[0].start == 0 and blocks[-1].stop == NUM_FEATURES == 35
    assert all(a.stop == b.start for a, b in zip(blocks, blocks[1:]))


def test_features_follow_the_literature_recipe() -> None:
    """Each block equals the librosa call the literature makes on the same samples."""
    y, _ = click_track(120.0, 4.0, SR)
    analysis = analyse_music(y, content_hash="abc")
    f = analysis.features
    n = num_frames(4.0)
    assert f.shape == (n, NUM_FEATURES) and f.dtype == np.float32
    assert np.isfinite(f).all()
    assert analysis.duration == pytest.approx(4.0) and analysis.content_hash == "abc"
    assert not f.flags.writeable  # shared through the cache

    envelope = librosa.onset.onset_strength(y=y, sr=SR)
    np.testing.assert_allclose(f[:, ENVELOPE][:, 0], envelope[:n], rtol=1e-5, atol=1e-5)
    mfcc = librosa.feature.mfcc(y=y, sr=SR, n_mfcc=20).T
    np.testing.assert_allclose(f[:, MFCC], mfcc[:n], rtol=1e-4, atol=1e-3)
    chroma = librosa.feature.chroma_cens(y=y, sr=SR, hop_length=512, n_chroma=12).T
    np.testing.assert_allclose(f[:, CHROMA], chroma[:n], atol=1e-6)
    peaks = librosa.onset.onset_detect(onset_envelope=envelope, sr=SR, hop_length=512)
    assert np.array_equal(np.flatnonzero(f[:, PEAK_ONEHOT]), peaks[peaks < n])
    for block in (PEAK_ONEHOT, BEAT_ONEHOT):
        assert set(np.unique(f[:, block])) <= {0.0, 1.0}
    beat_frames = np.flatnonzero(f[:, BEAT_ONEHOT])
    np.testing.assert_allclose(analysis.beat_times, beat_frames / 30.0)


@pytest.mark.parametrize("num_samples", [int(2.5 * SR), int(2.5 * SR) + 511, 3 * SR + 512, 3 * SR + 7777])
def test_frame_count_is_num_frames_of_the_duration(num_samples: int) -> None:
    y = sine(440.0, num_samples / SR, SR)[:num_samples]
    y[::SR // 2] += 0.5  # some onsets, so every block has something to do
    analysis = analyse_music(y)
    assert len(y) == num_samples
    assert analysis.features.shape[0] == num_frames(num_samples / SR) == num_samples // 512
    assert analysis.num_frames == analysis.features.shape[0]


def test_beats_land_on_the_clicks() -> None:
    bpm = 128.0
    y, clicks = click_track(bpm, 12.0, SR)
    analysis = analyse_music(y)
    assert analysis.tempo_bpm == pytest.approx(bpm, rel=0.02)
    beat_frames = np.flatnonzero(analysis.features[:, BEAT_ONEHOT])
    click_frames = clicks * 30.0
    distance = np.abs(beat_frames[:, None] - click_frames[None, :]).min(axis=1)
    assert len(beat_frames) >= 0.8 * len(clicks)
    assert distance.max() <= 2.0  # two frames = 67 ms
    peak_frames = np.flatnonzero(analysis.features[:, PEAK_ONEHOT])
    near = np.abs(click_frames[:, None] - peak_frames[None, :]).min(axis=1) <= 2.0
    assert near.mean() >= 0.9  # the onset detector finds the clicks too


def test_analyse_music_rejects_bad_samples() -> None:
    with pytest.raises(ValueError):
        analyse_music(np.zeros((SR, 2), np.float32))
    with pytest.raises(AudioError) as excinfo:
        analyse_music(np.zeros(SR // 20, np.float32))
    assert excinfo.value.code == "audio_empty"
    y = sine(440.0, 1.0, SR)
    y[5] = np.inf
    with pytest.raises(ValueError):
        analyse_music(y)


def test_warm_up_runs() -> None:
    assert warm_up() is None


# --- tempo on real songs --------------------------------------------------------------------

def _chart_tempo(midi_path: Path) -> float:
    mido = pytest.importorskip("mido")
    for track in mido.MidiFile(midi_path).tracks:
        for message in track:
            if message.type == "set_tempo":
                return float(mido.tempo2bpm(message.tempo))
    raise AssertionError(f"{midi_path} has no set_tempo message")


@pytest.mark.parametrize("song", SONG_NAMES)
def test_tempo_of_real_songs_matches_their_charts(song: str) -> None:
    folder = SONGS / song
    if not (folder / "mix.ogg").is_file():
        pytest.skip(f"shared test songs not found at {folder} (see shared/data/README.md)")
    chart = _chart_tempo(folder / "notes.mid")
    y = decode_audio(folder / "mix.ogg", SR, max_seconds=600.0)
    analysis = analyse_music(y)
    errors = [abs(analysis.tempo_bpm / (chart * k) - 1.0) for k in (0.5, 1.0, 2.0)]
    assert min(errors) <= 0.04, f"{song}: estimated {analysis.tempo_bpm:.1f} BPM, chart {chart:.1f}"
    assert analysis.features.shape == (num_frames(len(y) / SR), NUM_FEATURES)
    assert np.isfinite(analysis.features).all()
    # The beat tracker holds that tempo: the typical gap between beats is one period.
    gap = np.median(np.diff(analysis.beat_times))
    assert gap == pytest.approx(60.0 / analysis.tempo_bpm, abs=1.5 / 30)


# --- cache ----------------------------------------------------------------------------------

def _clip(freq: float) -> bytes:
    y, _ = click_track(100.0, 2.5, 22050)
    return encode(y + sine(freq, 2.5, 22050, 0.1), 22050, "FLAC", "PCM_16")


def test_content_hash_is_sha256() -> None:
    assert content_hash(b"abc") == hashlib.sha256(b"abc").hexdigest()
    assert len(content_hash(b"")) == 64


def test_cache_hit_returns_the_same_analysis() -> None:
    cache = MusicCache()
    data = _clip(440.0)
    first = cache.analyse_bytes(data)
    assert first.content_hash == content_hash(data)
    assert cache.analyse_bytes(data) is first
    assert cache.get(content_hash(data)) is first
    assert cache.get(content_hash(b"something else")) is None
    assert len(cache) == 1 and content_hash(data) in cache


def test_cache_evicts_the_least_recently_used() -> None:
    cache = MusicCache(max_entries=2)
    a, b, c = _clip(440.0), _clip(550.0), _clip(660.0)
    result_a = cache.analyse_bytes(a)
    cache.analyse_bytes(b)
    assert cache.get(content_hash(a)) is result_a  # a is now the most recent
    cache.analyse_bytes(c)
    assert len(cache) == 2
    assert cache.get(content_hash(b)) is None
    assert cache.get(content_hash(a)) is result_a


def test_cache_applies_the_limit_and_stores_no_failures() -> None:
    cache = MusicCache(max_seconds=2.0)
    for _ in range(2):
        with pytest.raises(AudioError) as excinfo:
            cache.analyse_bytes(_clip(440.0))  # 2.5 s
        assert excinfo.value.code == "audio_too_long"
        with pytest.raises(AudioError) as excinfo:
            cache.analyse_bytes(b"not audio" * 100)
        assert excinfo.value.code == "audio_undecodable"
    assert len(cache) == 0


def test_cache_analyses_once_under_concurrent_requests() -> None:
    cache = MusicCache()
    data = _clip(440.0)
    results: list = []
    barrier = threading.Barrier(4)

    def request() -> None:
        barrier.wait()
        results.append(cache.analyse_bytes(data))

    threads = [threading.Thread(target=request) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and all(r is results[0] for r in results)
    assert len(cache) == 1
