"""The built-in SMPL rig and its stand-in body.

Bones carry the SMPL joint names and heads at the rest joint positions, feet on the
floor. Every bone points along +Y with no roll, so its rest orientation is the world
axes: that is what the wire's local rotations are relative to, so the backend's
quaternions are the pose bones' rotations with no conversion (``core.smpl_pose``).
The price is that bones do not point along the limbs; the stand-in body (one
rigidly skinned capsule per limb segment) shows the pose instead, and bones are
drawn small and in front.
"""

from __future__ import annotations

import bpy
import numpy as np

from .protocol.skeleton import JOINT_NAMES, PARENTS

from .core.smpl_pose import rest_heads

RIG_TAG = "choreo_rig"
"""Object custom property marking a rig this add-on built (value: "smpl")."""
BONE_LENGTH = 0.06

# Stand-in body: capsule radius (metres) of the segment from a joint to each child.
_SEGMENT_RADIUS = {
    "pelvis": 0.09, "left_hip": 0.075, "right_hip": 0.075, "left_knee": 0.055, "right_knee": 0.055,
    "left_ankle": 0.025, "right_ankle": 0.025, "spine1": 0.1, "spine2": 0.1, "spine3": 0.07,
    "neck": 0.05, "left_collar": 0.05, "right_collar": 0.05, "left_shoulder": 0.05,
    "right_shoulder": 0.05, "left_elbow": 0.04, "right_elbow": 0.04, "left_wrist": 0.035,
    "right_wrist": 0.035,
}
_LEAF_SIZE = {"head": 0.1, "left_hand": 0.045, "right_hand": 0.045, "left_foot": 0.02, "right_foot": 0.02}


def build_smpl_rig(context: bpy.types.Context, name: str = "SMPL", body: bool = True) -> bpy.types.Object:
    """A new SMPL armature (and its stand-in body) linked into the active collection."""
    arm = bpy.data.armatures.new(name)
    arm.display_type = "OCTAHEDRAL"
    obj = bpy.data.objects.new(name, arm)
    obj.show_in_front = True
    obj[RIG_TAG] = "smpl"
    context.collection.objects.link(obj)
    heads = rest_heads()
    _with_edit_bones(context, obj, heads)
    for pb in obj.pose.bones:
        pb.rotation_mode = "QUATERNION"
    if body:
        build_stand_in_body(context, obj)
    return obj


def _with_edit_bones(context: bpy.types.Context, obj: bpy.types.Object, heads: np.ndarray) -> None:
    """Make the bones in edit mode, then return to the mode (and active object) we found."""
    view_layer = context.view_layer
    previous = view_layer.objects.active
    mode = previous.mode if previous is not None else "OBJECT"
    if previous is not None and mode != "OBJECT":
        bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = obj
    bpy.ops.object.mode_set(mode="EDIT")
    bones = []
    for j, joint in enumerate(JOINT_NAMES):
        bone = obj.data.edit_bones.new(joint)
        bone.head = tuple(heads[j])
        bone.tail = tuple(heads[j] + np.array([0.0, BONE_LENGTH, 0.0]))
        bone.roll = 0.0
        if PARENTS[j] >= 0:
            bone.parent = bones[PARENTS[j]]
        bones.append(bone)
    bpy.ops.object.mode_set(mode="OBJECT")
    view_layer.objects.active = previous if previous is not None else obj
    if previous is not None and mode != "OBJECT":
        bpy.ops.object.mode_set(mode=mode)


def is_smpl_rig(obj: bpy.types.Object | None) -> bool:
    return obj is not None and obj.type == "ARMATURE" and obj.get(RIG_TAG) == "smpl"


def _capsule(a: np.ndarray, b: np.ndarray, radius: float, sides: int = 8,
             ) -> tuple[np.ndarray, list[tuple[int, ...]]]:
    """A closed prism from ``a`` to ``b``: vertices and quad/ngon faces (local indices)."""
    axis = b - a
    length = float(np.linalg.norm(axis))
    axis = axis / max(length, 1e-9)
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    u = np.cross(axis, helper)
    u /= np.linalg.norm(u)
    v = np.cross(axis, u)
    angles = np.linspace(0.0, 2 * np.pi, sides, endpoint=False)
    ring = radius * (np.cos(angles)[:, None] * u + np.sin(angles)[:, None] * v)
    verts = np.concatenate([a + ring, b + ring])
    faces: list[tuple[int, ...]] = [(i, (i + 1) % sides, sides + (i + 1) % sides, sides + i) for i in range(sides)]
    faces.append(tuple(reversed(range(sides))))
    faces.append(tuple(range(sides, 2 * sides)))
    return verts, faces


def stand_in_geometry() -> tuple[np.ndarray, list[tuple[int, ...]], np.ndarray]:
    """Vertices, faces and the joint each vertex follows, for a simple mannequin.

    One prism per bone segment (joint -> child), rigid to the parent joint, and a
    short one for the leaves (head, hands, toes) so that their rotation shows.
    """
    heads = rest_heads()
    verts: list[np.ndarray] = []
    faces: list[tuple[int, ...]] = []
    owner: list[np.ndarray] = []
    leaf_dirs = {"head": np.array([0.0, 0.0, 1.0]), "left_hand": np.array([1.0, 0.0, 0.0]),
                 "right_hand": np.array([-1.0, 0.0, 0.0]), "left_foot": np.array([0.0, -1.0, 0.0]),
                 "right_foot": np.array([0.0, -1.0, 0.0])}
    segments = [(PARENTS[j], heads[PARENTS[j]], heads[j], _SEGMENT_RADIUS.get(JOINT_NAMES[PARENTS[j]], 0.04))
                for j in range(1, len(JOINT_NAMES)) if JOINT_NAMES[PARENTS[j]] != "pelvis" or j == 3]
    segments += [(0, heads[1], heads[2], 0.09)]  # the hips
    for leaf, size in _LEAF_SIZE.items():
        j = JOINT_NAMES.index(leaf)
        segments.append((j, heads[j], heads[j] + leaf_dirs[leaf] * size * 2.0, size))
    for joint, a, b, radius in segments:
        v, f = _capsule(a, b, radius)
        base = sum(len(x) for x in verts)
        verts.append(v)
        faces.extend(tuple(base + i for i in face) for face in f)
        owner.append(np.full(len(v), joint))
    return np.concatenate(verts), faces, np.concatenate(owner)


def build_stand_in_body(context: bpy.types.Context, rig: bpy.types.Object) -> bpy.types.Object:
    """The mannequin mesh, skinned rigidly to ``rig`` (one vertex group per joint)."""
    verts, faces, owner = stand_in_geometry()
    mesh = bpy.data.meshes.new(f"{rig.name}_body")
    mesh.from_pydata([tuple(v) for v in verts], [], faces)
    mesh.update()
    body = bpy.data.objects.new(f"{rig.name}_body", mesh)
    context.collection.objects.link(body)
    body.parent = rig
    for j, joint in enumerate(JOINT_NAMES):
        members = np.nonzero(owner == j)[0].tolist()
        if members:
            body.vertex_groups.new(name=joint).add(members, 1.0, "REPLACE")
    modifier = body.modifiers.new("Armature", "ARMATURE")
    modifier.object = rig
    return body
