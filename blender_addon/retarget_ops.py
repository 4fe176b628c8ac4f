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


class CHOREO_OT_retarget_dance(bpy.types.Operator):
    """Retarget an existing dance (the SMPL rig's, a Choreo .npz or a BVH) onto the active armature"""

    bl_idname = "choreo.retarget_dance"
    bl_label = "Retarget Dance"
    bl_options = {"REGISTER", "UNDO"}

    source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="From", default="RIG",
        items=[("RIG", "SMPL rig", "The dance on a Choreo SMPL rig in this file"),
               ("NPZ", "Choreo .npz", "A dance written by 'choreo generate'"),
               ("BVH", "BVH file", "Motion capture (read by the backend's importer)")])
    source_object: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="SMPL rig", description="Empty: the SMPL rig with a dance in this file")
    filepath: bpy.props.StringProperty(name="File", subtype="FILE_PATH")  # type: ignore[valid-type]
    filter_glob: bpy.props.StringProperty(default="*.npz;*.bvh", options={"HIDDEN"})  # type: ignore[valid-type]

    def invoke(self, context: bpy.types.Context, event: object) -> set[str]:
        if self.source != "RIG" and not self.filepath:
            self.filter_glob = "*.npz" if self.source == "NPZ" else "*.bvh"
            context.window_manager.fileselect_add(self)
            return {"RUNNING_MODAL"}
        return self.execute(context)

    def execute(self, context: bpy.types.Context) -> set[str]:
        from . import retarget_dance, rig
        from .core.dance_file import DanceFileError
        from .core.retarget import RetargetError
        from .preferences import get_prefs
        obj = _armature(context)
        if obj is None:
            self.report({"ERROR"}, "select the armature to retarget onto")
            return {"CANCELLED"}
        try:
            meta, first = None, None
            if self.source == "RIG":
                src = bpy.data.objects.get(self.source_object) if self.source_object else next(
                    (o for o in bpy.data.objects if o is not obj and rig.is_smpl_rig(o) and o.get("choreo_motion")),
                    None)
                if src is None or src is obj:
                    raise DanceFileError("no SMPL rig with a dance to retarget from (generate one, or name it)")
                dance, meta = retarget_dance.dance_from_rig(src)
                first = meta.first_frame
            elif self.source == "NPZ":
                dance = retarget_dance.read_npz(bpy.path.abspath(self.filepath))
            else:
                prefs = get_prefs(context)
                python = bpy.path.abspath(prefs.python_path) if prefs.python_path else ""
                dance = retarget_dance.dance_from_bvh(bpy.path.abspath(self.filepath), python)
            frames = retarget_dance.apply_dance(context, obj, dance, first_frame=first, meta=meta)
        except (DanceFileError, RetargetError, bone_maps.BoneMapError, ValueError, OSError) as exc:
            self.report({"ERROR"}, str(exc))
            context.scene.choreo.status = str(exc)
            return {"CANCELLED"}
        context.scene.choreo.status = f"Retargeted {dance.name} onto {obj.name} ({frames} frames)"
        return {"FINISHED"}


CLASSES = (CHOREO_OT_detect_preset, CHOREO_OT_preset_save, CHOREO_OT_preset_load, CHOREO_OT_retarget_dance)
