"""The animator's own animation is never mixed in, and existing dances retarget without
generating again: real headless Blender, a real backend, real CMU capture for the BVH case.

The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217.
"""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from blender_addon import export_fbx, keyframes, session
from blender_addon.core import foot_contacts as fc
from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS, backend_python
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)
from tests.blender.test_fbx_export import import_fbx
from tests.blender.test_retarget import MOCAP, mixamo_rig

SECONDS = 3.0
FINGER = "mixamorig1:LeftHandMiddle1"


def _action_curves(action) -> dict:  # noqa: ANN001
    """Every F-curve's keys of an action, whatever the Blender version (all slots)."""
    if keyframes.layered_actions():
        curves = [fcu for layer in action.layers for strip in layer.strips for bag in strip.channelbags
                  for fcu in bag.fcurves]
    else:
        curves = list(action.fcurves)
    out = {}
    for fcu in curves:
        co = np.empty(2 * len(fcu.keyframe_points), dtype=np.float32)
        fcu.keyframe_points.foreach_get("co", co)
        out[(fcu.data_path, fcu.array_index)] = co
    return out


def _settings(scene, **kw):  # noqa: ANN001, ANN202
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 1.0, SECONDS
    s.beat_markers, s.seed, s.preset, s.root_mode = False, 3, "AUTO", "PELVIS"
    for k, v in kw.items():
        setattr(s, k, v)
    return s


def _animator_take(obj) -> bpy.types.Action:  # noqa: ANN001
    """The animator's own take: every bone keyed (fingers too) over frames 1-300."""
    for pb in obj.pose.bones:
        pb.rotation_mode = "XYZ"
        for frame, angle in ((1, 0.0), (150, 0.4), (300, -0.3)):
            pb.rotation_euler = (angle, 0.5 * angle, 0.0)
            pb.keyframe_insert("rotation_euler", frame=frame, group=pb.name)
    return obj.animation_data.action


def test_generating_onto_an_animated_rig_keeps_the_animators_action(addon, scene, tmp_path):  # noqa: ANN001, F811
    obj = mixamo_rig()
    bpy.context.view_layer.objects.active = obj
    old = _animator_take(obj)
    old_name, before = old.name, _action_curves(old)
    _settings(scene, target="SELECTED")
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, scene.choreo.status
    new = obj.animation_data.action
    assert new.name == EXAMPLE_SONG.stem and new != old
    assert old.name == old_name and old.use_fake_user  # kept, restorable
    after = _action_curves(old)
    assert before.keys() == after.keys()
    for key, co in before.items():
        assert np.array_equal(co, after[key]), key
    # Nothing of the old take in the dance: the finger is not keyed and stands at rest, during
    # the dance and after it ends (the old take does not resume).
    assert not any(FINGER in path for path, _ in _action_curves(new))
    pb = obj.pose.bones[FINGER]
    for frame in (scene.frame_start + 10, 150, scene.frame_end, scene.frame_end + 40):
        scene.frame_set(frame)
        assert tuple(pb.rotation_euler) == (0.0, 0.0, 0.0), frame
    # Nor in the export: the finger is at rest in every frame of the FBX.
    path = export_fbx.export(bpy.context, obj, tmp_path / "dance.fbx", "GENERIC")
    frames = (scene.frame_start, (scene.frame_start + scene.frame_end) // 2, scene.frame_end)
    imported = import_fbx(path)
    rest = np.array(imported.data.bones[FINGER].matrix_local)
    arm = np.array(imported.data.bones[FINGER].parent.matrix_local)
    for frame in frames:
        scene.frame_set(frame)
        pb = imported.pose.bones[FINGER]
        # The finger's pose relative to its parent's equals its rest relation (nothing of the take).
        posed = np.linalg.inv(np.array(pb.parent.matrix)) @ np.array(pb.matrix)
        assert np.abs(posed[:3, :3] - (np.linalg.inv(arm) @ rest)[:3, :3]).max() < 1e-4, frame


def test_restoring_the_animators_action(addon, scene):  # noqa: ANN001, F811
    obj = mixamo_rig()
    bpy.context.view_layer.objects.active = obj
    old = _animator_take(obj)
    _settings(scene, target="SELECTED")
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, scene.choreo.status
    # Restorable: putting the old action back gives the old take.
    obj.animation_data.action = old
    if keyframes.layered_actions():
        obj.animation_data.action_slot = old.slots[0]
    scene.frame_set(150)
    assert abs(obj.pose.bones[FINGER].rotation_euler[0] - 0.4) < 1e-6


def test_retargeting_the_smpl_rigs_dance_gives_the_keys_of_generating_onto_the_rig(addon, scene):  # noqa: ANN001, F811
    _settings(scene, target="NEW_SMPL", plant_feet=False)
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, scene.choreo.status
    smpl = bpy.data.objects["SMPL"]
    retargeted = mixamo_rig()
    bpy.context.view_layer.objects.active = retargeted
    _settings(scene, target="SELECTED", plant_feet=True)
    assert bpy.ops.choreo.retarget_dance(source="RIG", source_object=smpl.name) == {"FINISHED"}, scene.choreo.status
    generated = mixamo_rig()
    bpy.context.view_layer.objects.active = generated
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, scene.choreo.status
    a, b = _action_curves(retargeted.animation_data.action), _action_curves(generated.animation_data.action)
    assert a.keys() == b.keys() and len(a) > 50
    assert any(path.startswith('["choreo_contact_') for path, _ in a)
    worst = max(float(np.abs(a[k] - b[k]).max()) for k in a)
    assert worst < 2e-5, worst
    # The retargeted rig regenerates in place like a generated one (its dance's meta came along).
    meta = session.MotionMeta.load(retargeted)
    assert meta.model and meta.audio_path == str(EXAMPLE_SONG) and meta.start_seconds == 1.0
    saved = json.loads(retargeted[session.META_KEY])
    assert "seed" not in saved  # regeneration takes the panel's seed: the dance keeps none
    retargeted[session.META_KEY] = json.dumps({**saved, "seed": 3})  # as an older add-on saved it
    assert session.MotionMeta.load(retargeted) == meta


def test_retarget_from_a_choreo_npz_and_refuse_a_wrong_one(addon, scene, tmp_path):  # noqa: ANN001, F811
    t = 45
    rng = np.random.default_rng(0)
    rot = np.zeros((t, 24, 4), np.float32)
    rot[..., 0] = 1.0
    rot[:, 18, :] += 0.1 * rng.normal(size=(t, 4)).astype(np.float32)  # an elbow moves
    root = np.tile(np.array([0.0, 0.0, 0.95], np.float32), (t, 1))
    root[:, 0] = np.linspace(0, 0.5, t)
    contacts = np.ones((t, 4), np.float32)
    path = tmp_path / "dance.npz"
    np.savez(path, rotations=rot, root_translation=root, fps=np.float32(30), contacts=contacts,
             contact_names=np.array(["left_ankle", "right_ankle", "left_foot", "right_foot"]))
    obj = mixamo_rig()
    bpy.context.view_layer.objects.active = obj
    _settings(scene, target="SELECTED")
    assert bpy.ops.choreo.retarget_dance(source="NPZ", filepath=str(path)) == {"FINISHED"}, scene.choreo.status
    assert obj.animation_data.action.name == "dance"
    frames = keyframes.key_frames(obj, 'pose.bones["mixamorig1:LeftForeArm"].rotation_quaternion')
    assert frames.size == t
    assert keyframes.key_frames(obj, f'["{fc.property_name("left_ankle")}"]').size == t
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip")
    with pytest.raises(RuntimeError, match="cannot read"):
        bpy.ops.choreo.retarget_dance(source="NPZ", filepath=str(bad))
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, rotations=np.zeros((5, 22, 4)), root_translation=np.zeros((5, 3)), fps=30.0)
    with pytest.raises(RuntimeError, match="not"):
        bpy.ops.choreo.retarget_dance(source="NPZ", filepath=str(wrong))


def test_retarget_from_a_bvh(addon, scene):  # noqa: ANN001, F811
    if not MOCAP.is_file():
        pytest.fail(f"no mocap at {MOCAP} (see shared/data/README.md)")
    addon.python_path = backend_python()
    obj = mixamo_rig()
    bpy.context.view_layer.objects.active = obj
    _settings(scene, target="SELECTED")
    assert bpy.ops.choreo.retarget_dance(source="BVH", filepath=str(MOCAP)) == {"FINISHED"}, scene.choreo.status
    assert obj.animation_data.action.name == MOCAP.stem
    frames = keyframes.key_frames(obj, 'pose.bones["mixamorig1:LeftUpLeg"].rotation_quaternion')
    assert frames.size > 100
