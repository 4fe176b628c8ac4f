"""``blender_addon.core.frame_rate``: the one place where the add-on converts between the dance's
frame rate and the scene's (no bpy needed)."""

from __future__ import annotations

import numpy as np
import pytest

from blender_addon.core import frame_rate as fr
from blender_addon.core.quaternions import normalize


def _motion(frames: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    q = normalize(np.array([1.0, 0.0, 0.0, 0.0]) + 0.1 * np.cumsum(rng.normal(size=(frames, 24, 4)), axis=0))
    return q, np.cumsum(rng.normal(size=(frames, 3)), axis=0)


@pytest.mark.parametrize("rate, fields", [(30.0, (30, 1.0)), (24.0, (24, 1.0)), (30 / 1.001, (30, 1.001)),
                                          (24 / 1.001, (24, 1.001)), (12.5, (13, 13 / 12.5))])
def test_a_rate_goes_into_blenders_fields_and_comes_back(rate, fields):
    fps, base = fr.blender_rate(rate)
    assert fps == fields[0] and base == pytest.approx(fields[1])
    assert fr.same_rate(fr.scene_rate(fps, base), rate)


def test_a_nonsense_scene_rate_is_refused():
    with pytest.raises(ValueError, match="invalid frame rate"):
        fr.scene_rate(0, 1.0)


def test_resampling_keeps_the_first_frame_and_the_duration():
    rot, root = _motion(91)  # 3 s at 30 fps
    same_rot, same_root = fr.resample_motion(rot, root, 30.0, 30.0)
    assert np.allclose(same_rot, rot) and np.allclose(same_root, root)
    for target in (24.0, 25.0, 30 / 1.001, 60.0):
        out_rot, out_root = fr.resample_motion(rot, root, 30.0, target)
        assert out_rot.shape[0] == fr.frames_spanning(91, 30.0, target) == int(np.floor(3.0 * target + 1e-6)) + 1
        assert np.allclose(out_rot[0], rot[0]) and np.allclose(out_root[0], root[0])
        assert (out_rot.shape[0] - 1) / target <= 3.0 < out_rot.shape[0] / target
    up_rot, up_root = fr.resample_motion(rot, root, 30.0, 60.0)
    assert np.allclose(up_rot[::2], rot) and np.allclose(up_root[1], (root[0] + root[1]) / 2)


@pytest.mark.parametrize("target", [24.0, 30 / 1.001, 60.0])
def test_streaming_resampler_gives_the_frames_of_resampling_the_whole_dance(target):
    rot, root = _motion(73, seed=1)
    whole_rot, whole_root = fr.resample_motion(rot, root, 30.0, target)
    stream = fr.StreamResampler(30.0, target)
    got_rot, got_root, starts = [], [], []
    bounds = [0, 5, 6, 20, 41, 73]
    for a, b in zip(bounds, bounds[1:]):
        start, r, t = stream.add(rot[a:b], root[a:b], final=b == 73)
        starts.append(start)
        got_rot.append(r)
        got_root.append(t)
    assert starts == sorted(starts) and stream.written == whole_rot.shape[0]
    assert np.array_equal(np.concatenate(got_rot), whole_rot)
    assert np.array_equal(np.concatenate(got_root), whole_root)


def test_spans_and_nearest_frames_map_between_rates():
    # a 29.97 fps scene: scene frames 30-59 lie within dance frames 30-60 at 30 fps
    lo, hi = fr.target_span(30, 61, 30.0, 30 / 1.001)
    assert (lo, hi) == (30, 60)
    assert all(30 <= fr.nearest_frame(f, 30 / 1.001, 30.0) <= 60 for f in range(lo, hi))
    assert fr.target_span(10, 20, 30.0, 30.0) == (10, 20) and fr.nearest_frame(17, 30.0, 30.0) == 17
    assert fr.nearest_frame(2, 24.0, 30.0) == 2  # 2.5 rounds to even, as Python's round does


def test_labels_resample_to_the_scene_rate():
    labels = np.array([[0.0], [1.0], [1.0], [0.0]], dtype=np.float32)
    out = fr.resample_labels(labels, 30.0, 60.0)
    assert out.shape == (7, 1) and out[2, 0] == 1.0 and out[0, 0] == 0.0
    assert fr.resample_labels(labels, 30.0, 24.0, frames=2).shape == (2, 1)
