"""Bone-map operators: detect the preset from bone names, save and load a map as JSON."""

from __future__ import annotations

import bpy

from .core import bone_maps
from .retarget_target import fill_bone_map, store_bone_map, stored_bone_map


def _armature(context: bpy.types.Context) -> bpy.types.Object | None:
    obj = context.active_object
    return obj if obj is not None and obj.type == "ARMATURE" else None


class CHOREO_OT_detect_preset(bpy.types.Operator):
    """Fill the active armature's bone map from the chosen preset (or detect it from bone names)"""

    bl_idname = "choreo.detect_preset"
    bl_label = "Detect Bone Map"

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = _armature(context)
        if obj is None:
            self.report({"ERROR"}, "select an armature")
            return {"CANCELLED"}
        try:
            bone_map = fill_bone_map(obj, context.scene.choreo.preset)
        except bone_maps.BoneMapError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        self.report({"INFO"}, f"{len(bone_map.joints)} joints mapped")
        return {"FINISHED"}


class CHOREO_OT_preset_save(bpy.types.Operator):
    """Save the active armature's bone map as JSON"""

    bl_idname = "choreo.preset_save"
    bl_label = "Save Bone Map"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH", default="bone_map.json")  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: object) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = _armature(context)
        if obj is None or not len(obj.choreo_bone_map):
            self.report({"ERROR"}, "the active armature has no bone map yet (Detect first)")
            return {"CANCELLED"}
        bone_maps.save(stored_bone_map(obj), bpy.path.abspath(self.filepath))
        return {"FINISHED"}


class CHOREO_OT_preset_load(bpy.types.Operator):
    """Load a bone map (JSON) onto the active armature"""

    bl_idname = "choreo.preset_load"
    bl_label = "Load Bone Map"
    filepath: bpy.props.StringProperty(subtype="FILE_PATH")  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: object) -> set[str]:
        context.window_manager.fileselect_add(self)
        return {"RUNNING_MODAL"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        obj = _armature(context)
        if obj is None:
            self.report({"ERROR"}, "select an armature")
            return {"CANCELLED"}
        try:
            bone_map = bone_maps.load(bpy.path.abspath(self.filepath))
        except bone_maps.BoneMapError as exc:
            self.report({"ERROR"}, str(exc))
            return {"CANCELLED"}
        missing = bone_map.missing_in(b.name for b in obj.data.bones)
        if missing:
            self.report({"ERROR"}, f"{obj.name} lacks bones {missing[:5]}")
            return {"CANCELLED"}
        store_bone_map(obj, bone_map)
        return {"FINISHED"}


CLASSES = (CHOREO_OT_detect_preset, CHOREO_OT_preset_save, CHOREO_OT_preset_load)
