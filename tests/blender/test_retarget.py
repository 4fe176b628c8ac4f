"""Retargeting in real Blender: SMPL mocap onto Mixamo-, Rigify- and UE5-style rigs.

The rigs are built here (``tests/retarget_rigs.py`` has their specs): A-poses, odd
rolls, other proportions, a Mixamo rig under a rotated, 0.01-scaled object, UE5's
root bone and extra spine bones. The motion is real dance capture: CMU subject 5
(modern dance), read from BVH by the backend in its own Python (this one has no
torch) and handed over as an ``.npz``. Blender then evaluates the keyed frames, and
we measure the posed bones: directions against SMPL's forward kinematics, feet
against the floor, root motion against each root mode's promise.

The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217.
"""

from __future__ import annotations

import subprocess

import bpy
import numpy as np
import pytest
from mathutils import Matrix

from blender_addon import retarget_bpy
from blender_addon.core import bone_maps
from blender_addon.core import quaternions as quat
from blender_addon.core.retarget import SMPL_REST_POSITIONS, RetargetError
from protocol.skeleton import JOINT_INDEX, JOINT_NAMES, LEG_LENGTH, OFFSETS, PARENTS
from tests import retarget_rigs as rigs
from tests.blender.conftest import REPO_ROOT, backend_env, backend_python

MOCAP = REPO_ROOT.parent / "shared" / "data" / "mocap" / "cmu" / "05_07.bvh"
SAMPLES = 14
"""Frames evaluated per check (spread over the clip)."""
MAX_DEGREES = 5.0
FLOOR_TOLERANCE = 0.025
"""Metres: how far the lowest foot point may be from the floor while SMPL's feet are on it."""
FEET = ("left_ankle", "right_ankle", "left_foot", "right_foot")
NEXT_IN_CHAIN = {
    "pelvis": "spine1", "spine1": "spine2", "spine2": "spine3", "spine3": "neck", "neck": "head",
    **{f"{s}_{a}": f"{s}_{b}" for s in ("left", "right") for a, b in (
        ("hip", "knee"), ("knee", "ankle"), ("ankle", "foot"), ("collar", "shoulder"),
        ("shoulder", "elbow"), ("elbow", "wrist"), ("wrist", "hand"))},
}
"""Where each SMPL bone points (written out here, independently of the code under test)."""


@pytest.fixture(scope="session")
def mocap(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """Real SMPL motion (rotations (T, 24, 4), root (T, 3)) from the backend's BVH import."""
    if not MOCAP.is_file():
        pytest.fail(f"no mocap at {MOCAP} (see shared/data/README.md)")
    out = tmp_path_factory.mktemp("mocap") / "dance.npz"
    script = ("import sys, numpy as np\n"
              "from backend.motion.bvh import load_bvh_clip\n"
              "c = load_bvh_clip(sys.argv[1])\n"
              "np.savez(sys.argv[2], rotations=c.rotations, root=c.root_translation, fps=c.fps)\n")
    subprocess.run([backend_python(), "-c", script, str(MOCAP), str(out)], env=backend_env(), cwd=REPO_ROOT,
                   check=True, timeout=300)
    data = np.load(out)
    assert float(data["fps"]) == 30.0
    return data["rotations"].astype(np.float64), data["root"].astype(np.float64)


def build_rig(name: str, specs: list[rigs.BoneSpec], object_matrix: np.ndarray | None = None) -> bpy.types.Object:
    """An armature from armature-space specs (heads, tails, rolls, parents, connections)."""
    arm = bpy.data.armatures.new(name)
    obj = bpy.data.objects.new(name, arm)
    bpy.context.collection.objects.link(obj)
    if object_matrix is not None:
        obj.matrix_world = Matrix(object_matrix.tolist())
    bpy.context.view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    for spec in specs:
        bone = arm.edit_bones.new(spec.name)
        bone.head, bone.tail, bone.roll = tuple(spec.head), tuple(spec.tail), spec.roll
    for spec in specs:
        if spec.parent is not None:
            bone = arm.edit_bones[spec.name]
            bone.parent = arm.edit_bones[spec.parent]
            bone.use_connect = spec.connected
    bpy.ops.object.mode_set(mode="OBJECT")
    return obj


def mixamo_rig() -> bpy.types.Object:
    specs = rigs.to_armature_space(rigs.mixamo_specs(prefix="mixamorig1:"), rigs.mixamo_object_matrix())
    return build_rig("Mixamo", specs, rigs.mixamo_object_matrix())


def detected(obj: bpy.types.Object, preset: str) -> bone_maps.BoneMap:
    found = bone_maps.detect_preset(b.name for b in obj.data.bones)
    assert found.preset == preset, found.reason
    assert found.bone_map is not None
    return found.bone_map


# ---------------------------------------------------------------------------- measuring

def smpl_pose(rotations: np.ndarray, root: np.ndarray, yaw_degrees: float = 0.0,
              ) -> tuple[np.ndarray, np.ndarray]:
    """SMPL's world joints (T, 24, 3) and rotations (T, 24, 3, 3), turned to a rig's facing."""
    pos, rot = quat.forward_kinematics(rotations, root, OFFSETS, PARENTS)
    a = np.radians(yaw_degrees)
    yaw = np.array([[np.cos(a), -np.sin(a), 0], [np.sin(a), np.cos(a), 0], [0, 0, 1.0]])
    return pos @ yaw.T, yaw @ rot @ yaw.T


def evaluate(obj: bpy.types.Object, frames: np.ndarray) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Blender's own posed bones at ``frames``: world heads (T, 3) and orientations (T, 3, 3)."""
    scene = bpy.context.scene
    heads = {b.name: np.empty((len(frames), 3)) for b in obj.pose.bones}
    rots = {b.name: np.empty((len(frames), 3, 3)) for b in obj.pose.bones}
    for i, frame in enumerate(frames):
        scene.frame_set(int(frame))
        world = np.array(obj.matrix_world)
        for pb in obj.pose.bones:
            m = world @ np.array(pb.matrix)
            heads[pb.name][i] = m[:3, 3]
            r = m[:3, :3]
            rots[pb.name][i] = r / np.cbrt(np.linalg.det(r))
    return heads, rots


def rest_world(obj: bpy.types.Object) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Rest heads and orientations in the world, the object where it stands now (so: take
    them before keying the object's location)."""
    world = np.array(obj.matrix_basis)
    heads = {b.name: (world @ np.append(np.array(b.head_local), 1.0))[:3] for b in obj.data.bones}
    rots = {}
    for b in obj.data.bones:
        r = world[:3, :3] @ np.array(b.matrix_local)[:3, :3]
        rots[b.name] = r / np.cbrt(np.linalg.det(r))
    return heads, rots


def angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    cos = np.sum(a * b, -1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def rotation_angles(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Degrees between rotation matrices (T, 3, 3)."""
    rel = np.swapaxes(a, -1, -2) @ b
    return np.degrees(np.arccos(np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)))


def check_pose(obj: bpy.types.Object, bone_map: bone_maps.BoneMap, rotations: np.ndarray, root: np.ndarray,
               first_frame: int, rest: tuple[dict[str, np.ndarray], dict[str, np.ndarray]],
               yaw_degrees: float = 0.0) -> dict[str, np.ndarray]:
    """Assert that every mapped bone points where SMPL's bone points, leaves turn as
    SMPL's do, and the feet stay on the floor; returns the evaluated heads.

    ``rest``: ``rest_world(obj)`` taken before the motion was keyed.
    """
    picks = np.linspace(0, len(rotations) - 1, SAMPLES).round().astype(int)
    heads, rots = evaluate(obj, first_frame + picks)
    rest_heads, rest_rots = rest
    pos, smpl_rot = smpl_pose(rotations[picks], root[picks], yaw_degrees)
    mapped = bone_map.joint_to_bone()
    checked = 0
    for joint, bone in mapped.items():
        nxt = NEXT_IN_CHAIN.get(joint)
        while nxt is not None and nxt not in mapped:
            nxt = NEXT_IN_CHAIN.get(nxt)
        if nxt is not None:
            err = angles(heads[mapped[nxt]] - heads[bone], pos[:, JOINT_INDEX[nxt]] - pos[:, JOINT_INDEX[joint]])
            assert err.max() < MAX_DEGREES, f"{bone} ({joint} -> {nxt}) off by {err.max():.2f} degrees"
        else:
            # A leaf (nothing mapped below it to aim at): from frame to frame it turns in the
            # world exactly as SMPL's joint does.
            turned = rots[bone] @ rots[bone][:1].swapaxes(-1, -2)
            j = JOINT_INDEX[joint]
            want = smpl_rot[:, j] @ smpl_rot[:1, j].swapaxes(-1, -2)
            err = rotation_angles(turned, want)
            assert err.max() < MAX_DEGREES, f"leaf {bone} ({joint}) turns {err.max():.2f} degrees off SMPL's"
        checked += 1
    assert checked == len(mapped)

    feet = [mapped[f] for f in FEET if f in mapped]
    low = np.min([heads[b][:, 2] for b in feet], axis=0)
    low_rest = min(rest_heads[b][2] for b in feet)
    smpl_low = pos[:, [JOINT_INDEX[f] for f in FEET if f in mapped], 2].min(axis=1)
    smpl_low_rest = SMPL_REST_POSITIONS[[JOINT_INDEX[f] for f in FEET if f in mapped], 2].min()
    grounded = smpl_low - smpl_low_rest < 0.01
    assert grounded.any(), "no sampled frame with SMPL's feet on the floor"
    off = np.abs(low - low_rest)[grounded]
    assert off.max() < FLOOR_TOLERANCE, f"feet {off.max():.3f} m off the floor while SMPL's are on it"
    assert (low - low_rest).min() > -FLOOR_TOLERANCE, "feet sink into the floor"
    return heads


# ---------------------------------------------------------------------------- tests

def test_rig_rest_reads_what_blender_built(scene: bpy.types.Scene) -> None:
    """The adapter reads heads, parents and rest matrices as Blender computes them (the core
    tests use the same numbers, computed in numpy)."""
    specs = rigs.to_armature_space(rigs.mixamo_specs(prefix="mixamorig1:"), rigs.mixamo_object_matrix())
    obj = build_rig("Mixamo", specs, rigs.mixamo_object_matrix())
    rig = retarget_bpy.rig_rest(obj)
    expected = rigs.rig_rest(specs, rigs.mixamo_object_matrix())
    order = [rig.names.index(n) for n in expected.names]
    assert [rig.parents[i] for i in order] == list(expected.parents)
    assert [rig.connected[i] for i in order] == list(expected.connected)
    np.testing.assert_allclose(rig.heads[order], expected.heads, atol=1e-4)
    np.testing.assert_allclose(rig.matrices[order], expected.matrices, atol=5e-5)
    np.testing.assert_allclose(rig.object_matrix, expected.object_matrix, atol=1e-6)


def test_mixamo_rig_with_prefix_and_fbx_object_transform(scene, mocap) -> None:
    rotations, root = mocap
    obj = mixamo_rig()
    bone_map = detected(obj, "mixamo")
    assert bone_map.prefix == "mixamorig1:"
    rest = rest_world(obj)
    motion = retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode="OBJECT")
    legs = rigs.humanoid_joints(scale=1.15, legs=1.08)
    assert motion.scale == pytest.approx(
        (np.linalg.norm(legs["left_knee"] - legs["left_hip"]) + np.linalg.norm(legs["left_ankle"] - legs["left_knee"]))
        / LEG_LENGTH, rel=1e-3)
    check_pose(obj, bone_map, rotations, root, first_frame=1, rest=rest)


def test_rigify_rig_twist_segments_and_two_neck_bones(scene, mocap) -> None:
    rotations, root = mocap
    obj = build_rig("Rigify", rigs.rigify_specs())
    bone_map = detected(obj, "rigify")
    rest = rest_world(obj)
    retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=10, root_mode="PELVIS")
    check_pose(obj, bone_map, rotations, root, first_frame=10, rest=rest)
    # Unmapped bones on the chains keep their rest pose relative to their parents.
    for name in ("DEF-spine.005", "DEF-upper_arm.L.001", "DEF-pelvis.R", "DEF-shin.L.001"):
        scene.frame_set(50)
        assert np.allclose(obj.pose.bones[name].matrix_basis, np.eye(4), atol=1e-5), name


@pytest.mark.parametrize("root_mode", ["OBJECT", "ROOT_BONE", "PELVIS", "IN_PLACE"])
def test_ue5_rig_in_each_root_mode(scene, mocap, root_mode: str) -> None:
    rotations, root = mocap
    obj = build_rig("UE5", rigs.ue5_specs())
    bone_map = detected(obj, "ue5")
    assert bone_map.root == "root"
    rest_pose = rest_world(obj)
    motion = retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode=root_mode)
    assert motion.scale == pytest.approx(1.1, rel=1e-6)
    heads = check_pose(obj, bone_map, rotations, root, first_frame=1, rest=rest_pose)
    picks = np.linspace(0, len(rotations) - 1, SAMPLES).round().astype(int)
    rest = rest_pose[0]
    pelvis_xy = heads["pelvis"][:, :2]
    travel = rest["pelvis"][:2] + motion.scale * root[picks, :2]
    animated = {fc.data_path for fc in retarget_bpy.keyframes.all_fcurves(obj)}
    if root_mode == "IN_PLACE":
        np.testing.assert_allclose(pelvis_xy, np.tile(rest["pelvis"][:2], (SAMPLES, 1)), atol=1e-4)
    else:
        np.testing.assert_allclose(pelvis_xy, travel, atol=1e-3)
    if root_mode == "OBJECT":
        assert "location" in animated
        # The object carries the whole translation (height too); root and pelvis keep their
        # rest places in it.
        for bone in ("pelvis", "root"):
            np.testing.assert_allclose(_keyed(obj, bone, picks), 0.0, atol=1e-6)
        np.testing.assert_allclose(heads["pelvis"] - heads["root"],
                                   np.tile(rest["pelvis"] - rest["root"], (SAMPLES, 1)), atol=1e-5)
    else:
        assert "location" not in animated, "only OBJECT mode moves the object"
    if root_mode == "ROOT_BONE":
        # The root slides on the floor under the pelvis, carrying the travel.
        np.testing.assert_allclose(heads["root"][:, 2], 0.0, atol=1e-5)
        np.testing.assert_allclose(heads["root"][:, :2], motion.scale * root[picks, :2], atol=1e-3)
    elif root_mode in ("PELVIS", "IN_PLACE"):
        np.testing.assert_allclose(heads["root"], 0.0, atol=1e-5)


def _keyed(obj: bpy.types.Object, bone: str, picks: np.ndarray) -> np.ndarray:
    _, locations, _ = retarget_bpy.keyframes.read_motion(obj, 1 + picks, [bone])
    return locations[bone]


def test_rig_facing_plus_y_dances_its_own_way(scene, mocap) -> None:
    rotations, root = mocap
    obj = build_rig("UE5", rigs.ue5_specs(facing_plus_y=True))
    bone_map = detected(obj, "ue5")
    rest = rest_world(obj)
    motion = retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode="PELVIS")
    assert abs(motion.yaw_degrees) == pytest.approx(180.0)
    check_pose(obj, bone_map, rotations, root, first_frame=1, rest=rest, yaw_degrees=180.0)


def test_partial_map_folds_unmapped_joints(scene, mocap) -> None:
    rotations, root = mocap
    obj = mixamo_rig()
    bone_map = detected(obj, "mixamo").without("spine2", "left_elbow", "right_collar", "left_foot")
    rest = rest_world(obj)
    retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode="OBJECT")
    # check_pose follows the chains past the dropped joints: Spine aims at Spine2's head,
    # LeftArm at LeftHand's, the spine's chest at RightArm through the unmapped clavicle.
    check_pose(obj, bone_map, rotations, root, first_frame=1, rest=rest)
    scene.frame_set(40)
    for name in ("mixamorig1:Spine1", "mixamorig1:LeftForeArm", "mixamorig1:RightShoulder"):
        assert np.allclose(obj.pose.bones[name].matrix_basis, np.eye(4), atol=1e-5), name


def test_read_back_into_smpl_space(scene, mocap) -> None:
    """Forward then inverse through real F-curves gives the dance back (full-map joints)."""
    rotations, root = mocap
    obj = build_rig("UE5", rigs.ue5_specs())
    bone_map = detected(obj, "ue5")
    for mode in ("OBJECT", "ROOT_BONE"):
        retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=5, root_mode=mode)
        back_rot, back_root = retarget_bpy.read_smpl(obj, bone_map, 5 + np.arange(len(rotations)), mode)
        mapped = [JOINT_INDEX[j] for j in bone_map.joints]
        err = rotation_angles(quat.to_matrix(back_rot[:, mapped]), quat.to_matrix(rotations[:, mapped]))
        assert err.max() < 0.05, mode
        np.testing.assert_allclose(back_root, root, atol=2e-4)
        unmapped = [j for j in range(24) if j not in mapped]
        np.testing.assert_allclose(np.abs(back_rot[:, unmapped, 0]), 1.0, atol=1e-6)
    # Switching away from OBJECT mode put the object back at home: the travel is not doubled.
    _, _, object_location = retarget_bpy.keyframes.read_motion(obj, 5 + np.arange(len(rotations)), [])
    np.testing.assert_allclose(object_location, 0.0, atol=1e-6)


def test_streamed_chunks_join_and_keep_home(scene, mocap) -> None:
    """Chunks written one after another give the same keys as one write, with the
    character starting where the animator put it."""
    rotations, root = mocap
    obj = mixamo_rig()
    obj.location = (2.0, 3.0, 0.0)
    bone_map = detected(obj, "mixamo")
    for start in range(0, len(rotations), 100):
        retarget_bpy.apply(obj, bone_map, rotations[start:start + 100], root[start:start + 100],
                           first_frame=1 + start, root_mode="OBJECT")
        scene.frame_set(1 + start + 50)  # the animation moves the object before the next chunk
    whole = mixamo_rig()
    whole.location = (2.0, 3.0, 0.0)
    motion = retarget_bpy.apply(whole, bone_map, rotations, root, first_frame=1, root_mode="OBJECT")
    picks = np.linspace(0, len(rotations) - 1, SAMPLES).round().astype(int)
    a, _ = evaluate(obj, 1 + picks)
    b, _ = evaluate(whole, 1 + picks)
    for bone in bone_map.joint_to_bone().values():
        np.testing.assert_allclose(a[bone], b[bone], atol=1e-4)
    # The home is where the animator put the character (2, 3), not where a chunk left it.
    scene.frame_set(1)
    home_hips = rigs.mixamo_specs()[0].head * np.array([1.0, 1.0, 1.0]) + np.array([2.0, 3.0, 0.0])
    np.testing.assert_allclose(a["mixamorig1:Hips"][:, :2], home_hips[:2] + motion.scale * root[picks, :2],
                               atol=1e-3)


def test_builtin_smpl_rig_takes_the_wire_rotations_unchanged(scene, mocap) -> None:
    from blender_addon import rig as smpl_rig

    rotations, root = mocap
    obj = smpl_rig.build_smpl_rig(bpy.context, body=False)
    bone_map = detected(obj, "smpl")
    motion = retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode="PELVIS")
    assert motion.scale == pytest.approx(1.0)
    for j, name in enumerate(JOINT_NAMES):
        q = motion.rotations[name]
        assert np.allclose(np.abs(np.sum(q * rotations[:, j], -1)), 1.0, atol=1e-6), name
    np.testing.assert_allclose(motion.locations["pelvis"] + SMPL_REST_POSITIONS[0], root, atol=1e-6)


def test_root_bone_mode_needs_a_root_bone(scene, mocap) -> None:
    rotations, root = mocap
    obj = mixamo_rig()
    with pytest.raises(RetargetError, match="ROOT_BONE needs a root bone"):
        retarget_bpy.apply(obj, detected(obj, "mixamo"), rotations[:5], root[:5], 1, "ROOT_BONE")


def test_read_back_a_bone_the_animator_keyed_in_euler(scene, mocap) -> None:
    """An animator may switch a bone to Euler rotation and key it; reading back honours it
    (the old quaternion keys stay on the bone but no longer drive it)."""
    from mathutils import Euler, Quaternion

    rotations, root = mocap
    frames = [11, 60, 150]
    reads = []
    for keyed_as in ("EULER", "QUATERNION"):
        obj = build_rig(f"UE5_{keyed_as}", rigs.ue5_specs())
        bone_map = detected(obj, "ue5")
        motion = retarget_bpy.apply(obj, bone_map, rotations, root, first_frame=1, root_mode="PELVIS")
        for name, order in (("head", "YZX"), ("calf_l", "XYZ")):
            pb = obj.pose.bones[name]
            for f in frames:
                changed = Quaternion(motion.rotations[name][f - 1]) @ Euler((0.4, -0.3, 0.2), order).to_quaternion()
                if keyed_as == "EULER":
                    pb.rotation_mode = order
                    pb.rotation_euler = changed.to_euler(order)
                    pb.keyframe_insert("rotation_euler", frame=f)
                else:
                    pb.rotation_quaternion = changed
                    pb.keyframe_insert("rotation_quaternion", frame=f)
        reads.append(retarget_bpy.read_smpl(obj, bone_map, np.array(frames, dtype=float), "PELVIS")[0])
    picks = np.array(frames) - 1
    for joint in ("head", "left_knee"):
        j = JOINT_INDEX[joint]
        euler, quaternion = (quat.to_matrix(r[:, j]) for r in reads)
        assert rotation_angles(euler, quaternion).max() < 0.05, joint
        assert rotation_angles(euler, quat.to_matrix(rotations[picks, j])).min() > 10.0, joint
