"""Generate onto the animator's own rig and regenerate a body part there, through the operators."""

from __future__ import annotations

import json

import bpy
import numpy as np

from blender_addon import keyframes
from blender_addon.core import bone_maps
from tests import retarget_rigs as rigs
from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)
from tests.blender.test_retarget import build_rig


def _snapshot(obj):  # noqa: ANN001, ANN202
    return {(fc.data_path, fc.array_index): keyframes.key_points(obj, fc.data_path, fc.array_index)
            for fc in keyframes.all_fcurves(obj)}


def test_generate_then_regenerate_arms_on_a_ue5_rig(addon, scene, tmp_path):  # noqa: ANN001, F811
    obj = build_rig("UE5", rigs.ue5_specs())
    bpy.context.view_layer.objects.active = obj
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 0.0, 6.0
    s.target, s.preset, s.root_mode, s.seed = "SELECTED", "AUTO", "ROOT_BONE", 2
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    assert {row.name: row.bone for row in obj.choreo_bone_map}["left_elbow"] == "lowerarm_l"
    frames = keyframes.key_frames(obj, 'pose.bones["lowerarm_l"].rotation_quaternion')
    assert frames.size == 180
    root_x = keyframes.read_channel(obj, 'pose.bones["root"].location', 3, frames, (0, 0, 0))
    assert np.ptp(root_x[:, :2]) > 0.0  # the root bone carries the travel
    # Save and load the map as JSON
    path = tmp_path / "ue5_map.json"
    assert bpy.ops.choreo.preset_save(filepath=str(path)) == {"FINISHED"}
    assert bone_maps.load(path).bones["left_elbow"] == "lowerarm_l"
    # Regenerate the arms over frames 61-120: nothing else moves, bit for bit
    before = _snapshot(obj)
    s.edit_range, s.edit_first, s.edit_last, s.edit_joints, s.edit_parts = "TYPED", 61, 120, "PARTS", {"ARMS"}
    s.seed = 8
    assert bpy.ops.choreo.regenerate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    after = _snapshot(obj)
    arm_bones = {"clavicle_l", "clavicle_r", "upperarm_l", "upperarm_r", "lowerarm_l", "lowerarm_r",
                 "hand_l", "hand_r"}
    changed = 0
    for key, old in before.items():
        new = after[key]
        f = old["co"][:, 0]
        outside = (f < 61) | (f > 120)
        for attr in old:
            assert np.array_equal(old[attr][outside], new[attr][outside]), (key, attr)
        bone = key[0].split('"')[1] if key[0].startswith("pose.bones") else None
        if bone not in arm_bones:
            assert np.array_equal(old["co"], new["co"]), key
        else:
            changed += int(not np.array_equal(old["co"], new["co"]))
    assert changed > 0
