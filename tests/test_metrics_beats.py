"""Beat alignment forms, motion beats and the 2D projection, on motions built to a known answer.

The motions are the rest pose carried along a straight line with a chosen speed
profile s(t) = sin^2(pi (t - t0) / P): the body stops exactly at t0 + kP (frames), so
its motion beats are known before any metric runs.
"""

import numpy as np
import pytest

from backend.metrics.beats import (
    BEAT_ALIGN_FORMS, DEFAULT_BEAT_ALIGN, Camera, beat_align, camera_facing, beat_align_motion,
    beat_align_music, beat_align_popdg, mean_joint_speed, mm_align_2d, motion_beats,
    project_to_camera,
)
from protocol.skeleton import JOINT_INDEX, PELVIS_REST_HEIGHT, rest_joint_positions

FPS = 30.0


def standing(frames: int) -> np.ndarray:
    """(T, 24, 3) rest pose standing on the floor, facing -Y."""
    body = rest_joint_positions() + np.array([0.0, 0.0, PELVIS_REST_HEIGHT])
    return np.repeat(body[None], frames, axis=0)


def travel(speed_integral: np.ndarray, direction=(1.0, 0.0, 0.0)) -> np.ndarray:
    """The standing body moved along ``direction`` by the given distance per frame."""
    offset = speed_integral[:, None, None] * np.asarray(direction, dtype=np.float64)
    return standing(len(speed_integral)) + offset


def stops_every(period: float, first: float, frames: int, scale: float = 0.05) -> np.ndarray:
    """Distance travelled with speed sin^2(pi (t - first) / period): stops at first + k period."""
    t = np.arange(frames, dtype=np.float64) - first
    return scale * (t / 2.0 - period / (4.0 * np.pi) * np.sin(2.0 * np.pi * t / period))


def beats_at(frames: np.ndarray) -> np.ndarray:
    return np.asarray(frames, dtype=np.float64) / FPS


T = 240
BEAT_FRAMES = np.arange(15, T - 10, 30)  # a beat every second at 30 fps


def test_motion_beats_are_the_stops():
    pos = travel(stops_every(30.0, 15.0, T))
    np.testing.assert_array_equal(motion_beats(pos), BEAT_FRAMES)
    np.testing.assert_array_equal(motion_beats(pos, smooth_sigma_frames=0.0, order=5), BEAT_FRAMES)


def test_motion_beats_work_on_2d_keypoints():
    pos2d = travel(stops_every(30.0, 15.0, T))[..., :2]
    np.testing.assert_array_equal(motion_beats(pos2d), BEAT_FRAMES)


def test_a_still_body_has_no_motion_beats_and_scores_zero():
    still = standing(T)
    assert len(motion_beats(still)) == 0
    for form in BEAT_ALIGN_FORMS.values():
        assert form(still, beats_at(BEAT_FRAMES)) == 0.0


def test_stops_on_the_beats_score_at_the_top_in_every_form():
    pos = travel(stops_every(30.0, 15.0, T))
    music = beats_at(BEAT_FRAMES)
    assert beat_align_music(pos, music) >= 0.99
    assert beat_align_motion(pos, music) >= 0.99
    # POPDG's one-sided speed cannot split a stop that falls exactly on a frame
    # (two equal steps); a stop a little before the frame is found at that frame.
    off_frame = travel(stops_every(30.0, 14.7, T))
    assert beat_align_popdg(off_frame, music) >= 0.99


def test_half_a_beat_late_scores_clearly_lower():
    music = beats_at(BEAT_FRAMES)
    on = travel(stops_every(30.0, 15.0, T))
    late = travel(stops_every(30.0, 30.0, T))
    for form in (beat_align_music, beat_align_motion):
        assert form(on, music) - form(late, music) > 0.9
    assert beat_align_popdg(travel(stops_every(30.0, 14.7, T)), music) \
        - beat_align_popdg(travel(stops_every(30.0, 29.7, T)), music) > 0.9


def test_twice_as_many_stops_as_beats_separates_the_two_averages():
    """Stopping every half beat: every music beat is met, but half the stops are off-beat."""
    pos = travel(stops_every(15.0, 15.0, T))
    music = beats_at(BEAT_FRAMES)
    assert beat_align_music(pos, music) >= 0.99
    # Stops at 15, 30, ..., 225 (15 of them; frame 0 has no frame before it): the 8 on
    # the beats score 1, the 7 between score exp(-15^2 / 18) ~ 0.
    assert beat_align_motion(pos, music) == pytest.approx(8 / 15, abs=0.01)


def test_popdg_wide_neighbourhood_drops_minor_stops():
    """POPDG's defining difference: order 10 at 30 fps (FACT's 60 fps number unchanged).

    Deep stops on the beats every 16 frames and shallow slow-downs half-way between:
    FACT's 5-frame neighbourhood (its 10 at 60 fps) keeps the slow-downs as motion
    beats, 8 frames off the music; POPDG's 10 frames swallow them.
    """
    # speed sin^2(pi (t - t0) / 8) + 0.3 sin^2(pi (t - t0) / 16), t0 = 3.7: deep stops at
    # 3.7 + 16k (seen at frames 4 + 16k), slow-downs to 0.3 at 11.7 + 16k (frames 12 + 16k).
    pos = travel(stops_every(8.0, 3.7, T) + 0.3 * stops_every(16.0, 3.7, T))
    music = beats_at(np.arange(4, T - 5, 16))
    assert beat_align_popdg(pos, music) >= 0.99
    # 15 deep stops score 1, 15 slow-downs exp(-8^2 / 18)
    expected_fact = (1.0 + np.exp(-(8.0**2) / 18.0)) / 2.0
    assert beat_align_motion(pos, music) == pytest.approx(expected_fact, abs=0.03)


def test_popdg_scores_only_the_first_ten_seconds():
    """On-beat for 10 s, then stops half a beat late: POPDG does not see the second part."""
    frames = 600
    first = stops_every(30.0, 14.7, frames)
    second = stops_every(30.0, 29.7, frames)
    joined = np.where(np.arange(frames) < 300, first, second - second[300] + first[300])
    pos = travel(joined)
    music = beats_at(np.arange(15, frames - 10, 30))
    assert beat_align_popdg(pos, music) >= 0.99
    assert beat_align_motion(pos, music) < 0.7


def test_music_beats_outside_the_clip_are_ignored():
    pos = travel(stops_every(30.0, 15.0, T))
    inside = beats_at(BEAT_FRAMES)
    outside = np.concatenate([[-1.0, -0.2], inside, [T / FPS + 0.5, T / FPS + 3.0]])
    for form in BEAT_ALIGN_FORMS.values():
        assert form(pos, outside) == pytest.approx(form(pos, inside))


def test_no_music_beats_scores_zero():
    pos = travel(stops_every(30.0, 15.0, T))
    for form in BEAT_ALIGN_FORMS.values():
        assert form(pos, np.array([])) == 0.0
        assert form(pos, np.array([100.0])) == 0.0  # only a beat after the clip


def test_fps_is_honoured():
    """The same dance sampled at 60 fps, with the same beat times, scores the same."""
    frames = 2 * T
    pos60 = travel(stops_every(60.0, 30.0, frames) / 2.0)
    music = beats_at(BEAT_FRAMES)
    assert beat_align_music(pos60, music, fps=60.0) >= 0.99
    assert beat_align_motion(pos60, music, fps=60.0) >= 0.99
    late = travel(stops_every(60.0, 60.0, frames) / 2.0)
    assert beat_align_music(late, music, fps=60.0) < 0.05


def test_forms_are_named_and_default_is_music_averaged():
    assert set(BEAT_ALIGN_FORMS) == {"music", "motion", "popdg"}
    assert DEFAULT_BEAT_ALIGN == "music"
    pos = travel(stops_every(15.0, 15.0, T))
    music = beats_at(BEAT_FRAMES)
    assert beat_align(pos, music) == beat_align_music(pos, music)
    assert beat_align(pos, music, form="motion") == beat_align_motion(pos, music)
    with pytest.raises(ValueError, match="unknown beat-alignment form"):
        beat_align(pos, music, form="nope")


def test_scores_stay_in_unit_interval_on_noise():
    rng = np.random.default_rng(0)
    pos = standing(T) + rng.normal(scale=0.02, size=(T, 24, 3))
    music = beats_at(BEAT_FRAMES)
    for form in BEAT_ALIGN_FORMS.values():
        assert 0.0 <= form(pos, music) <= 1.0


# --- the camera and 2D-MM Align ---------------------------------------------------

def test_projection_of_axis_and_left_points():
    cam = Camera()
    # The dancer faces -Y, so their left is +X (the left hip lies at +X in the rest pose).
    assert rest_joint_positions()[JOINT_INDEX["left_hip"], 0] > 0
    points = np.array([[[0.0, 0.0, 1.0], [0.0, 2.0, 1.0], [1.0, 0.0, 1.0], [0.0, 0.0, 2.0]]])
    uv = project_to_camera(points, cam)
    width, height = cam.image_size
    f, depth = cam.focal_length_px, 4.5
    np.testing.assert_allclose(uv[0, 0], [width / 2, height / 2], atol=1e-9)
    np.testing.assert_allclose(uv[0, 1], [width / 2, height / 2], atol=1e-9)
    # 1 m to the dancer's left, 4.5 m from the camera: u = cx + f * 1 / 4.5, on the image's right
    np.testing.assert_allclose(uv[0, 2], [width / 2 + f / depth, height / 2], atol=1e-9)
    # 1 m up: higher in the image, v = cy - f * 1 / 4.5
    np.testing.assert_allclose(uv[0, 3], [width / 2, height / 2 - f / depth], atol=1e-9)


def test_projection_with_other_camera_and_behind():
    cam = Camera(position=(3.0, 0.0, 1.0), look_at=(0.0, 0.0, 1.0), focal_length_px=500.0,
                 image_size=(640, 480))
    # Looking along -X with Z up, the camera's right is +Y: a point at y = 1 m shows right of centre.
    uv = project_to_camera(np.array([[[0.0, 1.0, 1.0]]]), cam)
    np.testing.assert_allclose(uv[0, 0], [320 + 500 / 3.0, 240], atol=1e-9)
    with pytest.raises(ValueError, match="behind the camera"):
        project_to_camera(np.array([[[5.0, 0.0, 1.0]]]), cam)
    with pytest.raises(ValueError):
        Camera(position=(0.0, 0.0, 5.0), look_at=(0.0, 0.0, 0.0))  # straight down


def test_mm_align_2d_image_plane_motion_on_beat_scores_high():
    music = beats_at(BEAT_FRAMES)
    on = travel(stops_every(30.0, 15.0, T), direction=(1.0, 0.0, 0.0))
    late = travel(stops_every(30.0, 30.0, T), direction=(1.0, 0.0, 0.0))
    assert mm_align_2d(on, music) >= 0.99
    assert mm_align_2d(late, music) < 0.05


def test_depth_motion_barely_moves_in_the_image_but_keeps_its_timing():
    """Along the viewing axis, perspective only rescales the body a little, yet the
    keypoints stop when the body stops, so 2D-MM Align still finds the beats."""
    music = beats_at(BEAT_FRAMES)
    sideways = project_to_camera(travel(stops_every(30.0, 15.0, T), direction=(1.0, 0.0, 0.0)))
    depth_pos = travel(stops_every(30.0, 15.0, T), direction=(0.0, 1.0, 0.0))
    depth = project_to_camera(depth_pos)
    assert mean_joint_speed(depth).mean() < 0.2 * mean_joint_speed(sideways).mean()
    assert mean_joint_speed(depth).mean() > 0
    assert mm_align_2d(depth_pos, music) >= 0.99


def test_the_default_camera_follows_where_the_clip_is_not_how_it_moves():
    """A dance 10 m behind the origin's camera is still seen from the front, and scores as
    it does at the origin; the camera stands still, so the dancer's travel stays visible."""
    music = beats_at(BEAT_FRAMES)
    on = travel(stops_every(30.0, 15.0, T), direction=(1.0, 0.0, 0.0))
    far = on + np.array([3.0, -10.0, 0.0])
    with pytest.raises(ValueError, match="behind the camera"):
        project_to_camera(far)  # the fixed default camera stands at y = -4.5
    assert mm_align_2d(far, music) == pytest.approx(mm_align_2d(on, music))
    camera = camera_facing(far)
    assert camera.look_at[:2] == pytest.approx(far[:, 0, :2].mean(axis=0))
    pelvis_u = project_to_camera(far, camera)[:, JOINT_INDEX["pelvis"], 0]
    assert pelvis_u[-1] - pelvis_u[0] > 100  # about 2.6 m of travel to the right, in pixels


# --- bad input ---------------------------------------------------------------------

@pytest.mark.parametrize("form", [beat_align_music, beat_align_motion, beat_align_popdg, mm_align_2d])
def test_bad_positions_raise(form):
    music = beats_at(BEAT_FRAMES)
    bad = travel(stops_every(30.0, 15.0, T))
    bad[10, 3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        form(bad, music)
    with pytest.raises(ValueError, match=r"\(T, J"):
        form(np.zeros((T, 24)), music)
    with pytest.raises(ValueError, match=r"\(T, J"):
        form(np.zeros((T, 24, 4)), music)


def test_bad_beats_and_fps_raise():
    pos = travel(stops_every(30.0, 15.0, T))
    with pytest.raises(ValueError, match="music_beat_times"):
        beat_align_music(pos, np.array([0.5, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        beat_align_music(pos, beats_at(BEAT_FRAMES)[None])
    with pytest.raises(ValueError, match="fps"):
        beat_align_music(pos, beats_at(BEAT_FRAMES), fps=0.0)
    with pytest.raises(ValueError, match=r"\(T, J, 3\)"):
        project_to_camera(np.zeros((T, 24, 2)))
