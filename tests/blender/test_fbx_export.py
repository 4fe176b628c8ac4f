"""FBX export presets: export an animated SMPL rig, re-import it, and compare.

Each round trip animates the add-on's own rig (every joint turning, the pelvis and
the armature object moving) for a few seconds, exports it with a preset, empties the
scene, imports the file with Blender's FBX importer and checks, at sampled frames,
that every joint's world position is within 1 cm of the original, with the same
number of frames at the same rate. The file itself is read raw too, to check the
units, axes and rate each preset documents.
"""

from __future__ import annotations

import math
from pathlib import Path

import bpy
import numpy as np
import pytest
from io_scene_fbx import parse_fbx
from io_scene_fbx.import_fbx import (elem_find_first, elem_props_get_enum, elem_props_get_number,
                                     elem_props_get_vector_3d)

from blender_addon import keyframes, rig
from blender_addon.core.fbx_presets import PRESETS, FbxPreset, get_preset
from blender_addon.export_fbx import FbxExportError, export
from protocol.skeleton import JOINT_NAMES
from tests.blender.conftest import clear_scene

TOLERANCE_M = 0.01
PELVIS_LOCATION = 'pose.bones["pelvis"].location'


def animate(context: bpy.types.Context, frames: int, first: int = 1) -> bpy.types.Object:
    """The SMPL rig dancing for ``frames`` frames: all joints turn, pelvis and object move."""
    obj = rig.build_smpl_rig(context, "SMPL")
    t = np.arange(frames) / 30.0
    rng = np.random.default_rng(7)
    rotations = {}
    for j, name in enumerate(JOINT_NAMES):
        axis = rng.normal(size=3)
        axis /= np.linalg.norm(axis)
        angle = 0.6 * np.sin(2 * np.pi * (0.4 + 0.1 * j) * t + j)
        rotations[name] = np.concatenate([np.cos(angle / 2)[:, None],
                                          np.sin(angle / 2)[:, None] * axis], axis=1)
    pelvis = np.stack([0.3 * np.sin(2 * t), 0.4 * t, 0.08 * np.sin(5 * t)], axis=1)
    drift = np.stack([0.2 * t, -0.1 * np.sin(t), np.zeros_like(t)], axis=1)
    keyframes.write_motion(obj, first, rotations=rotations, locations={"pelvis": pelvis},
                           object_location=drift)
    context.scene.frame_start, context.scene.frame_end = first, first + frames - 1
    return obj


def joint_positions(obj: bpy.types.Object, frame: float) -> dict[str, np.ndarray]:
    """World positions of the rig's joints (bone heads) at a (possibly fractional) frame."""
    whole = math.floor(frame)
    bpy.context.scene.frame_set(whole, subframe=frame - whole)
    return {pb.name: np.array(obj.matrix_world @ pb.head) for pb in obj.pose.bones}


def import_fbx(path: Path) -> bpy.types.Object:
    """Empty the scene, import ``path`` and return its armature.

    ``anim_offset=0``: the importer's default shifts every key one frame later.
    """
    clear_scene()
    assert bpy.ops.import_scene.fbx(filepath=str(path), anim_offset=0.0) == {"FINISHED"}
    armatures = [o for o in bpy.context.scene.objects if o.type == "ARMATURE"]
    assert len(armatures) == 1
    return armatures[0]


def imported_frame(frame: float, rate: float, scene: bpy.types.Scene) -> float:
    """Where Blender's importer puts the key of exported ``frame``.

    The file stores the time ``frame / rate`` seconds. The importer turns seconds
    back into frames with the integer ``render.fps``, not ``fps / fps_base``, so
    at 29.97 fps the keys land 0.1 % later than the frames they came from. That is
    the importer's rounding, not the file's: the file's rate is checked on its own.
    """
    return frame / rate * scene.render.fps


def file_facts(path: Path) -> dict[str, object]:
    """Units, axes and rate from the FBX file's GlobalSettings, and the armature node's scale."""
    root, _version = parse_fbx.parse(str(path))
    props = elem_find_first(elem_find_first(root, b"GlobalSettings"), b"Properties70")
    facts: dict[str, object] = {
        "unit_scale_factor": elem_props_get_number(props, b"UnitScaleFactor", None),
        "frame_rate": elem_props_get_number(props, b"CustomFrameRate", None),
        "time_mode": elem_props_get_enum(props, b"TimeMode"),
        "models": [],
    }
    for elem in elem_find_first(root, b"Objects").elems:
        if elem.id == b"Model":
            name = elem.props[1].split(b"\x00")[0].decode()
            node_props = elem_find_first(elem, b"Properties70")
            facts["models"].append(name)
            if name == "SMPL":
                facts["armature_scale"] = elem_props_get_vector_3d(node_props, b"Lcl Scaling", (1, 1, 1))
    return facts


def round_trip(context: bpy.types.Context, tmp_path: Path, preset: FbxPreset, fps: int,
               fps_base: float, frames: int) -> None:
    """Animate, export with ``preset`` at ``fps / fps_base``, re-import and compare."""
    context.scene.render.fps, context.scene.render.fps_base = fps, fps_base
    rate = fps / fps_base
    obj = animate(context, frames)
    sampled = sorted({*range(1, frames + 1, 7), frames})
    original = {f: joint_positions(obj, f) for f in sampled}

    path = export(context, obj, tmp_path / f"dance_{preset.name.lower()}", preset)
    assert path.suffix == ".fbx" and path.stat().st_size > 0

    facts = file_facts(path)
    # The documented scale: numbers in the file are file_units_per_metre per metre,
    # via the armature node's scale, and the file unit says so (Blender's importer
    # reads that unit back, which undoes the scale: compared below in metres).
    assert facts["unit_scale_factor"] == pytest.approx(preset.fbx_unit_scale_factor)
    assert np.allclose(facts["armature_scale"], preset.file_units_per_metre, rtol=1e-6)
    assert facts["frame_rate"] == pytest.approx(rate, rel=1e-6)
    assert not any(name.endswith("_end") for name in facts["models"]), "leaf bones were written"

    imported = import_fbx(path)
    scene = bpy.context.scene
    assert scene.render.fps / scene.render.fps_base == pytest.approx(rate, rel=1e-6)
    assert sorted(b.name for b in imported.data.bones) == sorted(JOINT_NAMES)
    assert any(child.type == "MESH" for child in imported.children), "the body was not exported"

    keys = keyframes.key_frames(imported, PELVIS_LOCATION)
    assert keys.size == frames
    first, last = imported_frame(1, rate, scene), imported_frame(frames, rate, scene)
    assert tuple(imported.animation_data.action.frame_range) == pytest.approx((first, last), abs=1e-3)

    for frame in sampled:
        got = joint_positions(imported, imported_frame(frame, rate, scene))
        errors = {name: float(np.linalg.norm(got[name] - original[frame][name])) for name in JOINT_NAMES}
        worst = max(errors, key=errors.get)
        assert errors[worst] < TOLERANCE_M, f"frame {frame}: {worst} off by {errors[worst]:.4f} m"


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_round_trip_at_30_fps(scene: bpy.types.Scene, tmp_path: Path, name: str) -> None:
    round_trip(bpy.context, tmp_path, get_preset(name), 30, 1.0, frames=75)


@pytest.mark.parametrize(("name", "fps", "fps_base"), [("UNITY", 24, 1.0), ("GENERIC", 24, 1.0),
                                                        ("UNREAL", 30, 1.001), ("GENERIC", 30, 1.001)])
def test_round_trip_at_other_rates(scene: bpy.types.Scene, tmp_path: Path, name: str, fps: int,
                                   fps_base: float) -> None:
    """24 fps film and NTSC 29.97 (Blender's "30" with fps_base 1.001)."""
    round_trip(bpy.context, tmp_path, get_preset(name), fps, fps_base, frames=72)


def test_presets_are_exporter_options() -> None:
    """Every keyword names an exporter option of this Blender, with a value it accepts."""
    options = bpy.ops.export_scene.fbx.get_rna_type().properties
    for preset in PRESETS.values():
        for key, value in preset.operator_keywords().items():
            assert key in options, f"{preset.name}: {key} is not an FBX exporter option"
            prop = options[key]
            if prop.type == "ENUM":
                allowed = {item.identifier for item in prop.enum_items}
                assert (set(value) if prop.is_enum_flag else {value}) <= allowed, (preset.name, key, value)


def test_action_range_and_selection_are_restored(scene: bpy.types.Scene, tmp_path: Path) -> None:
    """``use_action_range`` exports the keyed frames only; scene range and selection come back."""
    context = bpy.context
    bystander = bpy.data.objects.new("Bystander", bpy.data.meshes.new("Bystander"))
    context.collection.objects.link(bystander)
    obj = animate(context, 40, first=11)
    scene.frame_start, scene.frame_end = 1, 250
    for ob in context.view_layer.objects:
        ob.select_set(False)
    bystander.select_set(True)
    context.view_layer.objects.active = bystander

    path = export(context, obj, tmp_path / "range.fbx", "unity", use_action_range=True)

    assert (scene.frame_start, scene.frame_end) == (1, 250)
    assert [ob.name for ob in context.view_layer.objects if ob.select_get()] == ["Bystander"]
    assert context.view_layer.objects.active == bystander
    assert "Bystander" not in file_facts(path)["models"]
    imported = import_fbx(path)
    keys = keyframes.key_frames(imported, PELVIS_LOCATION)
    assert (keys.size, keys[0], keys[-1]) == (40, 11.0, 50.0)


def test_clear_errors(scene: bpy.types.Scene, tmp_path: Path) -> None:
    context = bpy.context
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    context.collection.objects.link(cube)
    with pytest.raises(FbxExportError, match="select an armature"):
        export(context, None, tmp_path / "x.fbx", "GENERIC")
    with pytest.raises(FbxExportError, match="select an armature"):
        export(context, cube, tmp_path / "x.fbx", "GENERIC")
    still = rig.build_smpl_rig(context, "Still")
    with pytest.raises(FbxExportError, match="no animation"):
        export(context, still, tmp_path / "x.fbx", "GENERIC")
    moving = animate(context, 10)
    with pytest.raises(FbxExportError, match="does not exist"):
        export(context, moving, tmp_path / "missing" / "x.fbx", "GENERIC")
    (tmp_path / "folder.fbx").mkdir()
    with pytest.raises(FbxExportError, match="is a folder"):
        export(context, moving, tmp_path / "folder.fbx", "GENERIC")
    with pytest.raises(ValueError, match="unknown FBX preset"):
        export(context, moving, tmp_path / "x.fbx", "MAYA")
