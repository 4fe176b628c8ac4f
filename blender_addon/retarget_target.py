"""Keys onto the animator's own rig: a session ``Target`` over ``retarget_bpy``.

The rig's bone map lives on the armature object (``choreo_bone_map``: one row per SMPL
joint, editable in the panel), so a later regeneration uses the map the dance was made
with. When the rows are empty, the panel's preset fills them (auto-detected from the
bone names by default).
"""

from __future__ import annotations

from typing import Sequence

import bpy
import numpy as np

from . import retarget_bpy
from .core import bone_maps

ROOT_BONE_KEY = "choreo_root_bone"
ROOT_MODE_KEY = "choreo_root_mode"


def fill_bone_map(obj: bpy.types.Object, preset: str) -> bone_maps.BoneMap:
    """Write a preset's map (or the detected one for 'AUTO') into the object's rows."""
    names = [b.name for b in obj.data.bones]
    if preset == "AUTO":
        found = bone_maps.detect_preset(names)
        if found.bone_map is None:
            raise bone_maps.BoneMapError(f"no bone map fits {obj.name}: {found.reason}; choose one")
        bone_map = found.bone_map
    else:
        bone_map = bone_maps.load_preset(preset)
        missing = bone_map.missing_in(names)
        if "pelvis" in bone_map.bones and bone_map.bone("pelvis") in missing:
            raise bone_maps.BoneMapError(f"{obj.name} has no bone {bone_map.bone('pelvis')!r} "
                                         f"for the {preset} preset's pelvis")
        bone_map = bone_map.without(*[j for j in bone_map.joints if bone_map.bone(j) in missing])
    store_bone_map(obj, bone_map)
    return bone_map


def store_bone_map(obj: bpy.types.Object, bone_map: bone_maps.BoneMap) -> None:
    obj.choreo_bone_map.clear()
    for joint, bone in bone_map.joint_to_bone().items():
        row = obj.choreo_bone_map.add()
        row.name, row.bone = joint, bone
    obj[ROOT_BONE_KEY] = bone_map.root_bone or ""


def stored_bone_map(obj: bpy.types.Object) -> bone_maps.BoneMap:
    """The map in the object's rows (rows with an empty bone are unmapped joints)."""
    bones = {row.name: row.bone for row in obj.choreo_bone_map if row.bone}
    return bone_maps.BoneMap(name=obj.name, bones=bones, root=obj.get(ROOT_BONE_KEY) or None)


class RigTarget:
    """Writes and reads SMPL motion on a retargeted rig."""

    def __init__(self, obj: bpy.types.Object, bone_map: bone_maps.BoneMap, root_mode: str) -> None:
        self.obj, self.bone_map, self.root_mode = obj, bone_map, root_mode

    @classmethod
    def for_object(cls, context: bpy.types.Context, obj: bpy.types.Object) -> "RigTarget":
        settings = context.scene.choreo
        if not len(obj.choreo_bone_map):
            fill_bone_map(obj, settings.preset)
        # A dance keeps the root mode it was made with; a new one takes the panel's.
        has_dance = obj.get("choreo_motion") is not None
        root_mode = obj.get(ROOT_MODE_KEY) if has_dance and obj.get(ROOT_MODE_KEY) else settings.root_mode
        obj[ROOT_MODE_KEY] = root_mode
        return cls(obj, stored_bone_map(obj), root_mode)

    def write(self, first_frame: float, rotations: np.ndarray, root: np.ndarray,
              joints: Sequence[str] | None = None, root_too: bool = True) -> None:
        only = None if joints is None else set(self.bones_for(joints))
        retarget_bpy.apply(self.obj, self.bone_map, rotations, root, first_frame, self.root_mode,
                           only_bones=only, root_too=root_too)

    def read(self, first_frame: int, frames: int) -> tuple[np.ndarray, np.ndarray]:
        rot, root = retarget_bpy.read_smpl(self.obj, self.bone_map, first_frame + np.arange(frames),
                                           self.root_mode)
        return rot.astype(np.float32), root.astype(np.float32)

    def bones_for(self, joints: Sequence[str]) -> list[str]:
        return [b for b in (self.bone_map.bone(j) for j in joints) if b]
