"""Pose spread, jerk per unit speed, the beat-alignment margin and the contact sheet.

Every measure runs on motions built so that the answer is known on paper: joints
swinging sinusoidally about a still pelvis (their standard deviation and their
jerk-to-speed ratio follow from the sinusoid), a body that stops on a known beat
grid, and real CMU dance where the shared data is present.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from backend.metrics.beats import beat_align_music
from backend.metrics.contact_sheet import (
    DPI, contact_sheet, foot_heights, layout, sample_frames, sheet_figure,
)
from backend.metrics.quality import (
    beat_alignment_margin, jerk_per_unit_speed, mean_joint_speed_mps, pose_spread, quality_report,
)
from protocol.skeleton import PELVIS_REST_HEIGHT, rest_joint_positions

FPS = 30.0
CMU = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "mocap" / "cmu"


def standing(frames: int) -> np.ndarray:
    """(T, 24, 3) rest pose standing on the floor, facing -Y."""
    body = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
    return np.repeat(body[None], frames, axis=0)


def swinging(frames: int, hz: float, amp_x: float, amp_z: float = 0.0) -> np.ndarray:
    """Every joint but the pelvis swings by amp_x sin(w t) along X and amp_z cos(w t) along Z."""
    t = np.arange(frames) / FPS
    w = 2 * np.pi * hz
    p = standing(frames)
    p[:, 1:, 0] += amp_x * np.sin(w * t)[:, None]
    p[:, 1:, 2] += amp_z * np.cos(w * t)[:, None]
    return p


def test_pose_spread_of_a_sinusoid_is_its_standard_deviation():
    # 3 s of a 2 Hz swing: whole periods, so std of A sin is A / sqrt(2) exactly
    p = swinging(90, 2.0, amp_x=0.2, amp_z=0.1)
    per_joint = math.sqrt((0.2**2 + 0.1**2) / 2)
    assert pose_spread(p) == pytest.approx(per_joint * 23 / 24, rel=1e-9)  # the pelvis counts with 0


def test_pose_spread_ignores_travel_and_is_zero_for_a_held_pose():
    p = swinging(90, 2.0, amp_x=0.2)
    travelled = p + np.linspace(0, 3, 90)[:, None, None] * np.array([1.0, 0.5, 0.2])
    assert pose_spread(travelled) == pytest.approx(pose_spread(p), rel=1e-9)
    held = standing(90) + np.linspace(0, 2, 90)[:, None, None] * np.array([1.0, 0.0, 0.0])
    assert pose_spread(held) == pytest.approx(0.0, abs=1e-12)


def test_mean_joint_speed_of_constant_velocity():
    p = standing(60) + (np.arange(60) / FPS)[:, None, None] * np.array([0.3, 0.4, 0.0])
    assert mean_joint_speed_mps(p, FPS) == pytest.approx(0.5, rel=1e-9)


@pytest.mark.parametrize("hz", [1.0, 2.0, 5.0])
def test_jerk_per_unit_speed_of_a_sinusoid_is_omega_squared(hz):
    """|x'''| / |x'| = A w^3 |cos| / A w |cos| = w^2; with finite differences each factor
    w becomes 2 fps sin(w / 2 fps), so the ratio is (2 fps sin(w / 2 fps))^2."""
    w = 2 * np.pi * hz
    p = swinging(600, hz, amp_x=0.1)
    expected = (2 * FPS * math.sin(w / (2 * FPS))) ** 2
    assert jerk_per_unit_speed(p, FPS) == pytest.approx(expected, rel=0.01)
    assert expected == pytest.approx(w**2, rel=0.1)  # and close to the continuous w^2
    # amplitude cancels: a bigger swing is not a shakier one
    assert jerk_per_unit_speed(swinging(600, hz, amp_x=0.4), FPS) == pytest.approx(
        jerk_per_unit_speed(p, FPS), rel=1e-6)


def test_jerk_per_unit_speed_is_zero_standing_and_rises_with_frame_noise():
    assert jerk_per_unit_speed(standing(60), FPS) == 0.0
    smooth = swinging(300, 1.0, amp_x=0.1)
    noisy = smooth + np.random.default_rng(0).normal(0, 0.003, smooth.shape)
    assert jerk_per_unit_speed(smooth, FPS) < 45 < 300 < jerk_per_unit_speed(noisy, FPS)


def stopping_on(beat_times: np.ndarray, frames: int) -> np.ndarray:
    """The body travels along X with speed ~ |sin(phase)| (x = 0.05 * its integral), stopping
    exactly at the given regular beats, where phase is a multiple of pi."""
    period = float(np.diff(beat_times).mean())
    t = np.arange(frames) / FPS
    phase = np.pi * (t - beat_times[0]) / period
    x = 0.05 * (np.floor(phase / np.pi) * 2 + 1 - np.cos(phase % np.pi))
    return standing(frames) + x[:, None, None] * np.array([1.0, 0.0, 0.0])


def test_margin_is_positive_for_a_dance_that_stops_on_its_own_beats():
    frames = 300  # 10 s
    own = np.arange(0.5, 10.0, 0.5)  # 120 BPM
    other = np.arange(0.3, 14.0, 60 / 97)  # 97 BPM, and longer than the dance
    p = stopping_on(own, frames)
    margin = beat_alignment_margin(p, own, other, FPS)
    assert beat_align_music(p, own, FPS) > 0.99
    assert margin > 0.4
    # exactly the difference of the two music-averaged scores, the other cut to the dance
    cut = other[other <= (frames - 1) / FPS]
    assert margin == pytest.approx(beat_align_music(p, own, FPS) - beat_align_music(p, cut, FPS))
    # against its own beats, no margin; danced to the other tempo, a negative one
    assert beat_alignment_margin(p, own, own, FPS) == 0.0
    assert beat_alignment_margin(stopping_on(other, frames), own, other, FPS) < -0.4


def test_margin_ignores_the_other_songs_beats_after_the_dance():
    own = np.arange(0.5, 10.0, 0.5)
    other = np.arange(0.3, 9.5, 60 / 97)
    p = stopping_on(own, 300)
    longer = np.r_[other, np.arange(10.0, 40.0, 0.5)]
    assert beat_alignment_margin(p, own, longer, FPS) == beat_alignment_margin(p, own, other, FPS)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="positions"):
        pose_spread(np.zeros((10, 24)))
    with pytest.raises(ValueError, match="fps"):
        mean_joint_speed_mps(standing(10), 0.0)
    with pytest.raises(ValueError, match="at least 4"):
        jerk_per_unit_speed(standing(3), FPS)
    with pytest.raises(ValueError, match="NaN"):
        pose_spread(np.full((5, 24, 3), np.nan))


def _png_size(path: Path) -> tuple[int, int]:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        return im.size


def test_contact_sheet_writes_a_png_of_the_expected_size(tmp_path):
    p = swinging(120, 1.0, amp_x=0.1, amp_z=0.05)  # 4 s: figures at 0.0, 0.5, ..., 3.5
    assert list(sample_frames(120, FPS)) == list(range(0, 120, 15))
    per_row, rows, width_in = layout(120, FPS)
    assert (per_row, rows) == (8, 1)
    out = contact_sheet(p, FPS, np.arange(0.5, 4.0, 0.5), tmp_path / "sheets" / "short.png", "short")
    assert out == tmp_path / "sheets" / "short.png"
    width, height = _png_size(out)
    assert width == round(width_in * DPI)
    assert 500 < height < 1000  # one row of figures above three traces


def test_contact_sheet_of_30_seconds_has_three_rows_of_twenty(tmp_path):
    per_row, rows, width_in = layout(900, FPS)
    assert (per_row, rows) == (20, 3) and len(sample_frames(900, FPS)) == 60
    out = contact_sheet(swinging(900, 0.5, amp_x=0.2), FPS, None, tmp_path / "long.png", "30 s")
    width, height = _png_size(out)
    assert width == round(width_in * DPI) and height > 800


def test_contact_sheet_panels_stay_inside_the_page_and_apart():
    """Figure rows and the three traces, top to bottom, none overlapping another."""
    fig = sheet_figure(swinging(900, 0.5, amp_x=0.2), FPS, np.arange(0.5, 30, 0.5), "30 s")
    boxes = sorted((ax.get_position() for ax in fig.axes), key=lambda b: -b.y1)
    assert len(boxes) == 3 + 3  # three figure rows, three traces
    for upper, lower in zip(boxes, boxes[1:]):
        assert lower.y1 <= upper.y0 + 1e-9
    assert boxes[-1].y0 > 0 and boxes[0].y1 < 1


def test_foot_heights_read_zero_standing():
    left, right = foot_heights(standing(5))
    np.testing.assert_allclose(left, 0.0, atol=1e-9)
    np.testing.assert_allclose(right, 0.0, atol=1e-9)


@pytest.mark.skipif(not (CMU / "55_01.bvh").is_file(), reason="shared CMU mocap not present")
def test_real_cmu_dance_reads_as_dance():
    """The reference values in docs/metrics.md (55_01: free dance, 15 s)."""
    from backend.metrics.basic import joint_positions
    from backend.motion.bvh import load_bvh_clip

    clip = load_bvh_clip(CMU / "55_01.bvh")
    report = quality_report(joint_positions(clip), clip.fps)
    assert 0.17 <= report["pose_spread"] <= 0.30
    assert 0.45 <= report["mean_joint_speed"] <= 1.0
    assert 150 <= report["jerk_per_speed"] <= 500
