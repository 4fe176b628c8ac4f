"""The SMPL body on the rig: made by the backend (torch, smplx), built here (bpy, numpy).

The body ``.npz`` comes from a real ``python -m backend.body`` run in the backend's
Python, on the small SMPL-format model of ``tests/test_body.py`` (a cube around each
joint, each cube skinned to its joint), exactly as an animator's add-on would get it.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import bpy
import numpy as np
import pytest
from mathutils import Quaternion

from blender_addon import body_mesh, rig
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, PARENTS
from tests.blender.conftest import REPO_ROOT, backend_env, backend_python
from tests.test_body import write_small_smpl_model


@pytest.fixture(scope="module")
def body_npz(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("body")
    model = write_small_smpl_model(folder / "SMPL_NEUTRAL.npz")
    out = folder / "body.npz"
    done = subprocess.run([backend_python(), "-m", "backend.body", str(model), "--out", str(out)],
                          cwd=REPO_ROOT, env=backend_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return out


def evaluated_vertices(obj: bpy.types.Object) -> np.ndarray:
    """World positions of the mesh's vertices after its modifiers (the posed body)."""
    bpy.context.view_layer.update()
    depsgraph = bpy.context.evaluated_depsgraph_get()
    evaluated = obj.evaluated_get(depsgraph)
    mesh = evaluated.to_mesh()
    try:
        co = np.empty(len(mesh.vertices) * 3)
        mesh.vertices.foreach_get("co", co)
        matrix = np.array(evaluated.matrix_world)
    finally:
        evaluated.to_mesh_clear()
    co = co.reshape(-1, 3)
    return co @ matrix[:3, :3].T + matrix[:3, 3]


def subtree(joint: str) -> set[int]:
    """The joint and every joint below it."""
    members = {JOINT_INDEX[joint]}
    for j, parent in enumerate(PARENTS):
        if parent in members:
            members.add(j)
    return members


def test_body_is_skinned_to_the_rig(scene: bpy.types.Scene, body_npz: Path) -> None:
    context = bpy.context
    rig_obj = rig.build_smpl_rig(context, "SMPL")
    body = body_mesh.build_body(context, rig_obj, body_npz)
    with np.load(body_npz, allow_pickle=False) as data:
        rest = data["vertices"].astype(np.float64)
        faces = data["faces"]

    assert body.parent == rig_obj and body.name == "SMPL_smpl_body"
    assert [m.object for m in body.modifiers if m.type == "ARMATURE"] == [rig_obj]
    assert [g.name for g in body.vertex_groups] == list(JOINT_NAMES)
    assert (len(body.data.vertices), len(body.data.polygons)) == (rest.shape[0], faces.shape[0])
    assert not bpy.data.objects["SMPL_body"].visible_get(), "the stand-in should be hidden"
    # Rest pose: the body stands where the file put it, in the rig's space.
    assert np.allclose(evaluated_vertices(body), rest, atol=1e-5)

    # Bend the left elbow a quarter turn: the forearm and hand follow, about the elbow.
    elbow = rig_obj.pose.bones["left_elbow"]
    turn = Quaternion((0.0, 0.0, 1.0), np.pi / 2)
    elbow.rotation_quaternion = turn
    posed = evaluated_vertices(body)
    owner = np.repeat(np.arange(len(JOINT_NAMES)), 8)  # the test model: 8 vertices per joint
    moving = np.isin(owner, sorted(subtree("left_elbow")))
    moved = np.linalg.norm(posed - rest, axis=1)
    assert moved[moving].min() > 0.01
    assert moved[~moving].max() < 1e-5
    pivot = np.array(rig_obj.matrix_world @ elbow.bone.head_local)
    expected = (rest[moving] - pivot) @ np.array(turn.to_matrix()).T + pivot
    assert np.allclose(posed[moving], expected, atol=1e-5)

    # The body goes where the rig goes.
    rig_obj.location = (1.0, 2.0, 0.0)
    assert np.allclose(evaluated_vertices(body) - posed, [1.0, 2.0, 0.0], atol=1e-5)


def test_building_again_replaces_the_body(scene: bpy.types.Scene, body_npz: Path) -> None:
    context = bpy.context
    rig_obj = rig.build_smpl_rig(context, "Dancer")
    body_mesh.build_body(context, rig_obj, body_npz)
    second = body_mesh.build_body(context, rig_obj, body_npz)
    bodies = [c for c in rig_obj.children if c.name.startswith("Dancer_smpl_body")]
    assert bodies == [second] and second.name == "Dancer_smpl_body"


def test_bad_inputs_are_refused(scene: bpy.types.Scene, body_npz: Path, tmp_path: Path) -> None:
    context = bpy.context
    rig_obj = rig.build_smpl_rig(context, "SMPL", body=False)
    cube = bpy.data.objects.new("Cube", bpy.data.meshes.new("Cube"))
    with pytest.raises(ValueError, match="armature"):
        body_mesh.build_body(context, cube, body_npz)
    with np.load(body_npz, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    np.savez(tmp_path / "old.npz", **{**arrays, "format_version": np.int32(99)})
    with pytest.raises(ValueError, match="body format 99"):
        body_mesh.build_body(context, rig_obj, tmp_path / "old.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="cannot read"):
        body_mesh.build_body(context, rig_obj, tmp_path / "junk.npz")
    assert not rig_obj.children


def test_fbx_export_carries_the_body_not_the_stand_in(scene: bpy.types.Scene, body_npz: Path,
                                                      tmp_path: Path) -> None:
    from blender_addon import export_fbx, keyframes
    from tests.blender.test_fbx_export import file_facts

    context = bpy.context
    rig_obj = rig.build_smpl_rig(context, "SMPL")
    body_mesh.build_body(context, rig_obj, body_npz)
    turns = np.linspace(0.0, 1.0, 10)
    keyframes.write_motion(rig_obj, 1, rotations={
        "left_elbow": np.stack([np.cos(turns), np.zeros(10), np.zeros(10), np.sin(turns)], axis=1)})
    scene.frame_start, scene.frame_end = 1, 10
    path = export_fbx.export(context, rig_obj, tmp_path / "dancer.fbx", "UNREAL")
    models = file_facts(path)["models"]
    assert "SMPL_smpl_body" in models and "SMPL_body" not in models


def test_body_from_model_file_runs_the_backend_once(scene: bpy.types.Scene, tmp_path: Path) -> None:
    """The operators' path: the preferences' Python makes the body file, cached for the next rig."""
    from blender_addon.core.backend_link import LinkSettings

    context = bpy.context
    model = write_small_smpl_model(tmp_path / "SMPL_NEUTRAL.npz")
    settings = LinkSettings(python=backend_python(), extra_env={"PYTHONPATH": backend_env()["PYTHONPATH"]})
    cache = tmp_path / "cache"
    first = body_mesh.body_from_model_file(context, rig.build_smpl_rig(context, "A"), model, settings,
                                           cache_dir=cache)
    cached = list(cache.glob("*.npz"))
    assert first.name == "A_smpl_body" and len(cached) == 1
    stamp = cached[0].stat().st_mtime_ns
    second = body_mesh.body_from_model_file(context, rig.build_smpl_rig(context, "B"), model, settings,
                                            cache_dir=cache)
    assert second.name == "B_smpl_body" and cached[0].stat().st_mtime_ns == stamp

    with pytest.raises(ValueError, match="backend's Python"):
        body_mesh.body_from_model_file(context, rig.build_smpl_rig(context, "C"), model, LinkSettings(),
                                       cache_dir=tmp_path / "elsewhere")
    (tmp_path / "bad.npz").write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="making the SMPL body failed: error: cannot read bad.npz: it is not an .npz"):
        body_mesh.body_from_model_file(context, rig.build_smpl_rig(context, "D"), tmp_path / "bad.npz",
                                       settings, cache_dir=cache)
