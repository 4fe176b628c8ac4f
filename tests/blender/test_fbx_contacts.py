"""Contact curves round-trip through FBX: written as animated user properties on the
armature's node (what Unity and Unreal read as curves), read back by the add-on after
Blender's own importer, with every preset. Real headless Blender, a real backend."""

from __future__ import annotations

import json

import bpy
import numpy as np
import pytest

from blender_addon import export_fbx, fbx_contacts, foot_plant_bpy
from tests.blender.conftest import EXAMPLE_SONG, FAST_OPTIONS
from tests.blender.test_fbx_export import import_fbx
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)

JOINTS = ("left_ankle", "left_foot", "right_ankle", "right_foot")


@pytest.mark.parametrize("preset", ["UNITY", "UNREAL", "GENERIC"])
def test_contact_curves_round_trip_through_fbx(addon, scene, tmp_path, preset):  # noqa: ANN001, F811
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 2.0, 3.0
    s.seed, s.beat_markers = 2, False
    assert bpy.ops.choreo.generate(options=json.dumps(FAST_OPTIONS)) == {"FINISHED"}, s.status
    obj = bpy.data.objects["SMPL"]
    frames = np.arange(scene.frame_start, scene.frame_end + 1)
    # An animator's edit of a curve travels too.
    foot_plant_bpy.write_contacts(obj, 10, ["left_ankle"], np.full((5, 1), 0.25, np.float32))
    labels = foot_plant_bpy.read_contacts(obj, frames)
    path = export_fbx.export(bpy.context, obj, tmp_path / "dance.fbx", preset)
    curves = fbx_contacts.read_contact_curves(path)
    assert set(curves) == {"SMPL"} and set(curves["SMPL"]) == set(JOINTS)
    for joint in JOINTS:
        seconds, values = curves["SMPL"][joint]
        assert np.array_equal(values, labels[joint].astype(np.float32)), joint
        assert np.allclose(seconds * scene.render.fps, frames, atol=1e-3), joint
    # Blender's importer still reads the file (bones and all) and the add-on reads the curves back.
    imported = import_fbx(path)
    assert fbx_contacts.import_contact_curves(path, imported, node="SMPL") == 4
    back = foot_plant_bpy.read_contacts(imported, frames)
    for joint in JOINTS:
        assert np.array_equal(back[joint].astype(np.float32), labels[joint].astype(np.float32)), joint
