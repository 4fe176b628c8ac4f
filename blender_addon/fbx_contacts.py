"""Contact curves in the FBX: animated custom properties on the armature's node.

Blender's FBX exporter writes animated transforms, shape keys and camera lenses, but not
animated custom properties (and its importer reads none back). Unity (animated user
properties, ``AssetPostprocessor.OnPostprocessGameObjectWithAnimatedUserProperties``) and
Unreal (custom attributes imported as animation curves) read them from an FBX node's
user properties with an animation curve attached, which is what the FBX SDK writes. So
after the export we add them to the file ourselves, with Blender's own FBX reader and
writer (``io_scene_fbx.parse_fbx`` and ``encode_bin``):

* on the armature object's ``Model`` node, a user property per contact joint
  (``P: "choreo_contact_left_ankle", "Number", "", "A+U", value``);
* an ``AnimationCurveNode`` (channel ``d|X``) driving that property (``OP`` connection)
  in the file's animation layer (``OO``), and an ``AnimationCurve`` with one linear key
  per exported frame, on the same key times as the bones' curves.

``read_contact_curves`` reads them back from any FBX, and ``import_contact_curves`` keys
them on an imported armature: the labels round-trip.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import bpy
import numpy as np

from . import foot_plant_bpy, keyframes
from .core import foot_contacts
from .core.frame_rate import scene_rate

CHANNEL = b"d|X"


def _fbx_modules():  # noqa: ANN202
    from io_scene_fbx import encode_bin, fbx_utils, parse_fbx
    return parse_fbx, encode_bin, fbx_utils


def _encodable(elem, encode_bin):  # noqa: ANN001, ANN202
    """A parsed element (namedtuple) as an ``encode_bin.FBXElem`` that can be written back."""
    out = encode_bin.FBXElem(elem.id)
    adders = {b"Y": out.add_int16, b"C": out.add_char, b"B": out.add_bool, b"Z": out.add_int8,
              b"I": out.add_int32, b"F": out.add_float32, b"D": out.add_float64, b"L": out.add_int64,
              b"R": out.add_bytes, b"S": out.add_string, b"f": out.add_float32_array,
              b"d": out.add_float64_array, b"l": out.add_int64_array, b"i": out.add_int32_array,
              b"b": out.add_bool_array, b"c": out.add_byte_array}
    for code, value in zip(elem.props_type, elem.props):
        adders[bytes([code])](value)
    out.elems.extend(_encodable(child, encode_bin) for child in elem.elems)
    return out


def _child(elem, name: bytes):  # noqa: ANN001, ANN202
    return next((e for e in elem.elems if e.id == name), None)


def _node_name(elem) -> str:  # noqa: ANN001
    return bytes(elem.props[1]).split(b"\x00")[0].decode("utf-8", "replace")


def _new_id(used: set[int], seed: str) -> int:
    value = (zlib.crc32(seed.encode()) << 20) | 0x5C0  # stable, far from Blender's own ids
    while value in used:
        value += 1
    used.add(value)
    return value


def add_contact_curves(path: str | os.PathLike[str], obj: bpy.types.Object, first: int, last: int) -> int:
    """Add ``obj``'s contact curves over frames [first, last] to the FBX at ``path``
    (the file Blender just exported); returns how many were added."""
    names = foot_plant_bpy.contact_names(obj)
    if not names:
        return 0
    parse_fbx, encode_bin, fbx_utils = _fbx_modules()
    parsed, version = parse_fbx.parse(os.fspath(path))
    root = encode_bin.FBXElem(b"")
    root.elems.extend(_encodable(e, encode_bin) for e in parsed.elems)
    objects, connections = _child(root, b"Objects"), _child(root, b"Connections")
    # Look things up in the parsed tree (plain values); change the encodable one beside it.
    parsed_objects = _child(parsed, b"Objects")
    pairs = list(zip(parsed_objects.elems, objects.elems))
    model = next((enc for e, enc in pairs if e.id == b"Model" and _node_name(e) == obj.name), None)
    model_id = next((int(e.props[0]) for e, enc in pairs if enc is model), None)
    layer_ids = [int(e.props[0]) for e, _ in pairs if e.id == b"AnimationLayer"]
    curves = [e for e, _ in pairs if e.id == b"AnimationCurve"]
    if model is None or not layer_ids or not curves:
        raise RuntimeError(f"the FBX at {path} has no node {obj.name!r} or no animation to add curves to")
    # Key times: the bones' curves start at the first exported frame, one key per frame.
    start = min(int(np.asarray(_child(c, b"KeyTime").props[0], dtype=np.int64)[0]) for c in curves)
    ktime = fbx_utils.FBX_KTIME_V8 if version >= 8000 else fbx_utils.FBX_KTIME_V7
    fps = scene_rate(bpy.context.scene.render.fps, bpy.context.scene.render.fps_base)
    frames = np.arange(first, last + 1, dtype=np.float64)
    key_times = start + np.round((frames - first) / fps * ktime).astype(np.int64)
    labels = foot_plant_bpy.read_contacts(obj, frames)
    used = {int(e.props[0]) for e in parsed_objects.elems if e.props and isinstance(e.props[0], int)}
    layer_id = layer_ids[0]
    props70 = _child(model, b"Properties70")
    if props70 is None:
        props70 = encode_bin.FBXElem(b"Properties70")
        model.elems.append(props70)
    added = 0
    for joint in names:
        prop = foot_contacts.property_name(joint).encode()
        values = np.asarray(labels[joint], dtype=np.float32)
        p = encode_bin.FBXElem(b"P")
        for s in (prop, b"Number", b"", b"A+U"):
            p.add_string(s)
        p.add_float64(float(values[0]))
        props70.elems.append(p)
        node_id, curve_id = _new_id(used, f"{obj.name}/{joint}/node"), _new_id(used, f"{obj.name}/{joint}/curve")
        node = encode_bin.FBXElem(b"AnimationCurveNode")
        node.add_int64(node_id)
        node.add_string(prop + b"\x00\x01AnimCurveNode")
        node.add_string(b"")
        node_props = encode_bin.FBXElem(b"Properties70")
        dp = encode_bin.FBXElem(b"P")
        for s in (CHANNEL, b"Number", b"", b"A"):
            dp.add_string(s)
        dp.add_float64(float(values[0]))
        node_props.elems.append(dp)
        node.elems.append(node_props)
        curve = encode_bin.FBXElem(b"AnimationCurve")
        curve.add_int64(curve_id)
        curve.add_string(b"\x00\x01AnimCurve")
        curve.add_string(b"")
        for name, adder, value in (
                (b"Default", "add_float64", float(values[0])), (b"KeyVer", "add_int32", 4009),
                (b"KeyTime", "add_int64_array", key_times), (b"KeyValueFloat", "add_float32_array", values),
                (b"KeyAttrFlags", "add_int32_array", np.array([1 << 2 | 1 << 8 | 1 << 13 | 1 << 14], np.int32)),
                (b"KeyAttrDataFloat", "add_float32_array", np.array([0.0, 0.0, 9.419963346924634e-30, 0.0],
                                                                    np.float32)),
                (b"KeyAttrRefCount", "add_int32_array", np.array([values.size], np.int32))):
            e = encode_bin.FBXElem(name)
            getattr(e, adder)(value)
            curve.elems.append(e)
        objects.elems.extend([node, curve])
        for kind, child_id, parent_id, what in ((b"OO", node_id, layer_id, None),
                                                (b"OP", node_id, model_id, prop),
                                                (b"OP", curve_id, node_id, CHANNEL)):
            c = encode_bin.FBXElem(b"C")
            c.add_string(kind)
            c.add_int64(child_id)
            c.add_int64(parent_id)
            if what is not None:
                c.add_string(what)
            connections.elems.append(c)
        added += 1
    _count_definitions(root, {b"AnimationCurveNode": added, b"AnimationCurve": added})
    encode_bin.write(os.fspath(path), root, version)
    return added


def _count_definitions(root, more: dict[bytes, int]) -> None:  # noqa: ANN001
    """Raise the object counts in ``Definitions`` by what was added (encodable tree: the
    properties are packed, strings behind a 4-byte length)."""
    definitions = _child(root, b"Definitions")
    if definitions is None:
        return
    total = sum(more.values())

    def bump(count, by: int) -> None:  # noqa: ANN001
        count.props[0] = np.int32(np.frombuffer(bytes(count.props[0]), "<i4")[0] + by).tobytes()

    for e in definitions.elems:
        if e.id == b"Count":
            bump(e, total)
        elif e.id == b"ObjectType":
            kind = bytes(e.props[0])[4:]
            count = _child(e, b"Count")
            if kind in more and count is not None:
                bump(count, more[kind])


def read_contact_curves(path: str | os.PathLike[str]) -> dict[str, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Per node name, per contact joint: (seconds (K,), values (K,)) of the file's contact curves."""
    parse_fbx, _encode_bin, fbx_utils = _fbx_modules()
    root, version = parse_fbx.parse(os.fspath(path))
    ktime = fbx_utils.FBX_KTIME_V8 if version >= 8000 else fbx_utils.FBX_KTIME_V7
    objects, connections = _child(root, b"Objects"), _child(root, b"Connections")
    by_id = {e.props[0]: e for e in objects.elems if e.props}
    into: dict[int, list[tuple[bytes, int, bytes | None]]] = {}
    for c in connections.elems:
        kind, child, parent = c.props[0], c.props[1], c.props[2]
        into.setdefault(child, []).append((kind, parent, c.props[3] if len(c.props) > 3 else None))
    out: dict[str, dict[str, tuple[np.ndarray, np.ndarray]]] = {}
    for elem in objects.elems:
        if elem.id != b"AnimationCurve":
            continue
        for kind, node_id, channel in into.get(elem.props[0], []):
            node = by_id.get(node_id)
            if kind != b"OP" or channel != CHANNEL or node is None or node.id != b"AnimationCurveNode":
                continue
            for kind2, model_id, prop in into.get(node_id, []):
                model = by_id.get(model_id)
                joint = foot_contacts.joint_of_property((prop or b"").decode())
                if kind2 == b"OP" and joint and model is not None and model.id == b"Model":
                    times = np.asarray(_child(elem, b"KeyTime").props[0], dtype=np.int64) / ktime
                    values = np.asarray(_child(elem, b"KeyValueFloat").props[0], dtype=np.float32)
                    out.setdefault(_node_name(model), {})[joint] = (times, values)
    return out


def import_contact_curves(path: str | os.PathLike[str], obj: bpy.types.Object, node: str | None = None) -> int:
    """Key the FBX's contact curves (of ``node``, default: the one named like ``obj``, else the
    only one) on ``obj``, at the frames Blender's importer gives their times (``anim_offset=0``)."""
    found = read_contact_curves(path)
    curves = found.get(node or obj.name) or (next(iter(found.values())) if len(found) == 1 else None)
    if not curves:
        return 0
    scene = bpy.context.scene
    for joint, (seconds, values) in curves.items():
        frames = np.round(seconds * scene.render.fps).astype(np.int64)  # as the importer does
        foot_plant_bpy.write_contacts(obj, float(frames[0]), [joint], values[:, None])
    return len(curves)


__all__ = ["add_contact_curves", "read_contact_curves", "import_contact_curves"]
