"""Contact labels and planted feet in real headless Blender, against a real backend.

A dance is generated onto the SMPL rig and onto a Mixamo-style rig; Blender evaluates
the keyed frames and we measure the posed bones: the feet inside contact spans (from the
rig's own contact curves), their height, and, with planting off, that nothing outside
the legs and hips changes.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from blender_addon import foot_plant_bpy, keyframes
from blender_addon.core import foot_contacts as fc
from blender_addon.core import leg_ik
from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)
from tests.blender.test_retarget import build_rig, evaluate, mixamo_rig

SECONDS = 5.0
LEG_JOINTS = {f"{s}_{j}" for s in ("left", "right") for j in ("hip", "knee", "ankle")}


def _generate(scene, *, plant: bool, target: str = "NEW_SMPL", seed: int = 4) -> None:  # noqa: ANN001
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 1.0, SECONDS
    s.target, s.seed, s.plant_feet, s.beat_markers = target, seed, plant, False
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status


def _feet(obj, bone_map) -> dict[str, str]:  # noqa: ANN001
    return {j: bone_map.bone(j) for s in ("left", "right") for j in (f"{s}_ankle", f"{s}_foot") if bone_map.bone(j)}


def _check_planted(obj, first: int, last: int) -> int:  # noqa: ANN001
    """Feet hold inside every contact span in [first, last]; returns how many spans were checked."""
    frames = np.arange(first, last + 1)
    labels = foot_plant_bpy.read_contacts(obj, frames)
    bone_map = foot_plant_bpy.bone_map_of(obj)
    feet = _feet(obj, bone_map)
    heads, _ = evaluate(obj, frames)
    world = np.array(obj.matrix_world)
    rest = {b: (world @ np.append(np.array(obj.data.bones[b].head_local), 1.0))[:3] for b in feet.values()}
    floor = min(v[2] for v in rest.values())
    checked = 0
    for joint, bone in feet.items():
        for span in fc.contact_spans(labels[joint]):
            part = heads[bone][span.start:span.stop]
            assert np.abs(part - part[0]).max() <= 0.01, (obj.name, joint, span)
            assert part[:, 2].min() >= floor - 0.01 - 1e-6, (obj.name, joint, span, part[:, 2].min(), floor)
            checked += len(span) > 1
    return checked


def test_contact_labels_are_animated_properties_and_the_feet_hold(addon, scene):  # noqa: ANN001, F811
    _generate(scene, plant=True)
    obj = bpy.data.objects["SMPL"]
    frames = int(round(SECONDS * scene.render.fps))
    for joint in ("left_ankle", "left_foot", "right_ankle", "right_foot"):
        prop = fc.property_name(joint)
        assert prop in obj.keys()
        keys = keyframes.key_frames(obj, f'["{prop}"]')
        assert keys.size == frames and keys[0] == scene.frame_start
    assert _check_planted(obj, scene.frame_start, scene.frame_start + frames - 1) >= 2
    # Baked: keys only, no constraints left on the rig.
    assert not any(len(pb.constraints) for pb in obj.pose.bones)


def test_planting_off_leaves_every_other_bone_bit_identical(addon, scene):  # noqa: ANN001, F811
    _generate(scene, plant=True)
    planted = bpy.data.objects["SMPL"]
    planted.name = "SMPL planted"
    _generate(scene, plant=False)
    plain = bpy.data.objects["SMPL"]
    legs_and_hips = 0
    for fcurve in keyframes.all_fcurves(plain):
        a = keyframes.key_points(plain, fcurve.data_path, fcurve.array_index)
        b = keyframes.key_points(planted, fcurve.data_path, fcurve.array_index)
        bone = fcurve.data_path.split('"')[1] if fcurve.data_path.startswith("pose.bones") else None
        if bone in LEG_JOINTS or (bone == "pelvis" and fcurve.data_path.endswith("location")):
            legs_and_hips += int(not np.array_equal(a["co"], b["co"]))
            continue
        for attr in a:
            assert np.array_equal(a[attr], b[attr]), (fcurve.data_path, fcurve.array_index, attr)
    assert legs_and_hips > 0


def test_planting_on_a_mixamo_rig(addon, scene):  # noqa: ANN001, F811
    obj = mixamo_rig()
    bpy.context.view_layer.objects.active = obj
    scene.choreo.preset, scene.choreo.root_mode = "AUTO", "PELVIS"
    _generate(scene, plant=True, target="SELECTED")
    frames = int(round(SECONDS * scene.render.fps))
    assert _check_planted(obj, scene.frame_start, scene.frame_start + frames - 1) >= 2


def test_plant_feet_operator_after_editing_a_contact_curve(addon, scene):  # noqa: ANN001, F811
    _generate(scene, plant=False)
    obj = bpy.data.objects["SMPL"]
    bpy.context.view_layer.objects.active = obj
    # The animator marks the left heel down over frames 30-50 (the dance did not).
    labels = np.zeros((21, 1), dtype=np.float32) + 1.0
    foot_plant_bpy.write_contacts(obj, 30, ["left_ankle"], labels)
    before = {fcu.data_path: keyframes.key_points(obj, fcu.data_path, fcu.array_index)
              for fcu in keyframes.all_fcurves(obj) if fcu.array_index == 0}
    assert bpy.ops.choreo.plant_feet(first=20, last=60) == {"FINISHED"}
    heads, _ = evaluate(obj, np.arange(30, 51))
    assert np.abs(heads["left_ankle"] - heads["left_ankle"][0]).max() <= 0.01
    for path, old in before.items():  # frames outside the range keep their keys
        new = keyframes.key_points(obj, path, 0)
        outside = (old["co"][:, 0] < 20) | (old["co"][:, 0] > 60)
        assert np.array_equal(old["co"][outside], new["co"][outside]), path


def test_regenerate_in_place_keeps_the_feet_planted(addon, scene):  # noqa: ANN001, F811
    _generate(scene, plant=True)
    obj = bpy.data.objects["SMPL"]
    bpy.context.view_layer.objects.active = obj
    s = scene.choreo
    s.edit_range, s.edit_first, s.edit_last, s.edit_joints, s.seed = "TYPED", 41, 100, "ALL", 9
    assert bpy.ops.choreo.regenerate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    assert _check_planted(obj, 41, 100) >= 1


def test_a_rig_without_legs_in_its_map_says_so(addon, scene):  # noqa: ANN001, F811
    obj = build_rig("Stick", [])
    bpy.context.view_layer.objects.active = obj
    assert bpy.ops.choreo.plant_feet.poll() in (True, False)
    with pytest.raises(RuntimeError, match="no contact curves"):
        bpy.ops.choreo.plant_feet(first=1, last=10)
    assert leg_ik.MAX_REACH < 1.0
