"""Contact labels as animated custom properties, and feet planted from them (bpy side).

The labels live on the armature object, one custom property per contact joint
(``choreo_contact_left_ankle``, ...), keyed once per frame: they show in the Graph
Editor, can be edited there, and the FBX exporter writes them as animated custom
properties (curves Unity and Unreal read). ``plant`` reads the rig's keys and the
labels over a frame range, lets ``core.leg_ik`` solve the legs, and keys the result
(thigh, shin and foot rotations, the pelvis location where the hips come down):
baked keys, no constraints left behind.
"""

from __future__ import annotations

from typing import Sequence

import bpy
import numpy as np

from . import keyframes, retarget_bpy
from .core import bone_maps, foot_contacts, leg_ik
from .core.retarget import rig_bones_to_key

CONTACT_GROUP = "Choreo Contacts"


def write_contacts(obj: bpy.types.Object, first_frame: float, names: Sequence[str], labels: np.ndarray) -> None:
    """Key the labels (T, C) from ``first_frame`` on, one custom property per name."""
    labels = np.asarray(labels, dtype=np.float32)
    if labels.ndim != 2 or labels.shape[0] == 0:
        return
    curves = keyframes._curves(obj, create=True)
    frames = first_frame + np.arange(labels.shape[0], dtype=np.float64)
    for c, joint in enumerate(names):
        prop = foot_contacts.property_name(joint)
        if prop not in obj.keys():
            obj[prop] = 0.0
            try:
                obj.id_properties_ui(prop).update(min=0.0, max=1.0, description=f"Choreo contact label: {joint}")
            except (AttributeError, TypeError):
                pass
        keyframes.write_channel(curves, f'["{prop}"]', 0, CONTACT_GROUP, frames, labels[:, c])


def contact_names(obj: bpy.types.Object) -> list[str]:
    """The contact joints the object has labels for (its custom properties)."""
    return [j for j in (foot_contacts.joint_of_property(k) for k in obj.keys()) if j]


def read_contacts(obj: bpy.types.Object, frames: np.ndarray) -> dict[str, np.ndarray]:
    """The labels at ``frames`` (as the F-curves evaluate, so the animator's edits count)."""
    out = {}
    for joint in contact_names(obj):
        prop = foot_contacts.property_name(joint)
        out[joint] = keyframes.read_channel(obj, f'["{prop}"]', 1, frames, (float(obj[prop]),))[:, 0]
    return out


def bone_map_of(obj: bpy.types.Object) -> bone_maps.BoneMap:
    """The SMPL rig's identity map, or the map stored on a retargeted rig."""
    from . import rig
    if rig.is_smpl_rig(obj):
        return bone_maps.load_preset("smpl")
    from .retarget_target import stored_bone_map
    return stored_bone_map(obj)


def plant(obj: bpy.types.Object, first: int, last: int, *, context_frames: int = 48) -> leg_ik.PlantResult | None:
    """Plant the feet over scene frames [first, last] from the object's contact curves.

    Frames up to ``context_frames`` either side are read (not written), so spans crossing
    the range hold where the frames outside hold them. Returns None without labels.
    """
    labels_present = contact_names(obj)
    if not labels_present or last < first:
        return None
    bone_map = bone_map_of(obj)
    rig = retarget_bpy.rig_rest(obj)
    # Frames around the range give spans crossing its edges their holds, but only where the
    # dance has keys: beyond them Blender holds the last value, which is no contact.
    keyed = np.concatenate([keyframes.key_frames(obj, f'["{foot_contacts.property_name(j)}"]')
                            for j in labels_present])
    lo, hi = first - context_frames, last + context_frames
    if keyed.size:
        lo, hi = max(lo, min(first, int(np.floor(keyed.min())))), min(hi, max(last, int(np.ceil(keyed.max()))))
    frames = np.arange(lo, hi + 1, dtype=np.float64)
    bones = rig_bones_to_key(bone_map, rig)
    rotations, locations, object_location = keyframes.read_motion(obj, frames, bones)
    rotations = retarget_bpy._read_rotations(obj, frames, bones, rotations)
    parent = retarget_bpy._parent_matrix(obj)
    points = np.concatenate([object_location, np.ones((len(frames), 1))], 1)
    world = (points @ parent.T)[:, :3]
    editable = (frames >= first) & (frames <= last)
    labels = read_contacts(obj, frames)
    result = leg_ik.plant_feet(rig, bone_map, rotations, labels, locations=locations,
                               object_location=world if keyframes_location(obj) else None,
                               editable=editable)
    # Key only the runs of frames planting changed: every other key (the animator's own
    # included) stays exactly as it was.
    write = editable & result.changed
    edges = np.flatnonzero(np.diff(np.concatenate([[0], write.astype(np.int8), [0]])))
    for a, b in zip(edges[0::2], edges[1::2]):
        rot = {bone: q[a:b] for bone, q in result.rotations.items()}
        loc = {bone: v[a:b] for bone, v in result.locations.items()}
        if rot or loc:
            keyframes.write_motion(obj, float(frames[a]), rotations=rot, locations=loc)
    return result


def keyframes_location(obj: bpy.types.Object) -> bool:
    return retarget_bpy._location_animated(obj)
