"""Export an animated rig (and its body meshes) to FBX with one of ``core.fbx_presets``.

A thin adapter: the preset decides every exporter option; this module only checks
that there is something sensible to export, selects the armature and its mesh
children (the exporter's ``use_selection`` needs a selection), runs
``bpy.ops.export_scene.fbx`` and puts the animator's selection back as it was.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import bpy

from .core.fbx_presets import FbxPreset, action_frame_range, get_preset
from .core.frame_rate import scene_rate


class FbxExportError(RuntimeError):
    """Why an export could not start or did not finish, in words for the animator."""


def export(context: bpy.types.Context, obj: bpy.types.Object | None, filepath: str | os.PathLike[str],
           preset: str | FbxPreset, *, use_action_range: bool = False) -> Path:
    """Write ``obj``'s current action and its visible mesh children to ``filepath``.

    The frames exported are the scene's range (what the timeline plays), or the
    action's own key range with ``use_action_range``; the rate is the scene's
    ``fps / fps_base``. Returns the path written (``.fbx`` is appended if missing).
    Raises ``FbxExportError`` for no armature, no animation, or a path we cannot write.
    """
    preset = get_preset(preset)
    # Objects linked since the last update are missing from the view layer's list
    # until it resyncs; without this a body added by a script just now looks absent.
    context.view_layer.update()
    _check_armature(context, obj)
    action = obj.animation_data.action
    path = _writable_path(filepath)
    scene = context.scene
    scene_rate(scene.render.fps, scene.render.fps_base)  # raises on a nonsense rate
    frames = action_frame_range(tuple(action.frame_range)) if use_action_range else None
    with _selection(context, [obj, *_mesh_children(context, obj)]), _scene_range(scene, frames):
        try:
            result = bpy.ops.export_scene.fbx(filepath=str(path), check_existing=False,
                                              **preset.operator_keywords())
        except RuntimeError as error:  # the operator reports Python errors this way
            raise FbxExportError(f"FBX export to {path} failed: {error}") from error
    if "FINISHED" not in result or not path.is_file():
        raise FbxExportError(f"FBX export to {path} did not finish ({', '.join(result)})")
    from . import fbx_contacts
    first, last = frames if frames is not None else (scene.frame_start, scene.frame_end)
    try:  # the contact labels, as animated custom properties Unity and Unreal read as curves
        fbx_contacts.add_contact_curves(path, obj, int(first), int(last))
    except (RuntimeError, OSError, ValueError, KeyError) as error:
        raise FbxExportError(f"could not add the contact curves to {path}: {error}") from error
    return path


def _check_armature(context: bpy.types.Context, obj: bpy.types.Object | None) -> None:
    if obj is None or obj.type != "ARMATURE":
        kind = "nothing" if obj is None else f"{obj.name!r} ({obj.type.lower()})"
        raise FbxExportError(f"select an armature to export; got {kind}")
    if obj.animation_data is None or obj.animation_data.action is None:
        raise FbxExportError(f"armature {obj.name!r} has no animation (no action) to export")
    if obj.name not in context.view_layer.objects or not obj.visible_get():
        raise FbxExportError(f"armature {obj.name!r} is hidden; the exporter writes visible objects only")


def _writable_path(filepath: str | os.PathLike[str]) -> Path:
    """The absolute target path, checked before the exporter half-writes anything."""
    path = Path(bpy.path.abspath(os.fspath(filepath))).expanduser()
    if path.suffix.lower() != ".fbx":
        path = path.with_name(path.name + ".fbx")
    path = path.absolute()
    if path.is_dir():
        raise FbxExportError(f"{path} is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise FbxExportError(f"cannot write {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise FbxExportError(f"cannot write {path}: permission denied")
    return path


def _mesh_children(context: bpy.types.Context, obj: bpy.types.Object) -> list[bpy.types.Object]:
    """Meshes under the rig that the exporter can write: in this view layer and visible."""
    layer_objects = context.view_layer.objects
    return [child for child in obj.children_recursive
            if child.type == "MESH" and child.name in layer_objects and child.visible_get()]


@contextmanager
def _selection(context: bpy.types.Context, objects: list[bpy.types.Object]) -> Iterator[None]:
    """Select exactly ``objects`` (the first active) for the duration; then restore."""
    layer = context.view_layer
    selected = [ob for ob in layer.objects if ob.select_get()]
    active = layer.objects.active
    try:
        for ob in selected:
            ob.select_set(False)
        for ob in objects:
            ob.select_set(True)
        layer.objects.active = objects[0]
        yield
    finally:
        for ob in layer.objects:
            ob.select_set(False)
        for ob in selected:
            if ob.name in layer.objects:
                ob.select_set(True)
        layer.objects.active = active


@contextmanager
def _scene_range(scene: bpy.types.Scene, frames: tuple[int, int] | None) -> Iterator[None]:
    """Set the scene's frame range to ``frames`` (None: leave it) for the duration."""
    if frames is None:
        yield
        return
    saved = scene.frame_start, scene.frame_end
    try:
        # Start first: setting it past the end pushes the end along; the end then lands.
        scene.frame_start, scene.frame_end = frames
        yield
    finally:
        scene.frame_start, scene.frame_end = saved
