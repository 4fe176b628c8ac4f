"""The bundled default model dances: it keeps moving, in time, on the floor, song by song.

Measured with ``backend.metrics.dance_report`` on real songs (the bundled example and
a Sectoid song from ../shared/data), 30 s each, through the same generator the
server streams from. The thresholds are the issue's: moving through 30 s, on the
beat better than half a beat off, feet on the floor, seams continuous (no joint-speed
jump above 3x the clip's median), different songs visibly different.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.examples import EXAMPLE_SONG
from backend.metrics.dance_report import generate_clip, measure_dance, style_distance, style_vector
from backend.models.checkpoint import load_checkpoint
from backend.models.registry import MODELS, load_generator
from backend.music.audio import decode_audio
from backend.music.features import FEATURE_SAMPLE_RATE, analyse_music

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "music" / "sectoid"


def _music(path: Path, offset: float, seconds: float = 30.0):
    samples = decode_audio(path, FEATURE_SAMPLE_RATE)
    start = int(offset * FEATURE_SAMPLE_RATE)
    return analyse_music(samples[start:start + int(seconds * FEATURE_SAMPLE_RATE)])


@pytest.fixture(scope="module")
def generator():
    return load_generator("edge", device="cpu")


@pytest.fixture(scope="module")
def example_dance(generator):
    music = _music(EXAMPLE_SONG, 0.0)
    clip, seams = generate_clip(generator, music.features, seed=0)
    return clip, music, seams


def test_bundled_checkpoint_is_small_and_loads_weights_only():
    path = MODELS["edge"].default_checkpoint
    assert path.stat().st_size <= 20 * 1024 * 1024
    ckpt = load_checkpoint(path)
    assert ckpt["model"] == "edge" and ckpt["step"] > 0
    assert "optimizer" not in ckpt  # the bundled file holds only what sampling needs


def test_it_keeps_moving_through_30_seconds(example_dance):
    clip, music, seams = example_dance
    m = measure_dance(clip, music, seams)
    assert m.seconds == pytest.approx(30.0, abs=0.05)
    assert m.speed_last_10s >= 0.5 * m.speed_first_10s
    assert m.speed_last_10s > 0.004  # metres per frame, mean over joints: clearly dancing


def test_it_moves_in_time_with_the_beat(example_dance):
    clip, music, seams = example_dance
    m = measure_dance(clip, music, seams)
    assert m.beat_alignment > m.beat_alignment_half_beat_off + 0.05


def test_feet_stay_on_the_floor(example_dance):
    clip, music, seams = example_dance
    m = measure_dance(clip, music, seams)
    assert abs(m.sole_height_median_m) < 0.05
    assert m.sole_height_p05_m > -0.08  # not sunk into the floor


def test_window_seams_are_continuous(example_dance):
    clip, music, seams = example_dance
    assert len(seams) >= 5  # 30 s takes several windows
    assert measure_dance(clip, music, seams).max_seam_jump <= 3.0


@pytest.mark.skipif(not SHARED.is_dir(), reason="../shared/data/music/sectoid is not present")
def test_different_songs_give_different_dances(generator, example_dance):
    clip_a, _, _ = example_dance
    music_b = _music(SHARED / "feelings" / "mix.ogg", 30.0)  # 95 BPM ballad against 150 BPM metal
    clip_b, _ = generate_clip(generator, music_b.features, seed=0)
    clip_a2, _ = generate_clip(generator, _music(EXAMPLE_SONG, 0.0).features, seed=1)
    between = style_distance(style_vector(clip_a), style_vector(clip_b))
    within = style_distance(style_vector(clip_a), style_vector(clip_a2))
    assert between > 2 * within
    assert not np.allclose(clip_a.rotations, clip_a2.rotations, atol=1e-3)  # seeds differ too
