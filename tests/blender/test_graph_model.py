"""The `graph` model through the whole pipeline in real headless Blender: picked in the
panel, generated onto the SMPL rig, a range regenerated in place (every key outside it
bit for bit the same), and exported to FBX and read back within 1 cm."""

from __future__ import annotations

import json

import bpy
import numpy as np

from blender_addon import keyframes
from blender_addon.export_fbx import export
from blender_addon.operators import ensure_connected, start_generate
from blender_addon.properties import sync_options
from protocol.skeleton import JOINT_NAMES

from tests.blender.conftest import EXAMPLE_SONG
from tests.blender.test_fbx_export import TOLERANCE_M, import_fbx, joint_positions
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)

PATHS = [(f'pose.bones["{n}"].rotation_quaternion', i) for n in JOINT_NAMES for i in range(4)] + \
        [('pose.bones["pelvis"].location', i) for i in range(3)]


def _graph_dance(scene: bpy.types.Scene, seconds: float = 8.0) -> bpy.types.Object:
    info = ensure_connected(bpy.context)
    assert "graph" in info.model_names
    s = scene.choreo
    s.model = "graph"
    sync_options(s, info.model("graph"))
    assert {o.name for o in s.options} == {"style", "energy", "travel"}
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = (
        "FILE", str(EXAMPLE_SONG), "RANGE", 0.0, seconds)
    s.random_seed, s.seed = False, 3
    job = start_generate(bpy.context, {})
    while not job.poll_once():
        pass
    assert job.state == "done", job.message
    obj = job.target.obj
    bpy.context.view_layer.objects.active = obj
    return obj


def test_graph_generates_regenerates_in_place_and_exports(addon, scene, tmp_path):  # noqa: ANN001, F811
    obj = _graph_dance(scene)
    frames = keyframes.key_frames(obj, 'pose.bones["left_knee"].rotation_quaternion')
    assert frames.size == 240
    before = {p: keyframes.key_points(obj, *p) for p in PATHS}

    s = scene.choreo
    s.edit_range, s.edit_first, s.edit_last, s.edit_joints = "TYPED", 61, 150, "ALL"
    s.seed = 11
    assert bpy.ops.choreo.regenerate(options=json.dumps({})) == {"FINISHED"}, s.status
    changed = 0
    for (path, i), old in before.items():
        new = keyframes.key_points(obj, path, i)
        outside = (old["co"][:, 0] < 61) | (old["co"][:, 0] > 150)
        for key in old:
            assert np.array_equal(old[key][outside], new[key][outside]), (path, i, key)
        changed += int(not np.array_equal(old["co"][~outside], new["co"][~outside]))
    assert changed > 50  # the whole body was danced anew inside the range

    sampled = [1, 60, 100, 151, 240]
    want = {f: joint_positions(obj, f) for f in sampled}
    path = export(bpy.context, obj, tmp_path / "graph_dance.fbx", "UNITY")
    imported = import_fbx(path)
    for f in sampled:
        got = joint_positions(imported, f)
        err = max(np.linalg.norm(got[name] - want[f][name]) for name in JOINT_NAMES)
        assert err <= TOLERANCE_M, (f, err)
