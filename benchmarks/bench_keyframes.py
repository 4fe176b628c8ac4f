"""Keyframes in Blender: the add-on's bulk path beside ``keyframe_insert``, and planting the feet.

Run with a Python that has ``bpy`` (e.g. ``.venv-bpy-5.0.1/bin/python
benchmarks/bench_keyframes.py``; ``python -m tests.blender`` makes that environment).
It writes docs/bench_keyframes.md, and with ``--json`` prints the figures instead
(``choreo bench`` uses that). Budgets: 60 s of motion (30 fps) on the 24-bone SMPL rig
keyed in at most 0.5 s; the feet of 60 s of a real dance planted in at most 0.3 s
(issue 15), on the SMPL rig and on the Mixamo-style test rig.

Planting is timed as the add-on runs it after a dance is keyed (``foot_plant_bpy.plant``
over the whole range: read the keys and contact curves, solve the legs, key the result).
The dance is real capture, not noise: planting's cost follows the contact spans and how
far the feet slide in them. It is the bundled motion library's (``graph_library.npz``,
the clips the ``graph`` model composes dances from), its longest clips played one after
another, each continuing from where the last one ended, with the library's own contact
labels.

The data used in this project was obtained from mocap.cs.cmu.edu. The database was
created with funding from NSF EIA-0196217.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path
from typing import Sequence

import bpy
import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.bench_blender import PLANT_BUDGET_S, PLANT_RIGS, plant_method, plant_table  # noqa: E402
from blender_addon import foot_plant_bpy, keyframes, retarget_bpy, retarget_target, rig  # noqa: E402
from blender_addon.core import quaternions, smpl_pose  # noqa: E402
from protocol.skeleton import JOINT_NAMES  # noqa: E402

BUDGET_S = 0.5
SECONDS = 60.0
INSERT_SECONDS = 60.0  # the same 60 s, key by key
LIBRARY = REPO / "backend" / "checkpoints" / "graph_library.npz"


def _motion(frames: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    q = quaternions.normalize(np.array([1.0, 0, 0, 0]) + 0.2 * rng.standard_normal((frames, 24, 4)))
    root = np.c_[np.linspace(0, 2, frames), np.zeros(frames), np.full(frames, 0.95)]
    return q, root


def library_dance(frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str], list[str]]:
    """``frames`` of real dance from the motion library: rotations (T, 24, 4), root (T, 3),
    contact labels (T, C), the contact joints' names and the clips used (``60_09 (salsa)``).

    The longest clips, one after another; each is moved over the floor to start where the
    one before it ended (one jump in the pose at each join, as a cut in an edit makes).
    Read with numpy alone (this Python has no torch for ``backend.library``): the stored
    int16 quaternions only need normalising.
    """
    with np.load(LIBRARY, allow_pickle=False) as data:
        starts, names = data["clip_starts"], data["clip_names"]
        rotations, root, contacts = data["rotations"], data["root"], data["contacts"]
        meta, styles = json.loads(str(data["meta"])), data["clip_styles"]
    contact_names = list(meta["contact_names"])
    q, path, labels, used = [], [], [], []
    end = np.zeros(2)
    for clip in np.argsort(-np.diff(starts), kind="stable"):
        take = min(frames - sum(len(p) for p in path), int(starts[clip + 1] - starts[clip]))
        if take <= 0:
            break
        part = slice(int(starts[clip]), int(starts[clip]) + take)
        xyz = root[part].astype(np.float64)
        xyz[:, :2] += end - xyz[0, :2]
        end = xyz[-1, :2]
        q.append(quaternions.normalize(rotations[part].astype(np.float64)))
        path.append(xyz)
        labels.append(contacts[part].astype(np.float32))
        used.append(f"{names[clip]} ({meta['styles'][int(styles[clip])]})")
    return np.concatenate(q), np.concatenate(path), np.concatenate(labels), contact_names, used


def _clear(obj: bpy.types.Object) -> None:
    action = obj.animation_data.action if obj.animation_data else None
    data = obj.data
    bpy.data.objects.remove(obj, do_unlink=True)
    bpy.data.armatures.remove(data)
    if action is not None:
        bpy.data.actions.remove(action)


def _danced_rig(kind: str, q: np.ndarray, root: np.ndarray, labels: np.ndarray, names: list[str],
                ) -> bpy.types.Object:
    """A fresh rig with the dance and its contact curves keyed from frame 1, as generating
    or retargeting with *Plant feet* off leaves it."""
    if kind == "smpl":
        obj = rig.build_smpl_rig(bpy.context, body=False)
        rot, loc = smpl_pose.to_channels(q, root)
        keyframes.write_motion(obj, 1, rotations=rot, locations=loc)
    elif kind == "mixamo":
        from tests.blender.test_retarget import mixamo_rig  # the Blender tests' Mixamo-style rig
        obj = mixamo_rig()
        bone_map = retarget_target.fill_bone_map(obj, "AUTO")
        retarget_bpy.apply(obj, bone_map, q, root, 1, "PELVIS")
    else:
        raise ValueError(f"no rig {kind!r} to plant on; these are: {', '.join(PLANT_RIGS)}")
    foot_plant_bpy.write_contacts(obj, 1, names, labels)
    return obj


def measure_planting(repeats: int = 3, rigs: Sequence[str] = tuple(PLANT_RIGS)) -> dict:
    """Planting 60 s of real dance (best of ``repeats``, each on a freshly keyed rig) per rig."""
    frames = int(SECONDS * 30)
    q, root, labels, names, clips = library_dance(frames)
    if not getattr(sys.modules.get("blender_addon"), "__addon_enabled__", False):
        import addon_utils  # Blender's own module: importable once bpy is

        addon_utils.enable("blender_addon")  # registers the rigs' bone-map rows
    out = {}
    for kind in rigs:
        times, result, obj = [], None, None
        for _ in range(repeats):
            if obj is not None:
                _clear(obj)
            obj = _danced_rig(kind, q, root, labels, names)
            t = time.perf_counter()
            result = foot_plant_bpy.plant(obj, 1, frames)
            times.append(time.perf_counter() - t)
        if result is None:
            raise RuntimeError(f"{kind}: planting found no contact curves")
        out[kind] = {"bones": len(obj.data.bones), "frames": frames,
                     "changed_frames": int(result.changed.sum()),
                     "spans": sum(len(s) for s in result.spans.values()),
                     "hip_drop_frames": int((result.hip_drop > 1e-9).sum()), "all_s": times,
                     "best_s": min(times), "budget_s": PLANT_BUDGET_S, "pass": min(times) <= PLANT_BUDGET_S}
        _clear(obj)
    return {"dance": f"CMU capture from the motion library, clips {', '.join(clips)}, {frames} frames at 30 fps",
            "rigs": out}


def measure(repeats: int = 3) -> dict:
    frames = int(SECONDS * 30)
    q, root = _motion(frames)
    bulk = []
    for _ in range(repeats):
        obj = rig.build_smpl_rig(bpy.context, body=False)
        rot, loc = smpl_pose.to_channels(q, root)
        t = time.perf_counter()
        keyframes.write_motion(obj, 1, rotations=rot, locations=loc)
        bulk.append(time.perf_counter() - t)
    keys = frames * (24 * 4 + 3)
    obj = rig.build_smpl_rig(bpy.context, body=False)
    n = int(INSERT_SECONDS * 30)
    t = time.perf_counter()
    for f in range(n):
        for j, name in enumerate(JOINT_NAMES):
            pb = obj.pose.bones[name]
            pb.rotation_quaternion = q[f, j]
            pb.keyframe_insert("rotation_quaternion", frame=f + 1)
        pelvis = obj.pose.bones["pelvis"]
        pelvis.location = root[f] - smpl_pose.PELVIS_REST_HEAD
        pelvis.keyframe_insert("location", frame=f + 1)
    insert_s = time.perf_counter() - t
    insert_keys = n * (24 * 4 + 3)
    best = min(bulk)
    return {"blender": bpy.app.version_string, "frames": frames, "keys": keys, "bulk_s": best,
            "bulk_keys_per_s": keys / best, "insert_keys": insert_keys, "insert_s": insert_s,
            "insert_keys_per_s": insert_keys / insert_s, "insert_60s_estimate_s": keys / (insert_keys / insert_s),
            "speedup": (keys / best) / (insert_keys / insert_s), "budget_s": BUDGET_S,
            "pass": best <= BUDGET_S, "plant": measure_planting(repeats),
            "machine": f"{platform.machine()}, {platform.processor() or ''}".strip(", ")}


def report(r: dict) -> str:
    return "\n".join([
        "# Blender keyframe writing and foot planting",
        "",
        f"Made by `python benchmarks/bench_keyframes.py` on {time.strftime('%Y-%m-%d')}, Blender "
        f"{r['blender']} (headless `bpy`), {r['machine']}. Rerun it to check.",
        "",
        "| what | keys | seconds | keys per second |",
        "|---|---|---|---|",
        f"| add-on bulk write (`keyframe_points.add` + `foreach_set`), 60 s on the 24-bone rig, best of 3 | "
        f"{r['keys']} | {r['bulk_s']:.3f} | {r['bulk_keys_per_s']:,.0f} |",
        f"| `keyframe_insert`, {INSERT_SECONDS:.0f} s of the same motion | {r['insert_keys']} | "
        f"{r['insert_s']:.3f} | {r['insert_keys_per_s']:,.0f} |",
        "",
        f"Budget: 60 s of motion in ≤ {r['budget_s']} s: {r['bulk_s']:.3f} s, "
        f"{'pass' if r['pass'] else 'FAIL'}. The bulk path is {r['speedup']:.0f}x faster per key; "
        f"`keyframe_insert` would need about {r['insert_60s_estimate_s']:.1f} s for the 60 s.",
        "",
        plant_method(r["plant"]),
        "",
        *plant_table(r["plant"]),
        "",
    ])


if __name__ == "__main__":
    result = measure()
    if "--json" in sys.argv:
        print(json.dumps(result))
    else:
        out = REPO / "docs" / "bench_keyframes.md"
        out.write_text(report(result), encoding="utf-8")
        print(report(result))
