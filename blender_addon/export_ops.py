"""The Export FBX operator: the panel's preset and path, over ``export_fbx``."""

from __future__ import annotations

import bpy

from .export_fbx import FbxExportError, export


class CHOREO_OT_export_fbx(bpy.types.Operator):
    """Export the active armature's dance as FBX with the chosen preset (Unity, Unreal, generic)"""

    bl_idname = "choreo.export_fbx"
    bl_label = "Export FBX"

    def execute(self, context: bpy.types.Context) -> set[str]:
        s = context.scene.choreo
        try:
            path = export(context, context.active_object, bpy.path.abspath(s.export_path), s.export_preset)
        except FbxExportError as exc:
            self.report({"ERROR"}, str(exc))
            s.status = str(exc)
            return {"CANCELLED"}
        s.status = f"Exported {path}"
        self.report({"INFO"}, s.status)
        return {"FINISHED"}


class CHOREO_OT_preview(bpy.types.Operator):
    """Render the dance with its song to an MP4 (Workbench; the scene camera or one following the dancer)"""

    bl_idname = "choreo.preview"
    bl_label = "Render Preview Video"

    def execute(self, context: bpy.types.Context) -> set[str]:
        from .preview import PreviewError, render_preview
        s = context.scene.choreo
        try:
            path = render_preview(context, context.active_object, s.preview_path, camera=s.preview_camera)
        except (PreviewError, OSError, ValueError) as exc:
            self.report({"ERROR"}, str(exc))
            s.status = str(exc)
            return {"CANCELLED"}
        s.status = f"Preview written: {path}"
        self.report({"INFO"}, s.status)
        return {"FINISHED"}


CLASSES = (CHOREO_OT_export_fbx, CHOREO_OT_preview)
