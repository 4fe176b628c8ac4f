"""Keyframes in bulk: write and read an armature's animation, on Blender 4.2 through 5.0.

Why bulk: ``keyframe_insert`` costs a Python call, an RNA lookup and an F-curve
search per key; a minute of dance on 24 bones is ~180 000 keys. We make each
F-curve once, ``keyframe_points.add(n)`` and fill every key with ``foreach_set``,
which is over a hundred times faster (``benchmarks/bench_keyframes.py`` measures it).

Why two code paths: Blender 4.4 introduced slotted (layered) actions and 5.0 removed
``Action.fcurves``; F-curves now live in a channelbag of a keyframe strip of a layer,
per slot. Blender 4.2 LTS has only the legacy API. ``_curves`` hides the difference;
nothing else in the add-on touches actions.

Keys are linear (the backend samples every frame, so there is nothing to smooth
between them), grouped per bone as Blender's own keying does, and written over an
existing range without touching any key outside it: a regenerated range splices in.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

import bpy
import numpy as np

from .core.quaternions import sign_continuous

_POINT_FLOATS = {"co": 2, "handle_left": 2, "handle_right": 2, "back": 1, "amplitude": 1, "period": 1}
_POINT_INTS = ("interpolation", "handle_left_type", "handle_right_type", "easing", "type")


def _enum_value(prop: str, item: str) -> int:
    return int(bpy.types.Keyframe.bl_rna.properties[prop].enum_items[item].value)


_LINEAR = _enum_value("interpolation", "LINEAR")
_VECTOR_HANDLE = _enum_value("handle_left_type", "VECTOR")
GENERATED = _enum_value("type", "GENERATED")
"""Keyframe type of every key we write. Blender draws such keys small in the Dope Sheet,
and an animator's own key (type KEYFRAME, or any other) tells itself apart: a
regeneration can keep the animator's keys as constraints."""


def layered_actions() -> bool:
    """True on Blender 4.4+, where actions have slots, layers, strips and channelbags."""
    return bpy.app.version >= (4, 4, 0)


def _action(obj: bpy.types.Object, create: bool) -> Any:
    """The object's action (created and assigned, with a slot, when ``create``)."""
    ad = obj.animation_data
    if ad is None or ad.action is None:
        if not create:
            return None
        ad = obj.animation_data_create()
        ad.action = bpy.data.actions.new(f"{obj.name}Action")
    action = ad.action
    if layered_actions() and create and ad.action_slot is None:
        suitable = list(ad.action_suitable_slots)
        ad.action_slot = suitable[0] if suitable else action.slots.new(id_type="OBJECT", name=obj.name)
    return action


def _curves(obj: bpy.types.Object, create: bool) -> tuple[Any, Any] | None:
    """(fcurves, groups) of the object's animation: a channelbag's on 4.4+, the action's on 4.2."""
    action = _action(obj, create)
    if action is None:
        return None
    if not layered_actions():
        return action.fcurves, action.groups
    slot = obj.animation_data.action_slot
    if slot is None:
        return None
    if not action.layers:
        if not create:
            return None
        action.layers.new("Layer")
    layer = action.layers[0]
    if not layer.strips:
        if not create:
            return None
        layer.strips.new(type="KEYFRAME")
    bag = layer.strips[0].channelbag(slot, ensure=create)
    return None if bag is None else (bag.fcurves, bag.groups)


def _fcurve(curves: tuple[Any, Any], data_path: str, index: int, group: str | None) -> Any:
    fcurves, groups = curves
    fc = fcurves.find(data_path, index=index)
    if fc is None:
        fc = fcurves.new(data_path, index=index)
        if group:
            fc.group = groups.get(group) or groups.new(group)
    return fc


def _read_points(fc: Any) -> dict[str, np.ndarray]:
    n = len(fc.keyframe_points)
    out: dict[str, np.ndarray] = {}
    for name, width in _POINT_FLOATS.items():
        out[name] = np.empty(n * width, dtype=np.float32)
        fc.keyframe_points.foreach_get(name, out[name])
        out[name] = out[name].reshape(n, width)
    for name in _POINT_INTS:
        out[name] = np.empty(n, dtype=np.int32)
        fc.keyframe_points.foreach_get(name, out[name])
    return out


def write_channel(curves: tuple[Any, Any], data_path: str, index: int, group: str | None,
                  frames: np.ndarray, values: np.ndarray) -> None:
    """Set linear keys at ``frames`` on one F-curve; keys outside the frames' span stay as they were.

    Every attribute of a kept key (value, handles, interpolation, easing) is read and
    written back as the same float32/int, so a splice never nudges the animation
    around it.
    """
    fc = _fcurve(curves, data_path, index, group)
    frames = np.asarray(frames, dtype=np.float32)
    values = np.asarray(values, dtype=np.float32)
    co = np.stack([frames, values], axis=1)
    new = {"co": co, "handle_left": co, "handle_right": co,
           "interpolation": np.full(frames.size, _LINEAR, dtype=np.int32),
           "handle_left_type": np.full(frames.size, _VECTOR_HANDLE, dtype=np.int32),
           "handle_right_type": np.full(frames.size, _VECTOR_HANDLE, dtype=np.int32),
           "type": np.full(frames.size, GENERATED, dtype=np.int32)}
    points = new
    if len(fc.keyframe_points):
        old = _read_points(fc)
        lo, hi = float(frames.min()) - 0.5, float(frames.max()) + 0.5
        outside = (old["co"][:, 0] < lo) | (old["co"][:, 0] > hi)
        if outside.any():
            # Kept keys carry every attribute back bit for bit; new keys take defaults
            # for the ones we do not set.
            for name in old:
                if name not in new:
                    new[name] = np.zeros((frames.size,) + old[name].shape[1:], dtype=old[name].dtype)
            points = {k: np.concatenate([old[k][outside], new[k]]) for k in new}
            order = np.argsort(points["co"][:, 0], kind="stable")
            points = {k: v[order] for k, v in points.items()}
        fc.keyframe_points.clear()
    fc.keyframe_points.add(points["co"].shape[0])
    for name, arr in points.items():
        fc.keyframe_points.foreach_set(name, np.ascontiguousarray(arr).ravel())
    # No fc.update(): the points are already sorted, and update() would recompute the
    # handles of the kept keys beside a splice. Linear keys do not use their handles.


def write_motion(obj: bpy.types.Object, first_frame: float, *,
                 rotations: Mapping[str, np.ndarray] | None = None,
                 locations: Mapping[str, np.ndarray] | None = None,
                 object_location: np.ndarray | None = None) -> None:
    """One key per frame from ``first_frame`` on, for pose bones and the object.

    ``rotations[bone]`` (T, 4) are w-first local quaternions (the bone is switched to
    quaternion rotation); they are made sign-continuous, starting from the value the
    F-curves hold just before ``first_frame``, so streamed chunks join without a flip.
    ``locations[bone]`` (T, 3) are pose-bone locations; ``object_location`` (T, 3) the
    object's. Keys of these channels inside the written frames are replaced.
    """
    curves = _curves(obj, create=True)
    assert curves is not None
    rotations, locations = rotations or {}, locations or {}
    for bone, quats in rotations.items():
        quats = np.asarray(quats, dtype=np.float64)
        frames = first_frame + np.arange(quats.shape[0], dtype=np.float64)
        path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].rotation_quaternion'
        before = _evaluate(curves, path, 4, first_frame - 1.0)
        quats = sign_continuous(quats[:, None], None if before is None else before[None])[:, 0]
        obj.pose.bones[bone].rotation_mode = "QUATERNION"
        for i in range(4):
            write_channel(curves, path, i, bone, frames, quats[:, i])
        _record_written(obj, bone, frames, quats)
    for bone, loc in locations.items():
        loc = np.asarray(loc)
        frames = first_frame + np.arange(loc.shape[0], dtype=np.float64)
        path = f'pose.bones["{bpy.utils.escape_identifier(bone)}"].location'
        for i in range(3):
            write_channel(curves, path, i, bone, frames, loc[:, i])
    if object_location is not None:
        loc = np.asarray(object_location)
        frames = first_frame + np.arange(loc.shape[0], dtype=np.float64)
        for i in range(3):
            write_channel(curves, "location", i, "Object Transforms", frames, loc[:, i])


def _evaluate(curves: tuple[Any, Any] | None, data_path: str, width: int, frame: float,
              ) -> np.ndarray | None:
    """The channel's value at ``frame`` if all of its F-curves exist and have keys, else None."""
    if curves is None:
        return None
    out = np.empty(width)
    for i in range(width):
        fc = curves[0].find(data_path, index=i)
        if fc is None or not len(fc.keyframe_points):
            return None
        out[i] = fc.evaluate(frame)
    return out


def read_channel(obj: bpy.types.Object, data_path: str, width: int, frames: Iterable[float],
                 default: Sequence[float]) -> np.ndarray:
    """Values (T, width) of one animated property at ``frames``, as Blender would evaluate them.

    A component without an F-curve keeps ``default`` (the property's current value).
    """
    frames = np.asarray(list(frames), dtype=np.float64)
    out = np.tile(np.asarray(default, dtype=np.float64), (frames.size, 1))
    curves = _curves(obj, create=False)
    if curves is None:
        return out
    for i in range(width):
        fc = curves[0].find(data_path, index=i)
        if fc is not None and len(fc.keyframe_points):
            out[:, i] = _evaluate_many(fc, frames)
    return out


def _evaluate_many(fc: Any, frames: np.ndarray) -> np.ndarray:
    """``fc.evaluate`` at each frame; where every frame asked for is a key (a dance has one
    per frame) and nothing modifies the curve, the keys' values are read in bulk: Blender
    evaluates a curve at a key's own time to that key's value."""
    n = len(fc.keyframe_points)
    if not len(fc.modifiers) and frames.size:
        co = np.empty(2 * n, dtype=np.float32)
        fc.keyframe_points.foreach_get("co", co)
        times, values = co[0::2].astype(np.float64), co[1::2]
        at = np.clip(np.searchsorted(times, frames), 0, n - 1)
        if np.all(times[at] == frames):
            return values[at].astype(np.float64)
    return np.array([fc.evaluate(float(f)) for f in frames], dtype=np.float64)


def read_motion(obj: bpy.types.Object, frames: np.ndarray, bones: Sequence[str],
                ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """The animation at ``frames``: per-bone quaternions (T, 4), locations (T, 3), object location.

    Reads F-curves, so the animator's own edits count, whatever the current frame is.
    Quaternions come back normalised (F-curve interpolation between keys does not keep
    them unit length).
    """
    rotations, locations = {}, {}
    for bone in bones:
        pb = obj.pose.bones[bone]
        esc = bpy.utils.escape_identifier(bone)
        q = read_channel(obj, f'pose.bones["{esc}"].rotation_quaternion', 4, frames,
                         tuple(pb.rotation_quaternion))
        rotations[bone] = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), 1e-12)
        locations[bone] = read_channel(obj, f'pose.bones["{esc}"].location', 3, frames, tuple(pb.location))
    obj_loc = read_channel(obj, "location", 3, frames, tuple(obj.location))
    return rotations, locations, obj_loc


def key_frames(obj: bpy.types.Object, data_path: str, index: int = 0) -> np.ndarray:
    """Frames (float32) of the keys on one F-curve (empty if none): for tests and splices."""
    curves = _curves(obj, create=False)
    fc = None if curves is None else curves[0].find(data_path, index=index)
    if fc is None:
        return np.zeros(0, dtype=np.float32)
    co = np.empty(len(fc.keyframe_points) * 2, dtype=np.float32)
    fc.keyframe_points.foreach_get("co", co)
    return co[0::2].copy()


def key_points(obj: bpy.types.Object, data_path: str, index: int = 0) -> dict[str, np.ndarray]:
    """Every attribute of every key of one F-curve (empty dict if there is none)."""
    curves = _curves(obj, create=False)
    fc = None if curves is None else curves[0].find(data_path, index=index)
    return {} if fc is None else _read_points(fc)


def all_fcurves(obj: bpy.types.Object) -> list[Any]:
    """The object's F-curves (from its slot's channelbag on 4.4+)."""
    curves = _curves(obj, create=False)
    return [] if curves is None else list(curves[0])


WRITTEN_KEY = "choreo_written"
"""Object custom property: per bone, the frames we keyed and a checksum of each key's
quaternion. Blender keeps a key's type when the animator keys over it, so only the
values tell an edited key from ours."""


def _checksum(quats: np.ndarray) -> np.ndarray:
    q = np.asarray(quats, dtype=np.float32).astype(np.float64)
    return q[:, 0] + 2.0 * q[:, 1] + 3.0 * q[:, 2] + 5.0 * q[:, 3]


def _record_written(obj: bpy.types.Object, bone: str, frames: np.ndarray, quats: np.ndarray) -> None:
    store = obj.get(WRITTEN_KEY)
    if store is None:
        obj[WRITTEN_KEY] = {}
        store = obj[WRITTEN_KEY]
    old = np.asarray(store.get(bone, []), dtype=np.float64).reshape(2, -1) if bone in store else np.zeros((2, 0))
    keep = (old[0] < frames.min() - 0.5) | (old[0] > frames.max() + 0.5)
    merged = np.concatenate([old[:, keep], np.stack([frames, _checksum(quats)])], axis=1)
    merged = merged[:, np.argsort(merged[0], kind="stable")]
    store[bone] = merged.ravel().tolist()


def own_key_frames(obj: bpy.types.Object, bones: Sequence[str], first: float, last: float) -> list[int]:
    """Frames in [first, last] where the animator keyed one of ``bones`` by hand.

    A key is the animator's when its type is not GENERATED (a new key), or when its
    quaternion no longer matches what we wrote there (a key set over one of ours).
    """
    found: set[int] = set()
    store = obj.get(WRITTEN_KEY) or {}
    for bone in bones:
        esc = bpy.utils.escape_identifier(bone)
        written = np.asarray(store.get(bone, []), dtype=np.float64).reshape(2, -1) if bone in store else None
        ours = {} if written is None else dict(zip(np.round(written[0]).astype(int), written[1]))
        channels = [key_points(obj, f'pose.bones["{esc}"].rotation_quaternion', i) for i in range(4)]
        values: dict[int, list[float]] = {}
        for i, pts in enumerate(channels):
            if not pts:
                continue
            frames = pts["co"][:, 0]
            inside = (frames >= first - 0.5) & (frames <= last + 0.5)
            found.update(int(round(f)) for f in frames[inside & (pts["type"] != GENERATED)])
            for f, v in zip(frames[inside], pts["co"][inside, 1]):
                values.setdefault(int(round(f)), [0.0] * 4)[i] = float(v)
        for frame, q in values.items():
            if frame in ours and abs(_checksum(np.array([q]))[0] - ours[frame]) > 1e-6:
                found.add(frame)
        for i in range(3):
            pts = key_points(obj, f'pose.bones["{esc}"].location', i)
            if pts:
                frames = pts["co"][:, 0]
                mine = (pts["type"] != GENERATED) & (frames >= first - 0.5) & (frames <= last + 0.5)
                found.update(int(round(f)) for f in frames[mine])
    return sorted(found)
