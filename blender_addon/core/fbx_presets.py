"""FBX export presets: the keywords for ``bpy.ops.export_scene.fbx``, as plain data.

Why presets: the exporter has some forty options, and the defaults are wrong for a
dance clip (leaf bones, every action in the file as its own take, keys thinned out).
Each target engine also reads axes and units its own way. A preset fixes all of it
once; ``blender_addon.export_fbx`` only selects objects and calls the operator.

What every preset shares, and why:

* ``add_leaf_bones=False``: leaf bones are extra ``*_end`` joints that exist only to
  give a bone a length; engines import them as real joints, and our skeleton must
  stay SMPL's 24 joints so that retargeting by name works.
* ``bake_anim_use_all_actions=False`` and ``bake_anim_use_nla_strips=False``: one
  take, the animation the scene plays now (the current action), not every
  compatible action in the file as a separate take.
* The frame range and rate are the scene's: with both options above off, the
  exporter bakes ``scene.frame_start..frame_end`` and writes the rate
  ``render.fps / render.fps_base`` (29.97 for NTSC "30"), so the exporter
  adapter sets the scene range when asked to export the action's range.
* ``bake_anim_step=1`` and ``bake_anim_simplify_factor=0``: one exact key per frame.
  The generator samples every frame; the exporter's default simplification would
  drop keys it thinks redundant and change the motion slightly.
* ``bake_anim_force_startend_keying=True``: the first and last frames are keyed
  even for a channel that does not move, so the clip keeps its length.
* ``bake_anim_use_all_bones=True``: every bone gets keys (UE4 needs it, others do
  no harm).
* ``use_selection=True`` with ``object_types={'ARMATURE', 'MESH'}``: only the rig
  and its body, never cameras, lights or other characters in the scene.
* ``armature_nodetype='NULL'``: the armature becomes a plain transform node (the
  exporter's default and the only type Blender's own importer reads back exactly).
* ``bake_space_transform=False``: "Apply Transform" is marked experimental and
  "known to be broken with armatures/animations" in the exporter itself.
* ``primary_bone_axis='Y'``/``secondary_bone_axis='X'``: Blender's own bone axes,
  so that the rig's rest orientations (the world axes) are written unchanged.

How the three presets differ is axes and units; each preset's docstring says why.
Blender writes the scale in one of two ways (``apply_scale_options``):
``FBX_SCALE_NONE`` writes centimetres, FBX's native unit, by putting a ×100 scale on
the root node (the armature) and declaring the file unit as 1 cm;
``FBX_SCALE_UNITS`` writes metres as they are and declares the file unit as 1 m
(``UnitScaleFactor`` 100), leaving every node's scale at 1. A reader that honours
the file unit (Blender, Unity's "Convert Units", Godot, the FBX SDK) sees the same
sizes either way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

OBJECT_TYPES: frozenset[str] = frozenset({"ARMATURE", "MESH"})


@dataclass(frozen=True)
class FbxPreset:
    """One export target: its axes, its units and the few options it needs.

    ``file_units_per_metre`` documents the numbers the file holds: 100 when a metre
    becomes 100 centimetres (via a ×100 scale on the root node), 1 when metres are
    written as they are. Tests use it to undo the scale when they read a file raw.
    """

    name: str
    label: str
    description: str
    axis_forward: str
    axis_up: str
    apply_scale_options: str
    file_units_per_metre: float
    mesh_smooth_type: str = "OFF"

    @property
    def fbx_unit_scale_factor(self) -> float:
        """The file's ``UnitScaleFactor`` (centimetres per file unit) Blender writes."""
        return 100.0 / self.file_units_per_metre

    def operator_keywords(self) -> dict[str, Any]:
        """Keyword arguments for ``bpy.ops.export_scene.fbx`` (all but ``filepath``)."""
        return {
            "use_selection": True,
            "use_visible": False,
            "use_active_collection": False,
            "object_types": set(OBJECT_TYPES),
            "global_scale": 1.0,
            "apply_unit_scale": True,
            "apply_scale_options": self.apply_scale_options,
            "axis_forward": self.axis_forward,
            "axis_up": self.axis_up,
            "use_space_transform": True,
            "bake_space_transform": False,
            "use_mesh_modifiers": True,
            "mesh_smooth_type": self.mesh_smooth_type,
            "use_custom_props": False,
            "add_leaf_bones": False,
            "primary_bone_axis": "Y",
            "secondary_bone_axis": "X",
            "use_armature_deform_only": False,
            "armature_nodetype": "NULL",
            "bake_anim": True,
            "bake_anim_use_all_bones": True,
            "bake_anim_use_nla_strips": False,
            "bake_anim_use_all_actions": False,
            "bake_anim_force_startend_keying": True,
            "bake_anim_step": 1.0,
            "bake_anim_simplify_factor": 0.0,
            "path_mode": "AUTO",
            "embed_textures": False,
            "batch_mode": "OFF",
        }


UNITY = FbxPreset(
    name="UNITY",
    label="Unity",
    description="Y up, metres declared in the file (no x100 on the armature)",
    # Unity is Y-up; the FBX SDK's default frame (Y up, -Z forward) is also Blender's
    # exporter default. Our character faces -Y in Blender, which maps to +Z in the
    # file, and +Z is Unity's forward after its importer's handedness flip.
    axis_forward="-Z",
    axis_up="Y",
    # "FBX Units Scale": metres stay metres and the file says so; with "Convert
    # Units" (Unity's default) the model imports at scale 1 instead of having a
    # x100 on the root (what the default "All Local" gives). Godot's docs ask for
    # the same setting. With global_scale 1 this equals "FBX All".
    apply_scale_options="FBX_SCALE_UNITS",
    file_units_per_metre=1.0,
)
"""Unity (and Godot, and other engines that honour the FBX file unit)."""

UNREAL = FbxPreset(
    name="UNREAL",
    label="Unreal Engine",
    description="Z up (no axis conversion), centimetres",
    # Unreal is Z-up like Blender; writing Blender's own frame (forward Y, up Z: the
    # identity conversion) puts no rotation on the root node at all, and UE's
    # importer converts any declared axis system to its own.
    axis_forward="Y",
    axis_up="Z",
    # Unreal's unit is the centimetre. "All Local" writes centimetres (the x100 sits
    # on the armature node) and declares 1 cm per unit, so the numbers and the
    # declared unit both agree with UE's: the character has its real size whether
    # or not UE's "Convert Scene Unit" import option is on. (A metres file would
    # import 100 times too small with it off.) The armature node's x100 is the usual
    # Blender-to-UE trade-off; only "Apply Transform", broken with armatures, avoids it.
    apply_scale_options="FBX_SCALE_NONE",
    file_units_per_metre=100.0,
    # UE warns "No smoothing group information was found" without face smoothing.
    mesh_smooth_type="FACE",
)
"""Unreal Engine 4/5."""

GENERIC = FbxPreset(
    name="GENERIC",
    label="Generic (Maya, MotionBuilder, ...)",
    description="Blender's standard FBX frame: Y up, -Z forward, centimetres",
    # What other tools already expect from a Blender FBX: the exporter's default
    # axes and units (FBX SDK frame, centimetres like Maya and MotionBuilder), with
    # only the animation options above changed.
    axis_forward="-Z",
    axis_up="Y",
    apply_scale_options="FBX_SCALE_NONE",
    file_units_per_metre=100.0,
)
"""Any other FBX reader: the stock Blender settings with our animation choices."""

PRESETS: dict[str, FbxPreset] = {p.name: p for p in (UNITY, UNREAL, GENERIC)}


def get_preset(name: str | FbxPreset) -> FbxPreset:
    """The preset called ``name`` (case-insensitive); a preset passes through."""
    if isinstance(name, FbxPreset):
        return name
    try:
        return PRESETS[name.upper()]
    except KeyError:
        raise ValueError(f"unknown FBX preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def enum_items() -> list[tuple[str, str, str]]:
    """``(identifier, label, description)`` triples for a Blender ``EnumProperty``."""
    return [(p.name, p.label, p.description) for p in PRESETS.values()]


def action_frame_range(frame_range: tuple[float, float]) -> tuple[int, int]:
    """An action's (float) frame range as the whole frames the exporter bakes.

    Keys sit on whole frames; rounding outward keeps the first and last key inside.
    """
    start, end = frame_range
    first, last = math.floor(start + 1e-6), math.ceil(end - 1e-6)
    if last < first:
        raise ValueError(f"empty frame range {frame_range}")
    return first, last
