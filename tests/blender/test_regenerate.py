"""Regenerate a range or body part in place through the add-on, against a real backend."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from blender_addon import keyframes
from blender_addon.core.edit_plan import BODY_PARTS
from blender_addon.core.quaternions import forward_kinematics
from blender_addon.operators import ensure_connected, start_generate
from protocol.skeleton import JOINT_NAMES, OFFSETS, PARENTS

from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)

PATHS = [(f'pose.bones["{n}"].rotation_quaternion', i) for n in JOINT_NAMES for i in range(4)] + \
        [('pose.bones["pelvis"].location', i) for i in range(3)]


def _dance(scene, seconds: float = 8.0):  # noqa: ANN001, ANN202
    ensure_connected(bpy.context)
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 0.0, seconds
    job = start_generate(bpy.context, FAST_OPTIONS)
    while not job.poll_once():
        pass
    assert job.state == "done", job.message
    obj = job.target.obj
    bpy.context.view_layer.objects.active = obj
    return obj


def _snapshot(obj):  # noqa: ANN001, ANN202
    return {p: keyframes.key_points(obj, *p) for p in PATHS}


def _world_speed_jump(obj, scene, first: int, last: int) -> float:  # noqa: ANN001
    rot, loc, _ = keyframes.read_motion(obj, np.arange(first, last + 1), JOINT_NAMES)
    q = np.stack([rot[n] for n in JOINT_NAMES], 1)
    pos, _ = forward_kinematics(q, loc["pelvis"], OFFSETS, PARENTS)
    speed = np.linalg.norm(np.diff(pos, axis=0), axis=2).mean(axis=1)
    return float(np.abs(np.diff(speed)).max() / np.median(speed))


@pytest.mark.parametrize("mode", ["range", "arms"])
def test_regenerate_keeps_everything_else_bit_identical(addon, scene, mode):  # noqa: ANN001, F811
    obj = _dance(scene)
    before = _snapshot(obj)
    s = scene.choreo
    s.edit_range, s.edit_first, s.edit_last = "TYPED", 91, 150
    s.edit_joints = "ALL" if mode == "range" else "PARTS"
    s.edit_parts = {"ARMS"}
    s.seed = 99
    assert bpy.ops.choreo.regenerate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    after = _snapshot(obj)
    chosen = set(JOINT_NAMES) if mode == "range" else set(BODY_PARTS["ARMS"])
    changed = 0
    for (path, i), old in before.items():
        new = after[(path, i)]
        frames = old["co"][:, 0]
        outside = (frames < 91) | (frames > 150)
        for key in old:  # keys outside the range: every attribute, bit for bit
            assert np.array_equal(old[key][outside], new[key][outside]), (path, i, key)
        bone = path.split('"')[1]
        moving = bone in chosen and not (path.endswith("location") and "pelvis" not in chosen)
        inside = ~outside
        if not moving:  # unchosen bones: untouched inside the range too
            assert np.array_equal(old["co"][inside], new["co"][inside]), (path, i)
        else:
            changed += int(not np.array_equal(old["co"][inside], new["co"][inside]))
    assert changed > 0
    # the seams are continuous: no speed jump at the borders beyond what the dance has itself
    inner = _world_speed_jump(obj, scene, 1, 90)
    assert _world_speed_jump(obj, scene, 80, 100) <= max(3.0, 1.5 * inner)
    assert _world_speed_jump(obj, scene, 140, 160) <= max(3.0, 1.5 * inner)


def test_own_keys_inside_the_range_are_kept(addon, scene):  # noqa: ANN001, F811
    obj = _dance(scene)
    pb = obj.pose.bones["left_elbow"]
    scene.frame_set(120)
    pb.rotation_quaternion = (0.7071, 0.7071, 0.0, 0.0)
    pb.keyframe_insert("rotation_quaternion", frame=120)  # the animator's own key (type KEYFRAME)
    assert keyframes.own_key_frames(obj, ["left_elbow"], 91, 150) == [120]
    s = scene.choreo
    s.edit_range, s.edit_first, s.edit_last, s.edit_joints, s.keep_own_keys = "TYPED", 91, 150, "ALL", True
    assert bpy.ops.choreo.regenerate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    rot, _, _ = keyframes.read_motion(obj, np.array([120]), ["left_elbow"])
    assert np.allclose(rot["left_elbow"][0], np.array([0.7071, 0.7071, 0, 0]) / np.linalg.norm([0.7071, 0.7071]),
                       atol=1e-4)


def test_regenerate_without_a_dance_or_range_is_a_clear_error(addon, scene):  # noqa: ANN001, F811
    obj = _dance(scene, seconds=3.0)
    s = scene.choreo
    s.edit_range, s.edit_first, s.edit_last = "TYPED", 500, 600
    with pytest.raises(RuntimeError, match="does not overlap"):
        bpy.ops.choreo.regenerate()
    s.edit_range = "PREVIEW"
    scene.use_preview_range = False
    with pytest.raises(RuntimeError, match="preview range"):
        bpy.ops.choreo.regenerate()
    del obj["choreo_motion"]
    s.edit_range = "TYPED"
    with pytest.raises(RuntimeError, match="no Choreo dance"):
        bpy.ops.choreo.regenerate()
