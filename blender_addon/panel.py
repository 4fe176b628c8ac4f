"""The Choreo tab in the 3D Viewport's sidebar: backend, song, generator, target, edit, export."""

from __future__ import annotations

import bpy

from . import state
from .preferences import get_prefs


class _ChoreoPanel:
    bl_space_type = "VIEW_3D"
    bl_region_type = "UI"
    bl_category = "Choreo"


class CHOREO_PT_main(_ChoreoPanel, bpy.types.Panel):
    bl_label = "Choreo"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.choreo
        problem = state.LINK.check() if state.LINK.process is not None else state.LINK.error
        box = layout.box()
        if state.LINK.connected and not problem:
            info = state.LINK.info
            box.label(text=f"Connected: choreo {info.version}", icon="CHECKMARK")
            box.label(text=f"Device: {info.device}   Protocol {info.protocol_version}")
            box.label(text=f"Models: {', '.join(info.model_names)}")
            box.operator("choreo.disconnect", icon="UNLINKED")
        else:
            box.label(text="Not connected", icon="ERROR" if problem else "UNLINKED")
            for line in (problem or "").splitlines()[:6]:
                box.label(text=line[:120])
            mode = get_prefs(context).backend_mode
            box.operator("choreo.connect", text="Start Backend" if mode == "LOCAL" else "Connect", icon="LINKED")
        if settings.running:
            row = layout.row(align=True)
            row.prop(settings, "progress", text="", slider=True)
            row.operator("choreo.cancel", text="", icon="CANCEL")
        if settings.status:
            layout.label(text=settings.status[:120])


class CHOREO_PT_generate(_ChoreoPanel, bpy.types.Panel):
    bl_label = "Generate"
    bl_parent_id = "CHOREO_PT_main"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.choreo
        layout.prop(s, "audio_source", expand=True)
        if s.audio_source == "FILE":
            layout.prop(s, "audio_path")
        layout.prop_search(s, "model", s, "models", text="Generator")
        col = layout.column(align=True)
        for option in s.options:
            label = option.name.replace("_", " ").title()
            if len(option.choices):
                col.prop_search(option, "choice_value", option, "choices", text=label)
                continue
            prop = {"int": "int_value", "float": "float_value", "bool": "bool_value"}.get(option.kind, "choice_value")
            col.prop(option, prop, text=label)
        row = layout.row(align=True)
        row.prop(s, "seed")
        row.prop(s, "random_seed", text="", icon="FILE_REFRESH")
        layout.prop(s, "range_mode", expand=True)
        if s.range_mode == "RANGE":
            row = layout.row(align=True)
            row.prop(s, "start_seconds")
            row.prop(s, "seconds")
        layout.prop(s, "target")
        if s.target == "SELECTED":
            layout.prop(s, "preset")
            layout.prop(s, "root_mode")
            obj = context.active_object
            if obj is not None and obj.type == "ARMATURE" and len(obj.choreo_bone_map):
                box = layout.box()
                box.label(text="Bone map")
                for link in obj.choreo_bone_map:
                    box.prop_search(link, "bone", obj.data, "bones", text=link.name)
            row = layout.row(align=True)
            row.operator("choreo.detect_preset", text="Detect", icon="VIEWZOOM")
            row.operator("choreo.preset_save", text="Save", icon="EXPORT")
            row.operator("choreo.preset_load", text="Load", icon="IMPORT")
            box = layout.box()
            box.label(text="Retarget an existing dance onto this rig")
            row = box.row(align=True)
            row.operator("choreo.retarget_dance", text="From SMPL Rig").source = "RIG"
            row.operator("choreo.retarget_dance", text="From .npz").source = "NPZ"
            row.operator("choreo.retarget_dance", text="From BVH").source = "BVH"
        layout.prop(s, "fit")
        layout.prop(s, "beat_markers")
        row = layout.row(align=True)
        row.prop(s, "plant_feet")
        row.operator("choreo.plant_feet", text="Plant Feet", icon="SNAP_ON")
        layout.operator("choreo.generate", icon="PLAY")


class CHOREO_PT_regenerate(_ChoreoPanel, bpy.types.Panel):
    bl_label = "Regenerate Selection"
    bl_parent_id = "CHOREO_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.choreo
        layout.prop(s, "edit_range", expand=True)
        if s.edit_range == "TYPED":
            row = layout.row(align=True)
            row.prop(s, "edit_first")
            row.prop(s, "edit_last")
        layout.prop(s, "edit_joints", expand=True)
        if s.edit_joints == "PARTS":
            layout.prop(s, "edit_parts", expand=True)
        layout.prop(s, "keep_own_keys")
        layout.operator("choreo.regenerate", icon="FILE_REFRESH")


class CHOREO_PT_export(_ChoreoPanel, bpy.types.Panel):
    bl_label = "Export FBX"
    bl_parent_id = "CHOREO_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.choreo
        layout.prop(s, "export_preset")
        layout.prop(s, "export_path")
        layout.operator("choreo.export_fbx", icon="EXPORT")


class CHOREO_PT_preview(_ChoreoPanel, bpy.types.Panel):
    bl_label = "Preview Video"
    bl_parent_id = "CHOREO_PT_main"
    bl_options = {"DEFAULT_CLOSED"}

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        s = context.scene.choreo
        layout.prop(s, "preview_camera")
        layout.prop(s, "preview_path")
        layout.operator("choreo.preview", icon="RENDER_ANIMATION")


CLASSES = (CHOREO_PT_main, CHOREO_PT_generate, CHOREO_PT_regenerate, CHOREO_PT_export, CHOREO_PT_preview)
