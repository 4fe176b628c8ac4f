"""Planted feet on real dances from every bundled model, on the SMPL rig and the test rigs.

For each model the backend offers, a dance (the model's default options, 5 s of the
bundled song) is generated onto the SMPL rig with planting off; then it is retargeted
(``choreo.retarget_dance``) onto a fresh SMPL rig, the Mixamo-, Rigify- and UE5-style test
rigs and CMU subject 5's own skeleton (imported from its BVH, bone map loaded from JSON),
twice each, planting on and planting off. Blender evaluates every frame and
we measure the posed bones: a foot inside a contact span moves <= 1 cm, no foot goes more
than 1 cm below the floor, the knee turns <= 10 degrees a frame (or no more than it does
without planting, where the dance itself is faster), and every bone outside the legs and
hips keeps its keys bit for bit.

The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import bpy
import numpy as np
import pytest

from blender_addon import foot_plant_bpy, keyframes, rig
from blender_addon.core import bone_maps
from blender_addon.core import foot_contacts as fc
from blender_addon.operators import ensure_connected
from tests import retarget_rigs as rigs
from tests.blender.conftest import EXAMPLE_SONG
from tests.blender.test_generate import addon  # noqa: F401  (the fixture)
from tests.blender.test_retarget import MOCAP, build_rig, evaluate, mixamo_rig

SECONDS = 5.0
CC_BASE_MAP = {
    "pelvis": "CC_Base_Hip", "spine1": "CC_Base_Waist", "spine2": "CC_Base_Spine01",
    "spine3": "CC_Base_Spine02", "neck": "CC_Base_NeckTwist02", "head": "CC_Base_Head",
    **{f"{side}_{joint}": f"CC_Base_{s}_{bone}" for side, s in (("left", "L"), ("right", "R"))
       for joint, bone in (("hip", "Thigh"), ("knee", "Calf"), ("ankle", "Foot"), ("foot", "ToeBase"),
                           ("collar", "Clavicle"), ("shoulder", "Upperarm"), ("elbow", "Forearm"),
                           ("wrist", "Hand"))},
}
"""The CMU capture's own skeleton (Reallusion's CC_Base rig, as ``backend/motion/joint_maps.py``
reads it), as an animator would save it with *Save* and load it with *Load*."""


def cmu_rig() -> bpy.types.Object:
    """CMU subject 5's own skeleton from its BVH (Blender's importer, with the capture's take on
    it), its bone map loaded from JSON."""
    assert bpy.ops.import_anim.bvh(filepath=str(MOCAP), global_scale=0.01) == {"FINISHED"}
    obj = bpy.context.view_layer.objects.active
    assert obj.type == "ARMATURE" and obj.animation_data and obj.animation_data.action
    path = Path(tempfile.mkdtemp()) / "cmu_cc_base.json"
    bone_maps.save(bone_maps.BoneMap(name="CMU CC_Base", bones=CC_BASE_MAP), path)
    assert bpy.ops.choreo.preset_load(filepath=str(path)) == {"FINISHED"}
    return obj


RIGS = {
    "smpl": lambda: rig.build_smpl_rig(bpy.context, name="SMPL target", body=False),
    "mixamo": mixamo_rig,
    "rigify": lambda: build_rig("Rigify", rigs.rigify_specs()),
    "ue5": lambda: build_rig("UE5", rigs.ue5_specs()),
    "cmu": cmu_rig,
}


MODELS = ("edge", "popdg", "fact", "dancenet", "graph")
"""The bundled models (``backend/models/registry.py``; this Python has no torch to import it)."""


def _retarget(scene, source: bpy.types.Object, kind: str, plant: bool) -> bpy.types.Object:  # noqa: ANN001
    obj = RIGS[kind]()
    bpy.context.view_layer.objects.active = obj
    scene.choreo.plant_feet = plant
    assert bpy.ops.choreo.retarget_dance(source="RIG", source_object=source.name) == {"FINISHED"}, \
        scene.choreo.status
    return obj


def _leg_bones(obj: bpy.types.Object) -> dict[str, str]:
    bone_map = foot_plant_bpy.bone_map_of(obj)
    return {f"{s}_{j}": bone_map.bone(f"{s}_{j}") for s in ("left", "right")
            for j in ("hip", "knee", "ankle", "foot") if bone_map.bone(f"{s}_{j}")}


def _knee(heads: dict[str, np.ndarray], legs: dict[str, str], side: str) -> np.ndarray:
    a = heads[legs[f"{side}_knee"]] - heads[legs[f"{side}_hip"]]
    b = heads[legs[f"{side}_ankle"]] - heads[legs[f"{side}_knee"]]
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


@pytest.mark.parametrize("model", MODELS)
def test_planted_feet_on_every_rig_for_every_model(addon, scene, model):  # noqa: ANN001, F811
    info = ensure_connected(bpy.context)
    if model not in info.model_names:
        if model == "graph":  # the newest model: on backends that have it
            pytest.skip(f"this backend has no {model} model: {info.model_names}")
        pytest.fail(f"the backend does not offer the bundled model {model}: {info.model_names}")
    s = scene.choreo
    s.audio_source, s.audio_path, s.range_mode, s.start_seconds, s.seconds = "FILE", str(EXAMPLE_SONG), "RANGE", 4.0, SECONDS
    s.model, s.target, s.seed, s.plant_feet, s.beat_markers = model, "NEW_SMPL", 11, False, False
    assert bpy.ops.choreo.generate() == {"FINISHED"}, s.status
    source = bpy.data.objects["SMPL"]
    source.name = f"SMPL {model}"
    first, last = scene.frame_start, scene.frame_end
    frames = np.arange(first, last + 1)
    labels = foot_plant_bpy.read_contacts(source, frames)
    assert set(labels) >= {"left_ankle", "left_foot", "right_ankle", "right_foot"}
    spans_checked = 0
    for kind in RIGS:
        planted = _retarget(scene, source, kind, plant=True)
        plain = _retarget(scene, source, kind, plant=False)
        legs = _leg_bones(planted)
        heads, _ = evaluate(planted, frames)
        plain_heads, _ = evaluate(plain, frames)
        world = np.array(planted.matrix_world)
        feet = [legs[j] for j in ("left_ankle", "left_foot", "right_ankle", "right_foot") if j in legs]
        floor = min((world @ np.append(np.array(planted.data.bones[b].head_local), 1.0))[2] for b in feet)
        for joint, label in labels.items():
            if joint not in legs:
                continue
            for span in fc.contact_spans(label):
                part = heads[legs[joint]][span.start:span.stop]
                moved = float(np.abs(part - part[0]).max())
                assert moved <= 0.01, (model, kind, joint, span, moved)
                assert part[:, 2].min() >= floor - 0.01, (model, kind, joint, span, part[:, 2].min(), floor)
                spans_checked += len(span) > 1
        for side in ("left", "right"):
            own = np.abs(np.diff(_knee(plain_heads, legs, side))).max()
            jump = np.abs(np.diff(_knee(heads, legs, side))).max()
            assert jump <= max(10.0, own + 2.0), (model, kind, side, jump, own)
        # Bones outside the legs and hips: bit-identical keys with planting off.
        leg_and_hip = {legs[f"{s_}_{j}"] for s_ in ("left", "right") for j in ("hip", "knee", "ankle")
                       if f"{s_}_{j}" in legs}
        pelvis = foot_plant_bpy.bone_map_of(planted).bone("pelvis")
        for fcurve in keyframes.all_fcurves(plain):
            path = fcurve.data_path
            bone = path.split('"')[1] if path.startswith("pose.bones") else None
            if bone in leg_and_hip or (bone == pelvis and path.endswith("location")):
                continue
            a = keyframes.key_points(plain, path, fcurve.array_index)
            b = keyframes.key_points(planted, path, fcurve.array_index)
            for attr in a:
                assert np.array_equal(a[attr], b[attr]), (model, kind, path, fcurve.array_index, attr)
    assert spans_checked >= 4, (model, spans_checked)
