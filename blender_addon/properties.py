"""The scene's Choreo settings (what the panel edits) and the generator options' storage.

Generator options are not known until a backend says what its models take, so they
are a collection filled from ``hello``: one item per option, with its type, range
and default, drawn by the panel and sent back as a plain dict.
"""

from __future__ import annotations

from typing import Any

import bpy

from . import state
from .core.edit_plan import BODY_PARTS



class ChoreoModelName(bpy.types.PropertyGroup):
    """One model the backend offers (``name``); the panel's generator list.

    A collection filled on connect, drawn with ``prop_search``, rather than an enum with
    an items callback: the bpy 4.2 module crashes at exit holding such a callback.
    """

    family: bpy.props.StringProperty()  # type: ignore[valid-type]


def set_models(settings: "ChoreoSceneSettings", models: list[dict[str, Any]]) -> None:
    settings.models.clear()
    for m in models:
        item = settings.models.add()
        item.name, item.family = str(m.get("name", "")), str(m.get("family", ""))


class ChoreoChoice(bpy.types.PropertyGroup):
    """One value a "choice" option may take (``name``), drawn as that option's dropdown."""


class ChoreoOption(bpy.types.PropertyGroup):
    """One option of the chosen generator, as its ``hello`` description gives it.

    A "choice" option keeps its value as a string, picked from ``choices`` with
    ``prop_search`` (a dropdown with search), for the same reason as the model list.
    """

    kind: bpy.props.StringProperty()  # type: ignore[valid-type]  # int, float, bool, choice
    description: bpy.props.StringProperty()  # type: ignore[valid-type]
    int_value: bpy.props.IntProperty(name="Value")  # type: ignore[valid-type]
    float_value: bpy.props.FloatProperty(name="Value")  # type: ignore[valid-type]
    bool_value: bpy.props.BoolProperty(name="Value")  # type: ignore[valid-type]
    choice_value: bpy.props.StringProperty(name="Value")  # type: ignore[valid-type]
    choices: bpy.props.CollectionProperty(type=ChoreoChoice)  # type: ignore[valid-type]
    minimum: bpy.props.FloatProperty()  # type: ignore[valid-type]
    maximum: bpy.props.FloatProperty()  # type: ignore[valid-type]

    def value(self) -> Any:
        return {"int": self.int_value, "float": self.float_value, "bool": self.bool_value}.get(
            self.kind, self.choice_value)


def sync_options(settings: "ChoreoSceneSettings", model: dict[str, Any]) -> None:
    """Fill the options from a model's description, keeping values already set for that model."""
    old = {o.name: o.value() for o in settings.options} if settings.options_model == model.get("name") else {}
    settings.options.clear()
    for spec in model.get("options", []):
        item = settings.options.add()
        item.name, item.kind = str(spec["name"]), str(spec.get("type", "float"))
        item.description = str(spec.get("description", ""))
        item.minimum = float(spec["min"]) if spec.get("min") is not None else -1e9
        item.maximum = float(spec["max"]) if spec.get("max") is not None else 1e9
        value = old.get(item.name, spec.get("default"))
        if item.kind == "int":
            item.int_value = int(value or 0)
        elif item.kind == "float":
            item.float_value = float(value or 0.0)
        elif item.kind == "bool":
            item.bool_value = bool(value)
        else:
            for choice in spec.get("choices", []):
                item.choices.add().name = str(choice)
            item.choice_value = str(value if value is not None else "")
    settings.options_model = str(model.get("name", ""))


def _model_changed(settings: "ChoreoSceneSettings", context: bpy.types.Context) -> None:
    """Show the newly chosen generator's options (while a backend is connected)."""
    info = state.LINK.info
    if info is not None and settings.model in info.model_names and settings.options_model != settings.model:
        sync_options(settings, info.model(settings.model))


class ChoreoBoneLink(bpy.types.PropertyGroup):
    """One row of a rig's bone map: an SMPL joint (name) and the rig's bone."""

    bone: bpy.props.StringProperty(name="Bone")  # type: ignore[valid-type]


class ChoreoSceneSettings(bpy.types.PropertyGroup):
    audio_source: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Audio", default="FILE",
        items=[("FILE", "File", "An audio file"), ("STRIP", "Sound strip", "The scene's sound strip")])
    audio_path: bpy.props.StringProperty(name="Song", subtype="FILE_PATH")  # type: ignore[valid-type]
    model: bpy.props.StringProperty(name="Generator", update=_model_changed)  # type: ignore[valid-type]
    models: bpy.props.CollectionProperty(type=ChoreoModelName)  # type: ignore[valid-type]
    options: bpy.props.CollectionProperty(type=ChoreoOption)  # type: ignore[valid-type]
    options_model: bpy.props.StringProperty()  # type: ignore[valid-type]
    seed: bpy.props.IntProperty(name="Seed", default=0, min=0)  # type: ignore[valid-type]
    random_seed: bpy.props.BoolProperty(name="Random seed", default=False)  # type: ignore[valid-type]
    range_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Range", default="SONG",
        items=[("SONG", "Whole song", ""), ("RANGE", "Time range", "")])
    start_seconds: bpy.props.FloatProperty(name="From (s)", default=0.0, min=0.0)  # type: ignore[valid-type]
    seconds: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Length (s)", default=0.0, min=0.0, description="0: to the end of the song")
    target: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Target", default="NEW_SMPL",
        items=[("NEW_SMPL", "New SMPL rig", "Build the SMPL rig (with a body) and animate it"),
               ("SELECTED", "Selected armature", "Retarget onto the active armature")])
    preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Bone map", default="AUTO",
        items=[("AUTO", "Auto-detect", ""), ("smpl", "SMPL", ""), ("mixamo", "Mixamo", ""),
               ("rigify", "Rigify", ""), ("ue5", "UE5 Mannequin", "")])
    root_mode: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Root motion", default="PELVIS",
        items=[("OBJECT", "Armature object", ""), ("ROOT_BONE", "Root bone", ""),
               ("PELVIS", "Pelvis", ""), ("IN_PLACE", "In place", "")])
    fit: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Frame rate", default="SCENE",
        items=[("SCENE", "Scene takes the dance's rate", "Set the scene to the dance's own rate (its model's)"),
               ("RESAMPLE", "Resample to the scene's rate", "Keep the scene's fps (24, 25, 29.97...)")])
    beat_markers: bpy.props.BoolProperty(name="Beat markers", default=True)  # type: ignore[valid-type]
    plant_feet: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Plant feet", default=True,
        description="Hold the feet still where the dance's contact labels say they touch the floor "
                    "(two-bone IK on the legs, baked into keys)")
    # Regenerate
    edit_range: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Frames", default="PREVIEW",
        items=[("PREVIEW", "Preview range", ""), ("MARKERS", "Between markers", ""), ("TYPED", "Typed", "")])
    edit_first: bpy.props.IntProperty(name="First", default=1)  # type: ignore[valid-type]
    edit_last: bpy.props.IntProperty(name="Last", default=60)  # type: ignore[valid-type]
    edit_joints: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Regenerate", default="ALL",
        items=[("ALL", "Whole body", ""), ("PARTS", "Body parts", ""), ("SELECTED", "Selected bones", "")])
    edit_parts: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Parts", options={"ENUM_FLAG"}, default={"ARMS"},
        items=[(p, p.title(), "") for p in BODY_PARTS])
    keep_own_keys: bpy.props.BoolProperty(  # type: ignore[valid-type]
        name="Keep my keys", default=True,
        description="Your own keyframes inside the range stay as they are (constraints)")
    # Export
    export_preset: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Preset", default="GENERIC",
        items=[("UNITY", "Unity", ""), ("UNREAL", "Unreal", ""), ("GENERIC", "Generic", "")])
    export_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="File", subtype="FILE_PATH", default="//dance.fbx")
    # Preview video
    preview_camera: bpy.props.EnumProperty(  # type: ignore[valid-type]
        name="Camera", default="FOLLOW",
        items=[("FOLLOW", "Follow the dancer", "A camera that keeps its distance from the dancer's hips"),
               ("SCENE", "Scene camera", "The scene's active camera")])
    preview_path: bpy.props.StringProperty(  # type: ignore[valid-type]
        name="Video", subtype="FILE_PATH", default="//preview.mp4")
    # Status shown by the panel
    progress: bpy.props.FloatProperty(  # type: ignore[valid-type]
        name="Progress", subtype="PERCENTAGE", min=0.0, max=100.0)
    status: bpy.props.StringProperty()  # type: ignore[valid-type]
    running: bpy.props.BoolProperty()  # type: ignore[valid-type]

    def option_values(self) -> dict[str, Any]:
        return {o.name: o.value() for o in self.options}


CLASSES = (ChoreoModelName, ChoreoChoice, ChoreoOption, ChoreoBoneLink, ChoreoSceneSettings)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.choreo = bpy.props.PointerProperty(type=ChoreoSceneSettings)
    bpy.types.Object.choreo_bone_map = bpy.props.CollectionProperty(type=ChoreoBoneLink)


def unregister() -> None:
    del bpy.types.Object.choreo_bone_map
    del bpy.types.Scene.choreo
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
