"""Retargeting in Blender: read a rig's rest pose, write SMPL motion onto it, read it back.

A thin adapter: the maths is ``core.retarget`` (numpy, tested without Blender), the
keys go through ``keyframes`` (bulk F-curve writes, Blender 4.2 to 5.0). What only
Blender knows is gathered here: the bones' rest data, the object's transform, the
bones' rotation modes, and where the object stands.

Where the object stands ("home")
--------------------------------
In ``OBJECT`` root mode the object's location carries the dance's travel, added to the
place the animator put the character. Once we have keyed the location, the object's
current location is our own key's value at the current frame, not that place; so the
first write remembers it in the object's custom property ``choreo_home`` (world
coordinates) and later writes and reads (streamed chunks, edits, ``read_smpl``) use
it. While the object's location has no F-curves, its current location is the home
(the animator may have moved the character) and the property is refreshed. A write in
another root mode over frames we had keyed in ``OBJECT`` mode keys the object back at
home there, so the travel is not carried twice.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Collection, Sequence

import bpy
import numpy as np

from . import keyframes
from .core import quaternions as quat
from .core.bone_maps import BoneMap
from .core.retarget import RetargetError, RigRest, TargetMotion, rig_bones_to_key, to_smpl, to_target

HOME_PROPERTY = "choreo_home"


def _location_animated(obj: bpy.types.Object) -> bool:
    return any(fc.data_path == "location" and len(fc.keyframe_points) for fc in keyframes.all_fcurves(obj))


def _parent_matrix(obj: bpy.types.Object) -> np.ndarray:
    """The matrix the object's own (basis) transform is multiplied by to get to the world."""
    if obj.parent is None:
        return np.eye(4)
    return np.array(obj.parent.matrix_world @ obj.matrix_parent_inverse, dtype=np.float64)


def _world_matrix(obj: bpy.types.Object) -> np.ndarray:
    """The object's world matrix from its own location/rotation/scale as they are now.

    ``obj.matrix_world`` lags behind a location set from Python until the depsgraph
    next updates; ``matrix_basis`` is computed from the properties themselves.
    """
    return _parent_matrix(obj) @ np.array(obj.matrix_basis, dtype=np.float64)


def home_location(obj: bpy.types.Object) -> np.ndarray:
    """Where the object stands (world) when the dance is at the origin (see module docstring)."""
    current = _world_matrix(obj)[:3, 3].copy()
    if not _location_animated(obj):
        return current
    stored = obj.get(HOME_PROPERTY)
    return current if stored is None else np.array(list(stored), dtype=np.float64)


def rig_rest(obj: bpy.types.Object, home: np.ndarray | None = None) -> RigRest:
    """The armature's rest pose as plain data, with its object matrix placed at ``home``
    (default: ``home_location(obj)``)."""
    if obj is None or obj.type != "ARMATURE":
        raise RetargetError(f"{getattr(obj, 'name', obj)!r} is not an armature")
    bones = obj.data.bones
    matrix = _world_matrix(obj)
    matrix[:3, 3] = home_location(obj) if home is None else home
    return RigRest(
        names=tuple(b.name for b in bones),
        parents=tuple(b.parent.name if b.parent is not None else None for b in bones),
        heads=np.array([tuple(b.head_local) for b in bones], dtype=np.float64).reshape(-1, 3),
        tails=np.array([tuple(b.tail_local) for b in bones], dtype=np.float64).reshape(-1, 3),
        matrices=np.array([np.array(b.matrix_local)[:3, :3] for b in bones], dtype=np.float64).reshape(-1, 3, 3),
        connected=tuple(bool(b.use_connect) for b in bones),
        object_matrix=matrix,
    )


def _check_bones(obj: bpy.types.Object, bones: Sequence[str], located: Sequence[str]) -> None:
    """Refuse bone settings that would make Blender pose the rig otherwise than we compute."""
    data = obj.data.bones
    odd = [b for b in bones if not data[b].use_inherit_rotation]
    if odd:
        raise RetargetError(f"bones {odd} do not inherit their parent's rotation; turn "
                            "'Inherit Rotation' back on to retarget onto them")
    odd = [b for b in located if not data[b].use_local_location]
    if odd:
        raise RetargetError(f"bones {odd} do not use local location; turn 'Local Location' back on")


def apply(obj: bpy.types.Object, bone_map: BoneMap, rotations: np.ndarray, root: np.ndarray,
          first_frame: float, root_mode: str = "OBJECT", *, scale: float | None = None,
          only_bones: Collection[str] | None = None, root_too: bool = True) -> TargetMotion:
    """Key SMPL motion ((T, 24, 4) local quaternions, (T, 3) pelvis path) onto ``obj``
    from ``first_frame`` on, one key per frame; returns what was computed.

    ``only_bones`` limits the keys to those bones' rotations (a body-part regeneration
    leaves every other bone's keys as they were); ``root_too=False`` also leaves the
    travel (bone and object locations) alone.
    """
    home = home_location(obj)
    rig = rig_rest(obj, home)
    motion = to_target(rotations, root, bone_map, rig, root_mode, scale=scale)
    if only_bones is not None or not root_too:
        motion = replace(
            motion,
            rotations={b: v for b, v in motion.rotations.items() if only_bones is None or b in only_bones},
            locations=motion.locations if root_too else {},
            object_location=motion.object_location if root_too else None)
    if len(root) == 0:
        return motion  # an empty chunk: nothing to key
    _check_bones(obj, list(motion.rotations),
                 [b for b, v in motion.locations.items() if np.any(np.abs(v) > 1e-9)])
    world = motion.object_location
    if root_too and world is None and obj.get(HOME_PROPERTY) is not None and _location_animated(obj):
        # An earlier OBJECT-mode write keyed the object; in the other modes the bones carry
        # the travel, so over these frames the object stands at home again.
        world = np.tile(home, (len(root), 1))
    object_location = None
    if world is not None:
        # The core gives world positions; the object's location lives in its parent's space.
        points = np.concatenate([world, np.ones((len(world), 1))], 1)
        object_location = (points @ np.linalg.inv(_parent_matrix(obj)).T)[:, :3]
        obj[HOME_PROPERTY] = [float(v) for v in home]
    keyframes.write_motion(obj, first_frame, rotations=motion.rotations, locations=motion.locations,
                           object_location=object_location)
    return motion


def _euler_to_quaternion(euler: np.ndarray, order: str) -> np.ndarray:
    """Blender Euler angles (T, 3) in ``order`` ('XYZ' = X applied first) to quaternions."""
    axes = {"X": np.array([1.0, 0.0, 0.0]), "Y": np.array([0.0, 1.0, 0.0]), "Z": np.array([0.0, 0.0, 1.0])}
    q = np.tile(np.array([1.0, 0.0, 0.0, 0.0]), (euler.shape[0], 1))
    for axis in order:
        angle = euler[:, "XYZ".index(axis)]
        part = np.concatenate([np.cos(angle / 2)[:, None], np.sin(angle / 2)[:, None] * axes[axis]], 1)
        q = quat.multiply(part, q)
    return q


def _read_rotations(obj: bpy.types.Object, frames: np.ndarray, bones: Sequence[str],
                    quaternions: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Quaternions per bone whatever its rotation mode (``read_motion`` reads the quaternion
    channel; a bone keyed in Euler or axis-angle is read from its own channel here)."""
    out = dict(quaternions)
    for name in bones:
        pb = obj.pose.bones[name]
        path = f'pose.bones["{bpy.utils.escape_identifier(name)}"]'
        if pb.rotation_mode == "QUATERNION":
            continue
        if pb.rotation_mode == "AXIS_ANGLE":
            aa = keyframes.read_channel(obj, path + ".rotation_axis_angle", 4, frames, tuple(pb.rotation_axis_angle))
            axis = aa[:, 1:] / np.maximum(np.linalg.norm(aa[:, 1:], axis=1, keepdims=True), 1e-12)
            out[name] = np.concatenate([np.cos(aa[:, :1] / 2), np.sin(aa[:, :1] / 2) * axis], 1)
        else:
            euler = keyframes.read_channel(obj, path + ".rotation_euler", 3, frames, tuple(pb.rotation_euler))
            out[name] = _euler_to_quaternion(euler, pb.rotation_mode)
    return out


def read_smpl(obj: bpy.types.Object, bone_map: BoneMap, frames: np.ndarray | Sequence[float],
              root_mode: str = "OBJECT", *, scale: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The rig's animation at ``frames`` (F-curves, so the animator's edits count) in SMPL
    space: local rotations (T, 24, 4) and pelvis path (T, 3), float32."""
    frames = np.asarray(frames, dtype=np.float64)
    rig = rig_rest(obj)
    bones = rig_bones_to_key(bone_map, rig)
    rotations, locations, object_location = keyframes.read_motion(obj, frames, bones)
    rotations = _read_rotations(obj, frames, bones, rotations)
    world = None
    if root_mode == "OBJECT":
        if obj.get(HOME_PROPERTY) is None and _location_animated(obj) and len(frames):
            # The animator's own object animation, never written by us: measure from its first frame.
            rig = rig_rest(obj, (_parent_matrix(obj) @ np.append(object_location[0], 1.0))[:3])
        points = np.concatenate([object_location, np.ones((len(object_location), 1))], 1)
        world = (points @ _parent_matrix(obj).T)[:, :3]
    return to_smpl(bone_map, rig, rotations, locations=locations, object_location=world,
                   root_mode=root_mode, scale=scale)
